"""Large files: ingest time and peak memory per file, and whether a batch holding them finishes.

    .venv/bin/python -m benchmarks.bench_ingest_large [--quick] [--rows N] [--pages N] [--max-rows N] [--code DIR]

Generates into benchmarks/data/large/ (gitignored) a CSV of N rows (200,000; --quick 2,000), a PDF
of P pages (500; --quick 20; reportlab, ~30 lines of text a page) and a small markdown file. Each
case runs `Ingestor.run` with the real embedder (built by ui.components, as the CLI does) into a
fresh EdgeStore, in a child process of its own so that each peak is its own: the peak RSS from
resource.getrusage(RUSAGE_SELF).ru_maxrss, next to the RSS once the model is loaded and warmed up;
their difference is what the ingest itself added at its peak. Cases: the CSV alone, the PDF alone,
and the three files in one folder (the batch of the report: does the small file get in, and when).
--embedder hashing swaps in a model-free fake of the same width, to measure the pipeline's own
memory on files far too large to embed for real on a CPU; --tracemalloc adds the peak of Python's
own heap during the ingest (the store's Rust engine and torch allocate outside it).

--max-rows sets ingest.max_rows (default: the setting, 100,000, so a 200,000-row CSV is skipped as
over the limit). --code DIR runs the children on another checkout's code, e.g. the code before
the limits and bounded batches, for a baseline (settings it does not know are left out).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import DATA, REPO, load, machine, now, table

WORDS = (
    "invoice order shipment customer warehouse delivery payment refund contract supplier account "
    "balance quarter region service ticket priority status pending approved rejected review audit "
    "policy budget forecast inventory transfer credit debit report summary"
).split()


def make_csv(path: Path, rows: int) -> None:
    rng = random.Random(0)
    cities = ["Lyon", "Porto", "Gdansk", "Leeds", "Graz", "Turin", "Ghent", "Brno"]
    with path.open("w", encoding="utf-8") as f:
        f.write("id,date,customer,city,product,quantity,amount,note\n")
        for i in range(rows):
            note = " ".join(rng.choices(WORDS, k=6))
            day = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            f.write(
                f"{i},{day},C{rng.randint(1, 9999):04d},{rng.choice(cities)},P-{rng.randint(1, 500)},"
                f"{rng.randint(1, 40)},{rng.uniform(5, 900):.2f},{note}\n"
            )


def make_pdf(path: Path, pages: int) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    rng = random.Random(1)
    c = canvas.Canvas(str(path), pagesize=A4)
    for n in range(pages):
        c.drawString(50, 800, f"Section {n + 1}: quarterly operations report")
        for line in range(30):
            c.drawString(50, 770 - 24 * line, " ".join(rng.choices(WORDS, k=12)).capitalize() + ".")
        c.showPage()
    c.save()


def files_for(rows: int, pages: int) -> dict[str, Path]:
    folder = DATA / "large"
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, pdf_path, md_path = folder / f"rows-{rows}.csv", folder / f"pages-{pages}.pdf", folder / "small.md"
    if not csv_path.exists():
        make_csv(csv_path, rows)
    if not pdf_path.exists():
        make_pdf(pdf_path, pages)
    md_path.write_text("# Leave policy\n\nFull-time staff receive 27 days of annual leave each year.\n")
    return {"csv": csv_path, "pdf": pdf_path, "md": md_path}


# -- child: one case in a fresh process -------------------------------------------------------------
def child(spec: dict) -> None:
    import resource

    import ingest.pipeline
    from assistant.settings import load_settings
    from assistant.settings_pipeline import IngestSettings
    from assistant.store.edge import EdgeStore
    from ingest.pipeline import Ingestor
    from ui.components import Components

    print(f"  code: {ingest.pipeline.__file__}", file=sys.stderr, flush=True)

    settings = load_settings()
    extra = {k: v for k, v in spec["ingest"].items() if k in IngestSettings.model_fields}
    ingest_settings = settings.ingest.model_copy(update=extra)
    if spec.get("embedder") == "hashing":  # the pipeline's own memory at scale, without a model's forward passes
        from assistant.embedding import Bm25SparseEncoder
        from tests.fakes import HashingEmbedder

        dense, sparse = HashingEmbedder(dim=384, name="hashing-384"), Bm25SparseEncoder()
    else:
        comps = Components(settings)
        dense, sparse = comps.dense, comps.sparse
    dense.embed_documents(["warm-up text"] * 64)
    loaded_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    done_at: dict[str, float] = {}
    if spec.get("tracemalloc"):
        import tracemalloc

        tracemalloc.start()
    t0 = time.perf_counter()

    def progress(name: str, done: int, total: int, status: str) -> None:
        if name:
            done_at[name] = time.perf_counter() - t0
            print(f"  [{done}/{total}] {name} {status} at {done_at[name]:.1f}s", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="lorag-bench-large-") as root:
        store = EdgeStore(Path(root))
        ingestor = Ingestor(store, dense, sparse, ingest_settings)
        report = ingestor.run([Path(p) for p in spec["paths"]], "large", progress=progress)
        seconds = time.perf_counter() - t0
        heap_mb = tracemalloc.get_traced_memory()[1] / 2**20 if spec.get("tracemalloc") else None
        store.close()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "loaded_kb": loaded_kb,
                "chunks": report.chunks_written,
                "done_at": done_at,
                "heap_mb": heap_mb,
                "results": [
                    {k: getattr(r, k) for k in ("display", "status", "reason", "chunks")} for r in report.results
                ],
            }
        )
    )


def run_case(name: str, paths: list[Path], ingest: dict, code: Path, embedder: str, trace: bool) -> dict:
    # Run as a script (not -m): the current folder is then not first on sys.path, so `code` wins.
    env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{REPO}", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("HF_HUB_OFFLINE", "1")
    spec = json.dumps({"paths": [str(p) for p in paths], "ingest": ingest, "embedder": embedder, "tracemalloc": trace})
    print(f"case {name}: {', '.join(p.name for p in paths)}", flush=True)
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, "--child", spec]
    out = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        return {"name": name, "error": f"exit {out.returncode} after {time.perf_counter() - t0:.0f}s"}
    return {"name": name, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2,000 rows and 20 pages (a few minutes on 2 busy cores)")
    ap.add_argument("--rows", type=int, help="CSV rows (default 200,000; quick 2,000)")
    ap.add_argument("--pages", type=int, help="PDF pages (default 500; quick 20)")
    ap.add_argument("--max-rows", type=int, help="ingest.max_rows for the runs (default: the setting)")
    ap.add_argument("--code", type=Path, default=REPO, help="checkout whose code the children run (default: this one)")
    ap.add_argument("--cases", default="csv,pdf,batch", help="comma-separated: csv, pdf, batch")
    ap.add_argument(
        "--embedder",
        choices=["real", "hashing"],
        default="real",
        help="hashing: a model-free 384-d fake (words as tokens): the pipeline's own memory at scale",
    )
    ap.add_argument("--tracemalloc", action="store_true", help="also the peak of Python's own heap (slower)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(json.loads(args.child))
    rows = args.rows or (2_000 if args.quick else 200_000)
    pages = args.pages or (20 if args.quick else 500)
    print("# bench_ingest_large: time and peak memory of large files, and the batch holding them")
    print(f"command : python -m benchmarks.bench_ingest_large {' '.join(sys.argv[1:])}")
    print(f"date    : {now()}\nmachine : {machine()}\nload    : {load()} (other jobs share these cores)")
    print(f"code    : {args.code.resolve()}")
    t0 = time.perf_counter()
    f = files_for(rows, pages)
    size = {k: f"{p.stat().st_size / 2**20:.1f} MB" for k, p in f.items()}
    print(
        f"files   : {f['csv'].name} ({size['csv']}), {f['pdf'].name} ({size['pdf']}), {f['md'].name}; "
        f"made or reused in {time.perf_counter() - t0:.1f}s"
    )
    ingest = {"max_rows": args.max_rows} if args.max_rows else {}
    print(f"ingest  : {ingest or 'settings as loaded'}; embedder: {args.embedder}\n", flush=True)
    cases = {"csv": [f["csv"]], "pdf": [f["pdf"]], "batch": [f["csv"], f["pdf"], f["md"]]}
    results = [run_case(n, cases[n], ingest, args.code, args.embedder, args.tracemalloc) for n in args.cases.split(",")]
    rows_out = []
    for r in results:
        if "error" in r:
            rows_out.append([r["name"], r["error"], "", "", "", "", "", "", ""])
            continue
        outcome = "; ".join(
            f"{x['display']} {x['status']}" + (f": {x['reason']}" if x["reason"] else "") for x in r["results"]
        )
        mb = lambda kb: kb / 1024  # noqa: E731  (ru_maxrss is in KiB on Linux)
        small = r["done_at"].get("small.md")
        rows_out.append(
            [
                r["name"],
                outcome,
                r["chunks"],
                r["seconds"],
                r["chunks"] / r["seconds"] if r["chunks"] else 0.0,
                mb(r["peak_kb"]),
                mb(r["loaded_kb"]),
                mb(r["peak_kb"] - r["loaded_kb"]),
                "-" if r.get("heap_mb") is None else r["heap_mb"],
            ]
        )
        if small is not None:
            print(f"batch: small.md done at {small:.1f}s of {r['seconds']:.1f}s")
    print()
    print(
        table(
            [
                "case",
                "result per file",
                "chunks",
                "seconds",
                "chunks/s",
                "peak RSS MB",
                "loaded RSS MB",
                "ingest peak MB",
                "Python heap peak MB",
            ],
            rows_out,
        )
    )
    print(f"\nload at end: {load()}")


if __name__ == "__main__":
    main()
