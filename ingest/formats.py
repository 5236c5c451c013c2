"""File formats: the loader key of a path, and the names messages give the text formats."""

from __future__ import annotations

from pathlib import Path

TEXT_KINDS = {"md": "Markdown text", "markdown": "Markdown text", "rst": "reStructuredText", "csv": "CSV text"}
TEXT_KINDS |= {"tsv": "tab-separated text", "json": "JSON text", "html": "HTML", "htm": "HTML", "txt": "plain text"}


# Text formats also read gzip-compressed ("api.md.gz", as Debian ships /usr/share/doc): the inner suffix decides
GZIPPED_TEXT = frozenset({"md", "markdown", "rst", "txt", "html", "htm", "csv", "tsv", "json"})


def is_gzipped_text(path: Path) -> bool:
    """`path` is a text format's file compressed with gzip: "x.md.gz", "x.rst.txt.gz"."""
    return path.suffix.lower() == ".gz" and _format(path.name.lower()[:-3]) in GZIPPED_TEXT


def file_format(path: Path) -> str:
    """The loader key: the suffix, except Sphinx's `_sources/*.rst.txt` copies, which are reStructuredText, and a
    gzip-compressed text file's, which is its inner suffix's ("api.md.gz": md)."""
    name = path.name.lower()
    if name.endswith(".gz") and _format(name[:-3]) in GZIPPED_TEXT:
        return _format(name[:-3])
    return _format(name)


def _format(name: str) -> str:
    if name.endswith(".rst.txt"):
        return "rst"
    return Path(name).suffix.lstrip(".")
