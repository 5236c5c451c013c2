"""LoRA's training step for a plain Linear in one autograd node, with no output-sized elementwise pass.

peft computes `base(x) + lora_B(lora_A(x)) * scaling`: B's product, the scaling and the sum are
three passes over an output-sized tensor, and in backward the scaling again and autograd's sum of
the base's and the adapter's input gradients. At 1B those passes are most of the step's
elementwise kernels (benchmarks/RESULTS.md). Here one autograd.Function does:

  forward   out = x·Wᵀ, then out += s·(x·Aᵀ)·Bᵀ inside the second GEMM (addmm_'s epilogue)
  backward  gu = s·g·B (tokens x r), dB = s·gᵀ·u, dA = guᵀ·x, dx = g·W with gu·A added by addmm_

so the scaling only touches rank-sized tensors and the input gradient is one tensor written once.
Same math as peft's vanilla LoRA; any other case (dropout, several active adapters, a mixed batch,
DoRA and other variants, a bias on B, merged or disabled adapters, a quantized or non-Linear base,
mixed dtypes) keeps peft's forward. Installed per module instance for one training run, so module
names and the state_dict do not change.
"""

from __future__ import annotations

import functools
from typing import Any, Callable


@functools.cache
def _lora_linear_fn() -> Any:
    """The autograd.Function (built on first use: torch is imported then)."""
    import torch

    class LoraLinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, weight: Any, bias: Any, a: Any, b: Any, scale: float) -> Any:
            x2 = x.reshape(-1, x.shape[-1])
            u = x2 @ a.t()
            out = torch.addmm(bias, x2, weight.t()) if bias is not None else x2 @ weight.t()
            out.addmm_(u, b.t(), alpha=scale)
            ctx.save_for_backward(x2, u, weight, a, b)
            ctx.scale, ctx.in_shape = scale, x.shape
            return out.view(*x.shape[:-1], out.shape[-1])

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            x2, u, weight, a, b = ctx.saved_tensors
            g2 = g.reshape(-1, g.shape[-1])
            gu = (g2 @ b).mul_(ctx.scale)
            gb = (g2.t() @ u).mul_(ctx.scale) if ctx.needs_input_grad[4] else None
            ga = gu.t() @ x2 if ctx.needs_input_grad[3] else None
            gx = (g2 @ weight).addmm_(gu, a).view(ctx.in_shape) if ctx.needs_input_grad[0] else None
            return gx, None, None, ga, gb, None

    return LoraLinear


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
    if type(base) is not torch.nn.Linear or base.weight.requires_grad:
        return None
    dtypes = {base.weight.dtype, layer.lora_A[name].weight.dtype, layer.lora_B[name].weight.dtype}
    return name if len(dtypes) == 1 else None


def _forward(layer: Any, peft_forward: Callable[..., Any], x: Any, *args: Any, **kwargs: Any) -> Any:
    name = _fast_path(layer, kwargs) if not args else None
    if name is None:
        return peft_forward(x, *args, **kwargs)
    base = layer.base_layer
    x = x.to(base.weight.dtype)  # as autocast would: every GEMM here (and its saved input) in the weights' dtype
    return _lora_linear_fn().apply(x, base.weight, base.bias, layer.lora_A[name].weight, layer.lora_B[name].weight,
                           float(layer.scaling[name]))  # fmt: skip


def install(model: Any) -> Callable[[], None]:
    """The fused forward on every peft LoRA Linear of the model; returns the function that removes them."""
    from peft.tuners.lora import LoraLayer

    patched = []
    for module in model.modules():
        if isinstance(module, LoraLayer) and hasattr(module, "base_layer") and "forward" not in vars(module):
            if not hasattr(module.base_layer, "in_features"):  # Linear-like layers only (not embeddings, convs)
                continue
            module.forward = functools.partial(_forward, module, type(module).forward.__get__(module))
            patched.append(module)

    def uninstall() -> None:
        for module in patched:
            vars(module).pop("forward", None)
        patched.clear()

    uninstall.count = len(patched)  # type: ignore[attr-defined]
    return uninstall
