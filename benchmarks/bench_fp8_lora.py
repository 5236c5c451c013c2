"""A LoRA Linear's FP8 GEMMs with the adapter's delta added after (addmm) or joined inside, at model shapes, on a GPU.

    python benchmarks/bench_fp8_lora.py [--size 8b|1b|both] [--tokens N] [--rank R] [--json FILE]

Each form runs as a CUDA graph (its GPU time, no launch overhead), replayed after warm-ups; the table gives its
time in ms (graph_ms), per projection of a Llama decoder layer (Llama-3.1-8B or Llama-3.2-1B shapes):

  addmm        x·Wᵀ in FP8 (x and W cast per call), then out += s·(x·Aᵀ)·Bᵀ     finetune/accel/fp8.py matmul
  join16       [x | x·Aᵀ]·[W | s·B]ᵀ in one FP8 GEMM, the rank padded to 16   matmul_lora (fp8_lora_in_gemm)
  join128      the same, the rank padded to 128 (JOIN_MULTIPLE, the default)
  mm K         the bare FP8 GEMM of operands already cast, inner size K = k, k + 16, k + 128
  t-addmm      g·W in FP8 (g and W cast per call), then gx += gu·A             matmul_transposed
  t-join16/128 [g | gu]·[W ; A] in one FP8 GEMM                                   matmul_transposed_lora

so a slow joined GEMM shows whether its time is the inner size (mm K) or the work around it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any, Callable

from train_arms import module_constants  # this folder: the script's own, on sys.path when run

SHAPES = {  # (name, in_features k, out_features n) of a decoder layer's projections
    "8b": [("q/o", 4096, 4096), ("k/v", 4096, 1024), ("gate/up", 4096, 14336), ("down", 14336, 4096)],
    "1b": [("q/o", 2048, 2048), ("gate/up", 2048, 8192), ("down", 8192, 2048)],
}


def graph_ms(fn: Callable[[], Any], replays: int = 20, rounds: int = 5) -> float:
    """fn's GPU time as a CUDA graph, after two eager runs and a warm replay: the median over `rounds` of the mean
    of `replays` replays timed back to back (one pair of events around them: no launch gap or host sync inside)."""
    import torch

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
        fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    g.replay()
    times = []
    for _ in range(rounds):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(replays):
            g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / replays)
    return statistics.median(times)


def forms(k: int, n: int, tokens: int, rank: int) -> dict[str, Callable[[], Any]]:
    import torch

    from finetune.accel import fp8

    dev, bf = "cuda", torch.bfloat16
    x = torch.randn(tokens, k, device=dev, dtype=bf)
    g = torch.randn(tokens, n, device=dev, dtype=bf)
    w = torch.randn(n, k, device=dev, dtype=bf) * 0.02
    a = torch.randn(rank, k, device=dev, dtype=bf) * 0.02
    b = torch.randn(n, rank, device=dev, dtype=bf) * 0.02
    scales = fp8.weight_scales(w)
    s = 2.0

    def addmm() -> Any:
        out = fp8.matmul(x, w, scales, bf, fast_accum=True)
        return out.addmm_(x @ a.t(), b.t(), alpha=s)

    def join(multiple: int) -> Callable[[], Any]:
        def run() -> Any:
            with module_constants({"_join_multiple": multiple}):
                return fp8.matmul_lora(x, w, scales, x @ a.t(), b * s, bf, fast_accum=True)

        return run

    def t_addmm() -> Any:
        gu = (g @ b).mul_(s)
        return fp8.matmul_transposed(g, w, scales, bf).addmm_(gu, a)

    def t_join(multiple: int) -> Callable[[], Any]:
        def run() -> Any:
            with module_constants({"_join_multiple": multiple}):
                return fp8.matmul_transposed_lora(g, w, scales, (g @ b).mul_(s), a, bf)

        return run

    def bare(extra: int) -> Callable[[], Any]:
        xq = torch.randn(tokens, k + extra, device=dev).to(torch.float8_e4m3fn)  # random: zeros draw less power
        wq = torch.randn(n, k + extra, device=dev).to(torch.float8_e4m3fn)
        sx = torch.ones(tokens, 1, device=dev)
        sw = torch.ones(1, n, device=dev)
        return lambda: fp8._scaled_mm(xq, wq.t(), sx, sw, bf, True)

    return {
        "addmm": addmm,
        "join16": join(16),
        "join128": join(128),
        "mm K": bare(0),
        "mm K+16": bare(16),
        "mm K+128": bare(128),
        "t-addmm": t_addmm,
        "t-join16": t_join(16),
        "t-join128": t_join(128),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["8b", "1b", "both"], default="both")
    ap.add_argument("--tokens", type=int, default=12800, help="rows of x (a packed step's tokens; a multiple of 16)")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--json", help="write the table here too")
    args = ap.parse_args()
    if args.tokens % 16:
        ap.error(f"--tokens {args.tokens}: FP8 GEMMs take row counts that are multiples of 16")
    import torch

    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, {args.tokens} tokens, rank {args.rank}")
    results: dict[str, dict[str, float]] = {}
    for size in ["8b", "1b"] if args.size == "both" else [args.size]:
        for name, k, n in SHAPES[size]:
            row = {label: graph_ms(fn) for label, fn in forms(k, n, args.tokens, args.rank).items()}
            results[f"{size} {name} ({k}->{n})"] = row
            torch.cuda.empty_cache()
    labels = list(next(iter(results.values())))
    print("| projection | " + " | ".join(labels) + " |")
    print("|---" * (len(labels) + 1) + "|")
    for key, row in results.items():
        print(f"| {key} | " + " | ".join(f"{row[label]:.3f}" for label in labels) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
