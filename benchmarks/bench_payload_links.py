"""Qdrant's per-payload-value HNSW graphs on or off, side by side: the same N chunks (as bench_retrieval_e2e.py
writes them) into two embedded stores, one built with payload_m 0 (what a new lorag domain gets) and one with
Qdrant's default (payload_m = m: an extra graph for every indexed payload value over a few thousand points,
here each chunk_index value), then the HNSW build time and Retriever.retrieve p50/p95 on each.

    .venv/bin/python benchmarks/bench_payload_links.py --size 100000 --queries 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    header,
    load,
    percentile,
    quiet_libraries,
    rm,
    table,
    temp_dir,
)
from bench_retrieval_e2e import query_side, timed_retrieve, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--backend", default="onnx-fp32", help="models.embedder_backend for the query embedding")
    args = ap.parse_args()
    quiet_libraries()
    header("bench_payload_links: HNSW with and without per-payload-value graphs")
    import qdrant_edge as qe

    from assistant.index_record import record_for
    from assistant.retrieval import Retriever
    from assistant.store.edge import EdgeStore

    settings, dense, sparse_enc, vocab_arr, qs = query_side(args.backend, args.queries)
    real_config = qe.HnswIndexConfig
    rows = []
    try:
        for label, payload_m in [("payload_m 0 (lorag)", 0), ("Qdrant's default (payload_m = m)", None)]:

            def config(*, arm_payload_m=payload_m, **kw):  # the store's config, this arm's payload_m (None: Qdrant's)
                kw.pop("payload_m", None)
                return real_config(**kw) if arm_payload_m is None else real_config(payload_m=arm_payload_m, **kw)

            qe.HnswIndexConfig = config
            root = temp_dir(f"links{payload_m}")
            store = EdgeStore(root, hnsw_ef=settings.qdrant.hnsw_ef)
            try:
                store.ensure_domain("bench", 384)
                store.set_embedder_record("bench", record_for(dense))
                t = time.perf_counter()
                write(store, args.size, vocab_arr, sparse_enc)
                store.flush()
                t_write = time.perf_counter() - t
                t = time.perf_counter()
                store.optimize("bench")
                t_build = time.perf_counter() - t
                retriever = Retriever(store, dense, sparse_enc, settings.retrieval)
                ms, _, search_ms = timed_retrieve(retriever, qs)
            finally:
                store.close()
                rm(root)
            rows.append(
                [
                    label,
                    t_write,
                    t_build,
                    percentile(ms, 50),
                    percentile(ms, 95),
                    percentile(search_ms, 50),
                    percentile(search_ms, 95),
                ]
            )
            print(f"{args.size:,} {label}: build {t_build:.0f} s ({load()})", flush=True)
    finally:
        qe.HnswIndexConfig = real_config
    print(
        table(
            ["HNSW", "write s", "build s", "retrieve p50 ms", "retrieve p95 ms", "search p50 ms", "search p95 ms"],
            rows,
        )
    )
    if rows[1][2] >= 1:  # below the indexing threshold no graph is built
        print(f"build time, payload_m 0 ÷ default: {rows[0][2] / rows[1][2]:.2f}")


if __name__ == "__main__":
    main()
