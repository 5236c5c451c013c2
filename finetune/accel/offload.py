"""Checkpointed layers' inputs held in CPU memory between their forward and their backward.

A checkpointed decoder layer keeps only its input for the backward's recompute: one tokens x hidden tensor
per layer. At Llama-3.1-8B's shapes with a 12,864-token step that is 105 MB a layer, 3.4 GB for 32 layers,
the most a QLoRA step holds on the GPU besides the weights. `Offload` copies each input to pinned CPU memory
on a side stream while the following layers compute, and copies it back on another side stream while the
layer after it runs its backward, so the GPU holds about two of them at a time. The last layer's input stays
on the GPU (its backward follows the loss at once). torch.autograd.graph.save_on_cpu makes the same copies on
the compute stream, where they would wait for each other; Unsloth's offloaded checkpointing overlaps them.
The host runs ahead of the GPU by a whole step's launches, and memory freed while a copy still reads it is not
reused until the copy ends; so the host waits for the copy AHEAD layers back before queuing another, or the
GPU would hold every layer's input after all.

Works on any device: for a tensor that is not on a GPU, `save` keeps a copy and `load` hands it back (the
graphs' CPU tests run the bookkeeping that way).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

AHEAD = 2  # copies in flight each way at most: the host waits for older ones, which bounds the GPU memory they hold
AUTO_BYTES = 2**30  # 'auto' offloads when a step's checkpointed inputs would take this much GPU memory or more


def wanted(setting: bool | str, *, layers: int, max_tokens: int, hidden: int, itemsize: int = 2) -> bool:
    """The recipe's offload_activations resolved: True/False as given; 'auto' when the inputs a step keeps
    (layers x max_tokens x hidden, bf16) reach AUTO_BYTES. Measured on an H100 (benchmarks/RESULTS.md): at
    Llama-3.1-8B's shapes (3.4 GB a step) the copies hide behind the compute (the same step time) and the
    run reserves 2.5 GB less; at 1B (0.8 GB) a step takes 4% longer for 0.4 GB less."""
    if setting != "auto":
        return bool(setting)
    return layers * max_tokens * hidden * itemsize >= AUTO_BYTES


@dataclass(eq=False)
class Saved:
    """One layer input held for its backward."""

    held: Any  # pinned CPU copy (or, kept, the tensor itself)
    copied: Any = None  # event: the copy to `held` is done (None: nothing pending)
    gpu: Any = None  # the tensor back on its device, once fetched
    ready: Any = None  # event: `gpu` is written
    prev: "Saved | None" = None  # the input saved before this one in the same forward pass: fetched next
    compute: Any = None  # the stream whose pool `gpu` came from (set with `ready`)

    def __del__(self) -> None:
        # dropped while its fetch may still write `gpu` (a backward that ends early, a layer whose backward never
        # runs): `gpu` is freed into the compute stream's pool, so the compute stream waits for the copy first
        if self.ready is not None and self.compute is not None:
            try:
                self.compute.wait_event(self.ready)
            except Exception:  # interpreter shutdown: nothing runs after it
                pass


class Offload:
    """The copies of one training run (streams and counts)."""

    def __init__(self) -> None:
        self.last: Saved | None = None  # the forward pass's latest input
        self.inflight: deque[Any] = deque()  # events of the latest copies (out in forward, in in backward)
        self.streams: dict[Any, tuple[Any, Any]] = {}  # device -> (to the host, back to the device)
        self.stats = {"offloaded": 0, "offloaded_bytes": 0, "prefetched": 0, "fetched_late": 0}

    def _streams(self, device: Any) -> tuple[Any, Any]:
        import torch

        if device not in self.streams:
            self.streams[device] = (torch.cuda.Stream(device), torch.cuda.Stream(device))
        return self.streams[device]

    def save(self, x: Any, *, first: bool, keep: bool = False) -> Saved:
        """Hold x (a layer's input) for its backward; `first`: the forward pass's first layer; `keep`: leave x
        where it is (the pass's last layer)."""
        import torch

        prev = None if first else self.last
        if keep:
            s = Saved(held=x, gpu=x, prev=prev)
        elif not x.is_cuda:
            s = Saved(held=x.detach().clone(), prev=prev)
        else:
            to_host, _ = self._streams(x.device)
            to_host.wait_stream(torch.cuda.current_stream(x.device))  # x is written
            with torch.cuda.stream(to_host):
                held = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
                held.copy_(x, non_blocking=True)
                copied = torch.cuda.Event()
                copied.record(to_host)
            x.record_stream(to_host)  # x's memory is not reused before the copy is done
            self._throttle(copied)
            s = Saved(held=held, copied=copied, prev=prev)
            self.stats["offloaded"] += 1
            self.stats["offloaded_bytes"] += x.numel() * x.element_size()
        self.last = s
        return s

    def load(self, s: Saved, into: Any) -> None:
        """Copy s's tensor into `into` (the layer's input buffer) on the current stream, and start fetching the
        input saved before it (the next backward's)."""
        import torch

        if s.gpu is None and s.copied is None:  # held on the CPU
            into.copy_(s.held)
            self._fetch_next(s, into.device)
            return
        if s.gpu is None:
            self.stats["fetched_late"] += 1
            self._fetch(s, into.device)
        x, ready = s.gpu, s.ready
        s.gpu = s.ready = s.compute = None
        if ready is None:  # kept where it was
            into.copy_(x)
        else:
            compute = torch.cuda.current_stream(into.device)
            compute.wait_event(ready)
            into.copy_(x)  # x, the compute stream's, is freed after this copy in its order
            used = torch.cuda.Event()
            used.record(compute)
            self._throttle(used)
        self._fetch_next(s, into.device)

    def _throttle(self, event: Any) -> None:
        self.inflight.append(event)
        if len(self.inflight) > AHEAD:
            self.inflight.popleft().synchronize()

    def _fetch_next(self, s: Saved, device: Any) -> None:
        prev, s.prev = s.prev, None
        if prev is not None and prev.gpu is None and prev.copied is not None:
            self._fetch(prev, device)
            self.stats["prefetched"] += 1

    def _fetch(self, s: Saved, device: Any) -> None:
        import torch

        _, to_device = self._streams(device)
        # from the compute stream's pool, whose cached free blocks it reuses (a pool of the copy stream's own
        # held 0.3 GB more at 8B); the copy then waits for the compute work queued so far, which may still
        # read the block it was given: a layer's backward ahead of the one that reads it
        compute = torch.cuda.current_stream(device)
        gpu = torch.empty(s.held.shape, dtype=s.held.dtype, device=device)
        with torch.cuda.stream(to_device):
            to_device.wait_event(s.copied)
            to_device.wait_stream(compute)
            gpu.copy_(s.held, non_blocking=True)
            s.ready = torch.cuda.Event()
            s.ready.record(to_device)
        s.gpu, s.compute = gpu, compute
