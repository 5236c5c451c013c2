"""Reciprocal rank fusion of one domain's dense and sparse candidate lists, scored as Qdrant's `Fusion.Rrf`; BM25's
IDF as Qdrant's `Modifier.Idf` computes it, and back."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any


def rrf(ranked: Sequence[Sequence[Hashable]], k: int, limit: int) -> list[tuple[Hashable, float]]:
    """Point ids of several best-first lists fused: 1/(k + position) summed per id, position counted from 0 as
    Qdrant does; the best `limit` (id, score), best first, equal scores by id (Qdrant leaves their order open).
    The ids of one search are all UUIDs or all strings: a UUID orders as its text does (fixed-width lower-case
    hex), so they are compared as they are, not turned into text."""
    scores: dict[Hashable, float] = {}
    for ids in ranked:
        for pos, pid in enumerate(ids):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (k + pos)
    return sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:limit]


def candidate_marks(lists: Sequence[Sequence[Any]], pid: Hashable) -> tuple[float | None, bool]:
    """A fused point's cosine in the dense candidates (lists[0]; None when it is not among them) and whether it
    is among the BM25 ones (lists[1], present when the question has BM25 terms)."""
    cos = next((float(h.score) for h in lists[0] if h.id == pid), None)
    return cos, len(lists) > 1 and any(h.id == pid for h in lists[1])


def bm25_idf(df: float, points: int) -> float:
    """Qdrant's IDF of a term found in `df` of `points` points: ln(1 + (N - n + 0.5) / (n + 0.5))."""
    return math.log(1.0 + (points - df + 0.5) / (df + 0.5))


def bm25_df(idf: float, points: int) -> float:
    """The document frequency `bm25_idf` turned into `idf` over `points` points (its inverse), within [1, N]."""
    r = math.exp(idf) - 1.0
    return min(max((points + 0.5 - 0.5 * r) / (r + 1.0), 1.0), float(max(points, 1)))


def idf_from_probes(terms: Sequence[int], probes: Sequence[Sequence[Any]], weights: Any) -> dict[int, float]:
    """A domain's IDF per query term from one top-1 query per term (weight 1, no filter): it scores its
    point idf(t) * the point's weight of t (`weights(point)`: {term: weight}); a term no point holds is left out."""
    idf: dict[int, float] = {}
    for t, hits in zip(terms, probes):
        w = weights(hits[0]).get(t) if hits else None
        if w:
            idf[t] = float(hits[0].score) / w
    return idf
