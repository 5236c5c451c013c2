"""The CUDA allocator's history over a training run (benchmarks/bench_train_gpu.py --memory-trace): where the
reserved memory peaked, which code held the blocks live then, a CUDA graphs' pool's own peak, and the free gaps
inside each stream's mapped memory with the code that left them."""

from __future__ import annotations


def memory_trace_start(max_entries: int = 2_000_000) -> bool:
    """Start recording every CUDA allocation and segment change with its Python stack (PyTorch's memory
    history), for `memory_trace_report` at train end. False without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return False
    _TRACE.update(max_entries=max_entries, reserved_before=torch.cuda.memory_reserved())
    torch.cuda.memory._record_memory_history(max_entries=max_entries, stacks="python")
    return True


def memory_trace_stop() -> None:
    """Stop recording (after a run that failed before its report)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.memory._record_memory_history(enabled=None)


_TRACE: dict = {}  # what memory_trace_start saw: its max_entries, the memory reserved before recording


def _where(frames: list, ours: tuple[str, ...]) -> str:
    """The innermost frame of a stack that lies in one of `ours` (path parts), else the innermost frame."""
    for f in frames:
        name = f.get("filename", "")
        if any(p in name for p in ours) and "train_profile" not in name and "memory_trace" not in name:
            return f"{name.rsplit('/', 2)[-2]}/{name.rsplit('/', 1)[-1]}:{f.get('line')} {f.get('name')}"
    f = frames[0] if frames else {}
    return f"{f.get('filename', '?').rsplit('/', 1)[-1]}:{f.get('line')} {f.get('name')}"


def memory_trace_report(top: int = 25) -> dict:
    """Where the process's peak reserved GPU memory came from: replays the recorded allocator trace (see
    `memory_trace_start`) to the moment reserved memory peaked and groups the blocks live then by the code
    that allocated them (innermost frame in lorag, peft, transformers, trl, liger or bitsandbytes) and stream,
    with the reserved-but-free remainder per stream. Prints it and stops the recording."""
    import torch

    snap = torch.cuda.memory._snapshot()
    torch.cuda.memory._record_memory_history(enabled=None)
    trace = snap["device_traces"][torch.cuda.current_device()]
    before, wrapped = _TRACE.get("reserved_before", 0), len(trace) >= _TRACE.get("max_entries", float("inf"))
    if wrapped or before:  # segments from before the oldest event kept are not in the figures below
        since = "its oldest event kept (the history wrapped)" if wrapped else "recording start"
        print(f"== memory trace: figures count from {since}; {before / 2**30:.3f} GB was reserved before", flush=True)
    return trace_peak_report(trace, top)


def trace_peak_report(trace: list[dict], top: int = 25) -> dict:
    """`memory_trace_report`'s analysis of one device's allocator trace (PyTorch's snapshot format)."""
    ours = ("finetune/", "peft/", "transformers/", "trl/", "liger_kernel/", "bitsandbytes/", "benchmarks/")
    reserved = peak = peak_at = 0
    by_stream_res: dict[int, int] = {}
    peak_streams: dict[int, int] = {}
    for i, e in enumerate(trace):
        a, size = e["action"], e["size"]
        if a in ("segment_alloc", "segment_map"):
            reserved += size
            by_stream_res[e["stream"]] = by_stream_res.get(e["stream"], 0) + size
        elif a in ("segment_free", "segment_unmap"):
            reserved -= size
            by_stream_res[e["stream"]] = by_stream_res.get(e["stream"], 0) - size
        if reserved > peak:
            peak, peak_at, peak_streams = reserved, i, dict(by_stream_res)
    end = peak_at + 1  # with the allocations the peak's growth was for (they follow it)
    while end < len(trace) and trace[end]["action"] == "alloc":
        end += 1
    live: dict[int, dict] = {}
    for e in trace[:end]:
        if e["action"] == "alloc":
            live[e["addr"]] = e
        elif e["action"] in ("free_completed",):
            live.pop(e["addr"], None)
    groups: dict[tuple, list] = {}
    used_by_stream: dict[int, int] = {}
    for e in live.values():
        key = (_where(e.get("frames", []), ours), e["stream"])
        g = groups.setdefault(key, [0, 0])
        g[0] += e["size"]
        g[1] += 1
        used_by_stream[e["stream"]] = used_by_stream.get(e["stream"], 0) + e["size"]
    gb = 2**30
    rows = sorted(groups.items(), key=lambda kv: -kv[1][0])[:top]
    print(
        f"== memory trace: {len(trace)} events; reserved peaked at {peak / gb:.3f} GB (event {peak_at}, "
        f"{peak_at / max(len(trace), 1):.0%} through); live then {sum(used_by_stream.values()) / gb:.3f} GB",
        flush=True,
    )
    for s, r in sorted(peak_streams.items(), key=lambda kv: -kv[1]):
        print(f"   stream {s}: reserved {r / gb:.3f} GB, live {used_by_stream.get(s, 0) / gb:.3f} GB", flush=True)
    for (where, stream), (size, n) in rows:
        print(f"   {size / gb:7.3f} GB {n:6d} blocks  stream {stream}  {where}", flush=True)
    # the reserved curve around the peak: what happened in the events just before it
    recent = [e for e in trace[max(0, peak_at - 400) : peak_at + 1] if e["action"] in ("segment_alloc", "segment_map")]
    for e in recent[-8:]:
        print(f"   grew {e['size'] / 2**20:8.1f} MB stream {e['stream']} at {_where(e.get('frames', []), ours)}")
    side = [s for s, r in peak_streams.items() if r - used_by_stream.get(s, 0) >= gb // 8]
    holes = {s: free_gaps(trace[:end], s, ours) for s in peak_streams}
    return {
        "holes": holes,
        "peak_reserved_gb": round(peak / gb, 3),
        "live_gb": round(sum(used_by_stream.values()) / gb, 3),
        "top": [[w, s, round(b / gb, 3), n] for (w, s), (b, n) in rows],
        "stream_peaks": stream_live_peaks(trace[:end], side, ours, top),
    }


def free_gaps(trace: list[dict], stream: int, ours: tuple[str, ...], top: int = 12) -> dict:
    """The reserved-but-free memory of `stream` at the end of `trace`: the gaps between its live blocks inside its
    mapped segments, as a size histogram and the largest gaps, each with the code that allocated the last block
    freed there (what left the hole). Prints it."""
    ranges = _Ranges()  # mapped memory
    unmapped: list[tuple[int, int, int]] = []  # (event index, start, end): a block freed before is gone from there
    live: dict[int, dict] = {}
    freed: dict[int, tuple[int, dict]] = {}  # addr -> (event index, the freed block's alloc event)
    for i, e in enumerate(trace):
        if e["stream"] != stream:
            continue
        a, lo, hi = e["action"], e["addr"], e["addr"] + e["size"]
        if a in ("segment_alloc", "segment_map"):
            ranges.add(lo, hi)
        elif a in ("segment_free", "segment_unmap"):
            ranges.remove(lo, hi)
            unmapped.append((i, lo, hi))
        elif a == "alloc":
            live[e["addr"]] = e
        elif a == "free_completed" and e["addr"] in live:
            freed[e["addr"]] = (i, live.pop(e["addr"]))
    blocks = sorted((b["addr"], b["addr"] + b["size"]) for b in live.values())
    gaps: list[tuple[int, int]] = []
    j = 0
    for lo, hi in ranges.spans:
        at = lo
        while j < len(blocks) and blocks[j][1] <= lo:
            j += 1
        k = j
        while k < len(blocks) and blocks[k][0] < hi:
            if blocks[k][0] > at:
                gaps.append((at, blocks[k][0]))
            at = max(at, blocks[k][1])
            k += 1
        if at < hi:
            gaps.append((at, hi))
    mb = 2**20
    bins = {"< 2 MB": 0, "2-32 MB": 0, "32-128 MB": 0, ">= 128 MB": 0}
    for lo, hi in gaps:
        n = hi - lo
        key = "< 2 MB" if n < 2 * mb else "2-32 MB" if n < 32 * mb else "32-128 MB" if n < 128 * mb else ">= 128 MB"
        bins[key] += n
    rows = []
    for lo, hi in sorted(gaps, key=lambda g: g[0] - g[1])[:top]:
        over = (v for a, v in freed.items() if a < hi and a + v[1]["size"] > lo)  # freed blocks overlapping it
        last = max(over, key=lambda v: v[0], default=None)
        if last is not None and any(i > last[0] and u_lo < hi and u_hi > lo for i, u_lo, u_hi in unmapped):
            last = None  # unmapped after that block was freed: the memory there is newly mapped
        rows.append([round((hi - lo) / mb, 1), _where(last[1].get("frames", []), ours) if last else "never used"])
    total = sum(hi - lo for lo, hi in gaps)
    print(
        f"== stream {stream}: {total / 2**30:.3f} GB free in {len(gaps)} gaps; by gap size (MB): "
        + ", ".join(f"{k} {v / mb:.0f}" for k, v in bins.items()),
        flush=True,
    )
    for size, where in rows:
        print(f"   {size:8.1f} MB gap, last freed there: {where}", flush=True)
    return {"free_gb": round(total / 2**30, 3), "bins_mb": {k: round(v / mb) for k, v in bins.items()}, "top": rows}


class _Ranges:
    """Disjoint, sorted [start, end) address ranges: mapped segments, coalesced as they are added."""

    def __init__(self) -> None:
        self.spans: list[list[int]] = []

    def _overlapping(self, lo: int, hi: int) -> tuple[int, int]:
        """The slice of spans touching [lo, hi] (adjacent ones included): from the first ending at or after lo
        (a binary search) to the last starting at or before hi."""
        import bisect

        i = bisect.bisect_left(self.spans, lo, key=lambda s: s[1])
        j = i
        while j < len(self.spans) and self.spans[j][0] <= hi:
            j += 1
        return i, j

    def add(self, lo: int, hi: int) -> None:
        i, j = self._overlapping(lo, hi)
        if i < j:
            lo, hi = min(lo, self.spans[i][0]), max(hi, self.spans[j - 1][1])
        self.spans[i:j] = [[lo, hi]]

    def remove(self, lo: int, hi: int) -> None:
        i, j = self._overlapping(lo, hi)
        kept = [r for s in self.spans[i:j] for r in ([s[0], min(s[1], lo)], [max(s[0], hi), s[1]]) if r[0] < r[1]]
        self.spans[i:j] = kept


def stream_live_peaks(trace: list[dict], streams: list[int], ours: tuple[str, ...], top: int = 25) -> dict:
    """For each of `streams` (those holding much reserved memory that was free at the reserved peak: a CUDA
    graphs' pool, whose captures' blocks are all freed once they end), the most its blocks were live at once
    and the blocks live then, grouped by the innermost two frames in `ours`: what that pool's size is for."""
    live_by: dict[int, int] = {}
    best: dict[int, tuple[int, int]] = {}  # stream -> (live bytes, event index)
    seen: set[int] = set()  # blocks allocated within the trace (a wrapped one frees blocks it never saw made)
    for i, e in enumerate(trace):
        s = e["stream"]
        if s not in streams:
            continue
        if e["action"] == "alloc":
            seen.add(e["addr"])
            live_by[s] = live_by.get(s, 0) + e["size"]
            if live_by[s] > best.get(s, (0, 0))[0]:
                best[s] = (live_by[s], i)
        elif e["action"] == "free_completed" and e["addr"] in seen:
            seen.discard(e["addr"])
            live_by[s] = live_by.get(s, 0) - e["size"]
    gb, out = 2**30, {}
    for s, (most, at) in best.items():
        live: dict[int, dict] = {}
        for e in trace[: at + 1]:
            if e["stream"] != s:
                continue
            if e["action"] == "alloc":
                live[e["addr"]] = e
            elif e["action"] == "free_completed":
                live.pop(e["addr"], None)
        groups: dict[str, list[int]] = {}
        for e in live.values():
            frames = [f for f in e.get("frames", []) if any(p in f.get("filename", "") for p in ours)]
            key = " < ".join(_where([f], ours) for f in frames[:2]) or _where(e.get("frames", []), ours)
            g = groups.setdefault(key, [0, 0])
            g[0] += e["size"]
            g[1] += 1
        rows = sorted(groups.items(), key=lambda kv: -kv[1][0])[:top]
        print(f"== stream {s}: live peaked at {most / gb:.3f} GB (event {at}); live then, by where allocated:")
        for where, (size, n) in rows:
            print(f"   {size / gb:7.3f} GB {n:5d} blocks  {where}", flush=True)
        out[s] = {"live_peak_gb": round(most / gb, 3), "top": [[w, round(b / gb, 3), n] for w, (b, n) in rows]}
    return out
