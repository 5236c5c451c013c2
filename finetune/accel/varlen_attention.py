"""Attention over packed rows (finetune/accel/packing.py), as a transformers attention implementation.

A packed step is one sequence holding several rows; `cu_seq_lens_q` (rows' start offsets, then the end)
says where each begins. On CUDA FlashAttention's varlen kernel attends within each row, causally,
differentiable and capturable in a CUDA graph (the offsets are a tensor, the longest row a fixed bound):
torch's public `torch.nn.attention.varlen.varlen_attn` where this torch has it (2.10+; its `window_size`,
2.11+, also keeps a sliding-window model's window), else the private `aten._flash_attention_forward`.
Elsewhere each row runs through SDPA on its own (the reference the tests compare with).
Registered under NAME; the name has no mask function, so transformers builds no mask for it (nor looks
for packed rows in the positions, a GPU read per forward). Without `cu_seq_lens_q` it is transformers'
SDPA attention, causal, unmasked: right for unpadded or right-padded rows (no real token sees a later
pad), wrong for left-padded ones. Only training models use the name, and they never generate.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

NAME = "lorag_varlen"


@functools.cache
def _public_op() -> tuple[Any, frozenset[str]] | None:
    """torch's public varlen attention and the keyword arguments it takes, or None when this torch has none."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn, frozenset(inspect.signature(varlen_attn).parameters)


def kernel() -> str:
    """Which varlen kernel packed attention calls on CUDA: 'public' (torch.nn.attention.varlen), 'private'
    (aten._flash_attention_forward) or 'none'."""
    import torch

    if _public_op() is not None:
        return "public"
    return "private" if hasattr(torch.ops.aten, "_flash_attention_forward") else "none"


def keeps_window() -> bool:
    """Whether packed attention applies a sliding window (torch's public op with window_size)."""
    op = _public_op()
    return op is not None and "window_size" in op[1]


def unsupported_reason(device: str) -> str | None:
    """Why packed attention cannot run on this device, or None."""
    import torch

    if device != "cuda":
        return "CUDA only"
    if kernel() == "none":
        return "this torch has no FlashAttention varlen op"
    try:
        capability = torch.cuda.get_device_capability()
    except (AssertionError, RuntimeError) as e:  # a torch without CUDA, or no GPU visible
        return f"no CUDA device ({e})"
    if capability < (8, 0):
        return "FlashAttention needs compute capability 8.0+"
    return None


def _window(module: Any, kwargs: dict[str, Any]) -> int | None:
    window = kwargs.get("sliding_window", getattr(module, "sliding_window", None))
    return int(window) if window else None


def varlen_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Any, None]:
    """query [1, H, T, D], key/value [1, Hkv, T, D] -> ([1, T, H, D], None), each row of cu_seq_lens_q alone."""
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    if query.shape[0] != 1:
        raise ValueError(f"packed rows come as one sequence, got a batch of {query.shape[0]}")
    q, k, v = (t.transpose(1, 2)[0] for t in (query, key, value))  # [T, H, D] views
    window = _window(module, kwargs)
    longest = int(kwargs.get("max_length_q") or q.shape[0])
    if window is not None and window >= longest:  # no row reaches past the window: it changes nothing
        window = None
    if query.is_cuda:
        out = flash_varlen(q, k, v, cu, longest, scaling, window)
    else:
        out = rows_apart(q, k, v, cu, scaling, window)
    return out.unsqueeze(0), None


def flash_varlen(
    q: Any, k: Any, v: Any, cu: Any, longest: int, scaling: float | None, window: int | None = None
) -> Any:
    """Causal FlashAttention over the rows of cu: q [T, H, D], k/v [T, Hkv, D] -> [T, H, D]."""
    import torch

    op = _public_op()
    if op is not None and "scale" not in op[1] and scaling is not None and abs(scaling - q.shape[-1] ** -0.5) > 1e-9:
        op = None  # torch 2.10's op takes no scale: the private op does
    if op is None:
        if window is not None:
            raise ValueError(
                "this torch's varlen attention has no sliding window (torch.nn.attention.varlen needs 2.11+)"
            )
        return torch.ops.aten._flash_attention_forward(
            q, k, v, cu, cu, longest, longest, 0.0, True, False, scale=scaling
        )[0]
    fn, params = op
    kw: dict[str, Any] = {"scale": scaling} if "scale" in params else {}
    if "window_size" in params:  # torch 2.11+: (left, right); (-1, 0) is causal
        kw["window_size"] = (window - 1 if window else -1, 0)  # a window of W keys includes the query's own
    elif window is not None:
        raise ValueError("this torch's varlen attention has no sliding window (window_size needs torch 2.11+)")
    else:
        kw["is_causal"] = True  # torch 2.10
    if k.shape[1] != q.shape[1]:  # grouped queries
        if "enable_gqa" in params:
            kw["enable_gqa"] = True
        else:
            rep = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    return fn(q, k, v, cu, cu, longest, longest, **kw)


def rows_apart(q: Any, k: Any, v: Any, cu: Any, scaling: float | None, window: int | None = None) -> Any:
    """The reference: SDPA on each row alone (causal, within `window` keys when given; key/value heads repeated
    for grouped queries). q [T, H, D], k/v [T, Hkv, D] -> [T, H, D]."""
    import torch
    import torch.nn.functional as F

    rep = q.shape[1] // k.shape[1]
    out = torch.zeros_like(q)
    bounds = cu.tolist()
    for a, b in zip(bounds, bounds[1:]):
        if b > a:
            qa, ka, va = (t[a:b].transpose(0, 1) for t in (q, k, v))  # [H, n, D]
            ka, va = ka.repeat_interleave(rep, 0), va.repeat_interleave(rep, 0)
            if window is None:
                att = F.scaled_dot_product_attention(qa, ka, va, is_causal=True, scale=scaling)
            else:
                i = torch.arange(b - a, device=q.device)
                allowed = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < window)
                att = F.scaled_dot_product_attention(qa, ka, va, attn_mask=allowed, scale=scaling)
            out[a:b] = att.transpose(0, 1)
    return out


def register() -> str:
    """Make NAME a transformers attention implementation (idempotent); returns NAME."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, varlen_attention)
    return NAME
