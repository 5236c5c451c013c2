"""Which decoder layers can replay one program (finetune/accel/graphs.py), and what a recompute can skip.

Layers share a stand-in's CUDA graphs when they match in structure: module types, scalar settings
(a sliding window, an attention type, LoRA scalings; not the layer index, which only addresses a KV
cache) and every tensor's shape and dtype. Before each replay the layer's tensors are copied into
the stand-in, in the fixed order `layer_tensors` gives. `pack_frozen` first moves each layer's frozen
tensors into one byte buffer, so that copy is one memcpy for them (a 4-bit layer has ~60 small
quantization-state tensors: ~1,900 copies per step at 1B otherwise) and one multi-tensor copy for
the trainable weights.
"""

from __future__ import annotations

from dataclasses import dataclass
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


_ALIGN = 256  # bytes: every packed tensor starts where any dtype's view of it may start


@dataclass
class Packed:
    """A layer's tensors for one load into the stand-in: its frozen ones as views of `flat` (laid out by
    `layout`), and the trainable ones, copied one by one."""

    flat: Any
    layout: tuple
    trainable: list[Any]


def pack_frozen(tensors: list[Any]) -> Packed | None:
    """Move the tensors that do not require grad into one byte buffer, each tensor now a view of it (same
    values, shape and dtype; contiguous), so that copying a whole layer's frozen state is one copy. None,
    leaving them as they were, when they are not on one device. Trainable weights stay where they are:
    the optimizer and the adapter's save read them as separate tensors."""
    import torch

    frozen = [t for t in tensors if not t.requires_grad]
    trainable = [t.detach() for t in tensors if t.requires_grad]
    if not frozen or len({t.device for t in frozen}) != 1:
        return None
    offsets: dict[int, int] = {}
    layout, size = [], 0
    for t in frozen:
        if id(t) not in offsets:  # a tensor listed twice (one quantization state shared by two places) is packed once
            offsets[id(t)] = size
            size += -(-t.numel() * t.element_size() // _ALIGN) * _ALIGN
        layout.append((offsets[id(t)], tuple(t.shape), t.dtype))
    flat = torch.empty(size, dtype=torch.uint8, device=frozen[0].device)
    with torch.no_grad():
        for t in {id(t): t for t in frozen}.values():
            start = offsets[id(t)]
            view = flat[start : start + t.numel() * t.element_size()].view(t.dtype).view(t.shape)
            view.copy_(t)
            t.data = view  # the same tensor object (module attribute, quantization state) now reads the buffer
    return Packed(flat, tuple(layout), trainable)


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

    from . import lora_fused

    candidates = lora_fused.fused_modules(layer)
    if not candidates:
        return []
    ref = grads_of([])
    found = []
    for m in candidates:
        got = grads_of([m], float("nan"))
        if not lora_fused.skip_taken(m):  # peft's forward ran there: the NaN never reached the output
            continue
        if len(got) == len(ref) and all(
            bool(torch.isfinite(a).all())
            and torch.allclose(a.float(), b.float(), rtol=0.05, atol=0.05 * float(b.abs().max()) + 1e-12)
            for a, b in zip(got, ref)
        ):
            found.append(m)
    return found
