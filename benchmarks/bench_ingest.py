"""Ingest throughput: `lorag ingest` (Ingestor.run into a fresh EdgeStore) vs raw SentenceTransformer.encode.

    .venv/bin/python benchmarks/bench_ingest.py [--quick] [--files N] [--runs R]

Corpus: the Python 3.11 docs reStructuredText sources (Debian package python3.11-doc, fetched
with `apt-get download` into benchmarks/data/, gitignored), the first N files of
`_sources/library/*.rst.txt` in sorted order (N=30 full, 6 with --quick); samples/corpus if the
package cannot be had.

Both paths use the same loaded embedder (components.dense.model), the same chunk texts (the
pipeline's own _prepare -> Chunk.embed_text), the same batch size (ingest.embed_batch_size) and
normalize_embeddings=True. Both are warmed up first, then run alternately R times (default 2);
the best run of each is reported. Ratio = pipeline chunks/s / raw chunks/s, target >= 0.8.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    Timer,
    doc_package_version,
    header,
    python_doc_sources,
    quiet_libraries,
    rm,
    sample_corpus_files,
    table,
    temp_dir,
    verdict,
)

TARGET = 0.8


class Timed:
    """Thin delegating wrapper that adds up the wall time of chosen methods (a few calls per batch)."""

    def __init__(self, inner, methods, totals, prefix):
        self._inner, self._methods, self._totals, self._prefix = inner, set(methods), totals, prefix

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name not in self._methods or not callable(attr):
            return attr
        key = f"{self._prefix}.{name}"

        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return attr(*a, **kw)
            finally:
                self._totals[key] = self._totals.get(key, 0.0) + time.perf_counter() - t0

        return timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer files (under 2 minutes)")
    ap.add_argument("--files", type=int, default=None, help="how many library/ files (default 30, quick 6)")
    ap.add_argument("--runs", type=int, default=2, help="measured runs of each path (best is reported)")
    args = ap.parse_args()
    n_files = args.files or (6 if args.quick else 30)
    quiet_libraries()
    header("bench_ingest: lorag ingest vs raw SentenceTransformer.encode")

    src = python_doc_sources()
    if src is not None:
        files = sorted((src / "library").glob("*.txt"))[:n_files]
        corpus = (
            f"{doc_package_version()}: _sources/library/*.rst.txt, sorted, first {len(files)} "
            f"({files[0].name} .. {files[-1].name})"
        )
    else:
        files = sample_corpus_files()
        corpus = f"samples/corpus (fallback: python3.11-doc not available), {len(files)} files"

    from assistant.settings import load_settings
    from assistant.store.edge import EdgeStore
    from ingest.pipeline import Ingestor
    from ui.components import Components

    settings = load_settings()
    comps = Components(settings)
    with Timer() as t_load:
        dense = comps.dense  # the embedder the CLI builds: SentenceTransformerEmbedder over SentenceTransformer
        sparse = comps.sparse
    model = dense.model
    bs = settings.ingest.embed_batch_size

    # The exact texts the pipeline embeds: its own _prepare (load + chunk) and Chunk.embed_text.
    probe_root = temp_dir("probe")
    probe = Ingestor(EdgeStore(probe_root), dense, sparse, settings.ingest)
    pending = [probe._prepare(f.resolve(), f.name, {}) for f in files]
    rm(probe_root)
    texts = [c.embed_text for p in pending if hasattr(p, "chunks") for c in p.chunks]
    n_tok = sum(min(dense.token_length(t) + 2, model.max_seq_length) for t in texts)
    print(f"corpus  : {corpus}")
    print(
        f"chunks  : {len(texts)} (chunk_tokens={settings.ingest.chunk_tokens}, "
        f"overlap={settings.ingest.chunk_overlap}), "
        f"~{n_tok / len(texts):.0f} model tokens/chunk; embed batch {bs}; model {dense.name} loaded in {t_load.s:.1f}s "
        f"on {model.device}"
    )
    print()

    def run_pipeline(paths, totals=None):
        root = temp_dir("ingest")
        store = EdgeStore(root, hnsw_ef=settings.qdrant.hnsw_ef)
        d, s, st = dense, sparse, store
        if totals is not None:
            d = Timed(dense, ["embed_documents"], totals, "dense")
            s = Timed(sparse, ["embed_documents"], totals, "sparse")
            st = Timed(
                store,
                ["stage", "publish", "flush", "optimize", "purge_staged", "list_docs", "ensure_domain"],
                totals,
                "store",
            )
        try:
            with Timer() as t:
                report = Ingestor(st, d, s, settings.ingest).run(paths, "bench")
            return t.s, report.chunks_written, report
        finally:
            store.close()
            rm(root)

    def run_raw():
        with Timer() as t:
            emb = model.encode(texts, batch_size=bs, normalize_embeddings=True, convert_to_numpy=True)
        return t.s, len(emb)

    # Warm-up: both paths once on a small slice (model already loaded, shared by both).
    run_pipeline(files[:2])
    model.encode(texts[: 2 * bs], batch_size=bs, normalize_embeddings=True)

    pipe_runs, raw_runs, breakdowns = [], [], []
    for i in range(args.runs):
        totals: dict[str, float] = {}
        s, n, report = run_pipeline(files, totals)
        if n != len(texts) or not report.ok:
            failed = [r for r in report.results if r.status == "failed"]
            print(f"WARNING: pipeline wrote {n} chunks, expected {len(texts)}; failed files: {failed[:3]}")
        pipe_runs.append(s)
        breakdowns.append((s, totals))
        r, m = run_raw()
        raw_runs.append(r)
        print(
            f"run {i + 1}: pipeline {s:.2f}s ({n / s:.2f} chunks/s) | raw encode {r:.2f}s ({m / r:.2f} chunks/s)",
            flush=True,
        )

    best_p, best_r = min(pipe_runs), min(raw_runs)
    n = len(texts)
    ratio = (n / best_p) / (n / best_r)
    print()
    print(
        table(
            ["path", "chunks", "best s", "chunks/s", "all runs s"],
            [
                ["lorag Ingestor.run -> EdgeStore", n, best_p, n / best_p, ", ".join(f"{x:.2f}" for x in pipe_runs)],
                ["raw SentenceTransformer.encode", n, best_r, n / best_r, ", ".join(f"{x:.2f}" for x in raw_runs)],
            ],
        )
    )
    print()
    # Where the pipeline's time went, in its best run.
    s, totals = min(breakdowns, key=lambda x: x[0])
    parts = sorted(totals.items(), key=lambda kv: -kv[1])
    other = s - sum(totals.values())
    rows = [[k, v, f"{100 * v / s:.1f}%"] for k, v in parts] + [
        ["other (discover, hash, load, chunk, payloads)", other, f"{100 * other / s:.1f}%"]
    ]
    print("pipeline breakdown (best run):")
    print(table(["step", "s", "share"], rows))
    print()
    print(f"RATIO ingest/raw = {ratio:.3f}  (target >= {TARGET}: {verdict(ratio >= TARGET)})")
    emb_s = totals.get("dense.embed_documents", 0.0)
    if emb_s:
        print(
            f"      pipeline dense-embed alone vs raw encode = {best_r / emb_s:.3f} "
            f"(embedding {n / emb_s:.2f} chunks/s inside the pipeline)"
        )


if __name__ == "__main__":
    main()
