"""Warm an embedded shard's files into the page cache in the background, as Elasticsearch's
`index.store.preload` does for an index's hot files, so that a long-running process's first questions do not
read them from disk one page at a time.

What qdrant-edge (0.9.0) does itself when it loads a shard (measured with `fincore` on a shard whose pages were
dropped from the cache): it reads the BM25 inverted index (`ImmutableRam`) and the int8 vectors (`always_ram`)
into its own memory and prefaults (MADV_POPULATE_READ) the float vectors (`InRamMmap`) and the HNSW links. What it
leaves on disk and a search reads page by page: the payloads (the hits' text, read for every answer), the payload
indexes (the `state` filter, `doc_id` / `content_hash` lookups) and the id tracker. Those are what this reads:
every file of the shard's segments except the ones qdrant keeps in its own memory (read again they would only
fill the cache twice) and the sparse vectors' raw storage (an indexed BM25 search reads the inverted index, not it).

A shard larger than a share of MemAvailable is skipped: reading it would push out other pages (the model
weights, the other domains) and its own pages would be evicted again before they are used.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# loaded into qdrant's own memory at load (ImmutableRam BM25 index, always_ram int8 vectors): not read again
_IN_PROCESS = {"inverted_index.dat", "quantized.data"}
_SKIP_DIRS = ("wal",)  # the write-ahead log: replayed at load, never searched


@dataclass
class PreloadResult:
    """What one preload of a shard did (`skipped`: why it read nothing; `stopped`: the shard was closed)."""

    files: list[Path] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0
    skipped: str = ""
    stopped: bool = False


def mem_available() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where there is no such file: not Linux)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def fits_in_memory(nbytes: int, share: float, avail: int | None) -> bool:
    """Whether `nbytes` stay within `share` of the memory available (`avail`, MemAvailable; None: not known)."""
    return avail is None or nbytes <= share * avail


def files_to_preload(shard: Path, sparse_names: tuple[str, ...] = ()) -> list[Path]:
    """The shard's files a search reads from disk (see the module's doc), largest last."""
    out = []
    seg_root = shard / "segments"
    if not seg_root.is_dir():
        return out
    raw_sparse = {f"vector_storage-{name}" for name in sparse_names}
    for f in seg_root.rglob("*"):
        rel = f.relative_to(seg_root).parts
        if f.name in _IN_PROCESS or any(p in raw_sparse or p in _SKIP_DIRS for p in rel):
            continue
        try:
            if f.is_file() and f.stat().st_size:
                out.append(f)
        except OSError:  # removed meanwhile (an optimization replaced the segment)
            continue
    return sorted(out, key=lambda p: p.stat().st_size if p.exists() else 0)


def _read_file(f: Path, buf: bytearray, stop: threading.Event) -> int:
    """Ask the kernel to read `f` ahead, then read it through (pages already cached cost a copy); 0 if it vanished."""
    try:
        fd = os.open(f, os.O_RDONLY)
    except OSError:
        return 0
    n = 0
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        view = memoryview(buf)
        while not stop.is_set():
            got = os.readv(fd, [view])
            if not got:
                break
            n += got
    except OSError:
        pass
    finally:
        os.close(fd)
    return n


class Preloader:
    """One background thread per shard being warmed; `start` again (after an optimization) starts over."""

    def __init__(self, *, max_memory_share: float = 0.5):
        self.max_memory_share = max_memory_share
        self._threads: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self.results: dict[str, PreloadResult] = {}
        self._lock = threading.Lock()

    def start(self, key: str, shard: Path, sparse_names: tuple[str, ...] = ()) -> None:
        self.stop(key)
        stop = threading.Event()
        t = threading.Thread(
            target=self._run, args=(key, shard, sparse_names, stop), name=f"lorag-preload-{key}", daemon=True
        )
        with self._lock:  # started before another thread can find it (joining an unstarted thread raises)
            self._threads[key] = (t, stop)
            self.results.pop(key, None)
            t.start()

    def stop(self, key: str) -> None:
        with self._lock:
            entry = self._threads.pop(key, None)
        if entry is not None:
            entry[1].set()
            entry[0].join()

    def wait(self, key: str, timeout: float | None = None) -> PreloadResult | None:
        """The shard's result once its preload has ended (None: not started or still running after `timeout`)."""
        with self._lock:
            entry = self._threads.get(key)
        if entry is not None:
            entry[0].join(timeout)
        return self.results.get(key)

    def close(self) -> None:
        for key in list(self._threads):
            self.stop(key)

    def _run(self, key: str, shard: Path, sparse_names: tuple[str, ...], stop: threading.Event) -> None:
        _lower_priority()
        t0 = time.perf_counter()
        res = PreloadResult(files=files_to_preload(shard, sparse_names))
        total = sum(_size(f) for f in res.files)
        avail = mem_available()
        if not fits_in_memory(total, self.max_memory_share, avail):
            res.skipped = (
                f"{total / 2**20:.0f} MB to read, more than {self.max_memory_share:.0%} of the "
                f"{avail / 2**20:.0f} MB available"
            )
            log.info("preload of %s skipped: %s", shard, res.skipped)
        else:
            buf = bytearray(_CHUNK)
            for f in res.files:
                if stop.is_set():
                    res.stopped = True
                    break
                res.bytes_read += _read_file(f, buf, stop)
            res.stopped = res.stopped or stop.is_set()
        res.seconds = time.perf_counter() - t0
        self.results[key] = res
        if not res.skipped:
            log.info(
                "preloaded %s: %d files, %.0f MB in %.1f s", shard, len(res.files), res.bytes_read / 2**20, res.seconds
            )


def _size(f: Path) -> int:
    try:
        return f.stat().st_size
    except OSError:
        return 0


def _lower_priority() -> None:
    """This thread only (Linux schedules threads apart): nice 10, and idle-class I/O is not worth a dependency."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass
