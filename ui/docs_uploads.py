"""Uploads saved into a domain's folder, `<data_dir>/uploads/<domain>/`, before they are ingested.

A name that is absolute, contains `..` or resolves outside that folder is refused (zip members too, and zip
symlinks); each upload must be at most `ui.max_upload_mb`, and a zip may unpack to at most 10x that.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.names import check_domain, domain_name, inside

ZIP_EXPANSION = 10


def uploads_root(core: Any, domain: str) -> Path:
    return core.data_dir / "uploads" / check_domain(domain)


def in_upload_order(root: Path, names: list[str], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-file results in the order the files were chosen (a zip's members where the zip was; the ingest
    reports by folder and refused uploads first); a result of no upload keeps its place after them."""
    where: list[tuple[str, str]] = []  # (the upload's name, where it was saved: a file, or a zip's folder + "/")
    for name in names:
        try:
            saved = str(saved_path(root, name)) + ("/" if is_zip(name) else "")
        except LoragError:
            saved = "\0"  # refused name: matched by its name only
        where.append((name, saved))

    def rank(r: dict[str, Any]) -> int:
        path = str(r.get("path", ""))
        for i, (name, saved) in enumerate(where):
            if path in (name, saved) or path.startswith((f"{name}:", saved if saved.endswith("/") else "\0")):
                return i
        return len(where)

    return sorted(results, key=rank)


def is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def saved_path(root: Path, name: str) -> Path:
    """Where an upload named `name` is saved under the domain's upload folder: the file, or the folder a zip is
    unpacked into (its name without .zip). Raises LoragError for a name that would leave the folder."""
    return inside(root, Path(name).stem) if is_zip(name) else inside(root, name)


def save_uploads(core: Any, domain: str, files: list[tuple[str, Path]]) -> tuple[list[Path], list[dict[str, Any]]]:
    """Copy uploaded (name, temp path) pairs into the domain's upload folder; unpack zips.
    Returns (paths to ingest, failed results)."""
    root = uploads_root(core, domain)
    root.mkdir(parents=True, exist_ok=True)
    limit = core.settings.ui.max_upload_mb * 2**20
    paths: list[Path] = []
    failed: list[dict[str, Any]] = []

    def fail(name: str, reason: str) -> None:
        failed.append({"path": name, "display": name, "status": "failed", "reason": reason, "chunks": 0})

    for name, tmp in files:
        name = str(name)
        try:
            size = Path(tmp).stat().st_size
            if size > limit:
                raise LoragError(
                    f"too large ({size / 2**20:.1f} MB > ui.max_upload_mb {core.settings.ui.max_upload_mb:g})"
                )
            if is_zip(name):
                folder = saved_path(root, name)
                ok, bad = _unzip(Path(tmp), folder, limit * ZIP_EXPANSION)
                failed += [
                    {"path": f"{name}:{m}", "display": f"{name}:{m}", "status": "failed", "reason": r, "chunks": 0}
                    for m, r in bad
                ]
                if ok:
                    paths.append(folder)
            else:
                target = saved_path(root, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(tmp, target)
                paths.append(target)
        except LoragError as e:
            fail(name, str(e))
        except (OSError, zipfile.BadZipFile) as e:
            fail(name, f"cannot read the upload: {e}")
    return paths, failed


def _unzip(zpath: Path, folder: Path, max_total: float) -> tuple[int, list[tuple[str, str]]]:
    """Extract members one by one after checking each name; returns (files written, refused members)."""
    bad: list[tuple[str, str]] = []
    written = 0
    with zipfile.ZipFile(zpath) as z:
        members = [m for m in z.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > max_total:
            raise LoragError(f"the zip unpacks to more than {max_total / 2**20:.0f} MB")
        folder.mkdir(parents=True, exist_ok=True)
        for m in members:
            if stat.S_ISLNK(m.external_attr >> 16):
                bad.append((m.filename, "symbolic links are not accepted"))
                continue
            try:
                target = inside(folder, m.filename)
            except LoragError as e:
                bad.append((m.filename, str(e)))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(m) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            written += 1
    return written, bad


def upload_domain(typed: str | None) -> str:
    """The domain an upload goes into (domain_name: 'Orbit' is the domain 'orbit'); none typed or picked is refused."""
    if not (typed or "").strip():
        raise LoragError("choose a domain for the upload: pick one in Domain, or type a new name (e.g. 'contracts')")
    return domain_name(typed)
