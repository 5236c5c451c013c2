"""CUDA-graph capture mechanics for the graphed layers (finetune/accel/graphs.py) that need none of their state.

What a capture runs under (autograd's stale-stream override), what is left to do after a capture that began
and never ended (the graph kept alive, CUDA's random number generator taken out of its capture state), and
the text a failed capture is reported with (the op's own error, which capture_end's masks).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

# graphs whose capture began and never ended: the caching allocator's filter for their pool still points at them
_UNENDED_CAPTURES: list[Any] = []


@contextlib.contextmanager
def _stale_streams_overridden() -> Any:
    """Inside, autograd runs a node that last ran on a stream outside the capture (a weight's gradient
    accumulator made by an eager step) on the capturing stream instead of failing the capture: every
    program here runs on one stream, so that is the stream it belongs to. torch 2.12+; a no-op before."""
    import torch

    setter = getattr(torch.autograd.graph, "set_override_stale_capture_stream", None)
    if setter is None:
        yield
        return
    was = bool(getattr(torch._C, "_override_stale_capture_stream", lambda: False)())
    setter(True)
    try:
        yield
    finally:
        setter(was)


def _abandon_capture(g: Any) -> None:
    """A capture that did not end (capture_begin failed partway, or the body made a CUDA error and capture_end
    failed too) leaves the caching allocator recording into its pool, its filter pointing at the graph
    object, and CUDA's random number generator counting offsets as captured. The graph is kept alive (reset)
    so that filter never points at freed memory, and an empty capture ends the generator's capture state
    (without it the next random op outside a capture fails: "Offset increment outside graph capture").
    The pool stays marked as recording: later captures need a fresh one (capture_begin on it fails)."""
    with contextlib.suppress(Exception):
        g.reset()
    _UNENDED_CAPTURES.append(g)
    _reset_rng_capture_state()


def _reset_rng_capture_state() -> None:
    import warnings

    import torch

    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the CUDA Graph is empty"
        with torch.cuda.stream(torch.cuda.Stream()):
            reset = torch.cuda.CUDAGraph()
            reset.capture_begin()
            reset.capture_end()
        reset.reset()


def _failure_text(e: BaseException) -> str:
    """What a failed capture is reported as: the error, with where it was raised, and its first cause before it."""
    import traceback

    def said(x: BaseException) -> str:
        where = traceback.extract_tb(x.__traceback__)[-1] if x.__traceback__ else None
        at = f" (at {Path(where.filename).name}:{where.lineno} {where.name})" if where else ""
        return f"{type(x).__name__}: {str(x).splitlines()[0] if str(x) else ''}{at}"

    # an op that fails inside `torch.cuda.graph(...)` is masked by capture_end's "operation failed due to
    # a previous error during capture": the op's own error is the exception's context, and the cause to report
    first: BaseException = e
    for _ in range(8):
        inner = first.__cause__ or (None if first.__suppress_context__ else first.__context__)
        if inner is None:
            break
        first = inner
    return said(e) if first is e else f"{said(first)}; then {said(e)}"
