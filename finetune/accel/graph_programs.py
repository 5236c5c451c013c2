"""One decoder layer's programs for the graphed layers (finetune/accel/graphs.py), to run or capture.

Each reads and writes the shape's static buffers (finetune/accel/graph_replay.py _Shape):

  forward   checkpointed: the layer under no_grad, its output over its input in st.x; kept: the layer with grad,
            autograd's saved activations left where the program wrote them, for the backward to read
  backward  checkpointed: the layer recomputed with grad (fused LoRA outputs nothing reads skipped, its MLP
            over token tiles where asked), then autograd.grad for its input and its trainable weights;
            kept: autograd.grad from the forward's output, no recompute. The input's gradient goes into
            st.gout, the weights' gradients into the accumulators (added, or written for a shared stand-in)
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

from . import tiled_mlp
from .graph_replay import _grad_root, _Shape
from .layers import autocast_as


def layer_call(layer: Any, st: _Shape, key: tuple, varlen_max: int) -> tuple[Callable[[Any], Any], Callable[[], Any]]:
    """How the programs call the layer on an input (its own forward, on the shape's rotary tables and packed rows'
    offsets), and the autocast they run it under (the shape key's)."""
    orig = type(layer).forward.__get__(layer)

    def autocast() -> Any:
        return autocast_as(st.x.device.type, key[-1])

    packed = (
        {}
        if st.cu is None
        else {
            "cu_seq_lens_q": st.cu,
            "cu_seq_lens_k": st.cu,
            "max_length_q": varlen_max,
            "max_length_k": varlen_max,
        }
    )

    def call(x: Any) -> Any:
        # no mask: rows are padded on the right, so under causal attention no real token sees a pad (packed
        # rows: the attention keeps each row to itself by its offsets)
        out = orig(x, attention_mask=None, position_embeddings=(st.cos, st.sin), use_cache=False, **packed)
        return out[0] if isinstance(out, tuple) else out

    return call, autocast


def grads_probe(
    call: Callable[[Any], Any], autocast: Callable[[], Any], params: list[Any], st: _Shape, xbuf: Any
) -> Callable[..., list[Any]]:
    """The layer's gradients for the output gradient in st.gout, with the given fused LoRA outputs left uncomputed
    (filled with `fill`): what finetune/accel/graph_sharing.py unread_outputs compares."""
    import torch

    from . import lora_fused

    def grads_of(unread: list[Any], fill: float | None = None) -> list[Any]:
        with torch.enable_grad(), autocast(), lora_fused.unread_outputs(unread, fill):
            x = xbuf.detach().requires_grad_(True)
            out = call(x)
        with autocast():
            return [g for g in torch.autograd.grad(out, [x, *params], st.gout, allow_unused=True) if g is not None]

    return grads_of


def programs(
    layer: Any,
    call: Callable[[Any], Any],
    autocast: Callable[[], Any],
    params: list[Any],
    grads_acc: list[Any],
    st: _Shape,
    xbuf: Any,
    *,
    skip: list[Any],
    tiles: int,
    kept: bool,
    add: bool,
) -> tuple[Callable[[], None], Callable[[], None], Callable[[], None]]:
    """The layer's forward and backward bodies (to run or capture), and its recompute backward.
    skip: the fused LoRA Linears whose outputs the recompute leaves uncomputed; tiles: the token tiles the
    checkpointed forward and recompute run its MLP over; add: the backward adds the weights' gradients into
    grads_acc (else writes them)."""
    import torch

    from . import lora_fused

    def grads_into_buffers(out: Any, x: Any) -> None:
        # out: what _grad_root gave (the output's gradient edge where torch takes one)
        with autocast():
            grads = torch.autograd.grad(out, [x, *params], st.gout, allow_unused=True)
        with torch.no_grad():
            st.gout.copy_(grads[0])  # after every read of st.gout: the input's gradient for the layer before
            pairs = [(acc, g) for acc, g in zip(grads_acc, grads[1:]) if g is not None]
            if pairs:
                (torch._foreach_add_ if add else torch._foreach_copy_)([a for a, _ in pairs], [g for _, g in pairs])

    def mlp_tiled(unread: bool) -> Any:
        if tiles == 1:
            return contextlib.nullcontext()
        return tiled_mlp.tiled(layer.mlp, tiles, unread=unread, skip=skip)

    def recompute_grads() -> None:  # checkpointed backward: the layer again with grad, then its grads
        with (
            torch.enable_grad(),
            autocast(),
            lora_fused.unread_outputs(skip),
            lora_fused.keep_dequantized(),
            mlp_tiled(unread=True),
        ):
            x = xbuf.detach().requires_grad_(True)
            out = _grad_root(call(x))
        grads_into_buffers(out, x)

    if not kept:

        def fwd() -> None:
            with torch.no_grad(), autocast(), mlp_tiled(unread=False):
                st.x.copy_(call(xbuf))  # the output over the input, which nothing reads any more

        return fwd, recompute_grads, recompute_grads

    pending: list[tuple[Any, Any]] = []

    def fwd() -> None:  # with grad: autograd's saved activations stay where this program wrote them
        with torch.enable_grad(), autocast():
            # .data: a version counter of its own, so the copies into the buffer before every replay
            # do not mark what autograd saved from it as modified when the backward is captured
            x = xbuf.data.requires_grad_(True)
            out = call(x)
        with torch.no_grad():
            st.x.copy_(out)
        pending[:] = [(_grad_root(out), x)]

    def bwd() -> None:
        grads_into_buffers(*pending.pop())

    return fwd, bwd, recompute_grads
