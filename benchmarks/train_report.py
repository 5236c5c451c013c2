"""The training benchmark's summary (benchmarks/bench_train_gpu.py): the arms' table, memory by pool and phase,
and lorag's ratios against plain trl and Unsloth with the targets of issue 22."""

from __future__ import annotations

import os
import sys

from _common import cpu_model
from unsloth_arm import UNSLOTH


def median_run(runs: list[dict]) -> dict:
    """One arm's figures over its repeated runs: the median tokens/s, MFU and held-out loss, the highest
    memory, and every run's tokens/s."""
    import statistics

    out = dict(runs[0])
    for k in ("tokens_per_s", "mfu", "eval_loss", "seconds", "mfu_step"):
        if all(r.get(k) is not None for r in runs):
            out[k] = statistics.median(r[k] for r in runs)
    for k in ("peak_gb", "reserved_gb"):
        out[k] = max((r[k] or 0) for r in runs)
    out["runs_tokens_per_s"] = [round(r["tokens_per_s"]) for r in runs]
    return out


TARGETS = {"plain": 3.0, "plain-nodrop": 3.0, UNSLOTH: 2.0}  # lorag's tokens/s ÷ the reference's (issue 22)


def host_line() -> str:
    """The host CPU (model, logical cores) and its load averages now: eager arms launch each kernel from Python,
    so their step times follow the host's speed and load, which differ between machines of one GPU kind."""
    try:
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return f"host={cpu_model() or '?'} x{os.cpu_count()} load={load}"


def summarize(args, gpu: str, n_rows: int, fpt: float, runs: dict, failed: dict, size: str | None) -> None:
    """The arms' table (median runs), their memory by pool and phase, failures, and each lorag arm's ratios
    against the references in TARGETS. `size`: the random model's size class, None for --model's."""
    results = {k: median_run(v) for k, v in runs.items()}
    print(
        f"\nmodel={f'random-{size} Llama' if size else args.model} gpu={gpu} rows={n_rows} epochs={args.epochs} "
        f"batch={args.batch} max_len={args.max_len} flops/token={fpt:.3g}"
    )
    print(host_line())
    print(
        f"{'arm':20s} {'tok/s':>9s} {'peak GB':>8s} {'reserved':>8s} {'eval loss':>9s} {'MFU':>7s} {'seconds':>8s} "
        f"{'steps':>6s} {'rows':>6s} {'step ms':>8s} {'MFU step':>8s}"
    )
    for k, r in results.items():
        median = (r.get("steps") or {}).get("median_ms")
        at_step = r.get("mfu_step")
        print(
            f"{k:20s} {r['tokens_per_s']:9.0f} {r['peak_gb'] or 0:8.2f} {r['reserved_gb'] or 0:8.2f} "
            f"{r['eval_loss']:9.4f} "
            f"{r['mfu'] * 100:6.2f}% {r['seconds']:8.1f} {r['optimizer_steps']:6d} {r['rows_trained']:6d} "
            f"{median or float('nan'):8.1f} {'' if at_step is None else f'{at_step * 100:7.2f}%':>8s}"
        )
    for k, r in results.items():
        pools = (r.get("steps") or {}).get("pools_gb")
        ev = (r.get("steps") or {}).get("eval_peaks_gb")
        if ev:
            print(f"{k:20s} peak allocated / reserved GB before the last evaluation {ev[0]}, after it {ev[1]}")
        at = (r.get("steps") or {}).get("peaks_after_steps_gb")
        if at:
            print(f"{k:20s} peak allocated / reserved GB after the first three steps and the last: {at}")
        if pools:  # at the end of training: reserved / allocated GB per pool
            print(
                f"{k:20s} memory at train end, reserved / allocated GB: "
                + ", ".join(f"{p} {v[0]:.2f} / {v[1]:.2f}" for p, v in pools.items())
            )
    for k, why in failed.items():
        print(f"{k:20s} FAILED: {why}")
    steps = {k: r["optimizer_steps"] for k, r in results.items()}
    if len(set(steps.values())) > 1:  # same rows, another step count: held-out losses are not at the same point
        print(f"NOTE: the arms took different optimizer step counts: {steps}")
    arms = args.arms.split(",")
    for q in ("lora", "qlora"):
        for ref, arm in [(r, x) for r in TARGETS for x in arms if not x.startswith("plain") and x != r]:
            a, b = results.get(f"{ref}-{q}"), results.get(f"{arm}-{q}")
            if a and b:
                print_ratio(ref, arm, q, a, b, runs)
    sys.stdout.flush()


def step_ratio(a: dict, b: dict) -> str:
    """', median step X.XXx' (b's speed over a's at the median step), or '' without step times."""
    ma, mb = ((x.get("steps") or {}).get("median_ms") for x in (a, b))
    return f", median step {ma / mb:.2f}x" if ma and mb else ""


def later_steps_ratio(a: dict, b: dict) -> str:
    """', steps after the first X.XXx': a's time for steps 2..N over b's. Every step counts (not the median),
    without the first one's captures and compiles: a user pays those once per run (kernel compiles once per
    machine), so a short run's whole-run ratio carries them and a long run's tends to this one."""
    la, lb = (_later_steps_s(x) for x in (a, b))
    return f", steps after the first {la / lb:.2f}x" if la and lb and la > 0 and lb > 0 else ""


def _later_steps_s(run: dict) -> float | None:
    """The run's step time after the first step (all steps' sum less the first's), or None without step times."""
    s = run.get("steps") or {}
    return s["sum_s"] - s["first_s"] if s.get("sum_s") and s.get("first_s") is not None else None


def step_mfu(r: dict, fpt: float, peak: float) -> float | None:
    """MFU at the median step: the run's mean tokens per optimizer step over the median step's time (the steady
    state, without the first step's captures and compiles)."""
    median = (r.get("steps") or {}).get("median_ms")
    if not median or not r.get("optimizer_steps"):
        return None
    return fpt * r["tokens"] / r["optimizer_steps"] / (median / 1000) / peak


def print_ratio(ref: str, arm: str, q: str, a: dict, b: dict, runs: dict) -> None:
    pairs = [y["tokens_per_s"] / x["tokens_per_s"] for x, y in zip(runs[f"{ref}-{q}"], runs[f"{arm}-{q}"])]
    each = (
        f" (medians of {len(pairs)} runs each; run by run {', '.join(f'{p:.2f}x' for p in pairs)})"
        if len(pairs) > 1
        else ""
    )
    lorag = arm != UNSLOTH  # the targets are lorag's
    speed = f" (target >= {TARGETS[ref]:g})" if lorag else ""
    memory = (" (target <= 1)" if ref == UNSLOTH else " (target <= 0.5)") if lorag else ""
    print(
        f"[{arm} vs {ref}] {q}: tokens/s ratio {b['tokens_per_s'] / a['tokens_per_s']:.2f}x{each}{speed}"
        f"{step_ratio(a, b)}{later_steps_ratio(a, b)}, memory "
        f"ratio {b['peak_gb'] / max(a['peak_gb'], 1e-9):.2f} allocated / "
        f"{b['reserved_gb'] / max(a['reserved_gb'], 1e-9):.2f} reserved{memory}, eval loss diff "
        f"{100 * (b['eval_loss'] - a['eval_loss']) / a['eval_loss']:+.2f}%" + (" (target within 1%)" if lorag else "")
    )
