"""Documents: list, remove, and the checks and file lists of an ingest (locally or through a running app)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from assistant.errors import LoragError, UnknownDomainError, known_hint


def list_documents(store: Any, domain: str | None = None) -> list[dict[str, Any]]:
    """Every indexed document (of one domain, or all), as plain dicts: domain, display, format, chunks, hash. A
    domain that is not indexed is an error, as for `drop_domain` (a typo must not read as an empty domain)."""
    if domain:
        check_known_domain(store, domain, "nothing to list")
    domains = [domain] if domain else store.domains()
    return [{"domain": d, **doc.__dict__} for d in domains for doc in store.list_docs(d)]


def remove_documents(store: Any, domain: str, names: list[str], *, uploads: Path | None = None) -> list[dict[str, Any]]:
    """Remove documents by path or shown name (all of them checked first: one unknown name removes nothing).
    `uploads`: the app's copy of an upload inside that folder is deleted too. Returns what was removed."""
    check_known_domain(store, domain, "nothing removed")
    docs = store.list_docs(domain)
    picked = []
    for name in names:
        resolved = str(Path(name).expanduser().resolve()) if name else name
        match = [d for d in docs if name in (d.doc_id, d.display) or d.doc_id == resolved]
        if not match:
            raise LoragError(f"'{name}' is not indexed in domain '{domain}'", hint="see `lorag docs list`")
        picked += [d for d in match if d not in picked]
    root = uploads.resolve() if uploads is not None else None
    for d in picked:
        store.remove_doc(domain, d.doc_id)
        f = Path(d.doc_id)
        if root is not None and f.is_file() and f.resolve().is_relative_to(root):
            f.unlink()
    store.flush()
    return [_removed(d) for d in picked]


def _removed(d: Any) -> dict[str, Any]:
    """A removed document as the CLI, the API and the Documents tab report it."""
    return {"display": d.display, "doc_id": d.doc_id, "chunks": d.n_chunks}


def drop_domain(store: Any, domain: str) -> list[dict[str, Any]]:
    """Remove a whole domain (`docs rm --all`); a domain that is not indexed is an error (a typo must not read
    as done). Returns the documents it held."""
    check_known_domain(store, domain, "nothing to remove")
    removed = [_removed(d) for d in store.list_docs(domain)]
    store.drop_domain(domain)
    return removed


def check_known_domain(store: Any, domain: str, outcome: str) -> None:
    """A LoragError naming `outcome` ("nothing to remove") and the domain meant, when `domain` is not indexed."""
    known = store.domains()
    if domain not in known:
        raise UnknownDomainError(f"unknown domain '{domain}': {outcome}", hint=known_hint(domain, known, "domains"))


def check_ingest_paths(paths: Iterable[Path]) -> None:
    """Every path given to `lorag ingest` exists: a typo fails at once, before any model loads."""
    missing = [str(p) for p in paths if not Path(p).expanduser().exists()]
    if missing:
        raise LoragError(
            f"no such file or folder: {', '.join(missing)}", hint="check the path; folders are read recursively"
        )


def files_to_send(paths: Iterable[Path], formats: Iterable[str]) -> tuple[list[tuple[str, Path]], list[str]]:
    """(name, file) pairs to upload to a running app, and the files left out for their format, as
    `lorag ingest` reads them: folders recursively, hidden files skipped, names relative to the folder."""
    from ingest.formats import file_format

    allowed = set(formats)
    files: list[tuple[str, Path]] = []
    skipped: list[str] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(n for n in filenames if not n.startswith(".")):
                    f = Path(dirpath) / name
                    rel = f.relative_to(p).as_posix()
                    (files.append((rel, f)) if file_format(f) in allowed else skipped.append(rel))
        elif p.is_file():
            (files.append((p.name, p)) if file_format(p) in allowed else skipped.append(p.name))
    return files, skipped


def skipped_note(skipped: list[str], formats: Iterable[str]) -> str:
    """Files left out for their format, in words a user understands."""
    kinds = sorted({Path(s).suffix.lower() or "(no extension)" for s in skipped})
    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    return (
        f"left out {len(skipped)} file(s) lorag does not read ({', '.join(kinds)}): {', '.join(skipped[:5])}{more}; "
        f"it reads {', '.join(sorted(formats))} (setting ingest.formats)"
    )
