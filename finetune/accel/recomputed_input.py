"""A fused LoRA node's input that is a gated MLP's product op(gate, up), recomputed in its backward instead of kept.

finetune/accel/gated_mlp.py names the product, its operands and the op around the down projection's call
(`input_recomputed`); the fused node (finetune/accel/lora_fused.py) finds them there (`current`), keeps the
operands instead of its input, and makes its LoRA weights' gradients from the product one row chunk at a time
(`grads`).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator

CHUNKS = 8  # row chunks the product is made in for the gradients (each at least 16 rows)

_CURRENT: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("lorag_recomputed", default=None)


@contextlib.contextmanager
def input_recomputed(
    x: Any, gate: Any, up: Any, op: Callable[[Any, Any], Any], deferred: bool = False
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
    gu: Any, gate: Any, up: Any, op: Callable[[Any, Any], Any], g: Any = None, a: Any = None, scale: float = 1.0
) -> tuple[Any, Any]:
    """guᵀ·x with x = op(gate, up) made one row chunk at a time, each chunk's product (in x's dtype) summed in
    float32; and, given the output gradient g and A, B's gradient scale·gᵀ·(x·Aᵀ) from the same chunks (else None).
    Zeros for no rows."""
    import torch

    g2, u2 = gate.reshape(-1, gate.shape[-1]), up.reshape(-1, up.shape[-1])
    rows = g2.shape[0]
    step = max(16, -(-rows // CHUNKS))
    ga = gu.new_zeros((gu.shape[1], g2.shape[1]), dtype=torch.float32)
    gb = None if g is None else g.new_zeros((g.shape[1], a.shape[0]), dtype=torch.float32)
    with torch.no_grad():
        for i in range(0, rows, step):
            x = op(g2[i : i + step], u2[i : i + step])
            ga.add_(gu[i : i + step].t() @ x)
            if gb is not None:
                gb.add_((g[i : i + step].t() @ (x @ a.t())).mul_(scale))
            del x
    return ga, gb
