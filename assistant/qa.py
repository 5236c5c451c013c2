"""The curated Q&A format (JSONL rows of question, answer, sources, tags): read and validated with line
numbers, written atomically. Shared by training data (finetune/) and test sets (eval/)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.errors import LoragError


class QARecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = ""
    question: str = Field(min_length=3)
    answer: str = Field(min_length=1)
    sources: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @field_validator("question", "answer")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        return v

    def key(self) -> str:
        return self.id or hashlib.sha256(self.question.lower().encode()).hexdigest()[:12]


def read_jsonl(path: Path) -> Iterable[tuple[int, Any]]:
    """(line number, parsed object or the JSON error) for each non-blank line."""
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    yield n, e


def validation_problems(err: ValidationError, line: int) -> list[str]:
    """One '  line N: field: reason' entry per pydantic error, in words of this project rather than pydantic's
    (`question: empty (at least 3 characters)`, `tags[1]: must be text, not 3`)."""
    out = []
    for e in err.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".") or "row"
        out.append(f"  line {line}: {where}: {_reason(e)}")
    return out


def bad_rows(problems: list[str]) -> int:
    """How many rows the '  line N: ...' entries are about (a row with two bad fields is one bad row)."""
    return len({p.split(":", 1)[0] for p in problems})


def _reason(e: Any) -> str:
    """What is wrong with a field, from one pydantic error (its own message for a kind not worded here)."""
    kind, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"
    if kind == "missing":
        return "missing"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        at_least = f" (at least {n} characters)" if n > 1 else ""
        return ("empty" if not str(value).strip() else f"too short: {shown}") + at_least
    if kind == "string_type":
        return f"must be text, not {shown}"
    if kind == "list_type":
        return f"must be a list, not {shown}"
    if kind == "value_error":
        return str(e["msg"]).removeprefix("Value error, ")
    return str(e["msg"])


def load_records(
    path: Path,
    model: type[QARecord] = QARecord,
    *,
    what: str = "Q&A file",
    rows_name: str = "Q&A rows",
    name: str | None = None,
) -> list[Any]:
    """Every row validated against `model`; one error lists every bad line with its reason. `name`: what errors
    call the file (an uploaded copy's original name; default its path)."""
    path = Path(path)
    shown = name or str(path)
    if not path.is_file():
        raise LoragError(f"{shown}: {what} not found")
    rows: list[Any] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for n, obj in read_jsonl(path):
        if isinstance(obj, json.JSONDecodeError):
            problems.append(f"  line {n}: not valid JSON ({obj.msg})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"  line {n}: expected an object with question and answer")
            continue
        try:
            rec = model.model_validate(obj)
        except ValidationError as e:
            problems += validation_problems(e, n)
            continue
        if rec.key() in seen:
            problems.append(f"  line {n}: duplicate id/question (first on line {seen[rec.key()]})")
            continue
        seen[rec.key()] = n
        rows.append(rec)
    if problems:
        raise LoragError(f"{shown}: {bad_rows(problems)} bad row(s):\n" + "\n".join(problems))
    if not rows:
        raise LoragError(f"{shown}: no {rows_name}")
    return rows


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> str:
    """Write rows atomically; return the sha256 of the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    h = hashlib.sha256()
    with tmp.open("w", encoding="utf-8") as fh:
        for r in rows:
            line = json.dumps(r, ensure_ascii=False) + "\n"
            h.update(line.encode())
            fh.write(line)
    tmp.replace(path)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
