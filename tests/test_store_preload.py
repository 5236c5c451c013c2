"""The embedded store's background preload: which files it reads, that it never holds up a search, the memory
cap, and the setting that turns it off."""

import threading
import time
import uuid

from assistant.embedding import Bm25SparseEncoder
from assistant.store import preload
from assistant.store.base import ChunkPoint
from assistant.store.edge import EdgeStore
from tests.fakes import HashingEmbedder
from ui.components import Components

EMB = HashingEmbedder(dim=32)
BM25 = Bm25SparseEncoder()


def filled(root, n=40) -> EdgeStore:
    store = EdgeStore(root)
    store.ensure_domain("hr", EMB.dim)
    texts = [f"leave policy paragraph {i} about holidays and notice" for i in range(n)]
    pts = [
        ChunkPoint(
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"d|{i}")),
            EMB.embed_query(t).tolist(),
            BM25.embed_documents([t])[0],
            {"doc_id": "d", "display": "d", "content_hash": "h", "chunk_index": i, "n_chunks": n, "text": t},
        )
        for i, t in enumerate(texts)
    ]
    store.stage("hr", pts)
    store.publish("hr", "d", "h")
    store.close()
    return EdgeStore(root)


def search(store):
    q = "holidays notice"
    return store.search("hr", EMB.embed_query(q).tolist(), BM25.embed_query(q), limit=3, prefetch=10, rrf_k=60)


def test_preload_reads_the_shards_segment_files_when_a_domain_opens(tmp_path):
    store = filled(tmp_path / "q")
    store.start_preloading()
    assert store.preloader.wait("hr", 0) is None  # nothing opened, nothing read
    assert search(store).hits
    res = store.preloader.wait("hr", 30)
    assert res is not None and not res.skipped and not res.stopped
    names = {str(f.relative_to(tmp_path / "q" / "hr")) for f in res.files}
    assert any(n.endswith("payload_storage/page_0.dat") for n in names)  # the hits' payloads
    assert any("payload_index" in n for n in names)  # the state filter
    assert not any(n.startswith("wal") or "vector_storage-bm25" in n for n in names)
    assert res.bytes_read == sum(f.stat().st_size for f in res.files) > 0
    store.close()


def test_files_qdrant_keeps_in_its_own_memory_are_not_read_again(tmp_path):
    seg = tmp_path / "shard" / "segments" / "s1"
    wanted = [seg / "payload_storage" / "page_0.dat", seg / "vector_storage-dense" / "matrix.dat"]
    unwanted = [
        seg / "vector_index-bm25" / "inverted_index.dat",
        seg / "vector_storage-dense" / "quantized.data",
        seg / "vector_storage-bm25" / "store" / "page_0.dat",
        tmp_path / "shard" / "wal" / "open-1",
    ]
    for i, f in enumerate(wanted + unwanted):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x" * (10 + i))
    (seg / "empty.bin").write_bytes(b"")
    assert preload.files_to_preload(tmp_path / "shard", ("bm25",)) == wanted


def test_the_first_search_does_not_wait_for_the_preload(tmp_path, monkeypatch):
    release, reading = threading.Event(), threading.Event()
    real = preload._read_file

    def held(f, buf, stop):
        reading.set()
        release.wait(30)
        return real(f, buf, stop)

    monkeypatch.setattr(preload, "_read_file", held)
    store = filled(tmp_path / "q")
    store.start_preloading()
    assert search(store).hits  # answered while the preload thread is held on its first file
    assert reading.wait(30) and store.preloader.wait("hr", 0) is None
    release.set()
    assert store.preloader.wait("hr", 30).bytes_read > 0
    store.close()


def test_a_shard_over_the_memory_cap_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(preload, "mem_available", lambda: 1000)  # bytes: far less than the shard
    read = []
    monkeypatch.setattr(preload, "_read_file", lambda f, buf, stop: read.append(f) or 0)
    store = filled(tmp_path / "q")
    store.start_preloading(max_memory_share=0.5)
    search(store)
    res = store.preloader.wait("hr", 30)
    assert "more than 50% of the 0 MB available" in res.skipped
    assert read == [] and res.bytes_read == 0
    store.close()


def test_closing_the_store_stops_a_preload_under_way(tmp_path, monkeypatch):
    started = threading.Event()
    real = preload._read_file

    def slow(f, buf, stop):
        started.set()
        stop.wait(30)  # returns as soon as close() asks it to stop
        return real(f, buf, stop)

    monkeypatch.setattr(preload, "_read_file", slow)
    store = filled(tmp_path / "q")
    store.start_preloading()
    search(store)
    assert started.wait(30)
    pre = store.preloader
    store.close()
    assert pre.results["hr"].stopped


def test_optimize_preloads_the_rebuilt_shard_again(tmp_path):
    store = filled(tmp_path / "q")
    store.start_preloading()
    search(store)
    first = store.preloader.wait("hr", 30)
    store.optimize("hr")
    second = store.preloader.wait("hr", 30)
    assert second is not None and second is not first and second.bytes_read > 0
    assert all(f.exists() for f in second.files)
    store.close()


def test_the_setting_turns_the_preload_off(settings, tmp_path):
    filled(settings.store_path).close()
    on = Components(settings)
    store = on.serve_store()
    assert store.preloader is not None
    search(store)
    assert store.preloader.wait("hr", 30).bytes_read > 0
    store.close()

    settings.qdrant.preload = False
    off = Components(settings).serve_store()
    search(off)
    assert off.preloader is None
    off.close()


def test_a_short_lived_store_does_not_preload(tmp_path):
    store = filled(tmp_path / "q")
    search(store)
    assert store.preloader is None
    assert not [t for t in threading.enumerate() if t.name.startswith("lorag-preload")]
    store.close()


def test_a_serving_process_opens_every_domain_in_the_background(settings):
    """`lorag ui` / the worker: each domain is opened (and preloaded) before its first question arrives; the
    setting that turns the preload off leaves domains to open on first use."""
    filled(settings.store_path).close()
    store = Components(settings).serve_store()
    try:
        deadline = time.monotonic() + 30
        while "hr" not in store._shards and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "hr" in store._shards  # opened without a search
        assert store.preloader.wait("hr", 30).bytes_read > 0
        assert search(store).hits
    finally:
        store.close()
    settings.qdrant.preload = False
    off = Components(settings).serve_store()
    time.sleep(0.3)
    assert off._shards == {}
    off.close()


def test_concurrent_first_uses_load_a_shard_once(tmp_path, monkeypatch):
    store = filled(tmp_path / "q")
    loads = []
    real = store._qe.EdgeShard.load

    class Counting:
        @staticmethod
        def load(path):
            loads.append(path)
            time.sleep(0.2)  # a large shard's load: the other threads arrive meanwhile
            return real(path)

    monkeypatch.setattr(store, "_qe", type("QE", (), {**vars(store._qe), "EdgeShard": Counting}))
    threads = [threading.Thread(target=store._open, args=("hr",)) for _ in range(4)]
    opener = store.open_in_background()
    for t in threads:
        t.start()
    for t in [*threads, opener]:
        t.join(30)
    assert len(loads) == 1 and "hr" in store._shards
    store.close()


def test_the_background_opener_skips_a_domain_over_the_memory_cap(tmp_path, monkeypatch):
    import assistant.store.edge_shards as edge_shards

    store = filled(tmp_path / "q")
    monkeypatch.setattr(edge_shards, "mem_available", lambda: 1000)  # bytes: far less than the shard
    store.open_in_background(max_memory_share=0.5).join(30)
    assert store._shards == {}
    assert search(store).hits  # opened on first use, as before
    store.close()
