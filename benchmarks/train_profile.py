"""Where a training step's time goes (benchmarks/bench_train_gpu.py): a TrainerCallback timing every
optimizer step, and one profiling a steady-state range of steps with torch.profiler (wall vs GPU kernel
time, the GPU's idle stretches by the kernels around them, every kernel by name)."""

from __future__ import annotations

import time


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


def step_timer():
    """A TrainerCallback recording when each optimizer step ends (host clock; the trainer reads the GPU every
    step, so the host is never more than a step ahead). Its summary splits a run into the first step (lazy
    initialisation, first captures), the median step and the time steps took beyond the median (later captures)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.t = [time.perf_counter()]

        def on_step_end(self, args, state, control, **kw):
            self.t.append(time.perf_counter())

        def summary(self) -> dict:
            d = sorted(b - a for a, b in zip(self.t, self.t[1:]))
            if not d:
                return {}
            med = d[len(d) // 2]
            first = self.t[1] - self.t[0]
            return {"steps": len(d), "first_s": round(first, 3), "median_ms": round(med * 1e3, 1),
                    "over_median_s": round(sum(x - med for x in d) - (first - med), 3), "sum_s": round(self.t[-1] - self.t[0], 3)}

    return StepTimer()


def summarize_profile(prof, wall_per_step: float, steps: int) -> None:
    avgs = prof.key_averages()

    kernels = [e for e in prof.events() if getattr(e, "device_type", None) is not None and "CUDA" in str(e.device_type)]
    kernel_us = sum(e.time_range.end - e.time_range.start for e in kernels)
    busy_us, end = 0.0, float("-inf")  # the union of kernel intervals: time the GPU ran anything
    gaps: dict[tuple[str, str], list[float]] = {}  # idle stretches over 0.2 ms, by the kernels on either side
    prev = None
    for e in sorted(kernels, key=lambda e: e.time_range.start):
        a, b = e.time_range.start, e.time_range.end
        if prev is not None and a - end > 200:
            gaps.setdefault((prev.name[:48], e.name[:48]), []).append(a - end)
        busy_us += max(0.0, b - max(a, end))
        if b > end:
            end, prev = b, e
    print(f"-- profile: wall {wall_per_step*1e3:.1f} ms/step, GPU kernels {kernel_us/steps/1e3:.1f} ms/step, GPU busy "
          f"{busy_us/steps/1e3:.1f} ms/step ({100*busy_us/steps/1e6/wall_per_step:.0f}%), {len(kernels)/steps:.0f} kernels/step",
          flush=True)  # fmt: skip
    print("-- GPU idle over 0.2 ms, by the kernels before and after (ms per step, count per step):")
    for (x, y), v in sorted(gaps.items(), key=lambda kv: -sum(kv[1]))[:14]:
        print(f"   {sum(v)/steps/1e3:7.2f} ms  {len(v)/steps:5.1f}x  {x}  ->  {y}")
    by_name: dict[str, list[float]] = {}  # every kernel by its full name: what the GPU spends a step on
    for e in kernels:
        by_name.setdefault(e.name[:150], []).append(e.time_range.end - e.time_range.start)
    print("-- GPU kernels by name (ms per step, launches per step, mean us):")
    for name, v in sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:60]:
        print(f"   {sum(v)/steps/1e3:7.2f} ms  {len(v)/steps:6.1f}x  {sum(v)/len(v):8.1f} us  {name}")
    for key in ("self_cuda_time_total", "self_cpu_time_total"):
        try:
            print(avgs.table(sort_by=key, row_limit=18, max_name_column_width=60), flush=True)
        except Exception as e:  # the key's name differs across torch versions
            print(f"(table by {key}: {e})")
