"""The replay side of the graphed layers (finetune/accel/graphs.py): the static buffers a layer's programs read
and write, and the autograd node that replays them.

The backward graph adds the LoRA weights' gradients straight into fixed accumulators that serve as
the weights' `.grad` (attached again whenever the trainer has set `.grad` to None), so nothing per
weight runs in Python or autograd between replays: with many micro-batches per step that per-weight
work (a clone and an accumulation for each of a layer's ~14 LoRA tensors) outweighed the GPU's.
With offload, a checkpointed layer's kept input waits for its backward in pinned CPU memory instead
(finetune/accel/offload.py), handed over in the replay's autograd node.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class _Shape:
    """Static buffers of one input shape, shared by every layer (views of one allocation). A layer's forward
    graph reads its input from x and leaves its output there, its backward graph reads the output's gradient
    from gout and leaves the input's gradient there: the next layer's replay then finds its input (or its
    output's gradient) in place, unless something else wrote the buffer since (`held`)."""

    x: Any
    gout: Any
    held: dict  # "x" / "gout": a weak reference to the tensor the buffer was last handed out as (one for all shapes)
    cos: Any
    sin: Any
    cos_src: Any = None  # the rotary tensors last copied in (the same objects for every layer of a step)
    cu: Any = (
        None  # packed rows (finetune/accel/packing.py): their offsets, copied in every step like the rotary tables
    )


@dataclass
class _Entry:
    """One layer at one shape: its two captured programs, and the layer's trainable weights with the
    accumulators their gradients are added into (shared by every shape of the layer)."""

    params: list[Any]
    grads: list[Any]
    run_fwd: Callable[[], None]
    run_bwd: Callable[[], None]
    graphs: tuple = field(default_factory=tuple)  # the CUDAGraph objects (replay needs them alive)
    x: Any = None  # a kept layer's own input buffer (its saved activations point into it); None: the shape's shared one


@dataclass
class _Shared:
    """One shape's programs on the stand-in layer, replayed for every layer of its structure."""

    run_fwd: Callable[[], None]
    run_bwd: Callable[[], None]
    grads: list[Any]  # the stand-in's LoRA weight gradients of the last backward (written, not added)
    graphs: tuple = field(default_factory=tuple)


@functools.cache
def _replay_fn() -> Any:
    """The autograd.Function that replays a layer's graphs (built on first use: torch is imported then)."""
    import torch

    class Replay(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx: Any, x: Any, entry: _Entry, st: _Shape, hold: Any, cos: Any, sin: Any, cu: Any, *params: Any
        ) -> Any:
            ctx.entry, ctx.st, ctx.rope, ctx.held = entry, st, (cos, sin, cu), None
            if entry.x is None:  # checkpointed: keep the input, recompute the rest
                if x is not _alive(st.held, "x"):  # else x is the previous layer's output, still in st.x
                    st.x.copy_(x)
                if hold is None:
                    ctx.save_for_backward(x)
                else:  # held in CPU memory until the backward: hold = (Offload, first layer?, last layer?)
                    ctx.offload = hold[0]
                    ctx.held = hold[0].save(x, first=hold[1], keep=hold[2])
            else:  # kept: the forward graph leaves what backward needs in the pool
                entry.x.copy_(x)
            entry.run_fwd()
            out = st.x.clone()
            st.held["x"] = weakref.ref(out)  # weak: an offloaded layer input is freed as soon as it is copied out
            return out

        @staticmethod
        def backward(ctx: Any, gout: Any) -> Any:
            st, entry = ctx.st, ctx.entry
            _load_rope(st, *ctx.rope)
            st.held.pop("x", None)
            if entry.x is None:
                if ctx.held is None:
                    (x,) = ctx.saved_tensors
                    st.x.copy_(x)
                else:
                    ctx.offload.load(ctx.held, into=st.x)
                    ctx.held = None
            if gout is not _alive(st.held, "gout"):  # else gout is the next layer's input gradient, still in st.gout
                st.gout.copy_(gout)
            _attach_grads(entry)
            entry.run_bwd()  # adds the weights' gradients into their .grad (the accumulators)
            gx = st.gout.clone()
            st.held["gout"] = weakref.ref(gx)
            return (gx, None, None, None, None, None, None, *[None] * len(entry.params))

    return Replay


@functools.cache
def _edges_as_outputs() -> bool:
    """Whether torch.autograd.grad takes a gradient edge for an output (newer torch); probed once on the CPU."""
    import torch

    try:
        x = torch.ones(2, requires_grad=True)
        edge = torch.autograd.graph.get_gradient_edge(x * 2)
        return torch.autograd.grad(edge, [x], torch.ones(2))[0] is not None
    except (AttributeError, TypeError, RuntimeError):
        return False


def _grad_root(out: Any) -> Any:
    """What a layer's backward differentiates from: its output's gradient edge where torch takes one (the output's
    memory is then free while the backward runs: autograd never reads it), else the output."""
    import torch

    return torch.autograd.graph.get_gradient_edge(out) if _edges_as_outputs() else out


def _alive(held: dict, name: str) -> Any:
    """The tensor a shared buffer was last handed out as, while it lives (else None)."""
    ref = held.get(name)
    return ref() if ref is not None else None


def _attach_grads(entry: _Entry) -> None:
    """Make each weight's .grad its accumulator before a backward adds into it: after the trainer set
    .grad to None (a new step) the accumulator starts from zero; a .grad it set itself is carried over."""
    import torch

    fresh = []
    for p, acc in zip(entry.params, entry.grads):
        if p.grad is acc:
            continue
        if p.grad is None:
            fresh.append(acc)
        else:
            acc.copy_(p.grad)
        p.grad = acc
    if fresh:
        torch._foreach_zero_(fresh)


def _load_rope(st: _Shape, cos: Any, sin: Any, cu: Any = None) -> None:
    """This step's rotary tables (and packed rows' offsets) into the shape's buffers, once per step."""
    if st.cos_src is not cos:
        st.cos.copy_(cos)
        st.sin.copy_(sin)
        if st.cu is not None:
            st.cu.copy_(cu)
        st.cos_src = cos
