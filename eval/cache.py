"""A results cache: an append-only JSONL of key -> value, so a re-run only computes what changed.

Keys are hashes of everything a result depends on (see `key`). A torn last line (a run killed while
writing) is skipped on load. Several runs may share one file; the last value for a key wins.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class EvalCache:
    def __init__(self, path: Path | None):
        """`path=None` keeps results in memory only (nothing survives the run)."""
        self.path = Path(path) if path else None
        self.data: dict[str, Any] = {}
        if self.path and self.path.is_file():
            with self.path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                        self.data[rec["k"]] = rec["v"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue

    def get(self, k: str) -> Any | None:
        return self.data.get(k)

    def put(self, k: str, v: Any) -> None:
        self.data[k] = v
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"k": k, "v": v}, ensure_ascii=False) + "\n")
