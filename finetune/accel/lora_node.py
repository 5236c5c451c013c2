"""The fused LoRA node that finetune/accel/lora_fused.py installs: its autograd.Function (forward and backward as
that module's docstring gives them), and the operands it makes and keeps of the frozen base weight.

The base weight comes in the compute dtype or 4-bit (dequantized here, in forward and again in backward), its GEMMs
run in the compute dtype or in FP8 (finetune/accel/fp8.py: the adapter's delta added by addmm_, or joined into those
GEMMs). A gated MLP's input is kept as its two operands and recomputed in row chunks in backward
(finetune/accel/recomputed_input.py). The switches lora_fused.py sets around calls are read here: keep_dequantized
(_KEEP_DEQUANTIZED, with KEEP_FP8_OPERAND) and shared_weight_operands (_OPERANDS).
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable

from . import recomputed_input

# set inside lora_fused.keep_dequantized: a 4-bit weight dequantized in forward is kept for backward (_weight_kept)
_KEEP_DEQUANTIZED: contextvars.ContextVar[bool] = contextvars.ContextVar("lorag_keep_dequantized", default=False)
# inside keep_dequantized, a 4-bit weight whose GEMMs run in FP8 is kept as its input gradient's FP8 operand (half
# the bytes of the dequantized weight; the cast made in forward instead of backward). Off: the benchmark's
# `keep-w16` arm keeps the dequantized weight (lorag's default before). With fp8_lora_in_gemm: the joined operand
# [W ; A]ᵀ of its input gradient's GEMM (fp8.transposed_lora_operand)
KEEP_FP8_OPERAND = True
# set inside lora_fused.shared_weight_operands: each frozen weight's operands, made once for every call (_operands)
_OPERANDS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("lorag_weight_operands", default=None)


@functools.cache
def _lora_linear_fn() -> Any:
    """The autograd.Function (built on first use: torch is imported then)."""
    import torch

    from . import fp8 as fp8_ops

    class LoraLinear(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx: Any,
            x: Any,
            weight: Any,
            base4: Any,
            bias: Any,
            a: Any,
            b: Any,
            scale: float,
            unread: Any = None,
            fp8: Any = None,
            fast_accum: bool = False,
            key: Any = None,
            joined: bool = False,
            src: Any = None,
        ) -> Any:
            # fp8: the base weight's FP8 scales (per output, per input channel) to run its GEMMs in FP8, or None;
            # fast_accum: its forward GEMM accumulates at the tensor cores' precision (finetune/accel/fp8.py);
            # key: what names the weight among shared operands (its LoRA layer); joined: with fp8, the adapter's
            # delta is computed inside the base's FP8 GEMMs (fp8.matmul_lora), unless the operands are shared
            # weight: the base's weight in x's dtype, or None with base4 a 4-bit layer, dequantized here and
            # again in backward (as bitsandbytes' own matmul does: the full-size weight is never kept)
            # src: (gate, up, op, deferred) when x is op(gate, up), a gated MLP's (finetune/accel/gated_mlp.py):
            # those two are kept instead of x, which backward recomputes in row chunks for A's gradient; deferred
            # (only with unread; a recomputed_input.Deferred): x was never computed, so neither is x·Aᵀ here: B's
            # gradient comes from the chunks, and so may x's and the operands' (written over gate and up)
            deferred = src is not None and src[3] is not None
            a16, b16 = a.to(x.dtype), b.to(x.dtype)  # no-ops unless the trained weights are float32 masters
            x2 = None if deferred else x.reshape(-1, x.shape[-1])
            rows = x.numel() // x.shape[-1]
            u = None if deferred else x2 @ a16.t()
            # inside shared_weight_operands (an MLP run in token tiles): the weight's operands made once for all
            # tiles, each kind when first needed: the weight in x's dtype, or its FP8 forward operand where this
            # output is computed and its input-gradient one where a backward will run (a no-grad forward makes
            # none of those); the backward's FP8 operand is then kept (ctx.wt), not the weight
            shared = _OPERANDS.get()
            ops = None
            if shared is not None:
                kinds = ("w",) if fp8 is None else ("f",) * (unread is None) + ("t",) * ctx.needs_input_grad[0]
                ops = _operands(shared, key, base4, weight, x.dtype, fp8, kinds)
            ctx.wt = ops["t"] if ops is not None and "t" in ops else None
            w = weight if ops is None else ops.get("w")
            if unread is not None:  # nothing reads this output (see unread_outputs): what backward needs only
                out = x.new_empty((rows, b16.shape[0]))
                if not isinstance(unread, str):  # a fill value, else "empty"
                    out.fill_(unread)
            else:
                if ops is None and weight is None:
                    w = _dequantized(base4, x.dtype)
                inside = fp8 is not None and joined and ops is None  # the delta inside the GEMM
                if inside:
                    out = fp8_ops.matmul_lora(x2, w, fp8, u, b16 * scale, x.dtype, fast_accum=fast_accum)
                elif fp8 is not None:
                    wq = ops["f"] if ops is not None else None
                    out = fp8_ops.matmul(x2, w, fp8, x.dtype, fast_accum=fast_accum, wq=wq)
                else:
                    out = torch.addmm(bias.to(x.dtype), x2, w.t()) if bias is not None else x2 @ w.t()
                if fp8 is not None and bias is not None:
                    out.add_(bias.to(x.dtype))
                if not inside:
                    out.addmm_(u, b16.t(), alpha=scale)
            kept = (x2, None, None) if src is None else (None, *src[:2])
            ctx.wtj = None
            ctx.save_for_backward(kept[0], u, _weight_kept(ctx, weight, w, ops, fp8, joined, a16), a16, b16, *kept[1:])
            ctx.recompute = None if src is None else src[2]
            ctx.handoff = src[3] if deferred else None
            ctx.scale, ctx.in_shape, ctx.base4, ctx.dtypes, ctx.fp8 = scale, x.shape, base4, (a.dtype, b.dtype), fp8
            ctx.joined = joined
            return out.view(*x.shape[:-1], out.shape[-1])

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            x2, u, weight, a16, b16, gate, up = ctx.saved_tensors
            dt = a16.dtype  # x's
            g2 = g.reshape(-1, g.shape[-1]).to(dt)
            gu = (g2 @ b16).mul_(ctx.scale)
            ga = gb = None
            handoff, ctx.handoff = ctx.handoff, None
            inside = ctx.wt is None and ctx.fp8 is not None and ctx.joined  # gu·A inside the input gradient's GEMM
            chunked = _chunked_operand_grads(handoff, ctx.needs_input_grad[0])
            if chunked:  # written over the stand-in's own operands (saved ones may be a hook's copies)
                gate, up = handoff.operands
            if x2 is None and (ctx.needs_input_grad[4] or u is None):  # x recomputed in chunks (with x·Aᵀ if deferred)
                ga, gb = recomputed_input.grads(
                    gu,
                    gate,
                    up,
                    ctx.recompute,
                    *((g2, a16, ctx.scale) if u is None else ()),
                    input_grad=_input_grad_rows(ctx, g2, gu, a16, weight, dt, inside) if chunked else None,
                    operand_grads_into=handoff.operand_grads_into if chunked else None,
                )
            elif ctx.needs_input_grad[4]:
                ga = gu.t() @ x2
            if gb is None and ctx.needs_input_grad[5]:
                gb = (g2.t() @ u).mul_(ctx.scale)
            ga = ga.to(ctx.dtypes[0]) if ctx.needs_input_grad[4] else None
            gb = gb.to(ctx.dtypes[1]) if ctx.needs_input_grad[5] else None
            ctx.recompute = None
            gx = None
            if chunked:  # x's gradient went into gate and up: the stand-in for x returns those (no values here)
                handoff.written = True
                gx = a16.new_zeros(()).expand(ctx.in_shape)
            elif ctx.needs_input_grad[0]:
                gx = _input_grad_rows(ctx, g2, gu, a16, weight, dt, inside)(slice(None)).view(ctx.in_shape)
            ctx.wt = ctx.wtj = None
            return gx, None, None, None, ga, gb, None, None, None, None, None, None, None

    return LoraLinear


def _weight_kept(ctx: Any, weight: Any, w: Any, ops: Any, fp8: Any, joined: bool, a: Any) -> Any:
    """What a fused node's forward keeps of its base weight for backward: the weight itself when it is a
    parameter, or shared operands; a 4-bit weight dequantized here only inside keep_dequantized (a recompute, whose
    backward follows at once: one dequantization fewer, for one layer's weights in memory), and with FP8 GEMMs
    (KEEP_FP8_OPERAND) as its input gradient's FP8 operand instead (ctx.wt: half the bytes, cast once here), or
    with the adapter joined, the joined operand [W ; A]ᵀ of that GEMM (ctx.wtj, made with a = A in x's dtype)."""
    from . import fp8 as fp8_ops

    if ctx.wt is not None or not (weight is not None or _KEEP_DEQUANTIZED.get() or ops is not None):
        return None
    if weight is None and w is not None and fp8 is not None and KEEP_FP8_OPERAND:
        if joined and ctx.needs_input_grad[0]:
            ctx.wtj = fp8_ops.transposed_lora_operand(w, fp8, a)
        elif not joined:
            ctx.wt = fp8_ops.weight_operand(w, fp8, transposed=True) if ctx.needs_input_grad[0] else None
        return None
    return w


def _chunked_operand_grads(handoff: Any, input_grad: bool) -> bool:
    """Whether a deferred product's gradient is made in the chunks too, and the operands' from it, over gate and
    up (recomputed_input.Deferred)."""
    return (
        handoff is not None and handoff.operand_grads_into is not None and handoff.operands is not None and input_grad
    )


def _input_grad_rows(ctx: Any, g2: Any, gu: Any, a16: Any, weight: Any, dt: Any, inside: bool) -> Callable[[Any], Any]:
    """The fused node's input gradient g·W + gu·A for a slice of rows at a time (all rows: slice(None)), from what
    its forward kept of the weight, the weight's operand (dequantized, or FP8 for the input gradient, or with the
    adapter joined (inside) the joined FP8 operand [W ; A]ᵀ) made once for all slices."""
    from . import fp8 as fp8_ops

    if inside:
        op = ctx.wtj
        if op is None:
            w = weight if weight is not None else _dequantized(ctx.base4, dt)
            op = fp8_ops.transposed_lora_operand(w, ctx.fp8, a16)
        return lambda s: fp8_ops.matmul_transposed_lora(g2[s], None, ctx.fp8, gu[s], a16, dt, operand=op)
    wq = ctx.wt
    w = weight if weight is not None or wq is not None else _dequantized(ctx.base4, dt)
    if wq is None and ctx.fp8 is not None:
        wq, w = fp8_ops.colwise_transposed(w, ctx.fp8[1]), None  # matmul_transposed's own operand, made once

    def rows(s: Any) -> Any:
        gx = fp8_ops.matmul_transposed(g2[s], None, ctx.fp8, dt, wq=wq) if wq is not None else g2[s] @ w
        return gx.addmm_(gu[s], a16)

    return rows


def _operands(shared: dict, key: Any, base4: Any, weight: Any, dtype: Any, fp8: Any, kinds: tuple) -> dict:
    """A frozen weight's operands from `shared`, those of `kinds` not made yet made now from one dequantization:
    "w" the weight in the compute dtype (dequantized, for a 4-bit one), "f" its FP8 forward operand (scaled per
    output channel), "t" its FP8 input-gradient operand (transposed, scaled per input channel)."""
    from . import fp8 as fp8_ops

    got = shared.setdefault((id(key), dtype, fp8 is not None), {})
    missing = [k for k in kinds if k not in got]
    if missing:
        w = _dequantized(base4, dtype) if weight is None else weight
        for k in missing:
            got[k] = w if k == "w" else fp8_ops.weight_operand(w, fp8, transposed=k == "t")
    return got


def _dequantized(base4: Any, dtype: Any) -> Any:
    import bitsandbytes.functional as bnb_f

    return bnb_f.dequantize_4bit(base4.weight, base4.weight.quant_state).to(dtype)
