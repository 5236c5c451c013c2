"""FP8 (e4m3) operands for the frozen base's GEMMs in LoRA training, scaled per row.

On GPUs with FP8 tensor cores (compute capability 8.9+: Ada, Hopper) a GEMM with e4m3 operands runs
1.4-1.8x faster than in bf16 at the shapes of a 1B model's MLP (H200, 12,288 tokens; benchmarks/RESULTS.md).
The fused LoRA node (finetune/accel/lora_fused.py) uses it for the base weight's two GEMMs while training:

  forward   x·Wᵀ  with x scaled per token and W per output channel
  backward  g·W   with g scaled per token and W per input channel (a transposed copy)

The forward GEMM may accumulate at the tensor cores' own precision (`fast_accum`, torchao's default for
its output GEMM: no periodic promotion of the partial sums to float32); the input gradient's always
accumulates in float32.

With the adapter joined (`matmul_lora`, `matmul_transposed_lora`), its delta rides in the same GEMM as
extra inner columns, the rank rounded up to JOIN_MULTIPLE (128):

  forward   [x | x·Aᵀ]·[W | s·B]ᵀ    = x·Wᵀ + s·(x·Aᵀ)·Bᵀ
  backward  [g | s·g·B]·[W ; A]     = g·W + s·(g·B)·A

so no output-sized pass adds the delta afterwards (an addmm reading and writing the whole output: by a count
of bytes moved, about 7% of an 8B step); the delta's operands take the row's and the channel's scale with the
base's (recipe key `fp8_lora_in_gemm`, on by default). The rank is padded to 128 inner columns (JOIN_MULTIPLE):
padded to 16, the GEMMs ran 1.4x longer and the step was 14% longer at 8B; padded to 128, an H100's 8B QLoRA step
is 6% shorter than with the addmm, a 1B one 5% (benchmarks/RESULTS.md).

The operands are quantized on the fly, one read and one write each; of the frozen weight only its two
scale vectors are computed once and kept (as buffers, which layers sharing CUDA graphs copy into the
stand-in with their weights), so the FP8 weights add no memory. The adapter's own GEMMs (x·Aᵀ, its
weight gradients, and its delta unless joined) stay in the compute dtype. Scaling per row (token or
channel) is the recipe torchao calls "rowwise": every row uses e4m3's full range.

On CUDA the quantization runs as Triton kernels (finetune/accel/fp8_triton.py); elsewhere (tests on CPU) as the
same formula in torch.
"""

from __future__ import annotations

from typing import Any

from .fp8_triton import _kernels

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


def rowwise(x: Any, scale: Any = None, *, tail: Any = None) -> tuple[Any, Any]:
    """x (rows x cols) as e4m3 with one float32 scale per row: (q, scale of shape (rows, 1)), x ≈ q·scale.
    scale: the rows' scales when known (a frozen weight's), else each row's largest magnitude / 448.
    tail: a (rows x r) tensor joined on the right, [x | tail | 0] scaled together, r rounded up to JOIN_MULTIPLE with
    zero columns (q of shape (rows, cols + joined_width(r)); a scale found covers the tail too)."""
    import torch

    if x.is_cuda:
        return _triton_rowwise(x, scale, tail)
    if tail is not None:
        pad = joined_width(tail.shape[1]) - tail.shape[1]
        x = torch.cat([x, tail.to(x.dtype), x.new_zeros((x.shape[0], pad))], dim=1)
    return _torch_rowwise(x, scale)


# the multiple a joined operand's tail is rounded up to. FP8 GEMMs take 16, but on an H100 an inner size of k + 16
# runs 1.4x as long as k itself (8B q: 0.401 vs 0.288 ms), k + 128 as long as k (benchmarks/bench_fp8_lora.py)
JOIN_MULTIPLE = 128


def joined_width(r: int) -> int:
    """The columns a rank-r tail takes in a joined FP8 operand: r rounded up to JOIN_MULTIPLE."""
    return -(-r // JOIN_MULTIPLE) * JOIN_MULTIPLE


def colwise_transposed(w: Any, scale: Any, *, width: int | None = None) -> Any:
    """w (rows x cols) transposed, as e4m3 scaled per column of w by scale (cols, 1): q of shape (cols, rows),
    contiguous, wᵀ ≈ q·scale. The operand of g·w in FP8 (which takes w column-major).
    width: q is (cols, width), width >= rows, its columns after `rows` left unwritten (for a joined tail)."""
    import torch

    if w.is_cuda:
        return _triton_colwise_transposed(w, scale, width)
    wt = w.t()
    if width is not None:  # zero columns, overwritten by the caller's tail
        wt = torch.cat([wt, wt.new_zeros((wt.shape[0], width - wt.shape[1]))], dim=1)
    return _torch_rowwise(wt, scale)[0].contiguous()


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


def matmul_lora(
    x: Any, w: Any, scales: tuple[Any, Any], u: Any, sb: Any, out_dtype: Any, *, fast_accum: bool = False
) -> Any:
    """x·wᵀ + u·sbᵀ as one FP8 GEMM, [x | u]·[w | sb]ᵀ: x (m x k) and its adapter product u = x·Aᵀ (m x r)
    scaled per row together; w (n x k) and the scaled adapter weight sb = s·B (n x r) per output channel, by
    scales[0] (sb's excess over w's rows moved to u's side, `_balance`), or sb's row maximum past that."""
    import torch

    k, r = w.shape[1], sb.shape[1]
    c = _balance(sb.detach().float().abs() / (scales[0] * E4M3_MAX), dim=0)
    sb, u = sb.float() / c, u * c.to(u.dtype)
    s_w = torch.maximum(scales[0], sb.abs().amax(dim=1, keepdim=True) / E4M3_MAX)
    wq = torch.empty((w.shape[0], k + joined_width(r)), device=w.device, dtype=torch.float8_e4m3fn)
    _rowwise_into(w, s_w, wq)
    _set_tail(wq, k, sb.float() / s_w)
    xq, sx = rowwise(x, tail=u)
    return _scaled_mm(xq, wq.t(), sx, s_w.t(), out_dtype, fast_accum)


def matmul_transposed_lora(
    g: Any, w: Any, scales: tuple[Any, Any], gu: Any, a: Any, out_dtype: Any, *, operand: Any = None
) -> Any:
    """g·w + gu·a as one FP8 GEMM, [g | gu]·[w ; a]: g (m x n) and gu = s·g·B (m x r) scaled per row together;
    w (n x k) and the adapter weight a = A (r x k) per input channel (transposed_lora_operand).
    operand: that weight side already made (transposed_lora_operand's); w is then unread."""
    wt, s_t, c = operand if operand is not None else transposed_lora_operand(w, scales, a)
    gq, sg = rowwise(g, tail=gu * c.t().to(gu.dtype))
    return _scaled_mm(gq, wt.t(), sg, s_t.t(), out_dtype)


def transposed_lora_operand(w: Any, scales: tuple[Any, Any], a: Any) -> tuple[Any, Any, Any]:
    """matmul_transposed_lora's weight side, [w ; a]ᵀ as e4m3 scaled per input channel by scales[1] (a's excess over
    w's columns moved to gu's side, `_balance`), or a's column maximum past that: (the operand, its scale (k, 1),
    the balance c (r, 1) that gu's columns are multiplied by)."""
    import torch

    n, r = w.shape[0], a.shape[0]
    c = _balance(a.detach().float().abs() / (scales[1].t() * E4M3_MAX), dim=1).unsqueeze(1)
    a = a.float() / c
    s_t = torch.maximum(scales[1], a.abs().amax(dim=0).unsqueeze(1) / E4M3_MAX)
    wt = colwise_transposed(w, s_t, width=n + joined_width(r))
    _set_tail(wt, n, a.t().float() / s_t)
    return wt, s_t, c


# the most a rank's excess over the weight moves to the activation side: a weight row (or column) of zeros, whose
# scale is clamped near 0, must not blow the tokens' scales up (x would round to zero); the scale takes the rest
MAX_BALANCE = 2.0**8


def _balance(ratio: Any, dim: int) -> Any:
    """Per rank: the power of two (exact in any float dtype) by which the adapter weight's largest ratio to the
    base weight's range along `dim` exceeds 1, within [1, MAX_BALANCE]: (u·c)(sb/c)ᵀ keeps the base's scales
    while the delta per term stays under the base's."""
    import torch

    c = ratio.amax(dim=dim).clamp_(1.0, MAX_BALANCE)
    return torch.exp2(torch.ceil(torch.log2(c)))


def _set_tail(q: Any, start: int, scaled: Any) -> None:
    """q's columns from `start` on: the already scaled (rows x r) values as e4m3, zeros after them."""
    tail = scaled.new_zeros((scaled.shape[0], q.shape[1] - start))
    tail[:, : scaled.shape[1]] = scaled
    q[:, start:] = tail.to(q.dtype)


def _rowwise_into(w: Any, scale: Any, q: Any) -> None:
    """w (rows x cols) scaled per row by the known scale (rows, 1) as e4m3 into q's first cols columns."""
    if w.is_cuda:
        _triton_rowwise(w, scale, None, q)
    else:
        q[:, : w.shape[1]] = _torch_rowwise(w, scale)[0]


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


# launch shapes, measured on an H200 (benchmarks/RESULTS.md): elements per program of the row kernel and its
# warps; tile and warps of the transposing kernel
TUNING = {"row_elements": 4096, "row_warps": 8, "tile_rows": 32, "tile_cols": 128, "tile_warps": 4}


def _triton_rowwise(x: Any, scale: Any = None, tail: Any = None, out: Any = None) -> tuple[Any, Any]:
    """rowwise on CUDA; out: a given e4m3 buffer (rows x at least cols) whose first cols columns take x."""
    import torch
    import triton

    if x.stride(-1) != 1:
        x = x.contiguous()
    rows, cols = x.shape
    ucols = 0 if tail is None else tail.shape[1]
    width = 0 if tail is None else joined_width(ucols)
    if tail is not None and tail.stride(-1) != 1:
        tail = tail.contiguous()
    q = out if out is not None else torch.empty((rows, cols + width), device=x.device, dtype=torch.float8_e4m3fn)
    known = scale is not None
    if not known:
        scale = torch.empty((rows, 1), device=x.device, dtype=torch.float32)
    block = triton.next_power_of_2(cols)
    if not rows:
        return q, scale
    u = x if tail is None else tail  # a pointer the kernel reads only when TAIL > 0
    tails = dict(TAIL=triton.next_power_of_2(width) if width else 0, TAIL_W=width)
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
            u,
            u.stride(0),
            ucols,
            KNOWN=known,
            R=r,
            BLOCK=block,
            **tails,
            num_warps=TUNING["row_warps"],
        )
    else:  # longer rows: one per program, read twice (the scale, then the values)
        _kernels()[0][(rows,)](
            x, q, scale, cols, x.stride(0), q.stride(0), u, u.stride(0), ucols,
            KNOWN=known, BLOCK=4096, **tails, num_warps=8,
        )  # fmt: skip
    return q, scale


def _triton_colwise_transposed(w: Any, scale: Any, width: int | None = None) -> Any:
    import torch
    import triton

    if w.stride(-1) != 1:
        w = w.contiguous()
    rows, cols = w.shape
    q = torch.empty((cols, width or rows), device=w.device, dtype=torch.float8_e4m3fn)
    br, bc = TUNING["tile_rows"], TUNING["tile_cols"]
    _kernels()[1][(triton.cdiv(rows, br), triton.cdiv(cols, bc))](
        w, scale, q, rows, cols, w.stride(0), q.stride(0), BR=br, BC=bc, num_warps=TUNING["tile_warps"]
    )
    return q
