"""Chunks/s and an ETA for a running ingest.

The rate counts chunks embedded and staged over the time since the first batch started. The total is the
chunks of the files read so far plus, for the files not read yet, their bytes times the chunks per byte of the
files read: an estimate that firms up as the files are read (exact once all are).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Throughput:
    chunks_done: int
    chunks_total: int  # estimated while files remain unread
    chunks_per_s: float | None  # None until a batch is done
    eta_s: float | None  # None until there is a rate

    def words(self) -> str:
        """'1,200/5,000 chunks · 14.2 chunks/s · ETA 4m28s'"""
        parts = [f"{self.chunks_done:,}/{self.chunks_total:,} chunks"]
        if self.chunks_per_s is not None:
            parts.append(f"{self.chunks_per_s:,.1f} chunks/s")
        if self.eta_s is not None:
            parts.append(f"ETA {clock(self.eta_s)}")
        return " · ".join(parts)


def clock(seconds: float) -> str:
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class IngestMeter:
    def __init__(self, total_bytes: int, clock_fn: Callable[[], float] = time.monotonic):
        self.total_bytes = max(0, total_bytes)
        self.now = clock_fn
        self.read_bytes = 0
        self.read_chunks = 0
        self.done = 0
        self._t0: float | None = None

    def file_read(self, size: int, chunks: int) -> None:
        """A file of `size` bytes was read into `chunks` to embed; 0: nothing to embed (unchanged, failed,
        skipped), so its bytes leave the estimate instead of diluting the chunks per byte."""
        if not chunks:
            self.total_bytes = max(0, self.total_bytes - size)
            return
        self.read_bytes += size
        self.read_chunks += chunks
        if self._t0 is None:
            self._t0 = self.now()  # the clock starts when there is something to embed

    def embedded(self, n: int) -> Throughput:
        self.done += n
        return self.snapshot()

    def snapshot(self) -> Throughput:
        unread = max(0, self.total_bytes - self.read_bytes)
        per_byte = self.read_chunks / self.read_bytes if self.read_bytes else 0.0
        total = max(self.done, self.read_chunks + int(round(unread * per_byte)))
        rate = eta = None
        if self._t0 is not None and self.done:
            took = self.now() - self._t0
            if took > 0:
                rate = self.done / took
                eta = (total - self.done) / rate
        return Throughput(self.done, total, rate, eta)
