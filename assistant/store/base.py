"""The Store interface: one Qdrant collection (or embedded shard) per domain.

Every chunk carries `state`: "staged" while a document version is being written, "live" once it
is published. Readers only see live chunks. Publishing a new version of a document is two single
operations — delete the old version, then flip the new one to live — each atomic in Qdrant's WAL,
so a crash leaves a document fully old, fully new, or absent (never a mix); the next ingest
purges staged leftovers and finishes the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant.embedding import SparseVector
from assistant.names import check_domain  # noqa: F401 - re-exported: the store checks every collection name

DENSE = "dense"
SPARSE = "bm25"
LIVE, STAGED = "live", "staged"
INT8_QUANTILE = 0.99  # int8 range of a new domain's dense vectors: all but the outermost 1% of values
OVERSAMPLING = 2.0  # a search on int8 vectors takes this x limit candidates, rescored with the float vectors


@dataclass
class ChunkPoint:
    id: str
    dense: list[float]
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass
class Hit:
    id: str
    score: float
    payload: dict[str, Any]
    dense: float | None = None  # its cosine to the question, where it was among the dense candidates (search)
    lexical: bool = False  # among the BM25 candidates: it holds a term of the question (search)

    @property
    def text(self) -> str:
        return self.payload.get("text", "")


@dataclass
class SearchResult:
    hits: list[Hit]
    best_dense: float  # best cosine of the query to any live chunk; gates "no relevant passage"
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class RankedLists:
    """One domain's candidates per vector, best first, with their own scores (cosine, BM25): what a search
    over several domains fuses into one ranking, since fused scores of separate domains do not compare.

    A domain's BM25 scores weigh each term by the domain's own IDF, so they do not compare across domains either:
    `idf` (query term -> this domain's IDF, for the terms it holds), `points` (the points that IDF counts) and
    `term_weights` (sparse hit id -> its BM25 weight per query term) let the search score every domain's sparse
    hits with one IDF, as if the domains were one collection (assistant/retrieval.py). Empty: unknown."""

    dense: list[Hit]
    sparse: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    idf: dict[int, float] = field(default_factory=dict)
    points: int = 0
    term_weights: dict[str, dict[int, float]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, hits: list[list[Hit]], raw: list[Any], probed: list[Any], query: SparseVector, ms: float, points: int
    ) -> "RankedLists":
        """From a batch's answers: `hits` its dense and sparse lists as Hits, `raw` the same lists as the store
        gave them (points with their BM25 vectors), `probed` one top-1 answer per query term (weight 1)."""
        from assistant.store.fusion import idf_from_probes

        asked = set(query.indices)
        return cls(
            hits[0],
            hits[1] if len(hits) > 1 else [],
            {"search_ms": ms},
            idf=idf_from_probes(query.indices, probed, sparse_weights),
            points=points,
            term_weights={
                str(p.id): {t: w for t, w in sparse_weights(p).items() if t in asked}
                for p in (raw[1] if len(raw) > 1 else [])
            },
        )


def sparse_weights(point: Any) -> dict[int, float]:
    """A stored point's BM25 vector as {term: weight} ({} when it came without one)."""
    v = (point.vector or {}).get(SPARSE) if isinstance(point.vector, dict) else None
    return dict(zip(v.indices, v.values)) if v is not None else {}


@dataclass
class DocInfo:
    doc_id: str
    display: str
    content_hash: str
    n_chunks: int
    format: str
    ingested_at: str
    live_chunks: int = 0


class Store(Protocol):
    """What the services need from a vector store; Qdrant embedded (edge) or Qdrant via qdrant-client."""

    def domains(self) -> list[str]: ...
    def has_domain(self, domain: str) -> bool: ...
    def ensure_domain(self, domain: str, dim: int) -> None: ...
    def drop_domain(self, domain: str) -> None: ...
    def stage(self, domain: str, points: list[ChunkPoint]) -> None: ...
    def publish(self, domain: str, doc_id: str, content_hash: str) -> None: ...
    def purge_staged(self, domain: str) -> int: ...
    def remove_doc(self, domain: str, doc_id: str) -> None: ...
    def list_docs(self, domain: str) -> list[DocInfo]: ...
    def count(self, domain: str, *, state: str | None = LIVE) -> int: ...
    def has_live(self, domain: str) -> bool: ...
    def search(
        self, domain: str, dense: list[float], sparse: SparseVector, *, limit: int, prefetch: int, rrf_k: int
    ) -> SearchResult: ...
    def ranked_lists(self, domain: str, dense: list[float], sparse: SparseVector, *, limit: int) -> RankedLists: ...
    def scroll_chunks(self, domain: str, *, limit: int | None = None) -> list[Hit]: ...
    def dense_centroid(self, domain: str, *, limit: int = 2000) -> Any: ...
    def embedder_record(self, domain: str) -> dict[str, Any] | None: ...
    def set_embedder_record(self, domain: str, record: dict[str, Any]) -> None: ...
    def flush(self) -> None: ...
    def optimize(self, domain: str) -> bool: ...
    def start_preloading(self, max_memory_share: float = 0.5) -> None: ...
    def open_in_background(self, max_memory_share: float = 0.5) -> Any: ...
    def close(self) -> None: ...


def doc_info_from(payload: dict[str, Any]) -> DocInfo:
    return DocInfo(
        doc_id=payload["doc_id"],
        display=payload.get("display", payload["doc_id"]),
        content_hash=payload["content_hash"],
        n_chunks=int(payload.get("n_chunks", 0)),
        format=payload.get("format", ""),
        ingested_at=payload.get("ingested_at", ""),
    )


def corpus_fingerprint(store: Store, domain: str) -> str | None:
    """A hash over the domain's live documents and their versions; None when the domain is absent or empty."""
    import hashlib

    if not store.has_domain(domain):
        return None
    docs = store.list_docs(domain)
    if not docs:
        return None
    h = hashlib.sha256()
    for d in sorted(docs, key=lambda d: d.doc_id):
        h.update(f"{d.doc_id}\0{d.content_hash}\n".encode())
    return h.hexdigest()[:32]
