"""LoRA's training forward in two matmuls: the adapter's delta added by the GEMM that makes it.

peft computes `result + lora_B(lora_A(x)) * scaling`: B's product, the scaling and the sum are three
passes over an output-sized tensor, and their backward two more. On a 1B model those elementwise
passes were ~20% of the GPU time of a step (benchmarks/RESULTS.md). Here the delta is
`addmm(result, lora_A(x), B.T, alpha=scaling)`: the sum and the scale happen inside the GEMM's
epilogue, and autograd's addmm backward hands the result's gradient through untouched.

Same math as peft's vanilla LoRA; any other case (dropout, several active adapters, a mixed batch,
DoRA and other variants, a bias on B, merged or disabled adapters) keeps peft's forward. Installed
per module instance for one training run, so module names and the state_dict do not change.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable


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
    return name


def _forward(layer: Any, peft_forward: Callable[..., Any], x: Any, *args: Any, **kwargs: Any) -> Any:
    import torch

    name = _fast_path(layer, kwargs) if not args else None
    if name is None:
        return peft_forward(x, *args, **kwargs)
    result = layer.base_layer(x)
    a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
    u = torch.nn.functional.linear(layer._cast_input_dtype(x, a.dtype), a)
    flat = result.reshape(-1, result.shape[-1])
    out = torch.addmm(flat, u.reshape(-1, u.shape[-1]).to(flat.dtype), b.t().to(flat.dtype), alpha=layer.scaling[name])
    return out.view(result.shape)


def install(model: Any) -> Callable[[], None]:
    """Fused forwards on every peft LoRA Linear of the model; returns the function that removes them."""
    from peft.tuners.lora import LoraLayer

    patched = []
    for module in model.modules():
        if isinstance(module, LoraLayer) and hasattr(module, "base_layer") and "forward" not in vars(module):
            if not hasattr(module.base_layer, "in_features"):  # Linear-like layers only (not embeddings, convs)
                continue
            module.forward = partial(_forward, module, type(module).forward.__get__(module))
            patched.append(module)

    def uninstall() -> None:
        for module in patched:
            vars(module).pop("forward", None)
        patched.clear()

    uninstall.count = len(patched)  # type: ignore[attr-defined]
    return uninstall
