"""A decoder layer's MLP over token tiles in the graphed layers (finetune/accel/graphs.py): less memory, same math.

At an 8B model's shapes a step's 12,864 tokens give the MLP intermediates of 12,864 x 14,336 (369 MB each in
bf16): the recompute keeps three of them for its backward and the backward makes two more, all in the CUDA
graphs' memory pool, which the process then holds for the whole run (benchmarks/RESULTS.md). Here, as
DeepSpeed's TiledMLP and Liger's LigerTiledSwiGLUMLP do, the MLP runs on a tile of tokens at a time:

  forward     (no grad) each tile's output written into the layer's MLP output
  recompute   nothing: the layer's output is never read in a recompute (its MLP's down projection was
              found unread), so only the MLP's input is kept
  backward    per tile: the MLP again with grad, then its gradients (input and LoRA weights) for that tile

so the recompute's MLP FLOPs stay those of one forward, while its intermediates exist one tile at a time.
The tiles' GEMMs share each frozen weight's dequantized / FP8 operands (lora_fused.shared_weight_operands),
so a weight is not dequantized or cast once per tile. Tiles are whole multiples of 16 tokens (FP8 GEMMs need it).
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any, Callable, Iterator

from .layers import autocast_as, autocast_state

TILE_ROWS = 16  # every tile but the last a multiple of this many tokens (FP8 GEMMs take row counts divisible by 16)


def tile_count(setting: int | str, *, offloaded: bool, max_tokens: int, hidden: int) -> int:
    """The recipe's recompute_mlp_tiles resolved: a count as given (1: off); 'auto': where the layers' inputs are
    held in CPU memory (a model whose activations press on the GPU's memory), one tile per `hidden` tokens of a
    step (Liger's default: at 8B, 4 tiles of 12,864 tokens), else 1."""
    if setting != "auto":
        return max(1, int(setting))
    if not offloaded or hidden <= 0:
        return 1
    return max(1, math.ceil(max_tokens / hidden))


def mlp_down(layer: Any, width: int) -> Any:
    """The down projection of `layer`'s MLP when that MLP maps `width` (hidden) features back to `width` (what
    tiles need: each tile's output fills its rows of the MLP's), else None."""
    down = getattr(getattr(layer, "mlp", None), "down_proj", None)
    return down if getattr(getattr(down, "base_layer", down), "out_features", None) == width else None


def tiles_of(rows: int, tiles: int) -> list[slice]:
    """`rows` tokens cut into at most `tiles` slices, each but the last a multiple of TILE_ROWS long."""
    step = -(-rows // max(1, tiles))
    step = -(-step // TILE_ROWS) * TILE_ROWS
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)] if rows else []


@functools.cache
def _tiled_fn() -> Any:
    """The autograd.Function (built on first use: torch is imported then)."""
    import torch

    from . import lora_fused

    class TiledMLP(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx: Any, x: Any, run: Callable[[Any], Any], tiles: int, unread: bool, skip: list, ac: tuple, *params: Any
        ) -> Any:
            # run: the MLP's own forward; unread: nobody reads the output (a recompute), so none is computed;
            # skip: the layer's Linears whose outputs a recompute need not compute; ac: the autocast state
            ctx.run, ctx.tiles, ctx.skip, ctx.ac, ctx.params = run, tiles, skip, ac, params
            ctx.save_for_backward(x)
            if unread:
                return x.new_empty(x.shape)
            x2 = x.reshape(-1, x.shape[-1])
            out = None
            with lora_fused.shared_weight_operands(), autocast_as(x.device.type, ac):
                for part in tiles_of(x2.shape[0], tiles):
                    y = run(x2[part])
                    if out is None:  # the MLP's output dtype (autocast's, say), hidden wide
                        out = y.new_empty((x2.shape[0], y.shape[-1]))
                    out[part] = y
                    del y
            return out.view(*x.shape[:-1], out.shape[-1])

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            params = ctx.params
            x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
            gx = torch.empty_like(x2)
            gp: list[Any] = [None] * len(params)
            with lora_fused.shared_weight_operands():
                for part in tiles_of(x2.shape[0], ctx.tiles):
                    with torch.enable_grad(), autocast_as(x.device.type, ctx.ac), lora_fused.unread_outputs(ctx.skip):
                        xt = x2[part].detach().requires_grad_(True)
                        out = ctx.run(xt)
                    with autocast_as(x.device.type, ctx.ac):
                        got = torch.autograd.grad(out, [xt, *params], g2[part], allow_unused=True)
                    gx[part] = got[0]
                    for i, gi in enumerate(got[1:]):  # summed over the tiles in float32, as one GEMM would
                        if gi is not None:
                            gp[i] = gi.float() if gp[i] is None else gp[i].add_(gi)
                    del out, got  # before the next tile's intermediates
            gp = [g if g is None else g.to(p.dtype) for g, p in zip(gp, params)]
            return (gx.view(x.shape), None, None, None, None, None, *gp)

    return TiledMLP


@contextlib.contextmanager
def tiled(mlp: Any, tiles: int, *, unread: bool, skip: list) -> Iterator[None]:
    """Inside, `mlp` (a module mapping hidden -> hidden per token) runs over `tiles` token tiles. unread: its
    output is not computed (a recompute's, whose caller checked nothing reads it), only its gradients later. Each
    tile runs the forward the MLP has now: one bound to it (Liger's, gated_mlp's), else its class's."""
    run = vars(mlp).get("forward") or type(mlp).forward.__get__(mlp)
    params = [p for p in mlp.parameters() if p.requires_grad]

    def forward(x: Any) -> Any:
        return _tiled_fn().apply(x, run, tiles, unread, list(skip), autocast_state(x), *params)

    had = vars(mlp).get("forward")
    mlp.forward = forward
    try:
        yield
    finally:
        if had is None:
            vars(mlp).pop("forward", None)
        else:
            mlp.forward = had
