"""LoRA's training step for a plain Linear in one autograd node, with no output-sized elementwise pass.

peft computes `base(x) + lora_B(lora_A(x)) * scaling`: B's product, the scaling and the sum are
three passes over an output-sized tensor, and in backward the scaling again and autograd's sum of
the base's and the adapter's input gradients. At 1B those passes are most of the step's
elementwise kernels (benchmarks/RESULTS.md). Here one autograd.Function does:

  forward   out = x·Wᵀ, then out += s·(x·Aᵀ)·Bᵀ inside the second GEMM (addmm_'s epilogue)
  backward  gu = s·g·B (tokens x r), dB = s·gᵀ·u, dA = guᵀ·x, dx = g·W with gu·A added by addmm_

so the scaling only touches rank-sized tensors and the input gradient is one tensor written once.
A bitsandbytes 4-bit base (QLoRA) is dequantized to the compute dtype in forward and again in
backward, as bitsandbytes' own matmul does; float32 master LoRA weights are cast as autocast would.
Same math as peft's vanilla LoRA; any other case (dropout, several active adapters, a mixed batch,
DoRA and other variants, a bias on B, merged or disabled adapters, another quantized or non-Linear
base, mixed dtypes without autocast) keeps peft's forward. Installed per module instance for one
training run, so module names and the state_dict do not change.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
from typing import Any, Callable, Iterator

from . import recomputed_input


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


def _is_4bit(base: Any) -> bool:
    bnb = sys.modules.get("bitsandbytes")  # a model with 4-bit layers has imported it
    return bnb is not None and type(base) is bnb.nn.Linear4bit and getattr(base.weight, "quant_state", None) is not None


def _compute_dtype(layer: Any, name: str, x: Any, four: bool | None = None) -> Any:
    """The dtype every GEMM runs in (the autocast dtype when autocast is on, as peft's would), or None when
    peft's own forward must run: without autocast, mixed dtypes are cast by peft in its own way."""
    import torch

    base = layer.base_layer
    dev = x.device.type
    if dev in ("cuda", "cpu") and torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    four = _is_4bit(base) if four is None else four
    dt = (base.compute_dtype or x.dtype) if four else base.weight.dtype
    same = {dt, layer.lora_A[name].weight.dtype, layer.lora_B[name].weight.dtype}
    return dt if len(same) == 1 else None


def _fast_path(layer: Any, kwargs: dict[str, Any]) -> str | None:
    """The adapter to fuse, or None when peft's own forward must run."""
    import torch

    if kwargs or layer.disable_adapters or layer.merged or len(layer.active_adapters) != 1:
        return None
    name = layer.active_adapters[0]
    if name not in layer.lora_A or name in getattr(layer, "lora_variant", {}):
        return None
    if not isinstance(layer.lora_dropout[name], torch.nn.Identity) or layer.lora_B[name].bias is not None:
        return None
    base = layer.base_layer
    if type(base) is torch.nn.Linear:
        return None if base.weight.requires_grad else name
    return name if _is_4bit(base) else None


def _installed(module: Any) -> bool:
    """Whether install() put the fused forward on this module."""
    forward = vars(module).get("forward")
    return isinstance(forward, functools.partial) and forward.func is _forward


def fused_node_runs(layer: Any, x: Any) -> bool:
    """Whether a call of this LoRA Linear on x (no other arguments) runs the fused node on x itself (no cast)."""
    name = _fast_path(layer, {}) if _installed(layer) else None
    if name is None:
        return False
    return _compute_dtype(layer, name, x, _is_4bit(layer.base_layer)) == x.dtype


def unread_now(layer: Any) -> bool:
    """Whether this fused LoRA Linear is inside unread_outputs (its output not computed)."""
    return vars(layer).get(_UNREAD) is not None


def _forward(layer: Any, peft_forward: Callable[..., Any], x: Any, *args: Any, **kwargs: Any) -> Any:
    name = _fast_path(layer, kwargs) if not args else None
    base = layer.base_layer
    four = name is not None and _is_4bit(base)
    dt = _compute_dtype(layer, name, x, four) if name is not None else None
    if dt is None:
        return peft_forward(x, *args, **kwargs)
    in_dtype, x = x.dtype, x.to(dt)  # as autocast would: every GEMM here (and its saved input) in one dtype
    # FP8 base GEMMs only while training (evaluation and generation keep the compute dtype), on row counts
    # FP8 GEMMs take (training batches padded to the graph bucket always are)
    bufs = layer._buffers
    rows = x.numel() // x.shape[-1]
    fp8 = (
        (bufs[_FP8_ROW], bufs[_FP8_COL])
        if _FP8_ROW in bufs and layer.training and rows > 0 and rows % 16 == 0
        else None
    )
    src = recomputed_input.current()  # x is a gated MLP's op(gate, up), recomputed in backward instead of kept
    src = src[1:] if src is not None and src[0] is x else None
    unread = vars(layer).get(_UNREAD)
    if unread is not None:
        vars(layer)[_UNREAD_TAKEN] = True  # the fused node, not peft's forward, skipped this output
    out = _lora_linear_fn().apply(
        x,
        None if four else base.weight.to(dt),
        base if four else None,
        base.bias,
        layer.lora_A[name].weight,
        layer.lora_B[name].weight,
        float(layer.scaling[name]),
        unread,
        fp8,
        fp8 is not None and vars(layer).get(_FP8_FAST, False),
        layer,
        fp8 is not None and vars(layer).get(_FP8_JOINED, False),
        src,
    )
    return out.to(in_dtype) if four else out  # bitsandbytes returns the input's dtype


_UNREAD = "_lorag_unread"  # instance attribute set by unread_outputs
_UNREAD_TAKEN = "_lorag_unread_taken"  # set when the fused node ran with it (peft's own forward ignores it)
_KEEP_DEQUANTIZED: contextvars.ContextVar[bool] = contextvars.ContextVar("lorag_keep_dequantized", default=False)
# inside keep_dequantized, a 4-bit weight whose GEMMs run in FP8 is kept as its input gradient's FP8 operand (half
# the bytes of the dequantized weight; the cast made in forward instead of backward). Off: the benchmark's
# `keep-w16` arm keeps the dequantized weight (lorag's default before). With fp8_lora_in_gemm: the joined operand
# [W ; A]ᵀ of its input gradient's GEMM (fp8.transposed_lora_operand)
KEEP_FP8_OPERAND = True


_OPERANDS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("lorag_weight_operands", default=None)


@contextlib.contextmanager
def shared_weight_operands() -> Iterator[None]:
    """Inside, fused nodes make each frozen weight's GEMM operands (dequantized, FP8) once and reuse them in every
    call (a layer's MLP run in token tiles: each tile's GEMMs read the same weights); dropped on leaving."""
    token = _OPERANDS.set({})
    try:
        yield
    finally:
        _OPERANDS.reset(token)


@contextlib.contextmanager
def keep_dequantized() -> Iterator[None]:
    """Inside, fused nodes over 4-bit bases keep the weight they dequantized for their backward instead of
    dequantizing it again there (finetune/accel/graphs.py: a layer's recompute, differentiated right after)."""
    token = _KEEP_DEQUANTIZED.set(True)
    try:
        yield
    finally:
        _KEEP_DEQUANTIZED.reset(token)


# buffers of the base weight's FP8 scales, set by install(fp8=True) on Linears large enough (fp8.eligible);
# buffers so that layers sharing CUDA graphs copy theirs into the stand-in (finetune/accel/graph_sharing.py)
_FP8_ROW, _FP8_COL = "lorag_fp8_row_scale", "lorag_fp8_col_scale"
_FP8_FAST = "_lorag_fp8_fast_accum"  # instance attribute: the forward FP8 GEMM accumulates at tensor-core precision
_FP8_JOINED = "_lorag_fp8_joined"  # instance attribute: the adapter's delta is computed inside the FP8 GEMMs


def enable_fp8(layer: Any, fast_accum: bool = False, joined: bool = False) -> None:
    """Run this LoRA Linear's base GEMMs in FP8 while training: its frozen weight's scales, computed once.
    fast_accum: the forward FP8 GEMM accumulates at the tensor cores' precision (the input gradient's never);
    joined: the adapter's delta and its input gradient are computed inside those GEMMs (fp8.matmul_lora)."""
    import torch

    from . import fp8 as fp8_ops

    base = layer.base_layer
    w = _dequantized(base, torch.float32) if _is_4bit(base) else base.weight
    row, col = fp8_ops.weight_scales(w)
    layer.register_buffer(_FP8_ROW, row, persistent=False)
    layer.register_buffer(_FP8_COL, col, persistent=False)
    setattr(layer, _FP8_FAST, fast_accum)
    setattr(layer, _FP8_JOINED, joined)


def disable_fp8(layer: Any) -> None:
    """Back to the compute dtype's GEMMs (the scales' buffers removed)."""
    layer._buffers.pop(_FP8_ROW, None)
    layer._buffers.pop(_FP8_COL, None)
    vars(layer).pop(_FP8_FAST, None)
    vars(layer).pop(_FP8_JOINED, None)


def fused_modules(root: Any) -> list[Any]:
    """The LoRA Linears under root that run the fused node (install() was called on them)."""
    from peft.tuners.lora import LoraLayer

    return [m for m in root.modules() if isinstance(m, LoraLayer) and _installed(m)]


@contextlib.contextmanager
def unread_outputs(modules: list[Any], fill: float | None = None) -> Iterator[None]:
    """Inside, these fused LoRA Linears skip computing their output (the base GEMM, a third of a layer's
    weights for an MLP's down projection) and return an uninitialised tensor, or one filled with `fill`,
    still saving what their backward needs. For a recompute that is only differentiated, whose caller
    has checked that nothing reads those outputs (finetune/accel/graph_sharing.py fills them with NaN to check).
    A module whose call inside took the skip is marked (`skip_taken`): peft's own forward, which runs where the
    fused node cannot (mixed dtypes, DoRA, several adapters), computes its output whatever this says."""
    for m in modules:
        setattr(m, _UNREAD, "empty" if fill is None else fill)
        vars(m).pop(_UNREAD_TAKEN, None)
    try:
        yield
    finally:
        for m in modules:
            vars(m).pop(_UNREAD, None)


def skip_taken(module: Any) -> bool:
    """Whether the module's last call inside unread_outputs ran the fused node, skipping its output."""
    return bool(vars(module).get(_UNREAD_TAKEN))


def install(
    model: Any, fp8: bool = False, fp8_fast_accum: bool = False, fp8_lora_in_gemm: bool = False
) -> Callable[[], None]:
    """The fused forward on every peft LoRA Linear of the model; returns the function that removes them.
    fp8: the base GEMMs of Linears large enough (finetune/accel/fp8.py) run in FP8 while training;
    fp8_fast_accum: their forward GEMMs accumulate at the tensor cores' precision;
    fp8_lora_in_gemm: the adapter's delta and its input gradient are computed inside those GEMMs."""
    from peft.tuners.lora import LoraLayer

    from . import fp8 as fp8_ops

    patched = []
    for module in model.modules():
        if isinstance(module, LoraLayer) and hasattr(module, "base_layer") and "forward" not in vars(module):
            if not hasattr(module.base_layer, "in_features"):  # Linear-like layers only (not embeddings, convs)
                continue
            module.forward = functools.partial(_forward, module, type(module).forward.__get__(module))
            base = module.base_layer
            if fp8 and fp8_ops.eligible(base.in_features, base.out_features):
                enable_fp8(module, fp8_fast_accum, fp8_lora_in_gemm)
            patched.append(module)

    def uninstall() -> None:
        for module in patched:
            vars(module).pop("forward", None)
            disable_fp8(module)
        patched.clear()

    uninstall.count = len(patched)  # type: ignore[attr-defined]
    uninstall.fp8_count = sum(1 for m in patched if _FP8_ROW in m._buffers)  # type: ignore[attr-defined]
    return uninstall
