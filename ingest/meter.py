"""Chunks/s and an ETA for a running ingest.

The rate counts chunks embedded and staged over the time since the first batch started. The total is the
chunks of the files read so far plus, for the files not read yet, their bytes times the chunks per byte of the
files of their format read so far (of all files read, for a format none of which is read yet): an estimate that
firms up as the files are read (exact once all are). A file's bytes are those that hold its text where the
container's own weigh more (text_bytes: a .docx's document part, not its ~30 KB of styles, theme and fonts).
"""

from __future__ import annotations

import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
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


def text_bytes(path: Path) -> int:
    """The bytes of a file that hold its text, for the estimate of its chunks: a .docx's main document part
    (uncompressed, from the zip's directory: nothing is inflated), else the file's size; 0 when unreadable."""
    try:
        if path.suffix.lower() == ".docx":
            try:
                with zipfile.ZipFile(path) as z:
                    return z.getinfo("word/document.xml").file_size
            except (zipfile.BadZipFile, KeyError, NotImplementedError, ValueError, EOFError):
                pass  # a corrupt .docx (its loader says why): weighed by its size, the ingest goes on
        return path.stat().st_size
    except OSError:
        return 0


class IngestMeter:
    def __init__(self, total_bytes: int | dict[str, int], clock_fn: Callable[[], float] = time.monotonic):
        """`total_bytes`: the bytes of the files to read, or their bytes by format ({"md": 12000, "pdf": ...})."""
        by_format = total_bytes if isinstance(total_bytes, dict) else {"": total_bytes}
        self.unread = {f: max(0, b) for f, b in by_format.items()}  # bytes not read yet, by format
        self.read = {f: [0, 0] for f in self.unread}  # bytes and chunks read, by format
        self.now = clock_fn
        self.done = 0
        self._t0: float | None = None
        self.sizes: dict[str, tuple[str, int]] = {}  # path -> (format, text bytes), for_files's

    @classmethod
    def for_files(cls, paths: list[Path], clock_fn: Callable[[], float] = time.monotonic) -> "IngestMeter":
        """A meter for these files, each weighed by its text_bytes and counted under its format (path_read)."""
        from ingest.formats import file_format

        sizes = {str(p): (file_format(p), text_bytes(p)) for p in paths}
        by_format: dict[str, int] = {}
        for fmt, size in sizes.values():
            by_format[fmt] = by_format.get(fmt, 0) + size
        meter = cls(by_format, clock_fn)
        meter.sizes = sizes
        return meter

    def path_read(self, path: Path, chunks: int) -> None:
        """A file of for_files was read into `chunks` to embed (file_read with its weight and format)."""
        fmt, size = self.sizes.get(str(path), ("", 0))
        self.file_read(size, chunks, fmt)

    def file_read(self, size: int, chunks: int, fmt: str = "") -> None:
        """A file of `size` bytes (of format `fmt`) was read into `chunks` to embed; 0: nothing to embed
        (unchanged, failed, skipped), so its bytes leave the estimate instead of diluting the chunks per byte."""
        self.unread[fmt] = max(0, self.unread.get(fmt, 0) - size)
        if not chunks:
            return
        seen = self.read.setdefault(fmt, [0, 0])
        seen[0] += size
        seen[1] += chunks
        if self._t0 is None:
            self._t0 = self.now()  # the clock starts when there is something to embed

    def embedded(self, n: int) -> Throughput:
        self.done += n
        return self.snapshot()

    def snapshot(self) -> Throughput:
        read_bytes = sum(b for b, _ in self.read.values())
        read_chunks = sum(c for _, c in self.read.values())
        overall = read_chunks / read_bytes if read_bytes else 0.0
        unread = 0.0
        for fmt, left in self.unread.items():
            size, chunks = self.read.get(fmt, (0, 0))
            unread += left * (chunks / size if size else overall)
        total = max(self.done, read_chunks + int(round(unread)))
        rate = eta = None
        if self._t0 is not None and self.done:
            took = self.now() - self._t0
            if took > 0:
                rate = self.done / took
                eta = (total - self.done) / rate
        return Throughput(self.done, total, rate, eta)
