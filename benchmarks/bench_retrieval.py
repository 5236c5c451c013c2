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
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
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
from retrieval_corpus import load_store, make_points, make_queries, vocabulary  # noqa: E402
from retrieval_recall import recall_part  # noqa: E402

TARGET_P95_MS = 50.0
CLIENT_QUERIES = 30  # local mode is brute force in Python: ~0.4 s/query at 2k, seconds at 10k


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
