"""One ask's retrieval + routing stage without a domain: the question embedded once (routing reuses the vector the
search used) vs twice (routing embedding the question again, as AskService.choose did before).

    .venv/bin/python benchmarks/bench_ask_route.py [--backends onnx-fp32,torch] [--rounds 3] [--per-domain 10]

Index: samples/corpus, one domain per folder, embedded once by the first backend into a temporary data folder
(every backend here gives torch float32's vectors, so each searches that index). Router: one promoted adapter per
domain (names only: routing runs no model) and each domain's centroid, as `lorag ask` builds it. Questions: the
first --per-domain of each samples/qa file. Per backend, after two warm-up questions, every question is timed
both ways, the order alternating: `retrieve_for` + `AskService.choose` as `lorag ask` runs them (without a
domain, adapter auto), "twice" with the retrieval's vector dropped first, so routing embeds the question itself
(the code before). Both ways must give the same route and passages; the script counts the embeddings each way.
Model cache: paths.model_cache (LORAG_PATHS__MODEL_CACHE, default ~/.cache/lorag); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SAMPLES, header, percentile, quiet_libraries, rm, table, temp_dir  # noqa: E402


def questions(per_domain: int) -> list[str]:
    out = []
    for f in sorted((REPO / "samples" / "qa").glob("*.jsonl")):
        rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        out += [r["question"] for r in rows[:per_domain]]
    return out


def measure(comps, domains: list[str], qs: list[str], rounds: int) -> tuple[str, dict[bool, list[float]], dict]:
    """(query backend, stage ms per way, embeddings per way); True: twice (before), False: once (now)."""
    from assistant.answer import AskService
    from assistant.conversation import retrieve_for
    from assistant.routing import AUTO, Router

    retriever = comps.retriever
    cents = {d: comps.store.dense_centroid(d) for d in domains}
    router = Router(comps.settings.routing, {d: f"{d}-v1" for d in domains}, cents)
    svc = AskService(retriever, None, router)  # type: ignore[arg-type]  # choose() runs no model
    dense = retriever.dense
    embed, calls = dense.embed_query, [0]

    def counted(text: str):
        calls[0] += 1
        return embed(text)

    dense.embed_query = counted  # type: ignore[method-assign]

    def stage(q: str, twice: bool):
        t = time.perf_counter()
        r = retrieve_for(retriever, q, None)
        if twice:
            r.query_vec = None  # routing embeds the question itself, as before
        route = svc.choose(q, None, AUTO, r)
        return (time.perf_counter() - t) * 1000, (route.to_dict(), [p.chunk_id for p in r.passages])

    for q in qs[:2]:
        stage(q, False), stage(q, True)
    took: dict[bool, list[float]] = {False: [], True: []}
    embeds = {False: 0, True: 0}
    for rnd in range(rounds):
        for i, q in enumerate(qs):
            got = {}
            for twice in (False, True) if (i + rnd) % 2 == 0 else (True, False):
                n0 = calls[0]
                ms, got[twice] = stage(q, twice)
                embeds[twice] += calls[0] - n0
                took[twice].append(ms)
            assert got[False] == got[True], q  # the same route and passages both ways
    return getattr(dense, "queries", dense).backend, took, embeds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="onnx-fp32,torch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-domain", type=int, default=10)
    args = ap.parse_args()
    quiet_libraries()
    header("ask without a domain: retrieval + routing, the question embedded once vs twice")

    from assistant.settings import Settings
    from ui.components import Components

    backends = args.backends.split(",")
    data = temp_dir("route")
    qs = questions(args.per_domain)
    domains = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir())
    rows = []

    def components(backend: str) -> Components:
        return Components(Settings(paths={"data_dir": data}, models={"embedder_backend": backend}))

    try:
        first = components(backends[0])
        t0 = time.perf_counter()
        for d in domains:
            first.ingestor().run([SAMPLES / d], d)
        print(f"index: {', '.join(domains)} embedded by {backends[0]} in {time.perf_counter() - t0:.1f}s")
        first.close()
        for backend in backends:
            comps = components(backend)
            label, took, embeds = measure(comps, domains, qs, args.rounds)
            comps.close()
            n = len(took[False])
            for twice in (True, False):
                v = took[twice]
                way = "twice (before)" if twice else "once (now)"
                rows.append([label, way, n, embeds[twice] / n, percentile(v, 50), percentile(v, 90), sum(v) / n])
            saved = percentile([a - b for a, b in zip(took[True], took[False])], 50)
            print(f"{backend}: same route and passages both ways for {n} asks; median saving {saved:.2f} ms")
    finally:
        rm(data)
    print()
    heads = ["queries embedded by", "question embedded", "asks", "embeds/ask", "p50 ms", "p90 ms", "mean ms"]
    print(table(heads, rows))


if __name__ == "__main__":
    main()
