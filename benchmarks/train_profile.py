"""Where a training step's time goes (benchmarks/bench_train_gpu.py): a TrainerCallback timing every
optimizer step, and one profiling a steady-state range of steps with torch.profiler (wall vs GPU kernel
time, the GPU's idle stretches by the kernels around them, every kernel by name); and cProfile over one
arm's whole run on the host (`--cprofile`)."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path


def step_profiler(start: int = 3, steps: int = 3):
    """A TrainerCallback that profiles optimizer steps [start, start+steps) with torch.profiler and
    prints where the time goes: wall vs summed GPU kernel time per step, kernel launches per step,
    and the top operators by GPU and by CPU time."""
    import torch
    from transformers import TrainerCallback

    class StepProfiler(TrainerCallback):
        prof = None

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == start and self.prof is None:
                torch.cuda.synchronize() if torch.cuda.is_available() else None
                acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
                self.prof = torch.profiler.profile(activities=acts)
                self.prof.__enter__()
                self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if self.prof is not None and state.global_step == start + steps:
                torch.cuda.synchronize() if torch.cuda.is_available() else None
                wall = (time.perf_counter() - self.t0) / steps
                self.prof.__exit__(None, None, None)
                summarize_profile(self.prof, wall, steps)
                self.prof = None

    return StepProfiler()


def peak_gb() -> tuple[float, float]:
    """The process's peak GPU memory so far, allocated / reserved GB ((0, 0) without CUDA). Reserved counts the
    CUDA graphs' private pools too, which replays use without allocating (so the allocated peak misses them)."""
    import torch

    if not torch.cuda.is_available():
        return 0.0, 0.0
    return torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30


def _peaks() -> tuple | None:
    import torch

    return tuple(round(v, 3) for v in peak_gb()) if torch.cuda.is_available() else None


def memory_pools() -> dict:
    """The GPU memory the process holds now, by pool: the caching allocator's own ("default") and the
    private pools CUDA graphs allocate into ("graphs"), each as reserved / allocated GB. A graph replay uses
    its pool's memory without allocating, so the peak allocated figure misses it; this splits reserved."""
    import torch

    if not torch.cuda.is_available():
        return {}
    out: dict[str, list[float]] = {}
    for seg in torch.cuda.memory_snapshot():
        pool = "default" if tuple(seg.get("segment_pool_id", (0, 0))) == (0, 0) else "graphs"
        got = out.setdefault(pool, [0.0, 0.0])
        got[0] += seg["total_size"] / 2**30
        got[1] += seg["allocated_size"] / 2**30
    return {k: [round(v[0], 3), round(v[1], 3)] for k, v in out.items()}


_SHAPES_SEEN: set[tuple] = set()  # batch shapes trained on so far in this process, over every run


def step_timer():
    """A TrainerCallback recording when each optimizer step ends (host clock; the trainer reads the GPU every
    step, so the host is never more than a step ahead) and the shape of the batch each step trained on. Its
    summary splits a run into the first step (lazy initialisation, first captures), the median step and the
    time steps took beyond the median, and the steps whose batch shape was new to the process against those
    whose shape an earlier step or run had already met (per-shape costs: cuDNN plans, graph captures)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            self.t, self.new, self.now = [time.perf_counter()], [], None
            self.hook = model.register_forward_pre_hook(self.record, with_kwargs=True) if model is not None else None

        def record(self, module, a, kw):
            x = kw.get("input_ids", a[0] if a else None)
            if module.training and x is not None and hasattr(x, "shape"):
                self.now = tuple(x.shape)

        def on_step_end(self, args, state, control, **kw):
            self.peaks = _peaks()  # before this step's scheduled evaluation, if any
            self.step_peaks = [*getattr(self, "step_peaks", []), self.peaks]
            self.t.append(time.perf_counter())
            self.new.append(None if self.now is None else self.now not in _SHAPES_SEEN)
            _SHAPES_SEEN.add(self.now)

        def on_evaluate(self, args, state, control, **kw):
            if getattr(self, "peaks", None) is not None:
                self.eval_peaks = (self.peaks, _peaks())

        def on_train_end(self, args, state, control, **kw):
            if self.hook is not None:
                self.hook.remove()
            self.pools = memory_pools()

        def summary(self) -> dict:
            d = [b - a for a, b in zip(self.t, self.t[1:])]
            if not d:
                return {}
            med = sorted(d)[len(d) // 2]
            out = {
                "steps": len(d),
                "first_s": round(d[0], 3),
                "median_ms": round(med * 1e3, 1),
                "over_median_s": round(sum(x - med for x in d[1:]), 3),
                "sum_s": round(self.t[-1] - self.t[0], 3),
                **({"pools_gb": self.pools} if getattr(self, "pools", None) else {}),
                # peak allocated / reserved GB so far after the first three steps and the last: where it peaked
                **(
                    {"peaks_after_steps_gb": [*self.step_peaks[:3], self.step_peaks[-1]]}
                    if getattr(self, "step_peaks", None) and self.step_peaks[0] is not None
                    else {}
                ),
                # peak allocated / reserved GB before and after the last evaluation inside training (an eager pass)
                **({"eval_peaks_gb": self.eval_peaks} if getattr(self, "eval_peaks", None) else {}),
            }
            if any(n is not None for n in self.new):
                fresh = [x for x, n in zip(d, self.new) if n]
                seen = [x for x, n in zip(d, self.new) if n is False]
                out["new_shape_steps"] = len(fresh)
                out["new_shape_median_ms"] = round(sorted(fresh)[len(fresh) // 2] * 1e3, 1) if fresh else None
                out["seen_shape_median_ms"] = round(sorted(seen)[len(seen) // 2] * 1e3, 1) if seen else None
                out["new_shape_over_median_s"] = round(sum(x - med for x in fresh), 3)
            return out

    return StepTimer()


def summarize_profile(prof, wall_per_step: float, steps: int) -> None:
    avgs = prof.key_averages()

    kernels = [e for e in prof.events() if getattr(e, "device_type", None) is not None and "CUDA" in str(e.device_type)]
    kernel_us = sum(e.time_range.end - e.time_range.start for e in kernels)
    busy_us, end = 0.0, float("-inf")  # the union of kernel intervals: time the GPU ran anything
    gaps: dict[tuple[str, str], list[float]] = {}  # idle stretches over 0.2 ms, by the kernels on either side
    small: list[float] = []  # idle stretches up to 0.2 ms (launch gaps)
    prev = None
    for e in sorted(kernels, key=lambda e: e.time_range.start):
        a, b = e.time_range.start, e.time_range.end
        if prev is not None and a - end > 200:
            gaps.setdefault((prev.name[:48], e.name[:48]), []).append(a - end)
        elif prev is not None and a > end:
            small.append(a - end)
        busy_us += max(0.0, b - max(a, end))
        if b > end:
            end, prev = b, e
    print(
        f"-- profile: wall {wall_per_step * 1e3:.1f} ms/step, GPU kernels {kernel_us / steps / 1e3:.1f} "
        "ms/step, GPU busy "
        f"{busy_us / steps / 1e3:.1f} ms/step ({100 * busy_us / steps / 1e6 / wall_per_step:.0f}%), "
        f"{len(kernels) / steps:.0f} kernels/step",
        flush=True,
    )
    print(
        f"-- GPU idle up to 0.2 ms: {sum(small) / steps / 1e3:.2f} ms/step in {len(small) / steps:.0f} gaps/step; "
        "over 0.2 ms, by the kernels before and after (ms per step, count per step):"
    )
    for (x, y), v in sorted(gaps.items(), key=lambda kv: -sum(kv[1]))[:14]:
        print(f"   {sum(v) / steps / 1e3:7.2f} ms  {len(v) / steps:5.1f}x  {x}  ->  {y}")
    by_name: dict[str, list[float]] = {}  # every kernel by its full name: what the GPU spends a step on
    for e in kernels:
        by_name.setdefault(e.name[:150], []).append(e.time_range.end - e.time_range.start)
    print("-- GPU kernels by name (ms per step, launches per step, mean us):")
    for name, v in sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:60]:
        print(f"   {sum(v) / steps / 1e3:7.2f} ms  {len(v) / steps:6.1f}x  {sum(v) / len(v):8.1f} us  {name}")
    for key in ("self_cuda_time_total", "self_cpu_time_total"):
        try:
            print(avgs.table(sort_by=key, row_limit=18, max_name_column_width=60), flush=True)
        except Exception as e:  # the key's name differs across torch versions
            print(f"(table by {key}: {e})")


@contextlib.contextmanager
def host_profile(on: bool, key: str, dump: Path | None = None):
    """cProfile over one arm's run (model load included): its 30 costliest calls by cumulative time and
    the 20 by own time; the whole profile into `dump` (pstats format) when given."""
    if not on:
        yield
        return
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        print(f"-- cProfile of {key}, by cumulative time:", flush=True)
        stats = pstats.Stats(prof, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
        if dump is not None:
            dump.parent.mkdir(parents=True, exist_ok=True)
            stats.dump_stats(dump)
