"""Run a producer in a thread, a bounded number of items ahead of its consumer.

Ingest reads and chunks the next files (I/O, parsing, tokenising) while the current batch is embedded: the
embedder's native code releases the GIL, so both proceed. Items arrive in the producer's order; an exception
in the producer is raised in the consumer at the point where the item would have come; a consumer that stops
early stops the producer too, once it closes the iterator: use it as `with closing(prefetched(...)) as items`.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetched(produce: Callable[[], Iterable[T]], ahead: int = 2) -> Iterator[T]:
    """Yield what `produce()` yields, computed in a daemon thread at most `ahead` items ahead."""
    q: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        items = iter(produce())
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:  # handed to the consumer, which raises it
            put(_Raised(e))
            return
        finally:
            getattr(items, "close", lambda: None)()  # a generator's own clean-up runs here, not at collection
        put(_DONE)

    worker = threading.Thread(target=run, name="ingest-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
