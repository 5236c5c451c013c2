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

Here: which LoRA Linears run the node and its installation, and the switches callers set around their calls
(unread outputs, FP8 GEMMs, keep_dequantized, shared_weight_operands). The node itself: lora_node.py.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Any, Callable, Iterator

from . import recomputed_input
from .lora_node import _KEEP_DEQUANTIZED, _OPERANDS, _lora_linear_fn


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
    from .lora_node import _dequantized

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
