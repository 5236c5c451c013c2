"""Run one ingest with fake dense vectors (for the crash-consistency test); prints START first.

    python -m tests.helpers.ingest_child STORE CORPUS [stage:N | publish:N]

With a kill point, the store SIGKILLs this process right after the N-th staged write (`stage:N`),
or inside the N-th publish, after its first operation (old version deleted, new one not yet
live: `publish:N`); it prints `KILL <doc_id>` first.
"""

import os
import signal
import sys
from pathlib import Path

import langchain_text_splitters  # noqa: F401  (imported up front: START marks the ingest itself)

from assistant.embedding import Bm25SparseEncoder
from assistant.settings_pipeline import IngestSettings
from assistant.store.edge import EdgeStore
from ingest.pipeline import Ingestor
from tests.fakes import HashingEmbedder


class _AfterUpdate:
    """A shard whose update() calls `then` once the operation is written."""

    def __init__(self, shard, then):
        self._shard, self._then = shard, then

    def update(self, op):
        self._shard.update(op)
        self._then()

    def __getattr__(self, name):
        return getattr(self._shard, name)


class KillingStore(EdgeStore):
    def __init__(self, root, point: str, n: int):
        super().__init__(root)
        self.point, self.n, self.seen = point, n, 0
        self._publishing = None

    def _kill(self, doc_id: str) -> None:
        print("KILL", doc_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    def stage(self, domain, points):
        super().stage(domain, points)
        if self.point == "stage":
            self.seen += 1
            if self.seen == self.n:
                self._kill(points[0].payload["doc_id"])

    def publish(self, domain, doc_id, content_hash):
        if self.point == "publish":
            self.seen += 1
            self._publishing = doc_id if self.seen == self.n else None
        try:
            super().publish(domain, doc_id, content_hash)
        finally:
            self._publishing = None

    def _open(self, domain):
        shard = super()._open(domain)
        doc_id = self._publishing
        return _AfterUpdate(shard, lambda: self._kill(doc_id)) if doc_id else shard


def main() -> None:
    store_path, corpus = Path(sys.argv[1]), Path(sys.argv[2])
    if len(sys.argv) > 3:
        point, n = sys.argv[3].split(":")
        store = KillingStore(store_path, point, int(n))
    else:
        store = EdgeStore(store_path)
    settings = IngestSettings(chunk_tokens=20, chunk_overlap=0, embed_batch_size=1)
    ingest = Ingestor(store, HashingEmbedder(dim=32), Bm25SparseEncoder(), settings)
    purged: list[int] = []  # what the ingest's purge of staged leftovers removed
    purge = store.purge_staged
    store.purge_staged = lambda domain: purged.append(purge(domain)) or purged[-1]
    print("START", flush=True)
    report = ingest.run(
        [corpus], "crash", progress=lambda _name, done, _total, _status: print("PROGRESS", done, flush=True)
    )
    store.close()
    print("DONE", sum(purged), report.counts(), flush=True)


if __name__ == "__main__":
    main()
