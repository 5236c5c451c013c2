"""FP8 (e4m3) operands for the frozen base's GEMMs in LoRA training, scaled per row.

On GPUs with FP8 tensor cores (compute capability 8.9+: Ada, Hopper) a GEMM with e4m3 operands runs
1.4-1.8x faster than in bf16 at the shapes of a 1B model's MLP (H200, 12,288 tokens; benchmarks/RESULTS.md).
The fused LoRA node (finetune/accel/lora_fused.py) uses it for the base weight's two GEMMs while training:

  forward   x·Wᵀ  with x scaled per token and W per output channel
  backward  g·W   with g scaled per token and W per input channel (a transposed copy)

The forward GEMM may accumulate at the tensor cores' own precision (`fast_accum`, torchao's default for
its output GEMM: no periodic promotion of the partial sums to float32); the input gradient's always
accumulates in float32.

The operands are quantized on the fly, one read and one write each; of the frozen weight only its two
scale vectors are computed once and kept (as buffers, which layers sharing CUDA graphs copy into the
stand-in with their weights), so the FP8 weights add no memory. The adapter's own GEMMs (x·Aᵀ, its
delta, its weight gradients) stay in the compute dtype. Scaling per row (token or channel) is the recipe
torchao calls "rowwise": every row uses e4m3's full range.

On CUDA the quantization runs as Triton kernels; elsewhere (tests on CPU) as the same formula in torch.
"""

from __future__ import annotations

import functools
from typing import Any

E4M3_MAX = 448.0
# smaller GEMMs gain too little over quantizing their operands: k/v at 1B (1M elements) lose; q/o at 1B (4M)
# gain 2% of a step, k/v at 8B (4M) break even (benchmarks/RESULTS.md)
MIN_WEIGHT_ELEMENTS = 1 << 22


def eligible(in_features: int, out_features: int) -> bool:
    """Whether a base Linear of this size runs its GEMMs in FP8: large enough for the speed-up to outweigh
    quantizing its operands (at 1B: the MLP's three projections and attention's q and o, not k and v), with
    both sides a multiple of 16 as FP8 GEMMs require."""
    return in_features * out_features >= MIN_WEIGHT_ELEMENTS and in_features % 16 == 0 and out_features % 16 == 0


def unsupported_reason(device: str) -> str | None:
    """Why this machine cannot run FP8 GEMMs, or None when it can."""
    import torch

    if device != "cuda" or not torch.cuda.is_available():
        return "CUDA only"
    if torch.cuda.get_device_capability() < (8, 9):
        return "needs FP8 tensor cores (compute capability 8.9+)"
    if not (hasattr(torch, "_scaled_mm") or hasattr(torch.nn.functional, "scaled_mm")) or not hasattr(
        torch, "float8_e4m3fn"
    ):
        return "this torch has no FP8 GEMM"
    try:
        import triton  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken Triton install fails in many ways
        return "needs Triton"
    return probe("cuda")


def probe(device: str) -> str | None:
    """Run both FP8 products once on tiny operands: None when they work here, else the error's text. Per-row
    scales need a recent torch on Ada and are missing on some GPUs that have FP8 tensor cores."""
    import torch

    try:
        x = torch.randn(64, 256, device=device, dtype=torch.bfloat16)  # sides multiple of 16, as in training
        w = torch.randn(128, 256, device=device, dtype=torch.bfloat16)
        scales = weight_scales(w)
        out = matmul(x, w, scales, torch.bfloat16)
        gx = matmul_transposed(out, w, scales, torch.bfloat16)
        if not (torch.isfinite(out).all() and torch.isfinite(gx).all()):
            return "FP8 GEMMs gave non-finite results here"
        # a wrong but finite product (an API whose scales are laid out otherwise) is no FP8 GEMM either
        for got, want in ((out, x.float() @ w.float().t()), (gx, out.float() @ w.float())):
            if ((got.float() - want).norm() / want.norm()).item() > 0.1:
                return "FP8 GEMMs gave wrong products here"
    except Exception as e:  # noqa: BLE001 - any failure means: train in bf16
        return f"FP8 GEMMs fail here ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    return None


def weight_scales(w: Any) -> tuple[Any, Any]:
    """A frozen weight's two float32 scale vectors: per output channel (rows, 1) for x·Wᵀ and per input
    channel (cols, 1) for g·W. Computed once (finetune/accel/lora_fused.py keeps them as buffers)."""
    a = w.detach().float().abs()
    return (
        a.amax(dim=1, keepdim=True).clamp_(min=1e-12) / E4M3_MAX,
        a.amax(dim=0).clamp_(min=1e-12).div_(E4M3_MAX).unsqueeze(1),
    )


def rowwise(x: Any, scale: Any = None) -> tuple[Any, Any]:
    """x (rows x cols) as e4m3 with one float32 scale per row: (q, scale of shape (rows, 1)), x ≈ q·scale.
    scale: the rows' scales when known (a frozen weight's), else each row's largest magnitude / 448."""
    if x.is_cuda:
        return _triton_rowwise(x, scale)
    return _torch_rowwise(x, scale)


def colwise_transposed(w: Any, scale: Any) -> Any:
    """w (rows x cols) transposed, as e4m3 scaled per column of w by scale (cols, 1): q of shape (cols, rows),
    contiguous, wᵀ ≈ q·scale. The operand of g·w in FP8 (which takes w column-major)."""
    if w.is_cuda:
        return _triton_colwise_transposed(w, scale)
    return _torch_rowwise(w.t(), scale)[0].contiguous()


def matmul(x: Any, w: Any, scales: tuple[Any, Any], out_dtype: Any, *, fast_accum: bool = False, wq: Any = None) -> Any:
    """x·wᵀ in FP8: x (m x k) scaled per row, w (n x k) by scales[0] (its weight_scales); out_dtype result.
    fast_accum: accumulate at the tensor cores' precision (faster; float32 accumulation otherwise).
    wq: w's operand already quantized (weight_operand's forward one), when several GEMMs share it; w is then unread."""
    xq, sx = rowwise(x)
    if wq is None:
        wq = rowwise(w, scales[0])[0]
    return _scaled_mm(xq, wq.t(), sx, scales[0].t(), out_dtype, fast_accum)


def matmul_transposed(g: Any, w: Any, scales: tuple[Any, Any], out_dtype: Any, *, wq: Any = None) -> Any:
    """g·w in FP8 (an input gradient): g (m x n) scaled per row, w (n x k) by scales[1].
    wq: w's transposed operand already quantized (weight_operand's transposed one); w is then unread."""
    gq, sg = rowwise(g)
    if wq is None:
        wq = colwise_transposed(w, scales[1])
    return _scaled_mm(gq, wq.t(), sg, scales[1].t(), out_dtype)


def weight_operand(w: Any, scales: tuple[Any, Any], *, transposed: bool) -> Any:
    """A frozen weight's e4m3 operand, for GEMMs that share it (a layer's MLP run in token tiles): the forward's
    (w scaled per output channel, scales[0]) or, transposed, the input gradient's (wᵀ scaled per input channel)."""
    return colwise_transposed(w, scales[1]) if transposed else rowwise(w, scales[0])[0]


def _scaled_mm(a: Any, b: Any, scale_a: Any, scale_b: Any, out_dtype: Any, fast_accum: bool = False) -> Any:
    """a·b of e4m3 operands scaled per row of a (m, 1) and per column of b (1, n): torch's public
    `torch.nn.functional.scaled_mm` where this torch has it (2.10+), else the private `torch._scaled_mm`."""
    import torch
    import torch.nn.functional as F

    if hasattr(F, "scaled_mm") and hasattr(F, "ScalingType"):
        rows = F.ScalingType.RowWise
        return F.scaled_mm(a, b, scale_a, rows, scale_b, rows, output_dtype=out_dtype, use_fast_accum=fast_accum)
    return torch._scaled_mm(a, b, scale_a=scale_a, scale_b=scale_b, out_dtype=out_dtype, use_fast_accum=fast_accum)


def _torch_rowwise(x: Any, scale: Any = None) -> tuple[Any, Any]:
    import torch

    x32 = x.float()
    if scale is None:
        scale = x32.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / E4M3_MAX
    return (x32 / scale).to(torch.float8_e4m3fn), scale


@functools.cache
def _kernels() -> Any:
    import triton
    import triton.language as tl

    @triton.jit
    def rowwise_kernel(x_ptr, q_ptr, s_ptr, cols, x_stride, q_stride, KNOWN: tl.constexpr, BLOCK: tl.constexpr):
        # one row per program, longer than fits in registers: read for its scale (unless known), then again
        row = tl.program_id(0).to(tl.int64)
        offs = tl.arange(0, BLOCK)
        if KNOWN:
            scale = tl.load(s_ptr + row)
        else:
            amax = tl.zeros([BLOCK], dtype=tl.float32)
            for c in range(0, cols, BLOCK):
                v = tl.load(x_ptr + row * x_stride + c + offs, mask=c + offs < cols, other=0.0).to(tl.float32)
                amax = tl.maximum(amax, tl.abs(v))
            scale = tl.maximum(tl.max(amax, axis=0), 1e-12) / 448.0
            tl.store(s_ptr + row, scale)
        for c in range(0, cols, BLOCK):
            v = tl.load(x_ptr + row * x_stride + c + offs, mask=c + offs < cols, other=0.0).to(tl.float32)
            tl.store(q_ptr + row * q_stride + c + offs, (v / scale).to(tl.float8e4nv), mask=c + offs < cols)

    @triton.jit
    def transpose_scale_kernel(w_ptr, s_ptr, q_ptr, rows, cols, w_stride, q_stride, BR: tl.constexpr, BC: tl.constexpr):
        r = tl.program_id(0) * BR + tl.arange(0, BR)
        c = tl.program_id(1) * BC + tl.arange(0, BC)
        mask = (r[:, None] < rows) & (c[None, :] < cols)
        v = tl.load(w_ptr + r[:, None].to(tl.int64) * w_stride + c[None, :], mask=mask, other=0.0).to(tl.float32)
        scale = tl.load(s_ptr + c, mask=c < cols, other=1.0)
        q = tl.trans((v / scale[None, :]).to(tl.float8e4nv))  # (BC x BR): row c of the output holds column c of w
        tl.store(q_ptr + c[:, None].to(tl.int64) * q_stride + r[None, :], q, mask=tl.trans(mask))

    @triton.jit
    def rows_kernel(
        x_ptr, q_ptr, s_ptr, rows, cols, x_stride, q_stride, KNOWN: tl.constexpr, R: tl.constexpr, BLOCK: tl.constexpr
    ):
        # R whole rows per program, held in registers: one read of x (rows of up to BLOCK columns)
        r = tl.program_id(0) * R + tl.arange(0, R)
        c = tl.arange(0, BLOCK)
        mask = (r[:, None] < rows) & (c[None, :] < cols)
        v = tl.load(x_ptr + r[:, None].to(tl.int64) * x_stride + c[None, :], mask=mask, other=0.0).to(tl.float32)
        if KNOWN:
            scale = tl.load(s_ptr + r, mask=r < rows, other=1.0)
        else:
            scale = tl.maximum(tl.max(tl.abs(v), axis=1), 1e-12) / 448.0
            tl.store(s_ptr + r, scale, mask=r < rows)
        tl.store(
            q_ptr + r[:, None].to(tl.int64) * q_stride + c[None, :], (v / scale[:, None]).to(tl.float8e4nv), mask=mask
        )

    return rowwise_kernel, transpose_scale_kernel, rows_kernel


# launch shapes, measured on an H200 (benchmarks/RESULTS.md): elements per program of the row kernel and its
# warps; tile and warps of the transposing kernel
TUNING = {"row_elements": 4096, "row_warps": 8, "tile_rows": 32, "tile_cols": 128, "tile_warps": 4}


def _triton_rowwise(x: Any, scale: Any = None) -> tuple[Any, Any]:
    import torch
    import triton

    if x.stride(-1) != 1:
        x = x.contiguous()
    rows, cols = x.shape
    q = torch.empty((rows, cols), device=x.device, dtype=torch.float8_e4m3fn)
    known = scale is not None
    if not known:
        scale = torch.empty((rows, 1), device=x.device, dtype=torch.float32)
    block = triton.next_power_of_2(cols)
    if not rows:
        return q, scale
    if block <= TUNING["row_elements"]:
        r = max(1, TUNING["row_elements"] // block)
        _kernels()[2][(triton.cdiv(rows, r),)](
            x,
            q,
            scale,
            rows,
            cols,
            x.stride(0),
            q.stride(0),
            KNOWN=known,
            R=r,
            BLOCK=block,
            num_warps=TUNING["row_warps"],
        )
    else:  # longer rows: one per program, read twice (the scale, then the values)
        _kernels()[0][(rows,)](x, q, scale, cols, x.stride(0), q.stride(0), KNOWN=known, BLOCK=4096, num_warps=8)
    return q, scale


def _triton_colwise_transposed(w: Any, scale: Any) -> Any:
    import torch
    import triton

    if w.stride(-1) != 1:
        w = w.contiguous()
    rows, cols = w.shape
    q = torch.empty((cols, rows), device=w.device, dtype=torch.float8_e4m3fn)
    br, bc = TUNING["tile_rows"], TUNING["tile_cols"]
    _kernels()[1][(triton.cdiv(rows, br), triton.cdiv(cols, bc))](
        w, scale, q, rows, cols, w.stride(0), q.stride(0), BR=br, BC=bc, num_warps=TUNING["tile_warps"]
    )
    return q
