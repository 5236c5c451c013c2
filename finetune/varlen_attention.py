"""Attention over packed rows (finetune/packing.py), as a transformers attention implementation.

A packed step is one sequence holding several rows; `cu_seq_lens_q` (rows' start offsets, then the end)
says where each begins. On CUDA FlashAttention's varlen kernel attends within each row, causally
(torch's `_flash_attention_forward`, differentiable, capturable in a CUDA graph: the offsets are a
tensor, the longest row a fixed bound). Elsewhere each row runs through SDPA on its own (tests).
Registered under NAME; the name has no mask function, so transformers builds no mask for it (nor looks
for packed rows in the positions, a GPU read per forward). Without `cu_seq_lens_q` it is transformers'
SDPA attention, causal, unmasked: right for unpadded or right-padded rows (no real token sees a later
pad), wrong for left-padded ones. Only training models use the name, and they never generate.
"""

from __future__ import annotations

from typing import Any

NAME = "lorag_varlen"


def unsupported_reason(device: str) -> str | None:
    """Why packed attention cannot run on this device, or None."""
    import torch

    if device != "cuda":
        return "CUDA only"
    if not hasattr(torch.ops.aten, "_flash_attention_forward"):
        return "this torch has no FlashAttention varlen op"
    try:
        capability = torch.cuda.get_device_capability()
    except (AssertionError, RuntimeError) as e:  # a torch without CUDA, or no GPU visible
        return f"no CUDA device ({e})"
    if capability < (8, 0):
        return "FlashAttention needs compute capability 8.0+"
    return None


def varlen_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
                     dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:  # fmt: skip
    """query [1, H, T, D], key/value [1, Hkv, T, D] -> ([1, T, H, D], None), each row of cu_seq_lens_q alone."""
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    import torch

    if query.shape[0] != 1:
        raise ValueError(f"packed rows come as one sequence, got a batch of {query.shape[0]}")
    q, k, v = (t.transpose(1, 2)[0] for t in (query, key, value))  # [T, H, D] views
    if query.is_cuda:
        longest = int(kwargs.get("max_length_q") or q.shape[0])
        out = torch.ops.aten._flash_attention_forward(q, k, v, cu, cu, longest, longest, 0.0, True, False, scale=scaling)[0]
    else:
        out = _rows_apart(q, k, v, cu, scaling)
    return out.unsqueeze(0), None


def _rows_apart(q: Any, k: Any, v: Any, cu: Any, scaling: float | None) -> Any:
    """The reference: SDPA on each row alone (causal, key/value heads repeated for grouped queries)."""
    import torch
    import torch.nn.functional as F

    rep = q.shape[1] // k.shape[1]
    out = torch.zeros_like(q)
    bounds = cu.tolist()
    for a, b in zip(bounds, bounds[1:]):
        if b > a:
            qa, ka, va = (t[a:b].transpose(0, 1) for t in (q, k, v))  # [H, n, D]
            ka, va = ka.repeat_interleave(rep, 0), va.repeat_interleave(rep, 0)
            out[a:b] = F.scaled_dot_product_attention(qa, ka, va, is_causal=True, scale=scaling).transpose(0, 1)
    return out


def register() -> str:
    """Make NAME a transformers attention implementation (idempotent); returns NAME."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, varlen_attention)
    return NAME
