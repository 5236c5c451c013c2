"""Reciprocal rank fusion of one domain's dense and sparse candidate lists, scored as Qdrant's `Fusion.Rrf`."""

from __future__ import annotations

from collections.abc import Hashable, Sequence


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
