"""The one place that builds clients and models from settings and hands them to the services."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from assistant.answer import AskService
from assistant.embedding import Bm25SparseEncoder, DenseEmbedder, SentenceTransformerEmbedder, SparseEncoder
from assistant.generation import Generator, HFGenerator
from assistant.models.cache import ModelCache
from assistant.retrieval import Retriever
from assistant.settings import Settings
from assistant.store import Store, open_store


class Components:
    """Lazily built, shared backends. Tests pass fakes through the constructor."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        dense: DenseEmbedder | None = None,
        sparse: SparseEncoder | None = None,
        generator: Generator | None = None,
    ):
        self.settings = settings
        self._store = store
        self._dense = dense
        self._sparse = sparse
        self._generator = generator

    @cached_property
    def model_cache(self) -> ModelCache:
        return ModelCache(self.settings.paths.model_cache)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    @property
    def dense(self) -> DenseEmbedder:
        if self._dense is None:
            from assistant.models.loading import load_sentence_transformer

            m = self.settings.models
            model = load_sentence_transformer(m.embedder, self.model_cache, device=m.device)
            self._dense = SentenceTransformerEmbedder(model, m.embedder, self.settings.ingest.embed_batch_size)
        return self._dense

    @property
    def sparse(self) -> SparseEncoder:
        if self._sparse is None:
            self._sparse = Bm25SparseEncoder()
        return self._sparse

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            from assistant.models.loading import load_causal_lm

            m = self.settings.models
            model, tokenizer = load_causal_lm(m.generator, self.model_cache, device=m.device, dtype=m.dtype)
            self._generator = HFGenerator(model, tokenizer, m, name=m.generator)
        return self._generator

    @cached_property
    def reranker(self) -> Any | None:
        r = self.settings.retrieval
        if not (r.rerank and self.settings.models.reranker):
            return None
        from assistant.models.loading import load_cross_encoder

        return load_cross_encoder(self.settings.models.reranker, self.model_cache, device=self.settings.models.device)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.store, self.dense, self.sparse, self.settings.retrieval, self.reranker)

    @cached_property
    def ask_service(self) -> AskService:
        return AskService(self.retriever, self.generator)

    def ingestor(self) -> Any:
        from ingest.pipeline import Ingestor

        return Ingestor(self.store, self.dense, self.sparse, self.settings.ingest)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
