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


def test_ranked_lists_give_the_domain_s_idf_of_each_query_term_and_the_hits_term_weights(store):
    """What a search over several domains needs to score their BM25 hits with one IDF: the domain's IDF of each
    query term (turned back into the term's document frequency), the points it counts, each hit's term weights."""
    from assistant.store.fusion import bm25_df

    texts = ["annual leave is 27 days", "sick leave needs a note", "parking costs 12 euros"]
    store.ensure_domain("hr", EMB.dim)
    store.stage("hr", points("a.txt", "h1", texts))
    store.publish("hr", "a.txt", "h1")
    q = BM25.embed_query("annual leave days")
    lists = store.ranked_lists("hr", EMB.embed_query("annual leave days").tolist(), q, limit=3)
    assert lists.points == 3
    assert sorted(round(bm25_df(lists.idf[t], lists.points), 6) for t in q.indices) == [1, 1, 2]  # leave: 2 chunks
    for h in lists.sparse:  # each hit's BM25 score is its query terms' weights times the domain's IDF
        assert set(lists.term_weights[h.id]) <= set(q.indices)
        assert h.score == pytest.approx(sum(w * lists.idf[t] for t, w in lists.term_weights[h.id].items()), rel=1e-4)


def test_ranked_lists_term_statistics_count_the_live_chunks_after_a_document_is_replaced(store):
    """Replacing a document deletes its old chunks, which the engine's own IDF may go on counting until the shard
    is rewritten: the document frequencies recovered from a domain's IDF are those of its live chunks."""
    from assistant.store.fusion import bm25_df

    store.ensure_domain("hr", EMB.dim)
    store.stage("hr", points("a.txt", "h1", ["annual leave is 27 days", "sick leave needs a note", "leave leave"]))
    store.publish("hr", "a.txt", "h1")
    store.stage("hr", points("b.txt", "h1", ["parking leave costs 12 euros"]))
    store.publish("hr", "b.txt", "h1")
    store.stage("hr", points("a.txt", "h2", ["annual holidays are 27 days", "sick days need a note"]))
    store.publish("hr", "a.txt", "h2")  # 3 chunks with "leave" deleted, 2 chunks without it added
    if isinstance(store, EdgeStore):  # the embedded engine's IDF can leave out the chunks of an unfinished ingest
        store.stage("hr", points("c.txt", "h1", ["parking leave parking leave"]))
    q = BM25.embed_query("leave parking")
    lists = store.ranked_lists("hr", EMB.embed_query("leave parking").tolist(), q, limit=5)
    assert lists.points == 3
    assert [round(bm25_df(lists.idf[t], lists.points), 6) for t in q.indices] == [1, 1]


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


def test_a_new_embedded_domain_keeps_int8_copies_of_its_dense_vectors(tmp_path):
    """New domains get Qdrant's int8 scalar quantization held in RAM (the graph walks it, the float vectors
    rescore); a domain created before keeps the config it was created with when it is opened again."""
    import json

    s = EdgeStore(tmp_path / "q")
    s.ensure_domain("hr", EMB.dim)
    s.close()
    config = json.loads((tmp_path / "q" / "hr" / "edge_config.json").read_text())
    assert config["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}

    old = json.loads((tmp_path / "q" / "hr" / "edge_config.json").read_text())
    del old["quantization_config"]
    (tmp_path / "q" / "hr" / "edge_config.json").write_text(json.dumps(old))
    s = EdgeStore(tmp_path / "q")
    s.ensure_domain("hr", EMB.dim)  # an existing domain: opened, not re-created
    s.stage("hr", points("a.txt", "h1", ["annual leave is 27 days"]))
    s.publish("hr", "a.txt", "h1")
    assert search(s, "annual leave").hits[0].text == "annual leave is 27 days"
    s.close()
    assert "quantization_config" not in json.loads((tmp_path / "q" / "hr" / "edge_config.json").read_text())


def test_a_new_server_collection_asks_for_int8_copies_of_its_dense_vectors():
    """A Qdrant server collection is created with the same int8 scalar quantization (in RAM)."""
    from qdrant_client import QdrantClient, models

    client, calls = QdrantClient(":memory:"), []
    create = client.create_collection
    client.create_collection = lambda *a, **kw: (calls.append(kw), create(*a, **kw))[1]
    QdrantClientStore(client).ensure_domain("hr", EMB.dim)
    q = calls[0]["quantization_config"].scalar
    assert (q.type, q.quantile, q.always_ram) == (models.ScalarType.INT8, 0.99, True)


FUSION_TEXTS = [  # lengths differ, so BM25 scores do not tie
    f"{a} leave {b} policy " + " ".join(f"filler{j}" for j in range(i))
    for i, (a, b) in enumerate(
        [(a, b) for a in ("annual", "sick", "parental", "unpaid", "study") for b in ("pay", "notice", "days", "form")]
    )
]


def fusion_domain(store):
    """FUSION_TEXTS with random dense vectors (no equal cosines, whose order neither engine fixes); a query's
    random dense vector."""
    import numpy as np

    rng = np.random.default_rng(7)
    store.ensure_domain("hr", EMB.dim)
    pts = points("a.txt", "h1", FUSION_TEXTS)
    for p in pts:
        p.dense = rng.standard_normal(EMB.dim).tolist()
    store.stage("hr", pts)
    store.publish("hr", "a.txt", "h1")
    return rng.standard_normal(EMB.dim).tolist(), pts


def qdrant_rrf(store, dense, sparse, *, limit, prefetch, rrf_k):
    """Qdrant's own fusion of the same two candidate lists: [(score, id)]."""
    if isinstance(store, EdgeStore):
        qe = store._qe
        live = store._filter(store._match("state", "live"))
        sparse_q = qe.Query.Nearest(qe.SparseVector(sparse.indices, sparse.values), using="bm25")
        pf = [
            qe.Prefetch(limit=prefetch, query=qe.Query.Nearest(dense, using="dense"), filter=live),
            qe.Prefetch(limit=prefetch, query=sparse_q, filter=live),
        ]
        hits = store._open("hr").query(qe.QueryRequest(limit=limit, prefetches=pf, query=qe.Fusion.Rrf(k=rrf_k)))
    else:
        m = store.m
        live = m.Filter(must=[store._match("state", "live")])
        sv = m.SparseVector(indices=sparse.indices, values=sparse.values)
        pf = [
            m.Prefetch(query=dense, using="dense", limit=prefetch, filter=live),
            m.Prefetch(query=sv, using="bm25", limit=prefetch, filter=live),
        ]
        rrf = m.RrfQuery(rrf=m.Rrf(k=rrf_k))
        hits = store.client.query_points("lorag_hr", prefetch=pf, query=rrf, limit=limit).points
    return [(round(float(h.score), 6), str(h.id)) for h in hits]


@pytest.mark.parametrize("q", ["annual leave pay", "sick notice days policy", "parental form"])
def test_search_fuses_the_dense_and_bm25_candidates_as_qdrant_does(store, q):
    """The hits are Qdrant's RRF of the domain's dense and BM25 candidates: the same points with the same
    scores, the best `limit` of them, with their payloads."""
    dense, _ = fusion_domain(store)
    sparse = BM25.embed_query(q)
    ref = qdrant_rrf(store, dense, sparse, limit=40, prefetch=6, rrf_k=60)
    every = store.search("hr", dense, sparse, limit=40, prefetch=6, rrf_k=60).hits
    assert len(ref) > 6  # the two lists differ
    assert sorted((round(h.score, 6), h.id) for h in every) == sorted(ref)
    top = store.search("hr", dense, sparse, limit=4, prefetch=6, rrf_k=60).hits
    assert [round(h.score, 6) for h in top] == sorted((s for s, _ in ref), reverse=True)[:4]
    assert {(round(h.score, 6), h.id) for h in top} <= set(ref)
    assert all(h.text in FUSION_TEXTS and h.payload["doc_id"] == "a.txt" for h in top)
    lists = store.ranked_lists("hr", dense, sparse, limit=6)  # the same candidates: their cosines and BM25 members
    cos, lexical = {h.id: h.score for h in lists.dense}, {h.id for h in lists.sparse}
    assert {h.id for h in every} == cos.keys() | lexical
    for h in every:
        assert (h.dense is None) if h.id not in cos else h.dense == pytest.approx(cos[h.id], abs=1e-5)
        assert h.lexical == (h.id in lexical)


class _Recorder:
    """A shard or client that records the searches and payload reads it is asked for."""

    def __init__(self, inner):
        self.inner, self.searches, self.reads = inner, [], []

    def query_batch(self, request):  # qdrant-edge
        self.searches.extend(repr(q) for q in request.queries)
        return self.inner.query_batch(request)

    def query_batch_points(self, name, requests, **kw):  # qdrant-client
        self.searches.extend(repr(r) for r in requests)
        return self.inner.query_batch_points(name, requests, **kw)

    def retrieve(self, *args, **kw):
        ids = args[1] if isinstance(args[0], str) else args[0]  # qdrant-client's first argument: the collection
        self.reads.append([str(i) for i in ids])
        return self.inner.retrieve(*args, **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_search_walks_the_dense_index_once_and_reads_the_payloads_of_the_hits_only(store):
    """One dense search per question gives both the dense candidates and the best cosine (which gates "no
    relevant passage"); the candidate searches carry no payloads, which are read for the fused hits only."""
    import numpy as np

    dense, pts = fusion_domain(store)
    if isinstance(store, EdgeStore):
        rec = store._shards["hr"] = _Recorder(store._open("hr"))
        dense_marker, no_payload = 'using="dense"', "with_payload=False"
    else:
        rec = store.client = _Recorder(store.client)
        dense_marker, no_payload = "using='dense'", "with_payload=False"
    r = store.search("hr", dense, BM25.embed_query("sick leave notice"), limit=3, prefetch=6, rrf_k=60)
    assert sum(s.count(dense_marker) for s in rec.searches) == 1
    assert all(no_payload in s for s in rec.searches)
    assert rec.reads == [[h.id for h in r.hits]]
    v = np.asarray(dense) / np.linalg.norm(dense)
    cos = max(float(np.dot(v, p.dense) / np.linalg.norm(p.dense)) for p in pts)
    assert r.best_dense == pytest.approx(cos, abs=1e-5)


def test_embedded_search_filters_on_live_only_while_the_domain_may_hold_staged_chunks(tmp_path):
    """Without staged chunks a search needs no `state == live` filter (it costs a check per visited point): the
    embedded store, the shard's only writer, knows when chunks are staged and filters while they may exist."""
    s = EdgeStore(tmp_path / "q")
    s.ensure_domain("hr", EMB.dim)
    rec = s._shards["hr"] = _Recorder(s._open("hr"))

    def filtered():
        rec.searches.clear()
        search(s, "annual leave")
        return all('key="state"' in r for r in rec.searches)

    s.stage("hr", points("a.txt", "h1", ["annual leave is 27 days"]))
    assert filtered() and search(s, "annual leave").hits == []
    s.publish("hr", "a.txt", "h1")
    assert not filtered()
    assert [h.text for h in search(s, "annual leave").hits] == ["annual leave is 27 days"]
    s.stage("hr", points("b.txt", "h2", ["annual leave for part-time staff"]))
    assert filtered()
    assert s.purge_staged("hr") == 1
    assert not filtered()
    s.close()


def test_embedded_search_never_returns_staged_chunks(tmp_path):
    """Staged chunks stay hidden: leftovers of an interrupted ingest when the domain is opened again, and a
    chunk staged while an unfiltered search runs (its hits are checked, and the search filtered instead)."""
    s = EdgeStore(tmp_path / "q")
    s.ensure_domain("hr", EMB.dim)
    s.stage("hr", points("a.txt", "h1", ["annual leave is 27 days"]))
    s.publish("hr", "a.txt", "h1")
    s.stage("hr", points("b.txt", "h2", ["annual leave annual leave"]))  # never published
    s.close()
    s = EdgeStore(tmp_path / "q")
    assert [h.text for h in search(s, "annual leave").hits] == ["annual leave is 27 days"]
    assert [
        h.text
        for h in s.ranked_lists("hr", EMB.embed_query("leave").tolist(), BM25.embed_query("leave"), limit=3).dense
    ] == ["annual leave is 27 days"]
    s._staged["hr"] = False  # as if another thread staged b.txt after the search decided not to filter
    assert [h.text for h in search(s, "annual leave").hits] == ["annual leave is 27 days"]
    lists = s.ranked_lists("hr", EMB.embed_query("leave").tolist(), BM25.embed_query("leave"), limit=3)
    assert [h.text for h in lists.dense + lists.sparse] == ["annual leave is 27 days"] * 2
    s.close()


def test_has_live_follows_publish_and_removal(store):
    """A domain's live-chunk check answers from what this process last saw until it deletes points: removing
    the only document empties the domain, publishing one fills it again."""
    store.ensure_domain("hr", EMB.dim)
    assert not store.has_live("hr")
    store.stage("hr", points("a.txt", "h1", ["annual leave is 27 days"]))
    assert not store.has_live("hr")  # staged only
    store.publish("hr", "a.txt", "h1")
    assert store.has_live("hr") and store.has_live("hr")
    store.remove_doc("hr", "a.txt")
    assert not store.has_live("hr")
    store.stage("hr", points("b.txt", "h1", ["sick leave needs a note"]))
    store.publish("hr", "b.txt", "h1")
    assert store.has_live("hr")
    store.stage("hr", points("b.txt", "h2", ["sick leave needs a note from day 3"]))
    store.publish("hr", "b.txt", "h2")  # a new version replaces the old one
    assert store.has_live("hr")
    store.remove_doc("hr", "b.txt")
    assert not store.has_live("hr")


def test_fusion_orders_equal_scores_by_the_ids_text():
    """Equal fused scores (a point at the same rank in both lists, or at swapped ranks) are ordered by the id's
    text, for UUID ids as for string ids."""
    import random

    from assistant.store.fusion import rrf

    rng = random.Random(3)
    ids = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(30)]
    ranked = [ids, ids[::-1]]  # every point: 1/(k+i) + 1/(k+29-i), equal for i and 29-i
    for pids in (ranked, [[str(i) for i in ids] for ids in ranked]):
        fused = rrf(pids, 60, 30)
        want = sorted(fused, key=lambda x: (-round(x[1], 12), str(x[0])))
        assert [str(p) for p, _ in fused] == [str(p) for p, _ in want]
        assert len({round(s, 12) for _, s in fused}) == 15  # pairs of equal scores
