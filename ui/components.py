"""The one place that builds clients and models from settings and hands them to the services."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from assistant.answer import AskService
from assistant.embedding import Bm25SparseEncoder, DenseEmbedder, SparseEncoder
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
            from assistant.models.loading import load_embedder

            m = self.settings.models
            self._dense = load_embedder(m.embedder, self.model_cache, device=m.device, batch_size=self.settings.ingest.embed_batch_size)
        return self._dense

    @property
    def sparse(self) -> SparseEncoder:
        if self._sparse is None:
            self._sparse = Bm25SparseEncoder()
        return self._sparse

    @cached_property
    def registry(self) -> Any:
        from finetune.registry import Registry

        return Registry(self.settings.adapters_dir)

    @property
    def uses_engine(self) -> bool:
        """Answers come from an OpenAI-compatible engine (models.endpoint), not a model in this process."""
        if self._generator is not None:
            from assistant.engines.openai_generator import OpenAIGenerator

            return isinstance(self._generator, OpenAIGenerator)
        return bool(self.settings.models.endpoint.base_url)

    @property
    def base_model_id(self) -> str:
        """What the base model's answers depend on (the eval cache's arm identity)."""
        return f"endpoint:{self.generator.name}" if self.uses_engine else self.settings.models.generator

    @property
    def generator(self) -> Generator:
        """The base model, loaded once, with every promoted adapter of a matching base attached; or, with
        models.endpoint set, the engine (no local model; the engine serves the adapters by name)."""
        if self._generator is None:
            m = self.settings.models
            if m.endpoint.base_url:
                from assistant.engines.openai_generator import OpenAIGenerator

                self._generator = OpenAIGenerator(m)
                return self._generator
            from assistant.models.loading import load_causal_lm

            model, tokenizer = load_causal_lm(m.generator, self.model_cache, device=m.device, dtype=m.dtype)
            self._generator = HFGenerator(model, tokenizer, m, name=m.generator)
            promoted = [c.name for c in self.registry.promoted().values()]
            if promoted:
                self.attach([c for c in promoted if self._matches_base(c)])
        return self._generator

    def _matches_base(self, name: str) -> bool:
        from assistant.adapters import base_fingerprint

        card = self.registry.get(name)
        ok = card.base_fingerprint == base_fingerprint(self._generator.model.config)
        if not ok:
            import logging

            logging.getLogger(__name__).warning("skipping adapter %s: trained on another base model (%s)", name, card.base_model)
        return ok

    def attach(self, names: list[str]) -> list[str]:
        """Attach registry adapters (any version, promoted or not) to the loaded generator, by name."""
        from assistant.adapters import attach_adapters, base_fingerprint
        from finetune.registry import check_base

        gen = self.generator
        if self.uses_engine:  # nothing to load: the engine must already serve them
            return self._served(names)
        if not isinstance(gen, HFGenerator):  # fakes keep the names only
            names = [self.registry.get(n).name for n in names]
            if hasattr(gen, "attach"):
                gen.attach(names)
            return names
        want = {}
        for name in names:
            card = self.registry.get(name)
            check_base(card, base_fingerprint(gen.model.config))
            if card.name not in gen.adapters():
                want[card.name] = self.registry.folder(card)
        if want:
            gen.model, _ = attach_adapters(gen.model, want)
        return [self.registry.get(n).name for n in names]

    def _served(self, names: list[str]) -> list[str]:
        """The served name of each adapter (a registry name resolves to its version, `handbook` ->
        `handbook-v2`; a name outside the registry is taken as the engine's), checked against the
        engine's list; one it does not serve is a clear error saying how to load it."""
        from assistant.errors import LoragError

        gen: Any = self.generator
        out = []
        for name in names:
            try:
                card = self.registry.get(name)
            except LoragError:
                card = None
            served = card.name if card is not None else name
            if served not in gen.adapters() and served not in gen.adapters(refresh=True):
                base = gen.client.base_url
                path = str(self.registry.folder(card).resolve()) if card is not None else "<adapter folder>"
                listed = ", ".join(gen.adapters()) or "none"
                raise LoragError(
                    f"adapter '{served}' is not served by the engine at {base} (it serves: {listed})"
                    + ("" if card is not None else "; it is not in the adapter registry either"),
                    hint=f"vLLM: start it with --enable-lora --lora-modules {served}={path}, or load it into the running "
                    f"server: POST {base}/load_lora_adapter {{\"lora_name\": \"{served}\", \"lora_path\": \"{path}\"}} "
                    "(needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)",
                )
            out.append(served)
        return out

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
    def router(self) -> Any:
        """Promoted adapters that are loaded, and one centroid per indexed domain."""
        from assistant.routing import Router

        gen = self.generator
        loaded = set(gen.adapters())
        by_domain = {d: c.name for d, c in self.registry.promoted().items() if c.name in loaded}
        centroids = {}
        if by_domain:
            for d in self.store.domains():
                c = self.store.dense_centroid(d)
                if c is not None:
                    centroids[d] = c
        return Router(self.settings.routing, by_domain, centroids, loaded=gen.adapters)

    @cached_property
    def ask_service(self) -> AskService:
        return AskService(self.retriever, self.generator, self.router)

    def ingestor(self) -> Any:
        from ingest.pipeline import Ingestor

        return Ingestor(self.store, self.dense, self.sparse, self.settings.ingest)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
