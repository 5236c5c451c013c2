"""bench_retrieval's Part B: HNSW recall@10 of the dense search against exact search on real embeddings (cached
in benchmarks/data/cache/), at several hnsw_ef values."""

from __future__ import annotations

import hashlib
import time
import uuid

from _common import DATA, Timer, percentile, rm, table, temp_dir
from retrieval_corpus import DOC_CHUNKS, NS, load_store, real_corpus


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
