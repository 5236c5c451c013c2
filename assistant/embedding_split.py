"""One dense embedder made of two runtimes that give the same vectors: queries by one, documents by another
loaded on first need. models.embedder_backend `auto` on a CPU uses it with the float32 ONNX export for queries (a
single query ~3x faster than torch, whose per-call overhead dominates) and torch for documents (batches:
onnxruntime was 0.88-0.97x torch; in bfloat16 on a CPU with it, models.embedder_cpu_bf16); see
benchmarks/RESULTS.md, "embedder backends"."""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

import numpy as np

from assistant.errors import LoragError


class SplitEmbedder:
    def __init__(self, queries: Any, documents: Callable[[], Any], *, backend: str):
        """`queries`: the embedder of queries (and token counts); `documents`: loads the embedder of documents,
        whose backend label must be `backend` (what an index built by this embedder records)."""
        self.queries = queries
        self.name = queries.name
        self.dim = queries.dim
        self.backend = backend
        self._load_documents = documents
        self._documents: Any = None
        self._lock = threading.Lock()

    @property
    def documents(self) -> Any:
        with self._lock:
            if self._documents is None:
                docs = self._load_documents()
                if docs.backend != self.backend or docs.dim != self.dim:
                    raise LoragError(
                        f"embedder '{self.name}': documents embed with {docs.backend} (dim {docs.dim}), "
                        f"queries with {self.queries.backend} (dim {self.dim}), expected {self.backend}",
                        hint="set models.embedder_backend: torch",
                    )
                self._documents = docs
            return self._documents

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.documents.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.queries.embed_query(text)

    def token_length(self, text: str) -> int:
        return self.queries.token_length(text)
