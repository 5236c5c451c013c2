"""Which FAQ questions are slow in the BM25 search at scale, and would dropping their near-zero-IDF terms pay?

    .venv/bin/python benchmarks/bench_bm25_terms.py --size 300000 [--keep DIR]

Writes a store as bench_retrieval_e2e.py does (random dense vectors, BM25 of 120 Zipf-drawn Python-docs words per
chunk) counting each BM25 term's document frequency on the way, builds it (optimize), then times the BM25 top-24
search alone (no filter, as EdgeStore.search sends it while nothing is staged; median of 4 after one warm-up) of
each question of benchmarks/data/python_faq/testset.jsonl against its number of posting lists (terms the store
holds) and their document frequencies; then the same questions with the terms whose df exceeds a share of the
chunks left out: time and how much of the full query's top-24 they keep. --keep DIR keeps the store (and df.json)
for another run (--reuse DIR).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DATA,
    Timer,
    header,
    load,
    percentile,
    python_doc_sources,
    quiet_libraries,
    rm,
    temp_dir,
)
from bench_retrieval_e2e import write  # noqa: E402
from retrieval_corpus import vocabulary  # noqa: E402

CUTS = (0.9, 0.75, 0.5, 0.3)  # leave out terms in more than this share of the chunks


class CountingEncoder:
    """The BM25 encoder, counting each term's document frequency as documents are encoded."""

    def __init__(self, enc):
        self.enc, self.df = enc, Counter()

    def embed_documents(self, texts):
        vs = self.enc.embed_documents(texts)
        for v in vs:
            self.df.update(v.indices)
        return vs


def build(root: Path, n: int) -> dict[int, int]:
    import numpy as np

    from assistant.embedding import Bm25SparseEncoder
    from assistant.store.edge import EdgeStore

    enc = CountingEncoder(Bm25SparseEncoder())
    store = EdgeStore(root)
    try:
        store.ensure_domain("bench", 384)
        with Timer() as t_w:
            write(store, n, np.array(vocabulary(python_doc_sources())), enc)
            store.flush()
        with Timer() as t_o:
            store.optimize("bench")
    finally:
        store.close()
    print(f"{n:,} chunks written in {t_w.s:.0f} s, built in {t_o.s:.0f} s ({load()})", flush=True)
    (root / "df.json").write_text(json.dumps({"n": n, "df": enc.df}))
    return dict(enc.df)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=300_000)
    ap.add_argument("--keep", type=Path, help="write the store here and keep it")
    ap.add_argument("--reuse", type=Path, help="a store kept by --keep")
    args = ap.parse_args()
    quiet_libraries()
    header("bench_bm25_terms: BM25 search time per question vs its terms' document frequencies")
    import qdrant_edge as qe

    from assistant.embedding import Bm25SparseEncoder, SparseVector

    if args.reuse:
        root = args.reuse
        meta = json.loads((root / "df.json").read_text())
        n, df = meta["n"], {int(k): v for k, v in meta["df"].items()}
    else:
        root = args.keep or temp_dir("bm25terms")
        root.mkdir(parents=True, exist_ok=True)
        n, df = args.size, build(root, args.size)
    enc = Bm25SparseEncoder()
    lines = (DATA / "python_faq" / "testset.jsonl").read_text().splitlines()
    questions = [json.loads(x)["question"] for x in lines if x]
    shard = qe.EdgeShard.load(str(root / "bench"))
    try:

        def req(sv):
            q = qe.Query.Nearest(qe.SparseVector(sv.indices, sv.values), using="bm25")
            return qe.QueryRequest(limit=24, query=q)

        def timed(sv) -> tuple[float, set]:
            ms, hits = [], set()
            for _ in range(5):
                t = time.perf_counter()
                hits = {h.id for h in shard.query(req(sv))}
                ms.append((time.perf_counter() - t) * 1000)
            return statistics.median(ms[1:]), hits

        rows = []
        for q in questions:
            sv = enc.embed_query(q)
            if not sv.indices:
                continue
            ms, hits = timed(sv)
            held = [df.get(i, 0) / n for i in sv.indices if df.get(i, 0)]
            rows.append({"q": q, "sv": sv, "ms": ms, "hits": hits, "lists": len(held), "dfs": held})
        all_ms = [r["ms"] for r in rows]
        print(
            f"\n{len(rows)} questions with BM25 terms, {len(df):,} terms in the store; BM25 top-24 p50 / p95 / max "
            f"{percentile(all_ms, 50):.2f} / {percentile(all_ms, 95):.2f} / {max(all_ms):.2f} ms"
        )
        groups = defaultdict(list)
        for r in rows:
            groups[r["lists"]].append(r)
        print("\n| posting lists | questions | BM25 p50 ms | max ms | sum of df / chunks, p50 |\n|---|---|---|---|---|")
        for k in sorted(groups):
            g = groups[k]
            sums = [sum(r["dfs"]) for r in g]
            ms = [r["ms"] for r in g]
            print(f"| {k} | {len(g)} | {percentile(ms, 50):.2f} | {max(ms):.2f} | {percentile(sums, 50):.2f} |")
        print("\nslowest and fastest (ms, df/chunks of each term the store holds):")
        ranked = sorted(rows, key=lambda r: -r["ms"])
        for r in ranked[:8] + ranked[-6:]:
            print(f"  {r['ms']:5.2f}  {[round(d, 3) for d in r['dfs']]}  {r['q'][:70]}")
        heads = [
            "terms left out",
            "BM25 p50 / p95 / max ms",
            "top-24 kept (mean)",
            "questions affected",
            "left with none",
        ]
        print("\n| " + " | ".join(heads) + " |")
        print("|---|---|---|---|---|")
        for cut in CUTS:
            ms, kept, affected, empty = [], [], 0, 0
            for r in rows:
                sv = r["sv"]
                keep = [(i, v) for i, v in zip(sv.indices, sv.values) if df.get(i, 0) / n <= cut]
                if len(keep) == len(sv.indices):
                    ms.append(r["ms"])
                    kept.append(1.0)
                    continue
                affected += 1
                if not keep:
                    empty += 1
                    ms.append(0.0)
                    kept.append(0.0)
                    continue
                t, hits = timed(SparseVector([i for i, _ in keep], [v for _, v in keep]))
                ms.append(t)
                kept.append(len(hits & r["hits"]) / max(1, len(r["hits"])))
            print(
                f"| df > {cut:.0%} of chunks | {percentile(ms, 50):.2f} / {percentile(ms, 95):.2f} / {max(ms):.2f} "
                f"| {statistics.mean(kept):.3f} | {affected} | {empty} |"
            )
    finally:
        shard.close()
        if not (args.keep or args.reuse):
            rm(root)
    print(f"\n({load()})")


if __name__ == "__main__":
    main()
