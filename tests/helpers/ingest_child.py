"""Run one ingest with fake dense vectors (for the crash-consistency test); prints START first."""

import sys
from pathlib import Path

from assistant.embedding import Bm25SparseEncoder, HashingEmbedder
from assistant.settings import IngestSettings
from assistant.store.edge import EdgeStore
from ingest.pipeline import Ingestor
import langchain_text_splitters  # noqa: F401  (imported up front: START marks the ingest itself)

store_path, corpus = Path(sys.argv[1]), Path(sys.argv[2])
store = EdgeStore(store_path)
ingest = Ingestor(store, HashingEmbedder(dim=32), Bm25SparseEncoder(), IngestSettings(chunk_tokens=20, chunk_overlap=0, embed_batch_size=1))
print("START", flush=True)
report = ingest.run([corpus], "crash", progress=lambda name, done, total: print("PROGRESS", done, flush=True))
store.close()
print("DONE", report.counts(), flush=True)
