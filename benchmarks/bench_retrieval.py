"""Hybrid search latency on the embedded store, vs qdrant-client local mode; HNSW recall on real embeddings.

    .venv/bin/python benchmarks/bench_retrieval.py [--quick] [--queries Q]

Part A (scale): EdgeStore at 10k and 100k chunks (quick: 2k and 10k). Dense vectors: random
unit 384-d. Sparse: assistant.embedding.Bm25SparseEncoder over 120-word texts drawn Zipf-like
(p ~ 1/rank) from a vocabulary of the 4,000 most frequent words of the Python docs. Payload as the
pipeline writes (doc_id, display, content_hash, chunk_index, n_chunks, text, section, page,
format, title, domain, ingested_at), written through the product path: EdgeStore.stage + publish
per 50-chunk document (state "live"). Reported: upsert (stage+publish), flush, optimize() (HNSW
build), and EdgeStore.search latency (dense + BM25 prefetch 24 each, RRF k=60, limit 4, plus the
best-dense probe, all in one query_batch), p50/p95 over Q queries after 20 warm-up queries.
Queries: dense = a stored vector plus noise (cosine ~0.9), sparse = 6 Zipf-drawn words.
Also timed: resolve_domains(store, None), which Retriever.retrieve runs before every search.
Side by side: QdrantClientStore(QdrantClient(path=tmp)) (qdrant-client local mode, brute force) at
the small size only, same points and write path, the first 30 of the same queries (+3 warm-up);
its folder is on tmpfs (/dev/shm) because on disk local mode fsyncs once per point (~18 ms/point
here). Ratio = client p50 / edge p50.

Part B (recall): ~8,000 real chunks (prose paragraphs of 12-60 words from the Python docs
_sources, all folders except tutorial/howto/faq, every k-th in sorted order) embedded with the
real embedder into an EdgeStore (above the default indexing threshold, so HNSW is really built
and used), optimize(); 100 held-out query sentences from tutorial/howto/faq embedded with
embed_query. recall@10 of the dense HNSW search as the product runs it (filter state=live,
EdgeStore.search_params: a new domain's int8 vectors, rescored on the float ones) vs an exact search on the
float vectors, at hnsw_ef 16, 32, 64 and the configured value (128), and at the configured value on the float
vectors only (the same graph, quantization ignored). The embeddings are cached in benchmarks/data/cache/
(gitignored) after the first run; --quick uses the cache if present and otherwise skips Part B.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DATA,
    Timer,
    header,
    percentile,
    python_doc_sources,
    quiet_libraries,
    rm,
    table,
    temp_dir,
    verdict,
)

TARGET_P95_MS = 50.0
DOC_CHUNKS = 50
CLIENT_QUERIES = 30  # local mode is brute force in Python: ~0.4 s/query at 2k, seconds at 10k
NS = uuid.UUID("0b1e7f5c-2a6e-4c1d-9f7e-1f2d3c4b5a69")
HELD_OUT = ("tutorial", "howto", "faq")


# -- synthetic data ---------------------------------------------------------------------------
def vocabulary(src: Path | None, size: int = 4000) -> list[str]:
    if src is not None:
        c: Counter[str] = Counter()
        for f in sorted(src.rglob("*.txt")):
            c.update(w for w in re.findall(r"[a-z]{3,}", f.read_text(errors="replace").lower()))
        words = [w for w, _ in c.most_common(size)]
        if len(words) >= size // 2:
            return words
    import numpy as np

    rng = np.random.default_rng(1)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    return sorted({"".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(size)})


def zipf_words(rng, vocab_arr, n_rows: int, n_words: int):
    import numpy as np

    p = 1.0 / np.arange(1, len(vocab_arr) + 1)
    p /= p.sum()
    idx = rng.choice(len(vocab_arr), size=(n_rows, n_words), p=p)
    return [" ".join(vocab_arr[r]) for r in idx]


def unit(rng, n: int, dim: int = 384):
    import numpy as np

    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_points(n: int, vocab_arr, sparse_enc, seed: int = 0):
    """(points grouped per document, stage time of bm25 encoding) for n synthetic chunks."""
    import numpy as np

    from assistant.store.base import ChunkPoint

    rng = np.random.default_rng(seed)
    texts = zipf_words(rng, vocab_arr, n, 120)
    with Timer() as t_bm25:
        sparse = sparse_enc.embed_documents(texts)
    dense = unit(rng, n)
    docs = []
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for d, start in enumerate(range(0, n, DOC_CHUNKS)):
        doc_id, version = f"/bench/corpus/doc-{d:06d}.md", f"{d:032x}"
        pts = []
        for i in range(start, min(n, start + DOC_CHUNKS)):
            payload = {
                "doc_id": doc_id,
                "display": f"doc-{d:06d}.md",
                "content_hash": version,
                "chunk_index": i - start,
                "n_chunks": min(n, start + DOC_CHUNKS) - start,
                "text": texts[i],
                "section": f"Section {i % 7}",
                "page": None,
                "format": "md",
                "title": f"doc-{d:06d}",
                "domain": "bench",
                "ingested_at": now,
            }
            pts.append(
                ChunkPoint(str(uuid.uuid5(NS, f"{doc_id}|{version}|{i}")), dense[i].tolist(), sparse[i], payload)
            )
        docs.append((doc_id, version, pts))
    return docs, dense, t_bm25.s


def make_queries(n: int, dense, vocab_arr, sparse_enc, seed: int = 7):
    import numpy as np

    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(dense), n)
    noise = unit(rng, n) * 0.45
    q = dense[pick] + noise
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    words = zipf_words(rng, vocab_arr, n, 6)
    return [(q[i].tolist(), sparse_enc.embed_query(words[i])) for i in range(n)]


def load_store(store, docs) -> tuple[float, float]:
    with Timer() as t_up:
        for doc_id, version, pts in docs:
            store.stage("bench", pts)
            store.publish("bench", doc_id, version)
    with Timer() as t_fl:
        store.flush()
    return t_up.s, t_fl.s


def gate_costs(store, n: int = 30) -> list[float]:
    """Cost of resolve_domains (domains() + exact count) next to a one-point existence check."""
    from assistant.retrieval import resolve_domains

    shard, qe = store._open("bench"), store._qe
    live = store._filter(store._match("state", "live"))

    def exists() -> bool:
        recs, _ = shard.scroll(qe.ScrollRequest(limit=1, filter=live, with_payload=False, with_vector=False))
        return bool(recs)

    out = []
    for fn in (lambda: resolve_domains(store, None), lambda: store.count("bench"), exists):
        fn()
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1000)
        out.append(ts)
    return [percentile(out[0], 50), percentile(out[0], 95), percentile(out[1], 50), percentile(out[2], 50)]


def latency(store, queries, warmup: int = 20):
    for dq, sq in queries[:warmup]:
        store.search("bench", dq, sq, limit=4, prefetch=24, rrf_k=60)
    wall, engine = [], []
    for dq, sq in queries[warmup:]:
        t0 = time.perf_counter()
        r = store.search("bench", dq, sq, limit=4, prefetch=24, rrf_k=60)
        wall.append((time.perf_counter() - t0) * 1000)
        engine.append(r.timings_ms.get("search_ms", 0.0))
        assert len(r.hits) == 4 and r.best_dense > 0
    return wall, engine


# -- real text for recall ---------------------------------------------------------------------
def paragraphs(path: Path, lo: int, hi: int) -> list[str]:
    out = []
    for block in re.split(r"\n\s*\n", path.read_text(errors="replace")):
        t = " ".join(block.split())
        if not t or t.startswith(("..", ":", "=", "-", "*", "+", "|", ">>>")):
            continue
        n = len(t.split())
        if lo <= n <= hi and sum(c.isalpha() or c == " " for c in t) / len(t) > 0.9:
            out.append(t)
    return out


def real_corpus(src: Path, n_chunks: int, n_queries: int) -> tuple[list[str], list[str]]:
    files = sorted(src.rglob("*.txt"))
    held = [f for f in files if f.relative_to(src).parts[0] in HELD_OUT]
    idx = [f for f in files if f.relative_to(src).parts[0] not in HELD_OUT]
    paras = list(dict.fromkeys(p for f in idx for p in paragraphs(f, 12, 60)))
    step = max(1, len(paras) // n_chunks)
    chunks = paras[::step][:n_chunks]
    sents = [
        s
        for f in held
        for p in paragraphs(f, 8, 400)
        for s in re.split(r"(?<=[.?!])\s+", p)
        if 8 <= len(s.split()) <= 30
    ]
    sents = [s for s in dict.fromkeys(sents) if s not in set(chunks)]
    qstep = max(1, len(sents) // n_queries)
    return chunks, sents[::qstep][:n_queries]


def cached_embeddings(key: str, texts: list[str], embed, allow_compute: bool):
    import numpy as np

    cache = DATA / "cache"
    h = hashlib.sha256((key + "\x00" + "\x00".join(texts)).encode()).hexdigest()[:16]
    path = cache / f"emb-{h}.npy"
    if path.is_file():
        return np.load(path), True, 0.0
    if not allow_compute:
        return None, False, 0.0
    with Timer() as t:
        emb = embed(texts)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    return emb, False, t.s


def recall_part(args, src, settings, sparse_enc) -> None:
    import numpy as np
    import qdrant_edge as qe

    from assistant.store.base import ChunkPoint
    from assistant.store.edge import EdgeStore

    print("## Part B: HNSW recall@10 vs exact search on real embeddings")
    if src is None:
        print("skipped: python3.11-doc sources not available")
        return
    chunks, questions = real_corpus(src, args.recall_chunks, 100)
    comps = None

    def dense():
        nonlocal comps
        if comps is None:
            from ui.components import Components

            comps = Components(settings)
        return comps.dense

    name = settings.models.embedder
    with Timer() as t_all:
        doc_emb, hit1, s1 = cached_embeddings(
            f"doc|{name}", chunks, lambda t: dense().embed_documents(t), not args.quick
        )
        q_emb, hit2, s2 = cached_embeddings(
            f"query|{name}", questions, lambda t: np.stack([dense().embed_query(x) for x in t]), not args.quick
        )
    if doc_emb is None or q_emb is None:
        print("skipped in --quick: no cached embeddings yet (run the full benchmark once to build the cache)")
        return
    how = (
        "from cache (benchmarks/data/cache)"
        if hit1 and hit2
        else f"embedded now in {t_all.s:.0f}s ({len(chunks) / max(s1, 1e-9):.1f} chunks/s)"
    )
    print(
        f"data    : {len(chunks)} real chunks (avg {np.mean([len(c.split()) for c in chunks]):.0f} words), "
        f"{len(questions)} held-out query sentences; embedder {name}, {how}"
    )
    root = temp_dir("recall")
    store = EdgeStore(root, hnsw_ef=settings.qdrant.hnsw_ef)
    try:
        store.ensure_domain("bench", doc_emb.shape[1])
        sparse = sparse_enc.embed_documents(chunks)
        docs = []
        for d, start in enumerate(range(0, len(chunks), DOC_CHUNKS)):
            doc_id, version = f"/bench/real/doc-{d:05d}", f"{d:032x}"
            pts = [
                ChunkPoint(
                    str(uuid.uuid5(NS, f"{doc_id}|{i}")),
                    doc_emb[i].tolist(),
                    sparse[i],
                    {
                        "doc_id": doc_id,
                        "content_hash": version,
                        "chunk_index": i - start,
                        "text": chunks[i],
                        "domain": "bench",
                    },
                )
                for i in range(start, min(len(chunks), start + DOC_CHUNKS))
            ]
            docs.append((doc_id, version, pts))
        up, fl = load_store(store, docs)
        with Timer() as t_opt:
            store.optimize("bench")
        shard = store._open("bench")
        info = shard.info()
        print(
            f"store   : upsert {up:.1f}s, flush {fl:.2f}s, optimize {t_opt.s:.1f}s; segments={info.segments_count}, "
            f"points={info.points_count}, indexed_vectors={info.indexed_vectors_count}"
        )
        live = store._filter(store._match("state", "live"))

        def search(v, params, limit):
            req = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(v, using="dense"), filter=live, params=params)
            t0 = time.perf_counter()
            hits = shard.query(req)
            return [str(h.id) for h in hits], (time.perf_counter() - t0) * 1000

        qs = [q.tolist() for q in q_emb]
        exact = qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True))  # float vectors
        for v in qs[:10]:
            search(v, exact, 24)
        exact10, exact24, t_exact = [], [], []
        for v in qs:
            ids, ms = search(v, exact, 24)
            exact24.append(set(ids))
            exact10.append(set(ids[:10]))
            t_exact.append(ms)
        rows = [["exact (brute force)", 1.0, 1.0, 1.0, percentile(t_exact, 50), percentile(t_exact, 95)]]
        configured = settings.qdrant.hnsw_ef
        results = {}
        float_only = qe.SearchParams(hnsw_ef=configured, quantization=qe.QuantizationSearchParams(ignore=True))
        for ef in [*sorted({16, 32, 64, configured}), "float"]:
            r10, r24, ts = [], [], []
            for v, e10, e24 in zip(qs, exact10, exact24):
                ids, ms = search(v, float_only if ef == "float" else store.search_params(ef), 24)
                r10.append(len(set(ids[:10]) & e10) / 10)
                r24.append(len(set(ids) & e24) / 24)
                ts.append(ms)
            if ef == "float":
                rows.append(
                    [
                        f"hnsw_ef={configured}, float vectors only",
                        float(np.mean(r10)),
                        float(np.min(r10)),
                        float(np.mean(r24)),
                        percentile(ts, 50),
                        percentile(ts, 95),
                    ]
                )
                continue
            results[ef] = float(np.mean(r10))
            label = f"hnsw_ef={ef}" + (" (configured)" if ef == configured else "")
            rows.append(
                [
                    label,
                    float(np.mean(r10)),
                    float(np.min(r10)),
                    float(np.mean(r24)),
                    percentile(ts, 50),
                    percentile(ts, 95),
                ]
            )
        print(
            table(
                [
                    "dense search",
                    "recall@10 mean",
                    "recall@10 min",
                    "recall@24 mean (prefetch size)",
                    "p50 ms",
                    "p95 ms",
                ],
                rows,
            )
        )
        lower = min(results)
        print(f"recall@10 at hnsw_ef={configured}: {results[configured]:.3f}; at hnsw_ef={lower}: {results[lower]:.3f}")
    finally:
        store.close()
        rm(root)


# -- main -------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2k and 10k chunks, client at 2k, recall from cache only")
    ap.add_argument("--queries", type=int, default=None, help="timed queries per size (default 300, quick 100)")
    ap.add_argument("--recall-chunks", type=int, default=8000)
    args = ap.parse_args()
    quiet_libraries()
    header("bench_retrieval: EdgeStore hybrid search vs qdrant-client local; HNSW recall")
    import numpy as np

    from assistant.embedding import Bm25SparseEncoder
    from assistant.settings import load_settings
    from assistant.store.edge import EdgeStore
    from assistant.store.server import QdrantClientStore

    settings = load_settings()
    n_q = args.queries or (100 if args.quick else 300)
    sizes = [2_000, 10_000] if args.quick else [10_000, 100_000]
    client_size = sizes[0]
    src = python_doc_sources()
    vocab_arr = np.array(vocabulary(src))
    sparse_enc = Bm25SparseEncoder()
    print(
        f"vocabulary: {len(vocab_arr)} words ({'Python docs' if src else 'synthetic'}); "
        f"hnsw_ef={settings.qdrant.hnsw_ef}; "
        f"{n_q} timed queries per size (+20 warm-up)"
    )
    print()
    print("## Part A: hybrid search latency (EdgeStore.search) at scale")
    rows, p95, gate_rows = [], {}, []
    client_row = None
    for n in sizes:
        docs, dense, bm25_s = make_points(n, vocab_arr, sparse_enc, seed=n)
        queries = make_queries(n_q + 20, dense, vocab_arr, sparse_enc)
        root = temp_dir(f"edge{n}")
        store = EdgeStore(root, hnsw_ef=settings.qdrant.hnsw_ef)
        try:
            store.ensure_domain("bench", 384)
            up, fl = load_store(store, docs)
            with Timer() as t_opt:
                store.optimize("bench")
            assert store.count("bench") == n
            wall, engine = latency(store, queries)
            gate_rows.append([f"{n:,}", *gate_costs(store)])
        finally:
            store.close()
            rm(root)
        p95[n] = percentile(wall, 95)
        rows.append(
            [
                "EdgeStore (qdrant-edge)",
                f"{n:,}",
                bm25_s,
                up,
                fl,
                t_opt.s,
                percentile(wall, 50),
                p95[n],
                percentile(engine, 50),
                max(wall),
            ]
        )
        print(
            f"edge {n:,}: upsert {up:.1f}s, optimize {t_opt.s:.1f}s, p50 {percentile(wall, 50):.2f} ms, p95 "
            f"{p95[n]:.2f} ms",
            flush=True,
        )

        if n == client_size:
            from qdrant_client import QdrantClient

            # On a disk, local mode commits (fsync) sqlite once per point: ~18 ms/point here, 3 min for 10k.
            # tmpfs removes that cost, so the client's load time does not eat the benchmark's budget.
            shm = Path("/dev/shm")
            root = temp_dir(f"client{n}", shm if shm.is_dir() else None)
            cstore = QdrantClientStore(QdrantClient(path=str(root)), hnsw_ef=settings.qdrant.hnsw_ef)
            try:
                cstore.ensure_domain("bench", 384)
                cup, cfl = load_store(cstore, docs)
                assert cstore.count("bench") == n
                cq = queries[: 3 + CLIENT_QUERIES]
                cwall, cengine = latency(cstore, cq, warmup=3)
            finally:
                cstore.close()
                rm(root)
            client_row = [
                f"qdrant-client local (path={'tmpfs' if shm.is_dir() else 'tmp'}, {len(cwall)} queries)",
                f"{n:,}",
                bm25_s,
                cup,
                cfl,
                "n/a (brute force)",
                percentile(cwall, 50),
                percentile(cwall, 95),
                percentile(cengine, 50),
                max(cwall),
            ]
            ratio_p50 = percentile(cwall, 50) / rows[-1][6]
            ratio_p95 = percentile(cwall, 95) / p95[n]
            print(
                f"client {n:,}: upsert {cup:.1f}s, p50 {percentile(cwall, 50):.2f} ms, p95 "
                f"{percentile(cwall, 95):.2f} ms",
                flush=True,
            )
        del docs, dense, queries
    print()
    all_rows = rows[:1] + ([client_row] if client_row else []) + rows[1:]
    print(
        table(
            [
                "store",
                "chunks",
                "bm25 encode s",
                "upsert s (stage+publish)",
                "flush s",
                "optimize s",
                "search p50 ms",
                "search p95 ms",
                "engine p50 ms",
                "max ms",
            ],
            all_rows,
        )
    )
    print()
    if client_row:
        print(
            f"RATIO qdrant-client local / EdgeStore at {client_size:,}: p50 {ratio_p50:.1f}x, p95 "
            f"{ratio_p95:.1f}x slower "
            f"(EdgeStore is {ratio_p50:.1f}x faster)"
        )
    print("Per-question overhead outside EdgeStore.search: Retriever.retrieve first calls resolve_domains,")
    print("which runs an exact filtered count per domain to check that the domain is not empty:")
    print(
        table(
            ["chunks", "resolve_domains p50 ms", "p95 ms", "store.count p50 ms", "exists via scroll(limit=1) p50 ms"],
            gate_rows,
        )
    )
    print()
    big = sizes[-1]
    print(
        f"TARGET p95 < {TARGET_P95_MS:.0f} ms at {big:,}: {p95[big]:.2f} ms -> {verdict(p95[big] < TARGET_P95_MS)}"
        + ("" if big == 100_000 else " (quick size; the target is for 100,000)")
    )
    print()
    recall_part(args, src, settings, sparse_enc)


if __name__ == "__main__":
    main()
