"""The Store contract, run against the embedded engine and qdrant-client's in-memory mode."""

import uuid

import pytest

from assistant.embedding import Bm25SparseEncoder
from assistant.errors import LoragError, StoreLockedError
from assistant.store.base import ChunkPoint
from assistant.store.edge import EdgeStore
from assistant.store.server import QdrantClientStore
from tests.fakes import HashingEmbedder

EMB = HashingEmbedder(dim=32)
BM25 = Bm25SparseEncoder()


@pytest.fixture(params=["edge", "client-memory"])
def store(request, tmp_path):
    if request.param == "edge":
        s = EdgeStore(tmp_path / "qdrant")
    else:
        from qdrant_client import QdrantClient

        s = QdrantClientStore(QdrantClient(":memory:"))
    yield s
    s.close()


def points(doc_id, h, texts):
    out = []
    for i, t in enumerate(texts):
        pid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc_id}|{h}|{i}"))
        payload = {
            "doc_id": doc_id,
            "display": doc_id,
            "content_hash": h,
            "chunk_index": i,
            "n_chunks": len(texts),
            "text": t,
            "format": "txt",
            "ingested_at": "now",
        }
        out.append(ChunkPoint(pid, EMB.embed_query(t).tolist(), BM25.embed_documents([t])[0], payload))
    return out


def search(store, q, domain="hr", limit=3):
    return store.search(domain, EMB.embed_query(q).tolist(), BM25.embed_query(q), limit=limit, prefetch=10, rrf_k=60)


def test_staged_chunks_are_invisible_until_published(store):
    store.ensure_domain("hr", EMB.dim)
    store.stage("hr", points("a.txt", "h1", ["annual leave is 27 days", "sick leave needs a note"]))
    assert store.count("hr") == 0
    assert search(store, "annual leave days").hits == []
    store.publish("hr", "a.txt", "h1")
    assert store.count("hr") == 2
    hits = search(store, "annual leave days").hits
    assert hits[0].payload["text"] == "annual leave is 27 days"
    assert store.list_docs("hr")[0].live_chunks == 2


def test_publish_replaces_old_version_whole(store):
    store.ensure_domain("hr", EMB.dim)
    store.stage("hr", points("a.txt", "h1", ["old one", "old two", "old three"]))
    store.publish("hr", "a.txt", "h1")
    store.stage("hr", points("a.txt", "h2", ["new one"]))
    # before publishing: readers still see exactly the old version
    assert sorted(h.text for h in store.scroll_chunks("hr")) == ["old one", "old three", "old two"]
    store.publish("hr", "a.txt", "h2")
    assert [h.text for h in store.scroll_chunks("hr")] == ["new one"]
    docs = store.list_docs("hr")
    assert [(d.doc_id, d.content_hash, d.n_chunks) for d in docs] == [("a.txt", "h2", 1)]


def test_purge_staged_and_remove(store):
    store.ensure_domain("hr", EMB.dim)
    store.stage("hr", points("a.txt", "h1", ["x y"]))
    store.publish("hr", "a.txt", "h1")
    store.stage("hr", points("b.txt", "h9", ["half written"]))
    assert store.purge_staged("hr") == 1
    assert store.count("hr", state=None) == 1
    store.remove_doc("hr", "a.txt")
    assert store.count("hr", state=None) == 0


def test_domains_and_unknown_domain(store):
    assert store.domains() == []
    store.ensure_domain("hr", EMB.dim)
    store.ensure_domain("manual", EMB.dim)
    assert store.domains() == ["hr", "manual"]
    with pytest.raises(LoragError, match="unknown domain 'nope'"):
        store.count("nope")
    with pytest.raises(LoragError, match="invalid domain name"):
        store.ensure_domain("../etc", EMB.dim)
    with pytest.raises(LoragError, match="32-d"):
        store.ensure_domain("hr", 16)


def test_best_dense_reports_relevance(store):
    store.ensure_domain("hr", EMB.dim)
    store.stage("hr", points("a.txt", "h1", ["annual leave is 27 days"]))
    store.publish("hr", "a.txt", "h1")
    assert search(store, "annual leave is 27 days").best_dense > 0.99
    assert search(store, "quantum chromodynamics lattice").best_dense < 0.5


def test_ranked_lists_give_each_vector_s_candidates_with_their_own_scores(store):
    import numpy as np

    texts = ["annual leave is 27 days", "sick leave needs a note", "parking costs 12 euros"]
    store.ensure_domain("hr", EMB.dim)
    store.stage("hr", points("a.txt", "h1", texts))
    store.publish("hr", "a.txt", "h1")
    q = "annual leave days"
    lists = store.ranked_lists("hr", EMB.embed_query(q).tolist(), BM25.embed_query(q), limit=3)
    cos = {t: float(np.dot(EMB.embed_query(q), EMB.embed_query(t))) for t in texts}
    assert [h.payload["text"] for h in lists.dense] == sorted(texts, key=lambda t: -cos[t])
    assert [h.score for h in lists.dense] == pytest.approx([cos[h.payload["text"]] for h in lists.dense], abs=1e-4)
    assert [h.payload["text"] for h in lists.sparse] == texts[:2]  # only chunks holding a term of the query
    assert lists.sparse[0].score > lists.sparse[1].score > 0
    assert store.ranked_lists("hr", EMB.embed_query(q).tolist(), BM25.embed_query("the a"), limit=3).sparse == []


def test_edge_store_second_process_gets_clear_error(tmp_path):
    import subprocess
    import sys

    s = EdgeStore(tmp_path / "q")
    s.ensure_domain("hr", 8)
    code = (
        "import sys\nfrom assistant.store.edge import EdgeStore\nfrom assistant.errors import StoreLockedError\n"
        f"try:\n    EdgeStore({str(tmp_path / 'q')!r}).count('hr')\n"
        "except StoreLockedError as e:\n    print('LOCKED', e); sys.exit(0)\nsys.exit(1)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    s.close()
    assert r.returncode == 0, r.stderr
    assert "in use by another lorag process" in r.stdout
    assert StoreLockedError.exit_code == 3


def test_edge_store_survives_reopen(tmp_path):
    s = EdgeStore(tmp_path / "q")
    s.ensure_domain("hr", EMB.dim)
    s.stage("hr", points("a.txt", "h1", ["persisted text"]))
    s.publish("hr", "a.txt", "h1")
    s.close()
    s2 = EdgeStore(tmp_path / "q")
    assert s2.domains() == ["hr"]
    assert [h.text for h in s2.scroll_chunks("hr")] == ["persisted text"]
    s2.close()


@pytest.mark.parametrize("setting", [0, 1, 3])
def test_a_new_embedded_domain_builds_its_index_with_the_configured_threads(tmp_path, monkeypatch, setting):
    """qdrant.indexing_threads reaches the domain's engine config (0: every core, not qdrant-edge's default that
    keeps one free), with Qdrant's default graph and no per-payload-value graphs (payload_m 0); the domain still
    takes points and optimizes."""
    import json

    from assistant.settings import load_settings
    from assistant.store import open_store

    monkeypatch.setattr("os.cpu_count", lambda: 6)
    monkeypatch.setenv("LORAG_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LORAG_QDRANT__INDEXING_THREADS", str(setting))
    s = open_store(load_settings())
    try:
        s.ensure_domain("hr", EMB.dim)
        s.stage("hr", points("a.md", "h1", ["annual leave is 27 days", "sick leave needs a note"]))
        s.publish("hr", "a.md", "h1")
        s.optimize("hr")
        assert s.count("hr") == 2
    finally:
        s.close()
    config = json.loads((tmp_path / "data" / "qdrant" / "hr" / "edge_config.json").read_text())
    assert config["hnsw_config"] == {
        "m": 16,
        "ef_construct": 100,
        "full_scan_threshold": 10_000,
        "max_indexing_threads": setting or 6,
        "payload_m": 0,
    }
