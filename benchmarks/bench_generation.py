"""Generation speed: `lorag ask` (AskService.stream -> HFGenerator.stream) vs raw model.generate.

    .venv/bin/python benchmarks/bench_generation.py [--quick] [--prompts N] [--repeats R]

Setup: samples/corpus/handbook is ingested into a temporary EdgeStore with the real embedder; for
each question (N spread evenly through samples/qa/handbook.jsonl) the real hybrid retrieval picks the
passages once. Then, per question, alternately R times:
  * lorag: AskService.stream(question, retrieval=<those passages>) consumed to the final Answer,
    exactly as `lorag ask` does (chat template, TextIteratorStreamer on a worker thread, greedy,
    the configured max_new_tokens and repetition_penalty);
  * raw:   model.generate(**ids) on the identical prompt token ids (HFGenerator.encode of the same
    build_messages), same max_new_tokens, do_sample=False, same repetition_penalty, under
    torch.inference_mode() like the product.
tokens/s = new tokens / wall seconds of the whole call (prefill included, retrieval excluded: it
is the same precomputed Retrieval). A third path, raw model.generate in a worker thread (the
product's thread layout without the streamer), separates streaming overhead from threading
effects. New-token counts and decoded texts must match (greedy); the
script checks and prints them. Ratio = median lorag tok/s / median raw tok/s, target >= 0.95.

OpenMP wait policy: the script sets OMP_WAIT_POLICY=PASSIVE for its own process (all paths alike)
unless --omp-default is given. With libgomp's default active spinning, when other processes keep
the 2 cores busy, a 2-thread generate() called from the main thread collapsed (64 tokens: 30-50 s
on the main thread vs 8.5-10 s in a worker thread; 5.6-6.1 s for both with 1 thread). With PASSIVE
both took 10-12 s. The collapse would make the raw main-thread baseline look several times slower
than lorag, so the ratio would measure how busy the machine is, not the streaming path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, Timer, header, quiet_libraries, rm, table, temp_dir, verdict  # noqa: E402

TARGET = 0.95


def _omp_policy_from_argv() -> str:
    """Must run before torch loads libgomp: the wait policy is read once, at OpenMP start-up."""
    if "--omp-default" in sys.argv:
        return os.environ.get("OMP_WAIT_POLICY", "(unset: libgomp default, active spinning)")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE (set by this script; --omp-default leaves it alone)"


OMP_POLICY = _omp_policy_from_argv()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--omp-default", action="store_true", help="do not set OMP_WAIT_POLICY=PASSIVE (see the docstring)")
    ap.add_argument("--quick", action="store_true", help="2 prompts x 1 repeat (about 2 minutes)")
    ap.add_argument("--prompts", type=int, default=None, help="questions (default 5, quick 2)")
    ap.add_argument("--repeats", type=int, default=None, help="runs of each path per question (default 2, quick 1)")
    args = ap.parse_args()
    n_prompts = args.prompts or (2 if args.quick else 5)
    repeats = args.repeats or (1 if args.quick else 2)
    quiet_libraries()
    header("bench_generation: lorag ask streaming vs raw model.generate")
    print(f"OpenMP  : OMP_WAIT_POLICY={OMP_POLICY}")

    import torch

    from assistant.answer import Answer
    from assistant.prompt import build_messages
    from assistant.settings import load_settings
    from assistant.store.edge import EdgeStore
    from ui.components import Components

    settings = load_settings()
    root = temp_dir("gen")
    comps = Components(settings, store=EdgeStore(root, hnsw_ef=settings.qdrant.hnsw_ef))
    try:
        with Timer() as t_ing:
            report = comps.ingestor().run([REPO / "samples" / "corpus" / "handbook"], "handbook")
        with Timer() as t_load:
            gen = comps.generator
        service = comps.ask_service
        model, tok = gen.model, gen.tokenizer
        m = settings.models
        print(
            f"store   : samples/corpus/handbook -> {report.chunks_written} chunks ({t_ing.s:.1f}s incl. embedder load)"
        )
        print(
            f"model   : {m.generator} ({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M params, "
            f"{model.dtype}, {model.device}) loaded in {t_load.s:.1f}s; max_new_tokens={m.max_new_tokens}, "
            f"temperature={m.temperature} (greedy), repetition_penalty={m.repetition_penalty}"
        )
        qa = [
            json.loads(line)
            for line in (REPO / "samples" / "qa" / "handbook.jsonl").read_text().splitlines()
            if line.strip()
        ]
        step = max(1, len(qa) // n_prompts)
        questions = [qa[i * step]["question"] for i in range(n_prompts)]

        retrievals = []
        for q in questions:
            r = comps.retriever.retrieve(q, "handbook")
            r.relevant = True  # measure generation even if the relevance gate would abstain
            retrievals.append(r)

        raw_kwargs = gen.generation_kwargs()  # same dict the product hands to generate()

        def run_lorag(q, r):
            t0 = time.perf_counter()
            final = None
            for item in service.stream(q, "handbook", retrieval=r):
                if isinstance(item, Answer):
                    final = item
            wall = time.perf_counter() - t0
            return wall, final.tokens, final.answer, gen.last_stats

        def run_raw(ids, in_thread=False):
            box = {}

            def call():
                with torch.inference_mode():
                    box["out"] = model.generate(**ids, **raw_kwargs)

            with Timer() as t:
                if in_thread:  # same thread layout as HFGenerator.stream, without the streamer
                    th = threading.Thread(target=call)
                    th.start()
                    th.join()
                else:
                    call()
            new = box["out"][0, ids["input_ids"].shape[1] :]
            return t.s, int(new.shape[0]), tok.decode(new, skip_special_tokens=True).strip()

        # Warm-up both paths.
        ids0 = gen.encode(build_messages(questions[0], retrievals[0].passages))
        run_lorag(questions[0], retrievals[0])
        run_raw(ids0)

        rows, lorag_tps, raw_tps, rawt_tps, self_tps, mismatches = [], [], [], [], [], 0
        print(f"raw generate kwargs: { {k: v for k, v in raw_kwargs.items() if v is not None} }")
        print()
        for i, (q, r) in enumerate(zip(questions, retrievals)):
            ids = gen.encode(build_messages(q, r.passages))
            l_runs, r_runs, t_runs = [], [], []
            for rep in range(repeats):
                order = [(rep + j) % 3 for j in range(3)]  # rotate which path goes first
                for which in order:
                    if which == 0:
                        wall, n, text, stats = run_lorag(q, r)
                        l_runs.append((n / wall, n, text, stats.tokens_per_s, stats.prompt_tokens))
                    elif which == 1:
                        wall, n, text = run_raw(ids)
                        r_runs.append((n / wall, n, text))
                    else:
                        wall, n, text = run_raw(ids, in_thread=True)
                        t_runs.append((n / wall, n, text))
            ln, rn = l_runs[0][1], r_runs[0][1]
            same_n = all(x[1] == ln for x in l_runs + r_runs + t_runs)
            same_text = all(x[2] == l_runs[0][2] for x in l_runs + r_runs + t_runs)
            prompt_tokens = int(ids["input_ids"].shape[1])
            if l_runs[0][4] != prompt_tokens:
                print(f"WARNING: prompt token counts differ ({l_runs[0][4]} vs {prompt_tokens})")
            mismatches += (not same_n) + (not same_text)
            lt = statistics.median(x[0] for x in l_runs)
            rt = statistics.median(x[0] for x in r_runs)
            tt = statistics.median(x[0] for x in t_runs)
            lorag_tps += [x[0] for x in l_runs]
            raw_tps += [x[0] for x in r_runs]
            rawt_tps += [x[0] for x in t_runs]
            self_tps += [x[3] for x in l_runs]
            rows.append(
                [
                    i + 1,
                    prompt_tokens,
                    f"{ln}/{rn}",
                    "yes" if same_n and same_text else "NO",
                    lt,
                    rt,
                    tt,
                    lt / rt,
                    lt / tt,
                ]
            )
            print(
                f"prompt {i + 1}: {q[:60]!r} -> {ln} tokens, lorag {lt:.2f} tok/s, raw {rt:.2f} tok/s, "
                f"raw-in-thread {tt:.2f} tok/s",
                flush=True,
            )

        print()
        print(
            table(
                [
                    "prompt",
                    "prompt tok",
                    "new tok lorag/raw",
                    "same output",
                    "lorag tok/s",
                    "raw tok/s",
                    "raw-in-thread tok/s",
                    "lorag/raw",
                    "lorag/raw-in-thread",
                ],
                rows,
            )
        )
        ml, mr, mt = statistics.median(lorag_tps), statistics.median(raw_tps), statistics.median(rawt_tps)
        ratio = ml / mr
        print("(per-prompt figures are medians over the repeats)")
        print()
        print(
            table(
                ["path", "runs", "median tok/s", "min", "max"],
                [
                    ["lorag AskService.stream (wall)", len(lorag_tps), ml, min(lorag_tps), max(lorag_tps)],
                    [
                        "lorag, self-reported (Answer.timings_ms)",
                        len(self_tps),
                        statistics.median(self_tps),
                        min(self_tps),
                        max(self_tps),
                    ],
                    ["raw model.generate (main thread)", len(raw_tps), mr, min(raw_tps), max(raw_tps)],
                    ["raw model.generate in a worker thread", len(rawt_tps), mt, min(rawt_tps), max(rawt_tps)],
                ],
            )
        )
        print()
        print(
            "new-token counts and texts identical across paths: "
            f"{'yes' if not mismatches else f'NO ({mismatches} mismatches)'}"
        )
        print(f"RATIO lorag/raw = {ratio:.3f}  (target >= {TARGET}: {verdict(ratio >= TARGET)})")
        print(f"      lorag/raw-in-thread = {ml / mt:.3f}  (streamer + consumer overhead alone)")
    finally:
        comps.close()
        rm(root)


if __name__ == "__main__":
    main()
