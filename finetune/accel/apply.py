"""Putting a plan (finetune/accel/plan.py) into effect for one run, and taking it back out.

`process(plan)`: for the run's duration the CUDA allocator grows its segments in place (when the plan says
so), and the modeling modules it is told about get back, at the end, the names kernel libraries patched
into them (Liger, applied by the trainer, replaces a Llama module's RMSNorm, MLP and rotary function for
the whole process: models made later, the app's or a benchmark's plain arm, would be built from them).
`apply(plan, model, ...)`: on a peft model just built by the trainer, the trained weights' dtype, compiled
layers, the fused LoRA node (with FP8 GEMMs) and the CUDA-graphed layers; it returns an `Applied`, whose
call undoes what can be undone (the fused forwards, the graphs) and reports what ran.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .plan import Plan


@contextlib.contextmanager
def cuda_allocator(expandable: bool) -> Iterator[None]:
    """Inside, PyTorch's CUDA allocator grows its segments in place; after, it is back to its default for the
    rest of the process. Segments already allocated keep the mode they were made with."""
    if not expandable:
        yield
        return
    import torch

    torch.cuda.memory._set_allocator_settings("expandable_segments:True")
    try:
        yield
    finally:
        torch.cuda.memory._set_allocator_settings("expandable_segments:False")


@contextlib.contextmanager
def module_restored(module: Any) -> Iterator[None]:
    """Inside, a model's modeling module may be patched; after, the names it had are put back (names added
    inside stay: a module may cache things lazily)."""
    saved = dict(vars(module))
    try:
        yield
    finally:
        for name, value in saved.items():
            if vars(module).get(name) is not value:
                setattr(module, name, value)


class Process:
    """What `process()` yields: `restore(module)` puts a modeling module back as it is now when the run ends."""

    def __init__(self, stack: contextlib.ExitStack):
        self._stack = stack

    def restore(self, module: Any) -> None:
        self._stack.enter_context(module_restored(module))


@contextlib.contextmanager
def process(plan: Plan) -> Iterator[Process]:
    with contextlib.ExitStack() as stack:
        stack.enter_context(cuda_allocator(plan.expandable_segments))
        yield Process(stack)


@dataclass
class Applied:
    """What apply() did to a model. Call it once training is over: it undoes the fused forwards and the
    graphs (the model is peft's again) and returns the run's figures of them."""

    plan: Plan
    fused_layers: int = 0
    fp8_layers: int = 0
    gated_mlps: int = 0  # MLPs whose down projection recomputes its input in backward (finetune/accel/gated_mlp.py)
    compiled_layers: int = 0
    graphs: Any = None  # graphs.LayerGraphs while installed
    _undo: list[Callable[[], None]] = field(default_factory=list)
    _report: dict[str, Any] | None = None

    def train_begin(self, model: Any) -> None:
        """When training starts, after the trainer has patched the model (transformers' Trainer binds Liger's MLP
        forwards in train()): the gated MLPs' forward put back where that replaced it."""
        if self.gated_mlps and self._report is None:
            from . import gated_mlp

            again = gated_mlp.install(model)
            if again.count:  # type: ignore[attr-defined]
                self._undo.append(again)
            self.gated_mlps = gated_mlp.installed(model)  # what the run trains with

    def callback(self) -> Any:
        """A transformers TrainerCallback that calls train_begin when training starts."""
        from transformers import TrainerCallback

        applied = self

        class _AtTrainBegin(TrainerCallback):
            def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
                if model is not None:
                    applied.train_begin(model)

        return _AtTrainBegin()

    def __call__(self) -> dict[str, Any]:
        if self._report is None:
            summary = self.graphs.summary() if self.graphs is not None else None
            while self._undo:
                self._undo.pop()()
            self.graphs = None
            self._report = {
                "cuda_graphs": summary if summary is not None else self.plan.why_off("cuda_graphs"),
                "fused_lora_layers": self.fused_layers,
                "fp8_layers": self.fp8_layers,
                "gated_mlps_recomputed": self.gated_mlps,
            }
        return self._report


def apply(
    plan: Plan,
    model: Any,
    *,
    max_tokens: int,
    varlen_max: int = 0,
    checkpoint: bool = True,
    keep: int = 0,
    share: bool = True,
    skip_unread: bool = True,
    offload: bool | str = False,
    mlp_tiles: int | str = 1,
) -> Applied:
    """Put the plan's model-side speed-ups on `model` (peft's, before the optimizer is built): bf16 LoRA weights,
    compiled decoder layers, fused LoRA Linears (FP8 base GEMMs), and decoder layers as CUDA graphs for batches
    of up to max_tokens tokens (packed rows up to varlen_max each; checkpoint, keep, share, skip_unread, offload,
    mlp_tiles: see graphs.LayerGraphs). On a plain plan nothing changes."""
    done = Applied(plan)
    if not plan.accel:
        return done
    if plan.lora_dtype == "bfloat16":
        import torch

        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.to(torch.bfloat16)
    if plan.compile_layers:
        from .layers import compile_decoder_layers

        done.compiled_layers = compile_decoder_layers(model)
    if plan.fused_lora:
        from . import gated_mlp, lora_fused

        unfuse = lora_fused.install(
            model, fp8=plan.fp8, fp8_fast_accum=plan.fp8_fast_accum, fp8_lora_in_gemm=plan.fp8_lora_in_gemm
        )
        done.fused_layers, done.fp8_layers = unfuse.count, unfuse.fp8_count  # type: ignore[attr-defined]
        done._undo.append(unfuse)
        if gated_mlp.ENABLED:
            ungate = gated_mlp.install(model)
            done.gated_mlps = ungate.count  # type: ignore[attr-defined]
            done._undo.append(ungate)
    if plan.cuda_graphs:
        from . import offload as offload_ops
        from . import tiled_mlp
        from .graphs import LayerGraphs
        from .layers import decoder_layers

        layers = decoder_layers(model)
        hidden = int(getattr(getattr(model, "config", None), "hidden_size", 0) or 0)
        held = offload_ops.wanted(offload, layers=len(layers), max_tokens=max_tokens, hidden=hidden)
        tiles = (  # tiles need a recompute that skips the MLP's unread output
            tiled_mlp.tile_count(mlp_tiles, offloaded=held, max_tokens=max_tokens, hidden=hidden)
            if checkpoint and skip_unread
            else 1
        )
        done.graphs = LayerGraphs(
            layers,
            max_tokens=max_tokens,
            checkpoint=checkpoint,
            keep=keep if checkpoint else -1,
            share=share,
            skip_unread=skip_unread,
            varlen_max=varlen_max if plan.batching == "packed" else 0,
            offload=held,
            mlp_tiles=tiles,
        ).install()
        done._undo.append(done.graphs.uninstall)
    return done
