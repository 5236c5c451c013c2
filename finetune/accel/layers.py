"""A model's decoder layers, their regional compilation, its attention window, the SDPA kernels a run uses, and
the autocast state the graphed layers record and replay."""

from __future__ import annotations

import contextlib
from typing import Any


def decoder_layers(model: Any) -> list[Any]:
    """The repeated transformer blocks (the largest nn.ModuleList of the model)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    return list(max(lists, key=len)) if lists else []


def compile_decoder_layers(model: Any) -> int:
    """Regional compilation: every decoder layer compiled in place (one graph reused by all layers,
    dynamic sequence length), so compile time stays small and checkpointing still wraps each layer."""
    layers = decoder_layers(model)
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)


def sliding_window(config: Any) -> int | None:
    """The attention window of a model that uses one (Mistral-style), else None."""
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "use_sliding_window", True) is False:
        return None
    return int(window)


def sdpa_backend(name: str, device: str) -> Any:
    """The scaled-dot-product attention kernels a run may use: 'flash' (FlashAttention-2 first), 'cudnn', or ''
    (torch's own choice). A context manager; on other devices than CUDA it changes nothing."""
    if not name or device != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    first = SDPBackend.FLASH_ATTENTION if name == "flash" else SDPBackend.CUDNN_ATTENTION
    return sdpa_kernel([first, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH], set_priority=True)


def autocast_state(x: Any) -> tuple[bool, Any]:
    """Autocast as it is now for x's device: (True, its dtype), or (False, None) when off."""
    import torch

    dev = x.device.type
    if dev in ("cuda", "cpu") and torch.is_autocast_enabled(dev):
        return True, torch.get_autocast_dtype(dev)
    return False, None


def autocast_as(device_type: str, state: tuple[bool, Any]) -> Any:
    """A context that runs under the autocast `state` (autocast_state's), without a cast cache: a cached bf16
    copy of a weight made in one CUDA graph capture would be read by another graph at an address that other
    graphs reuse in the shared pool. A null context when off."""
    import torch

    on, dtype = state
    if not on:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype, cache_enabled=False)
