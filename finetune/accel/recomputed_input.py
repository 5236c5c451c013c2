"""A fused LoRA node's input that is a gated MLP's product op(gate, up), recomputed in its backward instead of kept.

finetune/accel/gated_mlp.py names the product, its operands and the op around the down projection's call
(`input_recomputed`); the fused node (finetune/accel/lora_fused.py) finds them there (`current`), keeps the
operands instead of its input, and makes its LoRA weights' gradients from the product one row chunk at a time
(`grads`). For a product that never ran (`Deferred`), the same chunks also give the node's input gradient and,
from it, the operands' gradients, written over gate and up chunk by chunk: the product's gradient (tokens x the
MLP's width, 0.37 GB at 8B shapes, at the graphs' memory peak) then never exists whole.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator

# row chunks the product (and a deferred product's gradient) is made in, each a multiple of 16 rows (FP8 GEMMs take
# those). 8B QLoRA on an H100: 4 chunks 830.2 ms a step, 8 chunks 846.2, same reserved memory (RESULTS.md)
CHUNKS = 4

_CURRENT: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("lorag_recomputed", default=None)


class Deferred:
    """A product op(gate, up) that never ran, handed from its stand-in node to the node reading it. That node's
    backward may write the operands' gradients over `operands` (the gate and up the stand-in holds: not the
    reader's saved copies, which a saved-tensor hook may have made), chunk by chunk, with
    `operand_grads_into(gate, up, dx)` (dx: the product's gradient for those rows), and then sets `written`: the
    stand-in's backward returns them as they are. Where the reader gives its input gradient whole instead, the
    stand-in makes them."""

    __slots__ = ("operand_grads_into", "operands", "written")

    def __init__(self, operand_grads_into: Callable[[Any, Any, Any], None] | None) -> None:
        self.operand_grads_into = operand_grads_into  # None: the reader must give its input gradient whole
        self.operands: tuple[Any, Any] | None = None  # (gate, up), set by the stand-in's forward
        self.written = False


@contextlib.contextmanager
def input_recomputed(
    x: Any, gate: Any, up: Any, op: Callable[[Any, Any], Any], deferred: Deferred | None = None
) -> Iterator[None]:
    """Inside, a fused node called on x, which is op(gate, up) (a gated MLP's: finetune/accel/gated_mlp.py), keeps
    gate and up for its backward instead of x, and recomputes x there in row chunks; gate and up must not change
    before that backward has run (it runs before theirs, which may then overwrite them). deferred: x holds no
    values (op never ran); only for a node whose output is unread and that runs fused (lora_fused.fused_node_runs)."""
    token = _CURRENT.set((x, gate, up, op, deferred))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> tuple | None:
    """(x, gate, up, op, deferred) inside input_recomputed, else None."""
    return _CURRENT.get()


def grads(
    gu: Any,
    gate: Any,
    up: Any,
    op: Callable[[Any, Any], Any],
    g: Any = None,
    a: Any = None,
    scale: float = 1.0,
    *,
    input_grad: Callable[[slice], Any] | None = None,
    operand_grads_into: Callable[[Any, Any, Any], None] | None = None,
) -> tuple[Any, Any]:
    """guᵀ·x with x = op(gate, up) made one row chunk at a time, each chunk's product (in x's dtype) summed in
    float32; and, given the output gradient g and A, B's gradient scale·gᵀ·(x·Aᵀ) from the same chunks (else None).
    Zeros for no rows. Given input_grad (the reading node's input gradient for a slice of rows) and
    operand_grads_into, each chunk's input gradient is made after its product and handed to operand_grads_into
    with that chunk's rows of gate and up, which it overwrites with their gradients."""
    import torch

    g2, u2 = gate.reshape(-1, gate.shape[-1]), up.reshape(-1, up.shape[-1])
    rows = g2.shape[0]
    step = 16 * max(1, -(-rows // (16 * CHUNKS)))  # about rows / CHUNKS, rounded up to a multiple of 16
    ga = gu.new_zeros((gu.shape[1], g2.shape[1]), dtype=torch.float32)
    gb = None if g is None else g.new_zeros((g.shape[1], a.shape[0]), dtype=torch.float32)
    with torch.no_grad():
        for i in range(0, rows, step):
            x = op(g2[i : i + step], u2[i : i + step])
            ga.add_(gu[i : i + step].t() @ x)
            if gb is not None:
                gb.add_((g[i : i + step].t() @ (x @ a.t())).mul_(scale))
            del x
            if operand_grads_into is not None:
                rows_i = slice(i, i + step)
                operand_grads_into(g2[rows_i], u2[rows_i], input_grad(rows_i))
    return ga, gb
