"""Store over qdrant-client: a Qdrant server (`qdrant.url`) or the client's in-memory mode for tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

from assistant.embedding import SparseVector
from assistant.errors import LoragError, UnknownDomainError, known_hint
from assistant.store.base import (
    DENSE,
    INT8_QUANTILE,
    LIVE,
    OVERSAMPLING,
    SPARSE,
    STAGED,
    ChunkPoint,
    DocInfo,
    Hit,
    RankedLists,
    SearchResult,
    check_domain,
    doc_info_from,
)
from assistant.store.fusion import candidate_marks, rrf


class QdrantClientStore:
    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "lorag_",
        shard_number: int = 1,
        replication_factor: int = 1,
        on_disk_vectors: bool = False,
        hnsw_ef: int = 128,
    ):
        from qdrant_client import models

        self.client = client
        self.m = models
        self.prefix = prefix
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self.on_disk_vectors = on_disk_vectors
        self.hnsw_ef = hnsw_ef

    @classmethod
    def connect(
        cls, url: str, api_key: str | None = None, *, timeout: int = 30, check_compatibility: bool = True, **kwargs: Any
    ) -> "QdrantClientStore":
        """`timeout`: seconds a request may wait for the server; check_compatibility: compare the server's version
        with the client's (one more request, in a thread)."""
        from qdrant_client import QdrantClient

        client = QdrantClient(url=url, api_key=api_key, timeout=timeout, check_compatibility=check_compatibility)
        return cls(client, **kwargs)

    def _name(self, domain: str) -> str:
        return self.prefix + check_domain(domain)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # connection problems become one clear message
            if type(e).__name__ in ("ResponseHandlingException", "ConnectError", "ConnectTimeout"):
                raise LoragError(f"cannot reach the Qdrant server: {e}", hint="is it running? check qdrant.url") from e
            raise

    # -- collections ----------------------------------------------------------------------------
    def domains(self) -> list[str]:
        cols = self._call(self.client.get_collections).collections
        return sorted(c.name[len(self.prefix) :] for c in cols if c.name.startswith(self.prefix))

    def has_domain(self, domain: str) -> bool:
        return bool(self._call(self.client.collection_exists, self._name(domain)))

    def _require(self, domain: str) -> str:
        if not self.has_domain(domain):
            raise UnknownDomainError(f"unknown domain '{domain}'", hint=known_hint(domain, self.domains(), "domains"))
        return self._name(domain)

    def ensure_domain(self, domain: str, dim: int) -> None:
        m = self.m
        name = self._name(domain)
        if self.has_domain(domain):
            info = self.client.get_collection(name)
            have = info.config.params.vectors[DENSE].size
            if have != dim:
                raise LoragError(f"domain '{domain}' holds {have}-d vectors but the embedder makes {dim}-d ones")
            return
        self._call(
            self.client.create_collection,
            name,
            vectors_config={DENSE: m.VectorParams(size=dim, distance=m.Distance.COSINE, on_disk=self.on_disk_vectors)},
            sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            # as the embedded store: int8 copies in RAM walked by the graph, rescored on the float vectors
            quantization_config=m.ScalarQuantization(
                scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=INT8_QUANTILE, always_ram=True)
            ),
            shard_number=self.shard_number,
            replication_factor=self.replication_factor,
        )
        for f in ("doc_id", "state", "content_hash"):
            self.client.create_payload_index(name, f, m.PayloadSchemaType.KEYWORD)
        self.client.create_payload_index(name, "chunk_index", m.PayloadSchemaType.INTEGER)

    def drop_domain(self, domain: str) -> None:
        self.client.delete_collection(self._name(domain))

    # -- what embedded the domain (assistant.index_record): the collection's metadata -----------------
    def embedder_record(self, domain: str) -> dict[str, Any] | None:
        meta = self.client.get_collection(self._name(domain)).config.metadata or {}
        return meta.get("lorag_embedder")

    def set_embedder_record(self, domain: str, record: dict[str, Any]) -> None:
        self._call(self.client.update_collection, self._name(domain), metadata={"lorag_embedder": record})

    # -- filters --------------------------------------------------------------------------------
    def _match(self, key: str, value: Any) -> Any:
        return self.m.FieldCondition(key=key, match=self.m.MatchValue(value=value))

    # -- writes ---------------------------------------------------------------------------------
    def stage(self, domain: str, points: list[ChunkPoint]) -> None:
        m = self.m
        pts = [
            m.PointStruct(
                id=str(uuid.UUID(p.id)),
                vector={
                    DENSE: list(map(float, p.dense)),
                    SPARSE: m.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                },
                payload={**p.payload, "state": STAGED},
            )
            for p in points
        ]
        self._call(self.client.upsert, self._require(domain), pts, wait=True)

    def publish(self, domain: str, doc_id: str, content_hash: str) -> None:
        m = self.m
        name = self._require(domain)
        old = m.Filter(must=[self._match("doc_id", doc_id)], must_not=[self._match("content_hash", content_hash)])
        self.client.delete(name, m.FilterSelector(filter=old), wait=True)
        new = m.Filter(must=[self._match("doc_id", doc_id), self._match("content_hash", content_hash)])
        self.client.set_payload(name, {"state": LIVE}, points=new, wait=True)

    def purge_staged(self, domain: str) -> int:
        m = self.m
        name = self._require(domain)
        f = m.Filter(must=[self._match("state", STAGED)])
        n = self.client.count(name, count_filter=f, exact=True).count
        if n:
            self.client.delete(name, m.FilterSelector(filter=f), wait=True)
        return n

    def remove_doc(self, domain: str, doc_id: str) -> None:
        m = self.m
        self.client.delete(
            self._require(domain), m.FilterSelector(filter=m.Filter(must=[self._match("doc_id", doc_id)])), wait=True
        )

    def flush(self) -> None:
        pass  # the server acknowledges writes with wait=True

    def optimize(self, domain: str) -> bool:
        return False  # the server runs its optimizers in the background

    def start_preloading(self, max_memory_share: float = 0.5) -> None:
        """Nothing to do here: the server keeps its own files in memory (its collections' on_disk settings)."""

    def open_in_background(self, max_memory_share: float = 0.5) -> None:
        """Nothing to do here: the server loads its collections when it starts."""

    def close(self) -> None:
        self.client.close()

    # -- reads ----------------------------------------------------------------------------------
    def count(self, domain: str, *, state: str | None = LIVE) -> int:
        f = self.m.Filter(must=[self._match("state", state)]) if state else None
        return self.client.count(self._require(domain), count_filter=f, exact=True).count

    def has_live(self, domain: str) -> bool:
        recs, _ = self.client.scroll(
            self._require(domain),
            scroll_filter=self.m.Filter(must=[self._match("state", LIVE)]),
            limit=1,
            with_payload=False,
        )
        return bool(recs)

    def _scroll(self, domain: str, flt: Any, limit: int | None = None) -> list[Any]:
        name = self._require(domain)
        out: list[Any] = []
        offset = None
        while True:
            page = 256 if limit is None else min(256, limit - len(out))
            recs, offset = self.client.scroll(name, scroll_filter=flt, limit=page, offset=offset, with_payload=True)
            out.extend(recs)
            if offset is None or (limit is not None and len(out) >= limit):
                return out

    def list_docs(self, domain: str) -> list[DocInfo]:
        m = self.m
        heads = self._scroll(domain, m.Filter(must=[self._match("state", LIVE), self._match("chunk_index", 0)]))
        docs = [doc_info_from(r.payload) for r in heads]
        for d in docs:
            f = m.Filter(must=[self._match("doc_id", d.doc_id), self._match("state", LIVE)])
            d.live_chunks = self.client.count(self._name(domain), count_filter=f, exact=True).count
        return sorted(docs, key=lambda d: d.display)

    def scroll_chunks(self, domain: str, *, limit: int | None = None) -> list[Hit]:
        recs = self._scroll(domain, self.m.Filter(must=[self._match("state", LIVE)]), limit)
        return [Hit(str(r.id), 0.0, dict(r.payload or {})) for r in recs]

    def dense_centroid(self, domain: str, *, limit: int = 2000) -> Any:
        import numpy as np

        recs, _ = self.client.scroll(
            self._require(domain),
            scroll_filter=self.m.Filter(must=[self._match("state", LIVE)]),
            limit=limit,
            with_payload=False,
            with_vectors=[DENSE],
        )
        vecs = [r.vector[DENSE] for r in recs if r.vector and DENSE in r.vector]
        return np.asarray(vecs, dtype=np.float32).mean(axis=0) if vecs else None

    def _search_params(self) -> Any:
        """hnsw_ef, and for a collection with int8 vectors: rescore with the float ones (ignored without them)."""
        m = self.m
        rescore = m.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING)
        return m.SearchParams(hnsw_ef=self.hnsw_ef, quantization=rescore)

    def _candidate_requests(
        self, dense: list[float], sparse: SparseVector, limit: int, *, with_payload: bool, with_terms: bool = False
    ) -> list[Any]:
        """The dense and (when the question has BM25 terms) sparse top-`limit` requests, live chunks only;
        `with_terms`: the sparse hits come with their BM25 vectors."""
        m = self.m
        live = m.Filter(must=[self._match("state", LIVE)])
        dense_v = [float(x) for x in dense]
        reqs = [
            m.QueryRequest(
                query=dense_v,
                using=DENSE,
                limit=limit,
                filter=live,
                params=self._search_params(),
                with_payload=with_payload,
            )
        ]
        if sparse.indices:
            sv = m.SparseVector(indices=sparse.indices, values=sparse.values)
            reqs.append(
                m.QueryRequest(
                    query=sv,
                    using=SPARSE,
                    limit=limit,
                    filter=live,
                    with_payload=with_payload,
                    with_vector=[SPARSE] if with_terms else False,
                )
            )
        return reqs

    def search(
        self, domain: str, dense: list[float], sparse: SparseVector, *, limit: int, prefetch: int, rrf_k: int
    ) -> SearchResult:
        """As EdgeStore.search: dense and BM25 candidates in one batch without payloads, fused as Qdrant's RRF,
        then the fused hits' payloads; the best cosine is the dense list's first (the dense graph searched once)."""
        name = self._require(domain)
        reqs = self._candidate_requests(dense, sparse, prefetch, with_payload=False)
        t0 = time.perf_counter()
        lists = [r.points for r in self._call(self.client.query_batch_points, name, reqs)]
        fused = rrf([[p.id for p in ps] for ps in lists], rrf_k, limit)
        recs = (
            self._call(self.client.retrieve, name, [pid for pid, _ in fused], with_payload=True, with_vectors=False)
            if fused
            else []
        )
        ms = (time.perf_counter() - t0) * 1000
        payloads = {r.id: r.payload for r in recs}
        # a point deleted between the search and the payload read (a document replaced meanwhile) is left out
        hits = [
            Hit(str(pid), score, dict(payloads[pid] or {}), *candidate_marks(lists, pid))
            for pid, score in fused
            if pid in payloads
        ]
        return SearchResult(hits, float(lists[0][0].score) if lists[0] else -1.0, {"search_ms": ms})

    def ranked_lists(self, domain: str, dense: list[float], sparse: SparseVector, *, limit: int) -> RankedLists:
        """As EdgeStore.ranked_lists: with the sparse hits' BM25 weights of the query's terms and the collection's
        IDF of each term (one top-1 query per term, in the same batch)."""
        m = self.m
        name = self._require(domain)
        reqs = self._candidate_requests(dense, sparse, limit, with_payload=True, with_terms=True)
        probes = [
            m.QueryRequest(query=m.SparseVector(indices=[t], values=[1.0]), using=SPARSE, limit=1, with_vector=[SPARSE])
            for t in sparse.indices
        ]
        t0 = time.perf_counter()
        answers = [r.points for r in self.client.query_batch_points(name, reqs + probes)]
        ms = (time.perf_counter() - t0) * 1000
        lists, probed = answers[: len(reqs)], answers[len(reqs) :]
        hits = [[Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in ps] for ps in lists]
        return RankedLists.of(hits, lists, probed, sparse, ms, points=self.count(domain, state=None))
