"""The embedded store's chunks: staged, published and removed by document, counted, listed and scrolled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from assistant.store.base import DENSE, LIVE, SPARSE, STAGED, ChunkPoint, DocInfo, Hit, doc_info_from
from assistant.store.edge_shards import EdgeShards


class EdgeDocs(EdgeShards):
    """The shards' chunks, written and read by document."""

    # -- writes ---------------------------------------------------------------------------------
    def stage(self, domain: str, points: list[ChunkPoint]) -> None:
        qe = self._qe
        shard = self._open(domain)
        pts = [
            qe.Point(
                id=p.id,
                vector={DENSE: list(map(float, p.dense)), SPARSE: qe.SparseVector(p.sparse.indices, p.sparse.values)},
                payload={**p.payload, "state": STAGED},
            )
            for p in points
        ]
        self._staged[domain] = True  # before the points exist: a search from now on filters
        shard.update(qe.UpdateOperation.upsert_points(pts))

    def publish(self, domain: str, doc_id: str, content_hash: str) -> None:
        qe = self._qe
        shard = self._open(domain)
        old = self._filter(self._match("doc_id", doc_id), must_not=[self._match("content_hash", content_hash)])
        shard.update(qe.UpdateOperation.delete_points_by_filter(old))
        self._forget_live(domain)
        new = self._filter(self._match("doc_id", doc_id), self._match("content_hash", content_hash))
        shard.update(qe.UpdateOperation.set_payload_by_filter(new, {"state": LIVE}))
        if self._staged.get(domain):
            self._staged[domain] = self._any_staged(shard)

    def purge_staged(self, domain: str) -> int:
        shard = self._open(domain)
        staged = self._filter(self._match("state", STAGED))
        n = shard.count(self._qe.CountRequest(filter=staged))
        if n:
            shard.update(self._qe.UpdateOperation.delete_points_by_filter(staged))
        self._staged[domain] = self._any_staged(shard)
        return n

    def remove_doc(self, domain: str, doc_id: str) -> None:
        shard = self._open(domain)
        shard.update(self._qe.UpdateOperation.delete_points_by_filter(self._filter(self._match("doc_id", doc_id))))
        self._forget_live(domain)

    # -- reads ----------------------------------------------------------------------------------
    def count(self, domain: str, *, state: str | None = LIVE) -> int:
        f = self._filter(self._match("state", state)) if state else None
        return self._open(domain).count(self._qe.CountRequest(filter=f))

    def has_live(self, domain: str) -> bool:
        """Any live chunk? (one-point scroll: cheap, unlike an exact count; a yes is kept until a delete)"""
        if domain in self._live and domain in self._shards:
            return True
        deletes = self._deletes
        recs, _ = self._open(domain).scroll(
            self._qe.ScrollRequest(
                limit=1, filter=self._filter(self._match("state", LIVE)), with_payload=False, with_vector=False
            )
        )
        if recs and deletes == self._deletes:
            self._live.add(domain)
        return bool(recs)

    def _scroll(self, domain: str, flt: Any, limit: int | None = None) -> list[Any]:
        qe = self._qe
        shard = self._open(domain)
        out: list[Any] = []
        offset = None
        while True:
            page = 256 if limit is None else min(256, limit - len(out))
            recs, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=page, filter=flt, with_payload=True, with_vector=False)
            )
            out.extend(recs)
            if offset is None or (limit is not None and len(out) >= limit):
                return out

    def list_docs(self, domain: str) -> list[DocInfo]:
        heads = self._scroll(domain, self._filter(self._match("state", LIVE), self._match("chunk_index", 0)))
        docs = [doc_info_from(r.payload) for r in heads]
        shard = self._open(domain)
        for d in docs:  # completeness check: live chunks of this version
            f = self._filter(self._match("doc_id", d.doc_id), self._match("state", LIVE))
            d.live_chunks = shard.count(self._qe.CountRequest(filter=f))
        return sorted(docs, key=lambda d: d.display)

    def scroll_chunks(self, domain: str, *, limit: int | None = None) -> list[Hit]:
        recs = self._scroll(domain, self._filter(self._match("state", LIVE)), limit)
        return [Hit(str(r.id), 0.0, dict(r.payload)) for r in recs]

    def dense_centroid(self, domain: str, *, limit: int = 2000) -> "np.ndarray | None":
        """Mean of up to `limit` live dense vectors (for the domain router)."""
        import numpy as np

        qe = self._qe
        recs, _ = self._open(domain).scroll(
            qe.ScrollRequest(
                limit=limit, filter=self._filter(self._match("state", LIVE)), with_payload=False, with_vector=[DENSE]
            )
        )
        vecs = [r.vector[DENSE] for r in recs if r.vector and DENSE in r.vector]
        return np.asarray(vecs, dtype=np.float32).mean(axis=0) if vecs else None
