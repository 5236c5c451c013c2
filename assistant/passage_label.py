"""A passage's short label ('file › section', 'file › p. N', 'file › row N'), light enough for the warm CLI to
import (no model, no retrieval code): the citations (assistant/citations.py), the chat and the CLI's passages share
it."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any


def passage_label(p: Any) -> str:
    """A short label for a passage: 'file › section' (the innermost heading), 'file › p. N' for a PDF page,
    'file › row N' for a CSV row, 'file › rows N–M' for a passage of several rows (the rows of the file that
    the passage's lines are, when the file is still there), else the file name."""
    name = str(getattr(p, "source", "") or "").rsplit("/", 1)[-1] or "?"
    if getattr(p, "page", None):
        return f"{name} › p. {p.page}"
    section = str(getattr(p, "section", "") or "")
    if section.startswith("table: "):
        rows = csv_rows(getattr(p, "doc_id", ""), getattr(p, "text", ""))
        if not rows:
            return f"{name} › table"
        return f"{name} › row {rows[0]}" if rows[0] == rows[1] else f"{name} › rows {rows[0]}–{rows[1]}"
    last = section.split(" > ")[-1].strip()
    last = re.sub(r"^\d+(\.\d+)*\.?\s+", "", last)  # "2. Annual leave" -> "Annual leave"
    return f"{name} › {last}" if last else name


def csv_rows(path: str, text: str) -> tuple[int, int] | None:
    """The first and last data row numbers (1 = the first row under the header) of a CSV passage's lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not path:
        return None
    try:
        rows = _csv_lines(path, Path(path).stat().st_mtime_ns)
    except OSError:
        return None
    found = [rows[line] for line in lines if line in rows]  # a line cut by the chunker matches no row
    return (min(found), max(found)) if found else None


@lru_cache(maxsize=64)
def _csv_lines(path: str, _mtime: int) -> dict[str, int]:
    """A CSV file's rows as ingest writes them ("column: value; ..."), each with its number."""
    import csv
    import io

    text = Path(path).read_text(encoding="utf-8", errors="replace")
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    except csv.Error:
        return {}
    if len(rows) < 2:
        return {}
    header = [h.strip() for h in rows[0]]
    out: dict[str, int] = {}
    for i, row in enumerate(rows[1:], start=1):
        out.setdefault("; ".join(f"{h}: {v.strip()}" for h, v in zip(header, row) if v.strip()), i)
    return out
