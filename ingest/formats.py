"""File formats: the loader key of a path, and the names messages give the text formats."""

from __future__ import annotations

from pathlib import Path

TEXT_KINDS = {"md": "Markdown text", "markdown": "Markdown text", "rst": "reStructuredText", "csv": "CSV text"}
TEXT_KINDS |= {"tsv": "tab-separated text", "json": "JSON text", "html": "HTML", "htm": "HTML", "txt": "plain text"}


def file_format(path: Path) -> str:
    """The loader key: the suffix, except Sphinx's `_sources/*.rst.txt` copies, which are reStructuredText."""
    name = path.name.lower()
    if name.endswith(".rst.txt"):
        return "rst"
    return path.suffix.lower().lstrip(".")
