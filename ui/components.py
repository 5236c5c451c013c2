"""The one place that builds clients and models from settings and hands them to the services."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable

from assistant import index_record
from assistant.answer import AskService
from assistant.embedding import Bm25SparseEncoder, DenseEmbedder, SparseEncoder
from assistant.errors import LoragError
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
        # called before this process opens the store (the CLI stops the keep-warm worker that holds it)
        self.before_store: Callable[[], Any] | None = None

    @cached_property
    def model_cache(self) -> ModelCache:
        return ModelCache(self.settings.paths.model_cache)

    def check_models(self, *, generator: bool = True) -> None:
        """The models these components would load can be found (assistant.models.cache.check_findable), before
        anything loads; models given to the constructor (fakes, a test's) are not looked for. `generator`: False
        for work that needs no answers (ingest): no generator, no reranker."""
        from assistant.models.cache import check_findable

        check_findable(
            self.settings,
            generator=generator and self._generator is None,
            embedder=self._dense is None,
            reranker=generator and "reranker" not in self.__dict__,  # not built yet (a cached_property)
        )

    @property
    def store(self) -> Store:
        if self._store is None:
            if self.before_store is not None:
                self.before_store()
            self._store = open_store(self.settings)
        return self._store

    def serve_store(self) -> Store:
        """The store, for a long-running process: every domain opened in the background, its files warmed into
        the page cache as it opens (qdrant.preload)."""
        q = self.settings.qdrant
        if q.preload:
            self.store.start_preloading(q.preload_max_memory_share)
            self.store.open_in_background(q.preload_max_memory_share)  # the first question need not load a shard
        return self.store

    @property
    def dense(self) -> DenseEmbedder:
        if self._dense is None:
            from assistant.models.loading import embedder_for

            self._dense = embedder_for(self.settings, self.model_cache, recorded=self._recorded_backends())
        return self._dense

    def _recorded_backends(self) -> list[str]:
        """The embedder backends the existing domains were built with (models.embedder_backend: auto follows them)."""
        if self.settings.models.embedder_backend != "auto":
            return []
        try:
            return index_record.domain_backends(self.store)
        except LoragError:  # the store is not reachable here (another process holds it): auto decides alone
            return []

    @property
    def sparse(self) -> SparseEncoder:
        if self._sparse is None:
            self._sparse = Bm25SparseEncoder()
        return self._sparse

    @cached_property
    def registry(self) -> Any:
        from assistant.registry import Registry

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

                gen = OpenAIGenerator(m)
                gen.explain_missing = self._hinter()
                self._generator = gen
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

            logging.getLogger(__name__).warning(
                "skipping adapter %s: trained on another base model (%s)", name, card.base_model
            )
        return ok

    def attach(self, names: list[str]) -> list[str]:
        """Attach registry adapters (any version, promoted or not) to the loaded generator, by name."""
        from assistant.adapters import attach_adapters, base_fingerprint
        from assistant.registry import check_base

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
        """The served name of each adapter (a registry name resolves to its version, `handbook` -> its promoted
        `handbook-v2`; a name outside the registry is taken as the engine's), checked against the
        engine's list; one it does not serve is a clear error saying how to load it. A domain's name while the
        domain has no promoted version is the registry's error (it names the versions)."""
        from assistant.errors import LoragError, NoPromotedAdapterError

        gen: Any = self.generator
        if getattr(gen, "explain_missing", None) is None:
            gen.explain_missing = self._hinter()
        out = []
        for name in names:
            try:
                served = self.registry.get(name).name
            except NoPromotedAdapterError:
                raise
            except LoragError:
                served = name
            gen.require(served)
            out.append(served)
        return out

    def _hinter(self) -> Any:
        """`_load_hint` for the generator to call, without the generator keeping these components alive (a cycle
        would keep the embedded store open after the CLI drops them)."""
        import weakref

        ref = weakref.ref(self)
        return lambda name: (c._load_hint(name) if (c := ref()) is not None else None)

    def _load_hint(self, name: str) -> str:
        """The command that makes the engine serve adapter `name`: for the engine it is (vLLM, llama.cpp, Ollama),
        from the adapter's registry folder and its GGUF export."""
        from pathlib import Path

        from assistant.errors import LoragError
        from finetune.serve_config import engine_kind, load_hint

        gen: Any = self.generator
        try:
            card = self.registry.get(name)
        except LoragError:
            card = None
        try:
            entries = gen.listed()
        except LoragError:
            entries = []
        kind = engine_kind(self.settings.models.endpoint.adapter_api, gen.client.base_url, entries)
        rec = self.registry.latest_export(card, "gguf") if card is not None else None
        hint = load_hint(
            kind,
            card.name if card is not None else name,
            folder=self.registry.folder(card) if card else None,
            gguf=Path(rec["file"]) if rec else None,
            base_url=gen.client.base_url,
        )
        return hint if card is not None else f"it is not in the adapter registry either; {hint}"

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
        """Promoted adapters (loaded ones; with an engine, all), and one centroid per indexed domain."""
        from assistant.routing import Router

        gen = self.generator
        if (
            self.uses_engine
        ):  # every promoted adapter: one the engine lacks is refused, with how to load it, when picked
            by_domain = {d: c.name for d, c in self.registry.promoted().items()}
        else:
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
