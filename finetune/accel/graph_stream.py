"""Warm-ups and captures of the graphed layers (finetune/accel/graphs.py), on one side stream into one memory pool.

A mixin of LayerGraphs (its state is LayerGraphs': the stream, the pool, the stats): a shape's programs run once
outside capture (lazy initialisation of cuBLAS and Triton), then each is captured as a CUDA graph on the side stream
(memory cached per stream is reused); a capture that does not end leaves a fresh pool for the next
(finetune/accel/graph_capture.py holds the mechanics that need no state).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable

from .graph_capture import _abandon_capture, _stale_streams_overridden
from .graph_replay import _Shape


class _SideStream:
    """LayerGraphs' warm-ups and captures, on its side stream."""

    def _clock(self) -> float:
        """Seconds, after the GPU's queued work (a warm-up's time is its GPU work's)."""
        import torch

        if self.capture and torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def _warm_up(
        self,
        key: tuple,
        kept: bool,
        fwd: Callable[[], None],
        bwd: Callable[[], None],
        xbuf: Any,
        hidden: Any,
        st: _Shape,
    ) -> None:
        """Lazy initialisation (cuBLAS, Triton) once per shape, outside capture."""
        import torch

        self._ensure_stream()
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        if (key, kept) in self.warm:
            return
        t0 = self._clock()
        xbuf.copy_(hidden.detach())  # real values for the warm-up run (the buffers start uninitialised)
        st.gout.zero_()
        with self._side_stream():
            for body in (fwd, bwd) if kept else (bwd, fwd):
                body()
        self.warm.add((key, kept))
        torch.cuda.empty_cache()  # what the warm-up cached for the side stream is never reused by the training stream
        self.stats["warmup_s"] += self._clock() - t0

    def _warm_and_capture(
        self, key: tuple, fwd: Callable[[], None], bwd: Callable[[], None], xbuf: Any, hidden: Any, st: _Shape
    ) -> tuple:
        """A recomputed layer's two graphs; one memory pool for all: every graph's temporaries are dead at its end."""
        self._warm_up(key, False, fwd, bwd, xbuf, hidden, st)
        return self._capture(fwd), self._capture(bwd)

    def _ensure_stream(self) -> None:
        import torch

        if self.stream is None and self.capture:
            self.stream = torch.cuda.Stream()

    @contextlib.contextmanager
    def _side_stream(self) -> Any:
        import torch

        self._ensure_stream()
        if self.stream is None:  # capture=False: the programs run where they are called
            yield
            return
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            yield
        torch.cuda.current_stream().wait_stream(self.stream)

    def _capture(self, body: Callable[[], None]) -> Any:
        import torch

        with self._side_stream(), _stale_streams_overridden():
            g = torch.cuda.CUDAGraph()
            try:
                g.capture_begin(pool=self.pool, capture_error_mode="thread_local")
            except BaseException:
                self._after_unended_capture(g)
                raise
            self.stats["graphs"] += 1
            try:
                body()
            except BaseException:
                try:
                    g.capture_end()
                except Exception:  # the body's own error is the one to report
                    self._after_unended_capture(g)
                raise
            try:
                g.capture_end()
            except BaseException:
                self._after_unended_capture(g)
                raise
        return g

    def _after_unended_capture(self, g: Any) -> None:
        """A capture that did not end: the graph abandoned (finetune/accel/graph_capture.py _abandon_capture),
        and later captures take a fresh pool (the old one is still marked as recording: capture_begin on it fails)."""
        import torch

        _abandon_capture(g)
        self.pool = torch.cuda.graph_pool_handle()
