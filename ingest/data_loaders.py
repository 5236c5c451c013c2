"""Loaders of data files: CSV/TSV (one line of "column: value" pairs per row) and JSON (flattened to key paths)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

from ingest.load_types import NO_LIMITS, BadFileError, Limits, LoadNotes, Section
from ingest.text_decoding import read_text

_CSV_DELIMITERS = ",;\t|"  # the comma first: it wins every tie
_CSV_SAMPLE_LINES = 50


def csv_delimiter(lines: list[str]) -> str:
    """The file's field delimiter among , ; tab and |: the one whose split of the first lines gives a header of
    two fields or more that the most rows after it repeat (the comma on a tie, or where none splits the header:
    a semicolon file, as spreadsheets in many locales write, would otherwise be one column)."""
    best, best_score = ",", -1.0
    for d in _CSV_DELIMITERS:
        plain = _plain_runs(d)  # runs read as one character: no field reaches csv's size limit, counts stay
        sample = (plain.sub("x", line) for line in lines[:_CSV_SAMPLE_LINES])
        try:
            rows = [r for r in csv.reader(sample, delimiter=d) if any(c.strip() for c in r)]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        score = sum(len(r) == len(rows[0]) for r in rows[1:]) / max(1, len(rows) - 1)
        if score > best_score:
            best, best_score = d, score
    return best


def _csv_records(text: str) -> tuple[list[tuple[int, list[str]]], int | None]:
    """(line the record starts on, its fields) per record, and the line of an unclosed quote (else None).

    An unclosed quote would swallow the rest of the file into one field: its record and the lines after it are
    read again with quote characters as plain text, so every line stays a record of its own."""
    lines = io.StringIO(text).readlines()  # what csv.reader's line_num counts
    delimiter = csv_delimiter(lines)
    reader = csv.reader(lines, delimiter=delimiter)
    records, start = [], 1
    try:
        for row in reader:
            records.append((start, row))
            start = reader.line_num + 1
    except csv.Error as e:  # an unclosed quote with more than the field limit after it fails before the end
        if "field larger than field limit" not in str(e) or not _unclosed_quote(lines[start - 1 :], delimiter):
            raise
        line = start
    else:
        if not records or not _unclosed_quote(lines[records[-1][0] - 1 :], delimiter):
            return records, None
        line = records.pop()[0]
    rest = csv.reader(lines[line - 1 :], delimiter=delimiter, quoting=csv.QUOTE_NONE)
    return records + [(line + i, row) for i, row in enumerate(rest)], line


def _plain_runs(delimiter: str) -> re.Pattern[str]:
    """Runs of characters that are not the delimiter, a quote or a line end: the parser treats a run like one
    character."""
    return re.compile(f'[^{re.escape(delimiter)}"\\r\\n\\x00]+')


def _unclosed_quote(lines: list[str], delimiter: str = ",") -> bool:
    """Whether these lines (a record and the ones after it) end inside a quoted field: the lenient reader takes them
    as one field.

    Each run of plain characters is read as one, which keeps the quoting and the record ends as they are while no
    field reaches csv's field size limit."""
    plain = _plain_runs(delimiter)
    try:
        for _ in csv.reader((plain.sub("x", line) for line in lines), delimiter=delimiter, strict=True):
            pass
    except csv.Error as e:
        return "unexpected end of data" in str(e)  # CPython's message for end of input inside quotes
    return False


_CSV_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def _line_list(lines: list[int], most: int = 10) -> str:
    shown = ", ".join(map(str, lines[:most])) + (f" and {len(lines) - most} more" if len(lines) > most else "")
    return ("line " if len(lines) == 1 else "lines ") + shown


def load_csv(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    """One line per row of "column: value" pairs (each row stays readable on its own inside a chunk; the lines of a
    multi-line value are joined with a space); fields split by csv_delimiter's choice. Nothing is
    dropped: fields past the header's are named "column N", and `notes` warns of rows with more or fewer fields than
    the header and of an unclosed quote, with their line numbers."""
    notes = notes if notes is not None else LoadNotes()
    text = read_text(path, notes, limits.text_encoding)
    try:
        records, unclosed = _csv_records(text)
    except csv.Error as e:
        raise BadFileError(f"malformed CSV ({e})") from None
    records = [(n, row) for n, row in records if any(c.strip() for c in row)]
    if not records:
        return [Section(text)]
    (_, first), rows = records[0], records[1:]
    limits.check(len(rows), "rows", "max_rows")
    if not rows:
        return [Section(text)]
    header = [h.strip() or f"column {i + 1}" for i, h in enumerate(first)]
    longer, shorter, lines = [], [], []
    for n, row in rows:
        if len(row) != len(header):
            (longer if len(row) > len(header) else shorter).append(n)
        names = header + [f"column {i + 1}" for i in range(len(header), len(row))]
        values = (_CSV_LINE_BREAKS.sub(" ", v.strip()) for v in row)  # a multi-line cell stays on its row's line
        lines.append("; ".join(f"{h}: {v}" for h, v in zip(names, values) if v))
    if unclosed is not None:
        notes.warnings.append(
            f"unclosed quote at line {unclosed}: "
            + (f"lines {unclosed}-{rows[-1][0]} were" if rows[-1][0] > unclosed else "the line was")
            + " read with quote characters as text"
        )
    if longer:
        extra = f'"column {len(header) + 1}"' + (", ..." if len(header) + 1 < max(len(r) for _, r in rows) else "")
        notes.warnings.append(
            f"rows with more fields than the header's {len(header)} (the extra ones kept as {extra}): "
            + _line_list(longer)
        )
    if shorter:
        notes.warnings.append(f"rows with fewer fields than the header's {len(header)}: " + _line_list(shorter))
    return [Section("\n".join(lines), "table: " + ", ".join(header))]


def _flatten_json(value: object, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        out: list[str] = []
        for k, v in value.items():
            out += _flatten_json(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):  # records: one paragraph each
            return ["\n".join(_flatten_json(v, prefix)) + "\n" for v in value]
        return [f"{prefix}: " + ", ".join(json.dumps(v) if not isinstance(v, str) else v for v in value)]
    return [f"{prefix}: {value}" if prefix else str(value)]


def _count_records(value: object) -> int:
    """Objects inside lists of objects (what _flatten_json makes one paragraph each), at any depth."""
    n, stack = 0, [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            n += len(v) if v and all(isinstance(x, dict) for x in v) else 0
            stack.extend(v)
    return n


def load_json(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    text = read_text(path, notes, limits.text_encoding)
    try:
        data = json.loads(text)
        limits.check(_count_records(data), "records", "max_rows")
        return [Section("\n".join(_flatten_json(data)))]
    except json.JSONDecodeError as e:
        raise BadFileError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise BadFileError(f"JSON nested too deeply (over about {sys.getrecursionlimit()} levels)") from None
