"""The Triton kernels that quantize operands to e4m3 on CUDA for finetune/accel/fp8.py, which launches them.

rows_kernel scales whole rows held in registers, several per program; rowwise_kernel rows too long for that, one
per program, read twice (the scale, then the values); both take a known scale, and a tail joined on the right
(fp8.rowwise's `tail`). transpose_scale_kernel writes a weight transposed, scaled per column (fp8.colwise_transposed).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _kernels() -> Any:
    import triton
    import triton.language as tl

    @triton.jit
    def rowwise_kernel(
        x_ptr, q_ptr, s_ptr, cols, x_stride, q_stride, u_ptr, u_stride, ucols,
        KNOWN: tl.constexpr, BLOCK: tl.constexpr, TAIL: tl.constexpr, TAIL_W: tl.constexpr,
    ):  # fmt: skip
        # one row per program, longer than fits in registers: read for its scale (unless known), then again;
        # TAIL > 0: the row of u (ucols values) joined after it, TAIL_W columns with zeros after u's
        row = tl.program_id(0).to(tl.int64)
        offs = tl.arange(0, BLOCK)
        if TAIL > 0:
            t = tl.arange(0, TAIL)
            uv = tl.load(u_ptr + row * u_stride + t, mask=t < ucols, other=0.0).to(tl.float32)
        if KNOWN:
            scale = tl.load(s_ptr + row)
        else:
            amax = tl.zeros([BLOCK], dtype=tl.float32)
            for c in range(0, cols, BLOCK):
                v = tl.load(x_ptr + row * x_stride + c + offs, mask=c + offs < cols, other=0.0).to(tl.float32)
                amax = tl.maximum(amax, tl.abs(v))
            m = tl.max(amax, axis=0)
            if TAIL > 0:
                m = tl.maximum(m, tl.max(tl.abs(uv), axis=0))
            scale = tl.maximum(m, 1e-12) / 448.0
            tl.store(s_ptr + row, scale)
        for c in range(0, cols, BLOCK):
            v = tl.load(x_ptr + row * x_stride + c + offs, mask=c + offs < cols, other=0.0).to(tl.float32)
            tl.store(q_ptr + row * q_stride + c + offs, (v / scale).to(tl.float8e4nv), mask=c + offs < cols)
        if TAIL > 0:
            tl.store(q_ptr + row * q_stride + cols + t, (uv / scale).to(tl.float8e4nv), mask=t < TAIL_W)

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
        x_ptr, q_ptr, s_ptr, rows, cols, x_stride, q_stride, u_ptr, u_stride, ucols,
        KNOWN: tl.constexpr, R: tl.constexpr, BLOCK: tl.constexpr, TAIL: tl.constexpr, TAIL_W: tl.constexpr,
    ):  # fmt: skip
        # R whole rows per program, held in registers: one read of x (rows of up to BLOCK columns);
        # TAIL > 0: each row of u (ucols values) joined after x's, TAIL_W columns with zeros after u's
        r = tl.program_id(0) * R + tl.arange(0, R)
        c = tl.arange(0, BLOCK)
        mask = (r[:, None] < rows) & (c[None, :] < cols)
        v = tl.load(x_ptr + r[:, None].to(tl.int64) * x_stride + c[None, :], mask=mask, other=0.0).to(tl.float32)
        if TAIL > 0:
            t = tl.arange(0, TAIL)
            umask = (r[:, None] < rows) & (t[None, :] < ucols)
            uv = tl.load(u_ptr + r[:, None].to(tl.int64) * u_stride + t[None, :], mask=umask, other=0.0)
            uv = uv.to(tl.float32)
        if KNOWN:
            scale = tl.load(s_ptr + r, mask=r < rows, other=1.0)
        else:
            m = tl.max(tl.abs(v), axis=1)
            if TAIL > 0:
                m = tl.maximum(m, tl.max(tl.abs(uv), axis=1))
            scale = tl.maximum(m, 1e-12) / 448.0
            tl.store(s_ptr + r, scale, mask=r < rows)
        tl.store(
            q_ptr + r[:, None].to(tl.int64) * q_stride + c[None, :], (v / scale[:, None]).to(tl.float8e4nv), mask=mask
        )
        if TAIL > 0:
            tl.store(
                q_ptr + r[:, None].to(tl.int64) * q_stride + cols + t[None, :],
                (uv / scale[:, None]).to(tl.float8e4nv),
                mask=(r[:, None] < rows) & (t[None, :] < TAIL_W),
            )

    return rowwise_kernel, transpose_scale_kernel, rows_kernel
