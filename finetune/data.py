"""Curated Q&A for training: the rows (assistant.qa) and their fixed held-out split."""

from __future__ import annotations

import hashlib
from pathlib import Path

from assistant.qa import QARecord, file_sha256, load_records

__all__ = ["file_sha256", "is_heldout", "load_qa", "split_qa"]  # file_sha256: read from here by finetune.train


def load_qa(path: Path, *, name: str | None = None) -> list[QARecord]:
    """The curated rows; errors call the file `name` when given (an uploaded copy's original name)."""
    return load_records(path, name=name)


def is_heldout(rec: QARecord, fraction: float, seed: str = "lorag-heldout-v1") -> bool:
    """A fixed split: depends only on the record's id (or question), never on order or run."""
    h = int(hashlib.sha256(f"{seed}|{rec.key()}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < fraction


def split_qa(rows: list[QARecord], fraction: float) -> tuple[list[QARecord], list[QARecord]]:
    train = [r for r in rows if not is_heldout(r, fraction)]
    held = [r for r in rows if is_heldout(r, fraction)]
    return train, held
