"""A 4-bit (NF4/FP4) bitsandbytes weight straight to the e4m3 operand of an FP8 GEMM, in one pass.

QLoRA's base GEMMs in FP8 (finetune/accel/fp8.py) need the frozen weight as e4m3 scaled per output
channel (forward) and, transposed, per input channel (input gradient). Going through bitsandbytes'
dequantization writes the whole weight in bf16 and reads it back to quantize it: at 8B shapes 2 bytes
written and 2 read per weight element, per GEMM. Here one kernel reads the packed 4-bit codes (half a
byte an element) and the blocks' scales and writes the e4m3 operand (one byte), with the value each
element dequantizes to in float32 (code x block absmax, as bitsandbytes computes it) divided by the
channel's scale.

Layout (bitsandbytes 0.4x-0.5x): the weight (out x in) flattened row-major, two elements a byte, the
even-indexed one in the high nibble; one absmax per `blocksize` consecutive elements, itself 8-bit
quantized when the state is nested (dequantized here with bitsandbytes' own function: a small tensor).
On CUDA a Triton kernel; elsewhere (tests on CPU) bitsandbytes' dequantization in float32 and the same
division in torch.
"""

from __future__ import annotations

import functools
from typing import Any

TILE = {"rows": 32, "cols": 128, "warps": 4}


def supported(base4: Any) -> bool:
    """Whether this bitsandbytes 4-bit Linear's weight is in the layout the kernel reads."""
    import torch

    qs = getattr(getattr(base4, "weight", None), "quant_state", None)
    if qs is None or qs.quant_type not in ("nf4", "fp4") or qs.code is None or len(qs.shape) != 2:
        return False
    return base4.weight.dtype == torch.uint8 and base4.weight.numel() * 2 >= qs.shape[0] * qs.shape[1]


def rowwise(base4: Any, scale: Any) -> Any:
    """The weight W (out x in) as e4m3, W / scale per output channel (scale: (out, 1) float32)."""
    return _quantize(base4, scale, transposed=False)


def colwise_transposed(base4: Any, scale: Any) -> Any:
    """Wᵀ (in x out, contiguous) as e4m3, scaled per input channel of W (scale: (in, 1) float32)."""
    return _quantize(base4, scale, transposed=True)


def _absmax(qs: Any) -> Any:
    import torch

    if not qs.nested:
        return qs.absmax.float()
    import bitsandbytes.functional as bnb_f

    return (bnb_f.dequantize_blockwise(qs.absmax, qs.state2) + qs.offset).to(torch.float32)


def _quantize(base4: Any, scale: Any, *, transposed: bool) -> Any:
    import torch

    qs = base4.weight.quant_state
    rows, cols = qs.shape
    if not base4.weight.is_cuda:
        return _torch_quantize(base4, scale, transposed)
    import triton

    absmax = _absmax(qs)
    code = qs.code.to(device=absmax.device, dtype=torch.float32)
    shape = (cols, rows) if transposed else (rows, cols)
    q = torch.empty(shape, device=absmax.device, dtype=torch.float8_e4m3fn)
    br, bc = TILE["rows"], TILE["cols"]
    _kernel()[(triton.cdiv(rows, br), triton.cdiv(cols, bc))](
        base4.weight,
        absmax,
        code,
        scale,
        q,
        rows,
        cols,
        q.stride(0),
        BLOCKSIZE=qs.blocksize,
        TRANSPOSED=transposed,
        BR=br,
        BC=bc,
        num_warps=TILE["warps"],
    )
    return q


def _torch_quantize(base4: Any, scale: Any, transposed: bool) -> Any:
    import bitsandbytes.functional as bnb_f
    import torch

    w = bnb_f.dequantize_4bit(base4.weight, base4.weight.quant_state).float()
    if transposed:
        return (w.t() / scale).to(torch.float8_e4m3fn).contiguous()
    return (w / scale).to(torch.float8_e4m3fn)


@functools.cache
def _kernel() -> Any:
    import triton
    import triton.language as tl

    @triton.jit
    def nf4_fp8_kernel(
        w_ptr,
        absmax_ptr,
        code_ptr,
        s_ptr,
        q_ptr,
        rows,
        cols,
        q_stride,
        BLOCKSIZE: tl.constexpr,
        TRANSPOSED: tl.constexpr,
        BR: tl.constexpr,
        BC: tl.constexpr,
    ):
        r = tl.program_id(0) * BR + tl.arange(0, BR)
        c = tl.program_id(1) * BC + tl.arange(0, BC)
        mask = (r[:, None] < rows) & (c[None, :] < cols)
        i = r[:, None].to(tl.int64) * cols + c[None, :]  # the element's index in the flattened weight
        byte = tl.load(w_ptr + i // 2, mask=mask, other=0).to(tl.int32)
        nib = tl.where(i % 2 == 0, byte >> 4, byte & 15)
        v = tl.load(code_ptr + nib, mask=mask, other=0.0) * tl.load(absmax_ptr + i // BLOCKSIZE, mask=mask, other=0.0)
        if TRANSPOSED:  # scaled per column of w, stored as row c of the output
            scale = tl.load(s_ptr + c, mask=c < cols, other=1.0)
            q = tl.trans((v / scale[None, :]).to(tl.float8e4nv))
            tl.store(q_ptr + c[:, None].to(tl.int64) * q_stride + r[None, :], q, mask=tl.trans(mask))
        else:
            scale = tl.load(s_ptr + r, mask=r < rows, other=1.0)
            q = (v / scale[:, None]).to(tl.float8e4nv)
            tl.store(q_ptr + r[:, None].to(tl.int64) * q_stride + c[None, :], q, mask=mask)

    return nf4_fp8_kernel
