"""Which decoder layers can replay one program (finetune/graphs.py), and what a recompute can skip.

Layers share a stand-in's CUDA graphs when they match in structure: module types, scalar settings
(a sliding window, an attention type, LoRA scalings; not the layer index, which only addresses a KV
cache) and every tensor's shape and dtype. Before each replay the layer's tensors are copied into
the stand-in, in the fixed order `layer_tensors` gives.
"""

from __future__ import annotations

from typing import Any, Callable

_PER_INDEX = {"layer_idx"}  # attributes that differ between layers of one structure and only index a KV cache


def layer_tensors(module: Any) -> list[Any]:
    """Every tensor a layer's forward reads from itself, in a fixed order: parameters, buffers and the
    quantization state of 4-bit weights (absmax, code, nested state)."""
    out: list[Any] = []

    def state(qs: Any) -> None:
        for k in sorted(vars(qs)):
            v = vars(qs)[k]
            if hasattr(v, "data_ptr"):
                out.append(v)
            elif isinstance(v, type(qs)):
                state(v)

    for m in module.modules():
        for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]:
            out.append(t)
            if getattr(t, "quant_state", None) is not None:
                state(t.quant_state)
    return out


def structure(module: Any) -> tuple:
    """What must match for two layers to run one program: module types, scalar settings (a sliding
    window, an attention type, LoRA scalings) and every tensor's shape and dtype."""

    def scalars(m: Any) -> tuple:
        simple = (int, float, str, bool, type(None))
        items = []
        for k, v in sorted(vars(m).items()):
            if k in _PER_INDEX or k.startswith("_"):
                continue
            if isinstance(v, simple) or (isinstance(v, dict) and all(isinstance(x, simple) for x in v.values())):
                items.append((k, repr(v)))
        return tuple(items)

    mods = tuple((type(m), scalars(m)) for m in module.modules())
    return mods, tuple((tuple(t.shape), t.dtype, t.requires_grad) for t in layer_tensors(module))


def layer_copy(layer: Any) -> Any:
    """A deep copy of a decoder layer to stand in for every layer of its structure: its class's forward
    (not an instance wrapper such as the graphs'), no gradients."""
    import copy

    installed = vars(layer).pop("forward", None)
    try:
        stand_in = copy.deepcopy(layer)
    finally:
        if installed is not None:
            layer.forward = installed
    for p in stand_in.parameters():
        p.grad = None
    return stand_in


def unread_outputs(layer: Any, grads_of: Callable[..., list[Any]]) -> list[Any]:
    """The layer's fused LoRA Linears whose outputs a recompute need not compute. grads_of(modules, fill)
    differentiates the layer with those modules' outputs filled with `fill`: a candidate qualifies when its
    NaN-filled output leaves every gradient finite and equal to the full recompute's (within the noise of
    nondeterministic kernels). In a Llama layer that is the MLP's down projection, whose output only
    reaches the layer's output through the residual sum."""
    import torch

    from finetune import lora_fused

    candidates = lora_fused.fused_modules(layer)
    if not candidates:
        return []
    ref = grads_of([])
    found = []
    for m in candidates:
        got = grads_of([m], float("nan"))
        if len(got) == len(ref) and all(bool(torch.isfinite(a).all()) and torch.allclose(
                a.float(), b.float(), rtol=0.05, atol=0.05 * float(b.abs().max()) + 1e-12) for a, b in zip(got, ref)):  # fmt: skip
            found.append(m)
    return found
