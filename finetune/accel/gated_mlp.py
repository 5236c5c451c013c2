"""A gated MLP (Llama's SwiGLU) whose down projection keeps the gate's two operands for its backward, not its input.

In `down_proj(act(gate_proj(x)) * up_proj(x))` the backward keeps three tokens x intermediate tensors: the gate's
and up's outputs (the gating op's operands: Liger's SiLU-mul keeps them and overwrites them in place with their
gradients) and the gating op's output h, which the down projection's fused LoRA node keeps only for its A
weight's gradient (dA = guᵀ·h, gu of the adapter's rank). At 8B shapes (12,800 x 14,336 in bf16) h is 0.37 GB
of the CUDA graphs' memory pool at its peak, in a layer's backward (benchmarks/RESULTS.md). Here the down
projection's node keeps the operands instead, which are kept anyway, and recomputes h one row chunk at a time
in its backward with the MLP's own gating op (the same values): one more elementwise pass over the operands.

`install(model)` puts this forward on every MLP of that form whose down projection runs the fused node
(finetune/accel/lora_fused.py): the form is read from the function its forward runs, its class's or one bound to
it in place (as Liger patches a built model's MLPs); no-grad forwards run that function. Returns the function
that removes it. transformers' Trainer binds Liger's MLP forward when train() starts, over this one: the run
installs it again then (finetune/accel/apply.py, Applied.train_begin).

DEFER_IN_RECOMPUTE goes one step further where the down projection's output is unread (the graphs' recompute):
the gating op does not run in that forward at all (a node stands for its product, with no values), and the
down projection's backward chunks give B's gradient as well as A's; the operands' gradients then come from
Liger's backward kernel, or autograd through the activation alone (transformers' `act(gate) * up`), so the
backward keeps no more than the op's own would (DEFER_ACT_MUL).
That takes back the extra pass: 8B QLoRA (Liger's SiLU-mul) on an H100, 841.3 ms a step against 840.6 keeping
the product and 847.2 recomputing it (benchmarks/RESULTS.md). With OPERAND_GRADS_IN_CHUNKS the down projection's
backward also makes the product's gradient in those row chunks and, from each, the operands' gradients over gate
and up (recomputed_input.Deferred), so that gradient (as large as the product) never exists whole either.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from . import lora_fused, recomputed_input

ENABLED = True  # off: the down projection keeps its input (the benchmark's `keep-h` arm compares the two)
# on: in a recompute whose down projection output is unread, the gating op does not run at all: its product is made
# only in the down projection's backward chunks, which give B's gradient too (off: the benchmark's `product-h` arm)
DEFER_IN_RECOMPUTE = True
# ...for transformers' `act(gate) * up` as well (its backward through the activation alone): under CUDA graphs on an
# H100 the graphs' pool three product-sized tensors smaller than with the product made in forward
# (tests/test_accel_gpu.py); Liger's SiLU-mul defers whenever DEFER_IN_RECOMPUTE is on
DEFER_ACT_MUL = True
# on: where the product is deferred, its gradient too is made a row chunk at a time in the down projection's backward,
# which writes the operands' gradients over them (off: the benchmark's `whole-dh` arm, the gradient made whole)
OPERAND_GRADS_IN_CHUNKS = True


def own_forward(mlp: Any) -> Callable[..., Any] | None:
    """The function mlp's forward runs: its class's, or one bound to it in place (Liger's on a built model); None
    for any other wrapper."""
    bound = vars(mlp).get("forward")
    if bound is None:
        return type(mlp).forward
    return bound.__func__ if getattr(bound, "__self__", None) is mlp else None


def gating_op(mlp: Any) -> Callable[[Any, Any, Any], Any] | None:
    """`(mlp, gate, up) -> h` for an MLP whose forward is `down_proj(op(gate_proj(x), up_proj(x)))`, else None: one
    that runs Llama's MLP forward (its code compared, so models that copy it qualify) or Liger's SwiGLU MLP's."""
    if not all(hasattr(mlp, n) for n in ("gate_proj", "up_proj", "down_proj")):
        return None
    code = getattr(own_forward(mlp), "__code__", None)
    if _same_code(code, _llama_mlp_forward.__code__) and callable(getattr(mlp, "act_fn", None)):
        return _act_mul
    liger = _liger_swiglu()
    if liger is not None and _same_code(code, liger[0].forward.__code__):
        return functools.partial(_liger_mul, liger[1])
    return None


# transformers' LlamaMLP.forward as written there, no docstring (its code is what is compared; Liger may replace
# that class by name in transformers' module)
def _llama_mlp_forward(self: Any, x: Any) -> Any:
    down_proj = self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))
    return down_proj


def _act_mul(mlp: Any, gate: Any, up: Any) -> Any:
    return mlp.act_fn(gate) * up


def _liger_mul(fn: Any, mlp: Any, gate: Any, up: Any) -> Any:
    return fn.apply(gate, up, 1.0, 1.0)  # as LigerSwiGLUMLP calls it


def _operand_grads_into(op: Callable[[Any, Any, Any], Any], mlp: Any, gate: Any, up: Any, dh: Any) -> None:
    """The gate's and up's gradients given the product's, written over gate and up (contiguous, or row slices of
    contiguous tensors): Liger's backward kernel (which recomputes the product inside, as its own node does), else
    (transformers' `act(gate) * up`, the only other form gating_op finds) autograd through the activation alone."""
    import torch

    if isinstance(op, functools.partial) and op.func is _liger_mul:
        from liger_kernel.ops.swiglu import swiglu_backward

        swiglu_backward(gate, up, dh.contiguous())
        return
    # no product made; at most three operand-sized tensors live besides gate and up, as in autograd's own backward
    with torch.enable_grad():
        g = gate.detach().requires_grad_(True)
        act = mlp.act_fn(g)
    (dg,) = torch.autograd.grad(act, g, dh * up)  # live: act, dh * up, dg
    act = act.detach()
    fresh = act.data_ptr() != gate.data_ptr()  # an activation that returns its input is gate itself
    up.copy_(act.mul_(dh) if fresh else act * dh)
    gate.copy_(dg)


@functools.cache
def _deferred_fn() -> Any:
    """The autograd.Function standing for op(gate, up) when nothing computes it in forward (built on first use)."""
    import torch

    class DeferredProduct(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, gate: Any, up: Any, op: Any, mlp: Any, handoff: Any) -> Any:
            # held, not saved: the reader's backward may write the gradients over them (handoff.written), which
            # autograd's saved-tensor version check would refuse
            ctx.op, ctx.mlp, ctx.handoff = op, mlp, handoff
            handoff.operands = (gate, up)
            # no values, no memory: a stride-0 view of one element, shaped as the product (its reader only reads
            # its shape and dtype: fused_node_runs, unread)
            return gate.new_empty(()).expand(gate.shape)

        @staticmethod
        def backward(ctx: Any, dh: Any) -> Any:
            if ctx.handoff is None:  # their memory holds the gradients now: nothing to differentiate again
                raise RuntimeError("a deferred gated product was differentiated twice (retain_graph is not supported)")
            gate, up = ctx.handoff.operands
            if not ctx.handoff.written:
                _operand_grads_into(ctx.op, ctx.mlp, gate, up, dh)
            ctx.handoff.operands = None
            ctx.op = ctx.mlp = ctx.handoff = None
            return gate, up, None, None, None

    return DeferredProduct


def _same_code(a: Any, b: Any) -> bool:
    return a is not None and (a.co_code, a.co_names, a.co_consts) == (b.co_code, b.co_names, b.co_consts)


def _liger_swiglu() -> tuple[type, Any] | None:
    """Liger's SwiGLU MLP class and its SiLU-mul function, where Liger is imported already (the trainer applied it)."""
    import sys

    if "liger_kernel.transformers" not in sys.modules:
        return None
    try:
        from liger_kernel.ops import LigerSiLUMulFunction
        from liger_kernel.transformers.swiglu import LigerSwiGLUMLP
    except ImportError:
        return None
    return LigerSwiGLUMLP, LigerSiLUMulFunction


def _forward(mlp: Any, op: Callable[[Any, Any, Any], Any], own: Callable[..., Any], x: Any) -> Any:
    import torch

    if not torch.is_grad_enabled():
        return own(mlp, x)
    gate, up = mlp.gate_proj(x), mlp.up_proj(x)
    down = mlp.down_proj
    if (
        DEFER_IN_RECOMPUTE
        and (op is not _act_mul or DEFER_ACT_MUL)
        and lora_fused.unread_now(down)
        and gate.dtype == up.dtype  # the product's dtype, which the down projection's node must take uncast
        and gate.is_contiguous()  # Liger's backward kernel indexes both operands by the gradient's row stride
        and up.is_contiguous()
        and lora_fused.fused_node_runs(down, gate)
    ):
        handoff = recomputed_input.Deferred(
            functools.partial(_operand_grads_into, op, mlp) if OPERAND_GRADS_IN_CHUNKS else None
        )
        h = _deferred_fn().apply(gate, up, op, mlp, handoff)
        with recomputed_input.input_recomputed(h, gate, up, functools.partial(op, mlp), deferred=handoff):
            return down(h)
    h = op(mlp, gate, up)
    with recomputed_input.input_recomputed(h, gate, up, functools.partial(op, mlp)):
        return down(h)


def installed(model: Any) -> int:
    """How many of the model's MLPs run the forward above now."""
    return sum(1 for m in model.modules() if _is_ours(vars(m).get("forward")))


def _is_ours(forward: Any) -> bool:
    return isinstance(forward, functools.partial) and forward.func is _forward


def install(model: Any) -> Callable[[], None]:
    """The forward above on every gated MLP of the model whose down projection is a fused LoRA Linear; returns the
    function that removes them (its `count`: how many MLPs)."""
    fused = {id(m) for m in lora_fused.fused_modules(model)}
    patched = []  # (module, the forward bound to it before, or None)
    for module in model.modules():
        if id(getattr(module, "down_proj", None)) not in fused:
            continue
        op, own = gating_op(module), own_forward(module)
        if op is not None and own is not None:
            patched.append((module, vars(module).get("forward")))
            module.forward = functools.partial(_forward, module, op, own)

    def uninstall() -> None:
        for module, before in patched:
            if not _is_ours(vars(module).get("forward")):
                continue  # replaced since (a trainer that patches at train start): left as it is
            if before is None:
                vars(module).pop("forward", None)
            else:
                module.forward = before
        patched.clear()

    uninstall.count = len(patched)  # type: ignore[attr-defined]
    return uninstall
