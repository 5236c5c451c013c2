"""Hybrid retrieval: dense + BM25 sparse prefetch fused with RRF inside Qdrant, optional rerank."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from assistant import index_record
from assistant.embedding import DenseEmbedder, SparseEncoder, SparseVector
from assistant.errors import EMPTY_QUESTION, LoragError, UnknownDomainError, known_hint
from assistant.names import is_domain
from assistant.settings_pipeline import RetrievalSettings
from assistant.store import Hit, RankedLists, Store


@dataclass
class Passage:
    n: int  # 1-based number shown to the model and in citations
    text: str
    source: str  # display path, relative to the folder it was ingested from
    section: str
    page: int | None
    score: float
    domain: str
    doc_id: str
    chunk_id: str
    # the refs of passages with the same text that retrieval left out for this one (a page's print or all-in-one copy)
    same_text: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        if self.page:
            return f"{self.source}#page={self.page}"
        return f"{self.source}#{self.section}" if self.section else self.source

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "ref": self.ref,
            "source": self.source,
            "section": self.section,
            "page": self.page,
            "score": round(self.score, 6),
            "domain": self.domain,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "text": self.text,
            **({"same_text": self.same_text} if self.same_text else {}),
        }


@dataclass
class Retrieval:
    passages: list[Passage]
    best_dense: float
    relevant: bool
    domains: list[str]
    timings_ms: dict[str, float] = field(default_factory=dict)
    query: str = ""  # what was searched (a follow-up: joined with the question it follows)
    query_vec: Any = field(default=None, repr=False)  # the dense vector of `query` the search used (routing reuses it)


def resolve_domains(store: Store, domain: str | None) -> list[str]:
    """The domains a question searches; a clear error for an empty index or an unknown/empty domain. A named
    domain costs one existence check and one live-chunk check (the store's other domains are listed only for
    an error)."""
    if domain is not None and is_domain(domain) and store.has_domain(domain):
        if not store.has_live(domain):
            raise LoragError(
                f"domain '{domain}' has no documents yet", hint=f"add some with `lorag ingest PATH --domain {domain}`"
            )
        return [domain]
    known = store.domains()
    if not known:
        raise LoragError("nothing is indexed yet", hint="add documents with `lorag ingest PATH --domain NAME`")
    if domain is not None:
        raise UnknownDomainError(f"unknown domain '{domain}'", hint=known_hint(domain, known, "domains"))
    filled = [d for d in known if store.has_live(d)]
    if not filled:
        raise LoragError("nothing is indexed yet", hint="add documents with `lorag ingest PATH --domain NAME`")
    return filled


def _passage(n: int, hit: Hit, domain: str) -> Passage:
    p = hit.payload
    return Passage(
        n=n,
        text=p.get("text", ""),
        source=p.get("display", p.get("doc_id", "?")),
        section=p.get("section") or "",
        page=p.get("page"),
        score=hit.score,
        domain=p.get("domain", domain),
        doc_id=p.get("doc_id", ""),
        chunk_id=hit.id,
    )


def pooled_bm25(lists: dict[str, RankedLists], query: SparseVector) -> dict[tuple[str, str], float]:
    """Every domain's sparse hits scored by BM25 as if the domains were one collection: each term weighed by its IDF
    over all their points (its document frequency in each domain recovered from the domain's own IDF), not by
    each domain's IDF. A term found in the one chunk of a one-document domain has a tiny IDF there (it is in every
    point), however rare it is elsewhere, so raw scores rank a tiny domain's exact match below a large domain's
    partial ones. A domain whose store gave no term statistics keeps its own scores."""
    from assistant.store.fusion import bm25_df, bm25_idf

    q = dict(zip(query.indices, query.values))
    known = {d: c for d, c in lists.items() if c.points}  # a domain holding none of the terms counts its points too
    total = sum(c.points for c in known.values())
    df = {t: sum(bm25_df(c.idf[t], c.points) for c in known.values() if t in c.idf) for t in q}
    idf = {t: bm25_idf(n, total) for t, n in df.items() if n}
    scores: dict[tuple[str, str], float] = {}
    for d, c in lists.items():
        for h in c.sparse:
            weights = c.term_weights.get(h.id) if d in known else None
            scores[(d, h.id)] = sum(q[t] * w * idf.get(t, 0.0) for t, w in weights.items()) if weights else h.score
    return scores


def rrf_across_domains(
    lists: dict[str, RankedLists], rrf_k: int, query: SparseVector | None = None
) -> list[tuple[float, Hit, str]]:
    """Reciprocal rank fusion over several domains' candidates: every domain's dense hits ranked together by
    cosine (one embedder, so comparable), its sparse hits by BM25 with one IDF over all the domains
    (`pooled_bm25`; without `query`, by each domain's own BM25 scores), then 1/(k + rank) summed per chunk, as if
    the domains were one collection. Best first."""
    fused: dict[tuple[str, str], list] = {}
    bm25 = pooled_bm25(lists, query) if query is not None else {}
    for which in ("dense", "sparse"):
        ranked = sorted(
            (
                (h, d, bm25.get((d, h.id), h.score) if which == "sparse" else h.score)
                for d, c in lists.items()
                for h in getattr(c, which)
            ),
            key=lambda x: (-x[2], x[0].id),
        )
        for rank, (h, d, _) in enumerate(ranked, start=1):
            entry = fused.setdefault((d, h.id), [0.0, replace(h, dense=None, lexical=False), d])
            entry[0] += 1.0 / (rrf_k + rank)
            if which == "dense":
                entry[1].dense = h.score
            else:
                entry[1].lexical = True
    return sorted(((score, h, d) for score, h, d in fused.values()), key=lambda x: (-x[0], x[1].id))


def _distinct_texts(
    scored: list[tuple[float, Hit, str]],
) -> tuple[list[tuple[float, Hit, str]], dict[str, list[tuple[Hit, str]]]]:
    """`scored` with each candidate whose text (whitespace aside) a better-ranked one has left out, and the hits left
    out per kept hit's id: docs often hold a page twice (an "all in one" or print copy), and the same text twice is
    one passage to the model."""
    kept: dict[str, Hit] = {}
    out, same = [], {}
    for score, h, d in scored:
        key = " ".join(h.payload.get("text", "").split())
        first = kept.get(key)
        if first is not None and key:
            same.setdefault(first.id, []).append((h, d))
            continue
        kept[key] = h
        out.append((score, h, d))
    return out, same


def unrelated(h: Hit, min_relevance: float) -> bool:
    """A candidate outside the question's BM25 candidates (it holds no question term, or too little of one to rank
    among the prefetch) whose cosine to it is under min_relevance (the bar for "no relevant passage"): what fusion
    brings up to fill top-k in a domain too small to hold k related passages. A BM25 candidate, or one whose
    cosine was not measured, is kept."""
    return h.dense is not None and h.dense < min_relevance and not h.lexical


class Retriever:
    def __init__(
        self,
        store: Store,
        dense: DenseEmbedder,
        sparse: SparseEncoder,
        settings: RetrievalSettings,
        reranker: Any | None = None,
    ):
        self.store = store
        self.dense = dense
        self.sparse = sparse
        self.settings = settings
        self.reranker = reranker
        self._checked: set[str] = set()  # domains whose recorded embedder backend matches self.dense

    def resolve_domains(self, domain: str | None) -> list[str]:
        return resolve_domains(self.store, domain)

    def retrieve_many(
        self, questions: list[str], domain: str | None = None, *, top_k: int | None = None
    ) -> list[Retrieval]:
        """Like `retrieve` for many questions, embedding them in one batch."""
        if not questions:
            return []
        vecs = self.dense.embed_documents(questions)
        return [self.retrieve(q, domain, top_k=top_k, query_vec=v) for q, v in zip(questions, vecs)]

    def retrieve(
        self, question: str, domain: str | None = None, *, top_k: int | None = None, query_vec: Any = None
    ) -> Retrieval:
        """`query_vec`: the question's dense vector when the caller has it (else embedded here, once); the
        Retrieval keeps the vector searched with, so routing needs no second embedding."""
        if not question.strip():
            raise LoragError(EMPTY_QUESTION)
        s = self.settings
        k = top_k or s.top_k
        domains = self.resolve_domains(domain)
        for d in domains:
            if d not in self._checked:
                index_record.check(self.store, d, self.dense)
                self._checked.add(d)
        t0 = time.perf_counter()
        vec = self.dense.embed_query(question) if query_vec is None else query_vec
        dense_q = vec.tolist()
        sparse_q = self.sparse.embed_query(question)
        t1 = time.perf_counter()
        reranking = self.reranker is not None and s.rerank
        # with the cut or passages of the same text collapsed, twice k candidates: ones ranked under k take the
        # places of those left out
        limit = max(k, s.prefetch_limit) if reranking else 2 * k
        scored: list[tuple[float, Hit, str]]
        if len(domains) == 1:  # Qdrant fuses the domain's dense and sparse candidates itself
            r = self.store.search(domains[0], dense_q, sparse_q, limit=limit, prefetch=s.prefetch_limit, rrf_k=s.rrf_k)
            best, search_ms = r.best_dense, r.timings_ms.get("search_ms", 0.0)
            scored = sorted(((h.score, h, domains[0]) for h in r.hits), key=lambda x: (-x[0], x[1].id))  # ties by id
        else:  # each domain's fused ranks start at 1 alike: fuse the domains' cosine and pooled BM25 rankings
            lists = {d: self.store.ranked_lists(d, dense_q, sparse_q, limit=s.prefetch_limit) for d in domains}
            best = max((c.dense[0].score for c in lists.values() if c.dense), default=-1.0)
            search_ms = sum(c.timings_ms.get("search_ms", 0.0) for c in lists.values())
            scored = rrf_across_domains(lists, s.rrf_k, sparse_q)[:limit]
        t2 = time.perf_counter()
        if reranking and scored:
            ce = self.reranker.predict([(question, h.text) for _, h, _ in scored])
            scored = [(float(c), h, d) for c, (_, h, d) in sorted(zip(ce, scored), key=lambda x: -x[0])]
        elif s.drop_unrelated and best >= s.min_relevance:  # a relevant passage exists: unrelated ones are left out
            scored = [x for x in scored if not unrelated(x[1], s.min_relevance)] or scored
        scored, same = _distinct_texts(scored)
        scored = scored[:k]
        t3 = time.perf_counter()
        passages = [_passage(i + 1, h, d) for i, (_, h, d) in enumerate(scored)]
        for p, (score, h, _) in zip(passages, scored):
            p.score = score
            p.same_text = [_passage(0, o, d).ref for o, d in same.get(h.id, [])]
        return Retrieval(
            passages=passages,
            best_dense=best,
            relevant=bool(passages) and best >= s.min_relevance,
            domains=domains,
            query=question,
            query_vec=vec,
            timings_ms={
                "embed_ms": (t1 - t0) * 1000,
                "search_ms": search_ms,
                "fuse_ms": (t2 - t1) * 1000 - search_ms,
                "rerank_ms": (t3 - t2) * 1000,
            },
        )
