"""Embedded store on qdrant-edge (Qdrant's Rust engine in-process): one shard folder per domain (edge_shards), its
chunks (edge_docs), and the hybrid search over them."""

from __future__ import annotations

import time
from typing import Any

from assistant.embedding import SparseVector
from assistant.store.base import DENSE, LIVE, OVERSAMPLING, SPARSE, Hit, RankedLists, SearchResult
from assistant.store.edge_docs import EdgeDocs
from assistant.store.fusion import candidate_marks, rrf


class EdgeStore(EdgeDocs):
    """The embedded store (assistant.store.base.Store): its shards and their chunks, searched by dense (HNSW) and
    BM25 vectors."""

    def search_params(self, hnsw_ef: int | None = None) -> Any:
        """The dense search's parameters: hnsw_ef (default: the store's), and for a domain with int8 vectors
        their candidates rescored with the float vectors (ignored by a domain without them)."""
        qe = self._qe
        rescore = qe.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING)
        return qe.SearchParams(hnsw_ef=hnsw_ef or self.hnsw_ef, quantization=rescore)

    def _candidate_requests(
        self,
        dense: list[float],
        sparse: SparseVector,
        limit: int,
        *,
        filtered: bool,
        with_payload: bool,
        with_terms: bool = False,
    ) -> list[Any]:
        """The dense and (when the question has BM25 terms) sparse top-`limit` requests; `filtered`: live only;
        `with_terms`: the sparse hits come with their BM25 vectors."""
        qe = self._qe
        live = self._filter(self._match("state", LIVE)) if filtered else None
        dense_q = qe.Query.Nearest([float(x) for x in dense], using=DENSE)
        reqs = [
            qe.QueryRequest(
                limit=limit, query=dense_q, filter=live, params=self.search_params(), with_payload=with_payload
            )
        ]
        if sparse.indices:
            sparse_q = qe.Query.Nearest(qe.SparseVector(sparse.indices, sparse.values), using=SPARSE)
            vec = [SPARSE] if with_terms else None
            reqs.append(
                qe.QueryRequest(limit=limit, query=sparse_q, filter=live, with_payload=with_payload, with_vector=vec)
            )
        return reqs

    def search(
        self, domain: str, dense: list[float], sparse: SparseVector, *, limit: int, prefetch: int, rrf_k: int
    ) -> SearchResult:
        """Dense (HNSW) and BM25 candidates in one batch without payloads, fused here as Qdrant's RRF would, then
        the payloads of the `limit` fused hits; the best cosine is the dense list's first, so the dense graph is
        searched once (a fused query plus a top-1 dense query would search it twice). Live chunks only: filtered
        while the domain may hold staged ones, else checked on the hits' payloads (a chunk staged by another
        thread during the search sends it round again, filtered)."""
        self._open(domain)
        return self._search(domain, dense, sparse, limit, prefetch, rrf_k, filtered=self._staged[domain])

    def _search(
        self,
        domain: str,
        dense: list[float],
        sparse: SparseVector,
        limit: int,
        prefetch: int,
        rrf_k: int,
        *,
        filtered: bool,
    ) -> SearchResult:
        shard = self._open(domain)
        reqs = self._candidate_requests(dense, sparse, prefetch, filtered=filtered, with_payload=False)
        t0 = time.perf_counter()
        lists = shard.query_batch(self._qe.QueryBatchRequest(reqs))
        fused = rrf([[h.id for h in hs] for hs in lists], rrf_k, limit)
        recs = shard.retrieve([pid for pid, _ in fused], True, False) if fused else []
        ms = (time.perf_counter() - t0) * 1000
        payloads = {r.id: r.payload or {} for r in recs}
        if not filtered and any(p.get("state") != LIVE for p in payloads.values()):
            return self._search(domain, dense, sparse, limit, prefetch, rrf_k, filtered=True)
        # a point deleted between the search and the payload read (a document replaced meanwhile) is left out
        hits = [
            Hit(str(pid), score, dict(payloads[pid]), *candidate_marks(lists, pid))
            for pid, score in fused
            if pid in payloads
        ]
        best = float(lists[0][0].score) if lists[0] else -1.0
        return SearchResult(hits, best, {"search_ms": ms})

    def ranked_lists(self, domain: str, dense: list[float], sparse: SparseVector, *, limit: int) -> RankedLists:
        """Each vector's candidates with payloads; live only, as `search` (unfiltered while no chunk is staged).
        With the sparse hits' BM25 weights of the query's terms, and the domain's IDF of each term (one top-1
        query per term, in the same batch), so that BM25 scores of several domains can be made to compare."""
        self._open(domain)
        return self._ranked_lists(domain, dense, sparse, limit, filtered=self._staged[domain])

    def _ranked_lists(
        self, domain: str, dense: list[float], sparse: SparseVector, limit: int, *, filtered: bool
    ) -> RankedLists:
        qe = self._qe
        shard = self._open(domain)
        reqs = self._candidate_requests(dense, sparse, limit, filtered=filtered, with_payload=True, with_terms=True)
        # The IDF over the live chunks only: the engine's own counts deleted points until the shard is rewritten
        # (and staged ones), which its point count leaves out
        live = self._filter(self._match("state", LIVE))
        over_live = qe.SearchParams(idf=qe.IdfParams(corpus=live))
        probes = [
            qe.QueryRequest(
                limit=1,
                query=qe.Query.Nearest(qe.SparseVector([t], [1.0]), using=SPARSE),
                filter=live,
                with_vector=[SPARSE],
                params=over_live,
            )
            for t in sparse.indices
        ]
        t0 = time.perf_counter()
        answers = shard.query_batch(qe.QueryBatchRequest(reqs + probes))
        ms = (time.perf_counter() - t0) * 1000
        lists, probed = answers[: len(reqs)], answers[len(reqs) :]
        hits = [[Hit(str(h.id), float(h.score), dict(h.payload or {})) for h in hs] for hs in lists]
        if not filtered and any(h.payload.get("state") != LIVE for hs in hits for h in hs):
            return self._ranked_lists(domain, dense, sparse, limit, filtered=True)
        return RankedLists.of(hits, lists, probed, sparse, ms, points=self.count(domain))
