"""Mixed-adapter batches in one pass per LoRA layer (gathered LoRA, as in punica / S-LoRA).

peft's own mixed batch (`adapter_names=[...]`) splits every LoRA layer's input by adapter and runs
each group separately, with Python-built index lists copied to the device in every layer: 4 groups
cost ~4x the launches of one. Here each layer keeps its adapters stacked — A as [slots, r, in],
B·scaling as [slots, out, r], slot 0 = zeros for "no adapter" —, every row gathers its own pair by
one index tensor made once per batch, and two batched matmuls add all rows' LoRA deltas at once,
whatever the mix. Ranks are padded to the largest with zeros (same result). Layers with LoRA
variants (DoRA, aLoRA, ...) or non-Linear LoRA keep peft's path.
"""

from __future__ import annotations

import types
from typing import Any

_STACK = "_lorag_stack"
_VARIANT_KWARGS = ("alora_offsets",)  # peft.tuners.lora.layer.VARIANT_KWARG_KEYS


def _plain_lora_linear(module: Any) -> bool:
    import torch

    lora_a = getattr(module, "lora_A", None)
    return (
        isinstance(lora_a, torch.nn.ModuleDict)
        and len(lora_a) > 0
        and not getattr(module, "lora_variant", None)
        and all(isinstance(m, torch.nn.Linear) for m in lora_a.values())
        and all(isinstance(m, torch.nn.Linear) for m in module.lora_B.values())
    )


def _stack(module: Any, device: Any, dtype: Any) -> dict[str, Any]:
    """The layer's adapters stacked (rebuilt when the adapter set, device or dtype changes)."""
    import torch

    names = tuple(sorted(module.lora_A))
    weights = [w for n in names for w in (module.lora_A[n].weight, module.lora_B[n].weight)]
    # a re-loaded or edited adapter under the same name has new storage or a new version counter
    key = (names, device, dtype, tuple((w.data_ptr(), w._version) for w in weights))
    cached = getattr(module, _STACK, None)
    if cached is not None and cached["key"] == key:
        return cached
    r = max(module.lora_A[n].weight.shape[0] for n in names)
    a0, b0 = module.lora_A[names[0]].weight, module.lora_B[names[0]].weight
    A = torch.zeros(len(names) + 1, r, a0.shape[1], device=device, dtype=dtype)
    B = torch.zeros(len(names) + 1, b0.shape[0], r, device=device, dtype=dtype)
    with torch.no_grad():
        for i, n in enumerate(names, start=1):
            a, b = module.lora_A[n].weight, module.lora_B[n].weight
            A[i, : a.shape[0]] = a.to(device, dtype)
            B[i, :, : b.shape[1]] = (b * module.scaling[n]).to(device, dtype)
    cached = {"key": key, "slots": {n: i for i, n in enumerate(names, start=1)}, "A": A, "B": B}
    object.__setattr__(module, _STACK, cached)  # not a registered buffer: never saved with the adapter
    return cached


class _RowSlots:
    """adapter_names -> a device index tensor, made once per distinct batch and reused by every layer."""

    def __init__(self) -> None:
        self._cache: dict[tuple, Any] = {}

    def get(self, names: tuple[str, ...], slots: dict[str, int], device: Any) -> Any:
        import torch

        key = (names, tuple(sorted(slots.items())), device)
        idx = self._cache.get(key)
        if idx is None:
            if len(self._cache) > 64:
                self._cache.clear()
            idx = torch.tensor([slots.get(n, 0) for n in names], dtype=torch.long, device=device)
            self._cache[key] = idx
        return idx


def _row_weights(self: Any, x: Any, adapter_names: list[str]) -> tuple:
    """The batch's LoRA weights for this layer: ("base",), ("one", A^T, (B·s)^T) when every row uses the
    same adapter (plain matmuls on views, nothing gathered) or ("rows", [rows, in, r], [rows, r, out])."""
    st = _stack(self, x.device, x.dtype)
    names = tuple(adapter_names)
    slots = {st["slots"].get(n, 0) for n in names}
    if slots == {0}:
        return ("base",)
    if len(slots) == 1:
        (slot,) = slots
        return ("one", st["A"][slot].t(), st["B"][slot].t())
    idx = self._lorag_rows.get(names, st["slots"], x.device)
    return ("rows", st["A"].index_select(0, idx).transpose(1, 2), st["B"].index_select(0, idx).transpose(1, 2))


def _gathered_forward(self: Any, x: Any, *args: Any, adapter_names: list[str], **kwargs: Any) -> Any:
    import torch

    if kwargs:
        for key in _VARIANT_KWARGS:  # meant for LoRA variants, which keep peft's path; not for the base layer
            kwargs.pop(key, None)
    result = self.base_layer(x, *args, **kwargs)
    if self.merged or self.disable_adapters:
        return result
    # peft hands every layer the same adapter_names list for a whole generate() call: the weights are
    # looked up (and the stacks checked) once per call and layer, not at every decoding step
    cached = vars(self).get("_lorag_rowweights")
    if cached is None or cached[0] is not adapter_names:
        cached = (adapter_names, _row_weights(self, x, adapter_names))
        object.__setattr__(self, "_lorag_rowweights", cached)
    w = cached[1]
    if w[0] == "base":
        return result
    if w[0] == "one":
        flat = x.reshape(-1, x.shape[-1])
        out = result.reshape(-1, result.shape[-1])
        low = flat @ w[1]
        if out.dtype == low.dtype:
            return torch.addmm(out, low, w[2]).reshape(result.shape)  # result + low @ (B·s)^T in one call
        return result + (low @ w[2]).reshape(result.shape).to(result.dtype)
    flat = x.reshape(x.shape[0], -1, x.shape[-1])  # [rows, tokens, in]
    low = torch.bmm(flat, w[1])  # [rows, tokens, r]
    out = result.reshape(result.shape[0], -1, result.shape[-1])
    if out.dtype == low.dtype:
        return torch.baddbmm(out, low, w[2]).reshape(result.shape)
    return result + torch.bmm(low, w[2]).reshape(result.shape).to(result.dtype)


def enable_gathered_lora(model: Any) -> int:
    """Route peft's mixed-batch forward of every plain LoRA Linear through the gathered path.
    Returns how many layers were switched. Idempotent; adapters loaded later are picked up."""
    rows = _RowSlots()
    n = 0
    for module in model.modules():
        if _plain_lora_linear(module) and hasattr(module, "_mixed_batch_forward"):
            object.__setattr__(module, "_lorag_rows", rows)
            module._mixed_batch_forward = types.MethodType(_gathered_forward, module)
            n += 1
    return n


def disable_gathered_lora(model: Any) -> None:
    """Back to peft's own mixed-batch forward."""
    for module in model.modules():
        if "_mixed_batch_forward" in vars(module):
            del module._mixed_batch_forward
        for attr in (_STACK, "_lorag_rows", "_lorag_rowweights"):
            if attr in vars(module):
                object.__delattr__(module, attr)
