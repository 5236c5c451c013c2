"""Vector stores behind one interface; `open_store` picks one from the settings."""

from __future__ import annotations

from assistant.settings import Settings
from assistant.store.base import ChunkPoint, DocInfo, Hit, RankedLists, SearchResult, Store, check_domain

__all__ = ["ChunkPoint", "DocInfo", "Hit", "RankedLists", "SearchResult", "Store", "check_domain", "open_store"]


def open_store(settings: Settings) -> Store:
    """A Qdrant server when `qdrant.url` is set, else the embedded engine under the data folder."""
    q = settings.qdrant
    if q.url:
        from assistant.store.server import QdrantClientStore

        return QdrantClientStore.connect(
            q.url,
            q.api_key.get_secret_value() if q.api_key else None,
            prefix=q.collection_prefix,
            shard_number=q.shard_number,
            replication_factor=q.replication_factor,
            on_disk_vectors=q.on_disk_vectors,
            hnsw_ef=q.hnsw_ef,
        )
    from assistant.store.edge import EdgeStore

    return EdgeStore(settings.store_path, hnsw_ef=q.hnsw_ef, indexing_threads=q.indexing_threads)
