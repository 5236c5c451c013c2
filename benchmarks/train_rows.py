"""The training benchmark's rows (benchmarks/bench_train_gpu.py): read from a JSONL file, the ones that fit
--max-len whole (every arm trains those, uncut), and their tokens (the tokens/s every arm is counted by)."""

from __future__ import annotations

import json
from pathlib import Path


def rows_of(path: Path, limit: int | None) -> list[dict]:
    rows = [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]
    return rows[:limit] if limit else rows


def row_tokens(row: dict, tokenizer) -> int:
    ids = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def fitting_rows(rows: list[dict], tokenizer, max_len: int) -> tuple[list[dict], int]:
    """The rows whose whole text fits max_len tokens (trained by every arm, uncut), and how many do not."""
    kept = [r for r in rows if row_tokens(r, tokenizer) <= max_len]
    return kept, len(rows) - len(kept)


def real_tokens(rows: list[dict], tokenizer) -> int:
    """The trained rows' tokens (each fits max_len: fitting_rows)."""
    return sum(row_tokens(r, tokenizer) for r in rows)
