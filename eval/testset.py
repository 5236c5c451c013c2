"""Test sets: the curated Q&A JSONL format (assistant.qa.QARecord) plus optional reference contexts.

One row per line:

    {"id": "handbook-001", "question": "...", "answer": "...", "sources": ["leave-policy.md"],
     "tags": ["leave"], "contexts": ["Full-time employees receive 26 days ..."]}

`question` and `answer` are required; `sources` (file names relative to the domain folder, matched
against `Passage.source`) and `contexts` (reference passages, verbatim) feed the retrieval metrics.
Every bad row is reported at once, with its line number.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from assistant.errors import LoragError
from assistant.names import check_domain
from assistant.qa import QARecord, bad_rows, file_sha256, load_records, validation_problems, write_jsonl

HELDOUT_NAME = "heldout.jsonl"


class TestItem(QARecord):
    """A curated Q&A row with optional reference contexts."""

    __test__ = False  # not a pytest class

    contexts: list[str] = Field(default_factory=list)

    @field_validator("sources", "tags", "contexts")
    @classmethod
    def _clean_list(cls, v: list[str]) -> list[str]:
        out = [s.strip() for s in v]
        if any(not s for s in out):
            raise ValueError("must not contain blank strings")
        return out


def load_testset(path: Path, *, name: str | None = None) -> list[TestItem]:
    """Every row validated like `assistant.qa.load_records`; one LoragError lists every bad line (the file called
    `name` when given: an uploaded copy's original name)."""
    return load_records(path, TestItem, what="test set", rows_name="test rows", name=name)


def describe_testset(path: Path, items: list[TestItem], *, name: str | None = None) -> dict[str, Any]:
    return {"path": name or str(path), "sha256": file_sha256(path), "n": len(items)}


def default_testset(datasets_dir: Path, domain: str) -> Path:
    """The held-out split the adapter training wrote for the domain."""
    path = Path(datasets_dir) / check_domain(domain) / HELDOUT_NAME
    if not path.is_file():
        raise LoragError(
            f"no --testset given and the held-out split {path} does not exist",
            hint=f"train an adapter for '{domain}' first (it writes the split), or pass --testset FILE.jsonl",
        )
    if not path.read_text(encoding="utf-8").strip():
        raise LoragError(
            f"no --testset given and the held-out split {path} is empty: the domain's training data held no "
            "questions out (no curated Q&A, and its synthetic pairs come from one document)",
            hint=f"pass --testset FILE.jsonl (`lorag eval import` turns a CSV into one), or rebuild the data with "
            f"`lorag synth --domain {domain} --qa FILE.jsonl` or after adding documents",
        )
    return path


# -- CSV import -----------------------------------------------------------------------------------
_CSV_COLUMNS = ("id", "question", "answer", "sources", "tags", "contexts")


def _split_list(cell: str) -> list[str]:
    """List cells hold items separated by ';' (or '|')."""
    sep = ";" if ";" in cell else "|"
    return [x.strip() for x in cell.split(sep) if x.strip()]


def import_csv(csv_path: Path, out_path: Path, *, id_prefix: str | None = None) -> dict[str, Any]:
    """Convert a CSV of question/answer pairs (header row required; optional columns id, sources,
    tags, contexts with items separated by ';') into a test-set JSONL. Bad rows: one error, every line."""
    csv_path, out_path = Path(csv_path), Path(out_path)
    if not csv_path.is_file():
        raise LoragError(f"{csv_path}: CSV file not found")
    prefix = id_prefix or out_path.stem
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    try:
        fh = csv_path.open(encoding="utf-8-sig", newline="")
    except OSError as e:
        raise LoragError(f"{csv_path}: cannot read: {e}") from None
    with fh:
        sample = fh.read(4096)
        fh.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(fh, dialect)
        try:
            header = next(reader)
        except StopIteration:
            raise LoragError(f"{csv_path}: empty file (expected a header row with question,answer)") from None
        except csv.Error as e:
            raise LoragError(f"{csv_path}: line 1: {e}") from None
        cols = [h.strip().lower() for h in header]
        missing = [c for c in ("question", "answer") if c not in cols]
        if missing:
            raise LoragError(
                f"{csv_path}: line 1: the header has no column {', '.join(repr(m) for m in missing)} "
                f"(found: {', '.join(repr(c) for c in cols) or 'nothing'}; known: {', '.join(_CSV_COLUMNS)})"
            )
        unknown = [c for c in cols if c and c not in _CSV_COLUMNS]
        if unknown:
            raise LoragError(
                f"{csv_path}: line 1: unknown column(s) {', '.join(unknown)} (known: {', '.join(_CSV_COLUMNS)})"
            )
        index = {c: i for i, c in enumerate(cols) if c}
        line = reader.line_num + 1
        while True:
            start = line
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                problems.append(f"  line {start}: {e}")
                break
            line = reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(cols):
                problems.append(f"  line {start}: {len(cells)} fields, the header has {len(cols)}")
                continue
            get = {c: (cells[i].strip() if i < len(cells) else "") for c, i in index.items()}
            obj: dict[str, Any] = {
                "id": get.get("id") or f"{prefix}-{len(rows) + 1:03d}",
                "question": get["question"],
                "answer": get["answer"],
                "sources": _split_list(get.get("sources", "")),
                "tags": _split_list(get.get("tags", "")),
            }
            if get.get("contexts"):
                obj["contexts"] = _split_list(get["contexts"])
            try:
                rec = TestItem.model_validate(obj)
            except ValidationError as e:
                problems += validation_problems(e, start)
                continue
            if rec.key() in seen or rec.question.lower() in seen:
                first = seen.get(rec.key(), seen.get(rec.question.lower()))
                problems.append(f"  line {start}: duplicate id/question (first on line {first})")
                continue
            seen[rec.key()] = start
            seen[rec.question.lower()] = start
            rows.append(rec.model_dump(exclude_defaults=False))
    if problems:
        raise LoragError(f"{csv_path}: {bad_rows(problems)} bad row(s), nothing written:\n" + "\n".join(problems))
    if not rows:
        raise LoragError(f"{csv_path}: no question/answer rows")
    for r in rows:
        if not r.get("contexts"):
            r.pop("contexts", None)
    sha = write_jsonl(out_path, rows)
    return {"path": str(out_path), "rows": len(rows), "sha256": sha}
