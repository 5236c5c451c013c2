"""Find the files to ingest under the paths given, without leaving the folders given.

Inside a folder, a symbolic link (to a file or a folder) that resolves outside that folder is not
followed: it is reported as skipped. A link to a file inside the folder is followed, unless that
file is ingested under its own name anyway (then the link is a skipped duplicate). Links to folders
are never descended into (one inside the folder is reached directly). Hidden files and folders are
left out; anything that is not a regular file (a FIFO, a device) is skipped unread. A file named
on its own is read wherever it points: the user named it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from assistant.errors import LoragError
from ingest.formats import file_format
from ingest.writer import FAILED, SKIPPED, FileResult


@dataclass
class Found:
    files: list[tuple[Path, str]] = field(default_factory=list)  # (real path, display name) to ingest
    results: list[FileResult] = field(default_factory=list)  # paths failed or skipped up front
    roots: list[Path] = field(default_factory=list)  # the folders given, resolved
    other_formats: list[str] = field(default_factory=list)  # files of formats left out by ingest.formats
    refused: set[str] = field(default_factory=set)  # link paths not followed (for --sync)


def _outside(target: Path) -> str:
    return f"symbolic link to {target}, outside the folder being ingested (not followed)"


def discover(paths: Iterable[Path], formats: set[str]) -> Found:
    found = Found()
    entries: list[tuple[Path, str, Path | None]] = []  # (real path, display, the link it was reached by)
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            found.results.append(FileResult(str(p), str(raw), FAILED, "no such file or folder"))
        elif p.is_dir():
            root = p.resolve()
            found.roots.append(root)
            entries += _walk(root, formats, found)
        elif not p.is_file():
            found.results.append(FileResult(str(p), str(raw), SKIPPED, "not a regular file"))
        elif file_format(p) not in formats:  # left out as a folder's files of other formats are
            found.other_formats.append(p.name)
        else:
            entries.append((p.resolve(), p.name, None))
    direct = {f: d for f, d, link in entries if link is None}
    seen: set[Path] = set()
    for f, d, link in entries:
        if link is not None and f in direct:
            msg = f"symbolic link to {direct[f]}, which is ingested under its own name"
            found.results.append(FileResult(str(link), d, SKIPPED, msg))
        elif f not in seen:
            seen.add(f)
            found.files.append((f, d))
    return found


def _walk(root: Path, formats: set[str], found: Found) -> list[tuple[Path, str, Path | None]]:
    out: list[tuple[Path, str, Path | None]] = []

    def unreadable(e: OSError) -> None:
        shown = Path(e.filename).relative_to(root).as_posix() if e.filename else str(root)
        found.results.append(FileResult(str(e.filename), shown, FAILED, f"cannot read the folder: {e.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        here = Path(dirpath)
        for name in sorted(dirnames):
            link = here / name
            if not name.startswith(".") and link.is_symlink():
                target = link.resolve()
                reason = (
                    _outside(target)
                    if not target.is_relative_to(root)
                    else (
                        f"symbolic link to the folder {target.relative_to(root).as_posix() or '.'} inside this one "
                        "(not followed: its files are ingested from there)"
                    )
                )
                found.results.append(FileResult(str(link), link.relative_to(root).as_posix(), SKIPPED, reason))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink())
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            f = here / name
            shown = f.relative_to(root).as_posix()
            if file_format(f) not in formats:
                found.other_formats.append(shown)
                continue
            link = f if f.is_symlink() else None
            if link is not None:
                try:
                    f = f.resolve(strict=True)
                except (OSError, RuntimeError):  # missing target, or a loop
                    reason = f"broken symbolic link (to {os.readlink(link)})"
                    found.results.append(FileResult(str(link), shown, FAILED, reason))
                    continue
                if not f.is_relative_to(root):
                    found.results.append(FileResult(str(link), shown, SKIPPED, _outside(f)))
                    found.refused.add(str(link))
                    continue
            if not f.is_file():
                found.results.append(FileResult(str(f), shown, SKIPPED, "not a regular file"))
                continue
            out.append((f, shown, link))
    return out


def no_supported_files(skipped: list[str], formats: Iterable[str]) -> LoragError:
    """The error of an ingest given no file of a format it reads (`skipped`: the files of other formats); the same
    whether the files are read here, by a running app, or checked before the CLI uploads them to one."""
    left = f" ({len(skipped)} file(s) of other formats, e.g. {skipped[0]})" if skipped else ""
    return LoragError(f"no supported files found{left}", hint=f"formats: {', '.join(formats)}")
