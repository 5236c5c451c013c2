"""Embedder backends side by side: chunks/s on the same chunks, and what each backend's vectors cost in retrieval.

    .venv/bin/python benchmarks/bench_embed_backends.py [--speed-chunks 256] [--corpus 1500] \
        [--backends torch,torch-bf16,openvino-bf16,onnx-fp32,onnx,openvino]
    .venv/bin/python benchmarks/bench_embed_backends.py --cuda     # adds torch float16 on CUDA (a GPU machine)
    .venv/bin/python benchmarks/bench_embed_backends.py --dump-chunks chunks.jsonl   # the chunks, then stop
    python3 benchmarks/bench_embed_backends.py --chunks chunks.jsonl --backends torch --cuda  # no ingest deps needed

Chunks: the python_faq corpus (benchmarks/python_faq/README.md; `build.py` makes it) read and chunked by the
product's own loaders and chunker (ingest.chunk_tokens 200, overlap 30, the embedder's tokenizer). Backends:
models.embedder_backend's values (torch float32 is the reference; onnx-fp32 is the float32 ONNX export, onnx /
openvino the int8 one, openvino-bf16 the float32 one computed by OpenVINO in bfloat16: documents through a
THROUGHPUT compile fed mini-batches of 4 by an async queue, queries through a LATENCY compile); the model cache
is paths.model_cache (LORAG_PATHS__MODEL_CACHE), exports made there once.

torch-bf16: torch with its matrix products in bfloat16 (what `auto` uses for documents on a CPU with native
bfloat16 and no OpenVINO). Speed: every backend embeds the same first --speed-chunks chunks, in the product's
batches (ingest.embed_batch_size 64 on the CPU, 256 on CUDA; openvino-bf16 splits each into its mini-batches),
after a warm-up, the backends taking turns (each turn as many chunks as the largest batch); chunks/s and the ratio
to torch float32 on the CPU in the same run. Threads: all cores.
Also timed: one query's embedding (embed_query, p50/p95 over 50 FAQ questions).

Quality (real queries): the 175 FAQ questions of testset.jsonl against a corpus of every chunk of the FAQ pages plus
every k-th chunk of the rest (--corpus chunks in all), dense retrieval by cosine (exact, so the figures are the
embedder's, not HNSW's). recall@10 of a backend = overlap of its top 10 with torch float32's top 10; source@4 = the
share of questions with a chunk of the question's FAQ page in the top 4. Vectors are cached per backend in
benchmarks/data/cache/ (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, header, load, percentile, quiet_libraries, table, verdict  # noqa: E402

TARGET_SPEEDUP = 3.0
TARGET_RECALL_LOSS = 0.01
TARGET_SOURCE_POINTS = 1.0


def chunks_of_corpus(root: Path, dense) -> list[tuple[str, str]]:
    """(source file relative to the corpus, chunk text) for every chunk, in sorted file order."""
    from assistant.settings_pipeline import IngestSettings
    from ingest.chunking import split_sections
    from ingest.load_types import Limits
    from ingest.loaders import load_document

    s = IngestSettings()
    out = []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        sections = load_document(f, Limits(s.max_rows, s.max_pages))
        for c in split_sections(
            sections, chunk_tokens=s.chunk_tokens, overlap=s.chunk_overlap, token_length=dense.token_length
        ):
            out.append((f.relative_to(root).as_posix(), c.embed_text))
    return out


def int8_instructions() -> str:
    """The CPU's int8 dot-product extensions (VNNI, AMX): where there are none, int8 GEMMs gain little on fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split()
    except (OSError, IndexError):
        return "unknown"
    return ", ".join(f for f in flags if "vnni" in f or f.startswith("amx"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA / "python_faq")
    ap.add_argument("--speed-chunks", type=int, default=256)
    ap.add_argument("--corpus", type=int, default=1500)
    ap.add_argument(
        "--backends",
        default="torch,onnx-fp32,onnx,openvino",
        help="comma-separated, torch among them; also torch-bf16 (torch's matrix products in bfloat16 on the CPU) "
        "and openvino-bf16 (the float32 export computed by OpenVINO in bfloat16)",
    )
    ap.add_argument("--cuda", action="store_true", help="also torch float16 on CUDA")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--dump-chunks", type=Path, help="write the corpus's chunks (JSON lines) here and stop")
    ap.add_argument("--chunks", type=Path, help="chunks written by --dump-chunks instead of chunking the corpus")
    args = ap.parse_args()
    quiet_libraries()
    header("Embedder backends: chunks/s and retrieval quality", sys.argv[1:])
    from assistant.models.cache import ModelCache
    from assistant.models.loading import load_embedder
    from assistant.settings import Settings

    cache = ModelCache(Settings().paths.model_cache)
    spec = "all-minilm-l6-v2"
    names = [b for b in args.backends.split(",") if b]
    runs = [(b, "cpu") for b in names] + ([("torch", "cuda")] if args.cuda else [])
    t0 = time.perf_counter()
    embedders = {}
    for b, dev in runs:
        t = time.perf_counter()
        if b == "torch-bf16":  # torch with its matrix products in bfloat16 (what `auto` picks on a bfloat16 CPU)
            embedders[(b, dev)] = load_embedder(spec, cache, device=dev, backend="torch", batch_size=64, cpu_bf16=True)
        else:
            embedders[(b, dev)] = load_embedder(spec, cache, device=dev, backend=b, batch_size=64)
        print(f"loaded {b} on {dev} in {time.perf_counter() - t:.1f} s ({embedders[(b, dev)].backend})", flush=True)
    ref = embedders[("torch", "cpu")]
    if args.chunks:
        chunks = [tuple(json.loads(line)) for line in args.chunks.read_text().splitlines() if line]
    else:
        chunks = chunks_of_corpus(args.data / "corpus", ref)
    if args.dump_chunks:
        args.dump_chunks.write_text("".join(json.dumps(c) + "\n" for c in chunks))
        print(f"{len(chunks)} chunks written to {args.dump_chunks}")
        return
    from assistant.models.backends import cpu_bf16

    int8 = int8_instructions() or "none (AVX2 only)"
    print(f"CPU int8 dot-product instructions: {int8}; native bfloat16: {cpu_bf16()}")
    print(f"{len(chunks)} chunks in the corpus ({time.perf_counter() - t0:.0f} s so far); load {load()}", flush=True)

    # -- speed --------------------------------------------------------------------------------
    texts = [t for _, t in chunks[: args.speed_chunks]]
    questions = [
        json.loads(line)["question"] for line in (args.data / "testset.jsonl").read_text().splitlines() if line
    ]
    # the backends take turns batch by batch, so a drift of the machine's load reaches every backend alike
    took = {key: 0.0 for key in embedders}
    turn = max(emb.batch_size for emb in embedders.values())
    for emb in embedders.values():
        emb.embed_documents(texts[:turn])
    for i in range(0, len(texts), turn):
        for key, emb in embedders.items():
            t = time.perf_counter()
            emb.embed_documents(texts[i : i + turn])
            took[key] += time.perf_counter() - t
    speed = {}
    for key, emb in embedders.items():
        q_ms = []
        for q in questions[:50]:
            t = time.perf_counter()
            emb.embed_query(q)
            q_ms.append((time.perf_counter() - t) * 1000)
        speed[key] = (len(texts) / took[key], percentile(q_ms, 50), percentile(q_ms, 95))
        print(
            f"{emb.backend}: {speed[key][0]:.2f} chunks/s, query p50 {speed[key][1]:.1f} ms (load {load()})", flush=True
        )
    base, base_q = speed[("torch", "cpu")][0], speed[("torch", "cpu")][1]
    rows = [
        [
            embedders[k].backend,
            len(texts),
            f"{v[0]:.2f}",
            f"{v[0] / base:.2f}x",
            f"{v[1]:.1f}",
            f"{v[2]:.1f}",
            f"{base_q / v[1]:.2f}x",
        ]
        for k, v in speed.items()
    ]
    heads = ["backend", "chunks", "chunks/s", "÷ torch fp32 CPU", "query p50 ms", "query p95 ms", "query speed-up"]
    print(table(heads, rows))
    best_cpu = max(v[0] for k, v in speed.items() if k[1] == "cpu" and k[0] != "torch") if len(names) > 1 else base
    print(
        f"TARGET best CPU backend >= {TARGET_SPEEDUP}x torch fp32: {best_cpu / base:.2f}x "
        f"{verdict(best_cpu / base >= TARGET_SPEEDUP)}"
    )
    if args.skip_quality:
        return

    # -- quality ------------------------------------------------------------------------------
    faq = [i for i, (src, _) in enumerate(chunks) if src.startswith("faq/")]
    rest = [i for i, (src, _) in enumerate(chunks) if not src.startswith("faq/")]
    k = max(1, len(rest) // max(1, args.corpus - len(faq)))
    keep = sorted(faq + rest[::k])[: max(args.corpus, len(faq))]
    sources = [chunks[i][0] for i in keep]
    corpus = [chunks[i][1] for i in keep]
    rows_t = [json.loads(line) for line in (args.data / "testset.jsonl").read_text().splitlines() if line]
    cache_dir = DATA / "cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    tops = {}
    for key, emb in embedders.items():
        f = cache_dir / f"backend_vectors_{emb.backend.replace(':', '_')}_{len(corpus)}.npz"
        if f.is_file():
            z = np.load(f)
            d, q = z["d"], z["q"]
        else:
            t = time.perf_counter()
            d = emb.embed_documents(corpus)
            q = emb.embed_documents([r["question"] for r in rows_t])
            np.savez(f, d=d, q=q)
            print(f"embedded {len(corpus)} chunks with {emb.backend} in {time.perf_counter() - t:.0f} s", flush=True)
        tops[key] = np.argsort(-(q @ d.T), axis=1, kind="stable")[:, :10]
    ref_top = tops[("torch", "cpu")]
    qrows = []
    for key, top in tops.items():
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ref_top)])
        src4 = np.mean([any(sources[j] in r["sources"] for j in top[i, :4]) for i, r in enumerate(rows_t)])
        qrows.append((embedders[key].backend, recall, src4))
    ref_src = qrows[0][2]
    print(
        table(
            ["backend", "recall@10 vs torch fp32", "loss", "source in top 4", "Δ points"],
            [[b, f"{r:.3f}", f"{1 - r:.3f}", f"{s:.3f}", f"{(s - ref_src) * 100:+.1f}"] for b, r, s in qrows],
        )
    )
    for b, r, s in qrows[1:]:
        ok = 1 - r <= TARGET_RECALL_LOSS and abs(s - ref_src) * 100 <= TARGET_SOURCE_POINTS
        print(
            f"TARGET {b}: recall@10 loss <= {TARGET_RECALL_LOSS} and source@4 within {TARGET_SOURCE_POINTS} point: "
            f"{1 - r:.3f}, {(s - ref_src) * 100:+.1f} {verdict(ok)}"
        )
    print(
        f"corpus {len(corpus)} chunks ({len(faq)} from faq/), {len(rows_t)} questions; threads {os.cpu_count()}; "
        f"total {time.perf_counter() - t0:.0f} s; load {load()}"
    )


if __name__ == "__main__":
    main()
