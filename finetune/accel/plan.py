"""The acceleration plan: what a training run speeds up on this machine, decided once, frozen.

`decide` reads the recipe (any object with the fields `Recipe` lists: finetune/config.py's TrainConfig),
the device, the model's config and the data's order, and returns a `Plan`: the quantization, batching,
dtypes, kernels, CUDA graphs, FP8 GEMMs and allocator mode the run uses, each choice that is off with
its reason (`Plan.off`). A recipe with `accel: false` ("off" in YAML) gets the plan of plain trl + peft.
`Plan.record()` is what a run's card keeps; `Plan.lines()` the run summary's account of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import fp8 as fp8_ops
from . import varlen_attention
from .layers import sliding_window


class PlanError(ValueError):
    """A recipe asks for what this machine, model or data cannot do; `hint` says what to change."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class Recipe(Protocol):
    """The recipe fields the plan reads (finetune/config.py has their meaning)."""

    accel: bool
    quantization: str
    batching: str
    attn_implementation: str
    sdpa_backend: str
    micro_batch: int
    max_seq_length: int
    lora_dropout: float
    lora_dtype: str
    liger: bool
    compile_layers: bool
    cuda_graphs: bool
    fused_lora: bool
    fp8_matmuls: bool
    fp8_fast_accum: bool
    fp8_lora_in_gemm: bool
    expandable_segments: bool


@dataclass(frozen=True)
class Plan:
    accel: bool  # False: plain trl + peft (the recipe's `accel: off`)
    device: str
    quantization: str  # 'nf4' or 'none'
    batching: str  # 'packed', 'padded' or 'padding_free'
    bf16: bool
    attn_implementation: str  # what the model is loaded with (packed: varlen_attention.NAME)
    sdpa_backend: str  # 'flash', 'cudnn' or '' (torch's choice)
    lora_dtype: str
    liger: bool
    compile_layers: bool
    fused_lora: bool
    cuda_graphs: bool
    fp8: bool
    expandable_segments: bool
    sequential: bool = False  # the rows train in file order (curriculum)
    fp8_fast_accum: bool = False  # fp8: the forward GEMMs accumulate at the tensor cores' precision
    fp8_lora_in_gemm: bool = False  # fp8: the adapter's delta and input gradient computed inside the FP8 GEMMs
    varlen_kernel: str = ""  # packed: 'public' (torch.nn.attention.varlen) or 'private' (aten._flash_attention_forward)
    off: tuple[tuple[str, str], ...] = field(default=())  # (what, why) for each speed-up that is off
    note: str | None = None  # what the recipe gave up, said plainly (lora_dropout > 0 on CUDA)

    def why_off(self, what: str) -> str | None:
        return dict(self.off).get(what)

    @property
    def lorag_trainer(self) -> bool:
        """Whether the run uses lorag's trainer (finetune/accel/trainer.py) rather than trl's own."""
        return self.accel

    def record(self) -> dict[str, Any]:
        """The plan as a run's card keeps it (hyperparameters["runtime"]; the keys older cards have, too)."""
        return {
            "accel": self.accel,
            "device": self.device,
            "quantization": self.quantization,
            "batching": self.batching,
            "bf16": self.bf16,
            "attn_implementation": self.attn_implementation,
            "sdpa_backend": self.sdpa_backend,
            "lora_dtype": self.lora_dtype,
            "liger": self.liger,
            "liger_off": self.why_off("liger"),
            "compile_layers": self.compile_layers,
            "fused_lora": self.fused_lora,
            "cuda_graphs": self.cuda_graphs,
            "cuda_graphs_off": self.why_off("cuda_graphs"),
            "fp8": self.fp8,
            "fp8_off": self.why_off("fp8"),
            "fp8_fast_accum": self.fp8_fast_accum,
            "fp8_lora_in_gemm": self.fp8_lora_in_gemm,
            "packed_off": self.why_off("packed"),
            "expandable_segments": self.expandable_segments,
            "sequential": self.sequential,
            "varlen_kernel": self.varlen_kernel,
            "off": dict(self.off),
            "note": self.note,
        }

    def lines(self) -> list[str]:
        """The plan in words: what is on, then each speed-up that is off and why."""
        if not self.accel:
            return ["acceleration off (accel: off in the recipe): plain trl + peft"]
        on = [
            name
            for name, flag in (
                ("packed steps", self.batching == "packed"),
                ("CUDA graphs", self.cuda_graphs),
                ("fused LoRA", self.fused_lora),
                ("FP8 GEMMs", self.fp8),
                ("Liger", self.liger),
                (f"{self.lora_dtype} LoRA weights", self.lora_dtype == "bfloat16"),
                ("compiled layers", self.compile_layers),
            )
            if flag
        ]
        out = [f"acceleration: {', '.join(on) or 'none'}"]
        out += [f"{what} off: {why}" for what, why in self.off]
        if self.note:
            out.append(self.note)
        return out


def _first(*checks: tuple[bool, str]) -> str | None:
    return next((why for off, why in checks if off), None)


def _liger_unimportable() -> str | None:
    """Why Liger's transformers integration cannot be used here, or None. It imports what the trainer will
    apply, here with the run's other imports, not inside the timed trainer.train() (in a new process
    the import loads Liger's ops and probes its backends)."""
    try:
        import liger_kernel.transformers  # noqa: F401
    except Exception as e:  # not installed, or installed against another transformers/triton
        return f"liger_kernel.transformers does not import: {type(e).__name__}: {e}"
    return None


def _quantization(recipe: Recipe, cuda: bool) -> str:
    quant = recipe.quantization if recipe.quantization != "auto" else ("nf4" if cuda else "none")
    if quant == "nf4" and not cuda:
        try:
            import bitsandbytes  # noqa: F401  (0.45+ has CPU NF4 kernels)
        except ImportError as e:
            raise PlanError("quantization 'nf4' needs bitsandbytes", hint="pip install bitsandbytes") from e
    return quant


def plain(recipe: Recipe, device: str, *, sequential: bool = False) -> Plan:
    """The plan of plain trl + peft: its own trainer, padded (or trl's padding-free) batches, peft's LoRA."""
    import torch

    if recipe.batching == "packed":
        raise PlanError(
            "batching 'packed' is lorag's acceleration, which the recipe turns off (accel: off)",
            hint="set batching: padded (or auto), or accel: on",
        )
    cuda = device == "cuda"
    return Plan(
        accel=False,
        device=device,
        quantization=_quantization(recipe, cuda),
        batching="padding_free" if recipe.batching == "padding_free" else "padded",
        bf16=cuda and torch.cuda.is_bf16_supported(),
        attn_implementation=recipe.attn_implementation,
        sdpa_backend="",
        lora_dtype="float32",
        liger=False,
        compile_layers=False,
        fused_lora=False,
        cuda_graphs=False,
        fp8=False,
        expandable_segments=False,
        sequential=sequential,
        off=(("accel", "off in the recipe"),),
    )


def decide(recipe: Recipe, device: str, *, model_config: Any = None, sequential: bool = False) -> Plan:
    """The plan for this recipe on `device` ('cuda' or 'cpu') for a model of `model_config` (its attention
    window) whose rows train in file order when `sequential` (synth.curriculum). Raises PlanError when the
    recipe asks by name for something that cannot run here."""
    import torch

    if not recipe.accel:
        return plain(recipe, device, sequential=sequential)
    cuda = device == "cuda"
    quant = _quantization(recipe, cuda)
    off: dict[str, str] = {}
    dropout = recipe.lora_dropout > 0
    # graphs need the same math on every replay: no dropout, nothing compiled around them
    graphable = _first(
        (not recipe.cuda_graphs, "off in the config"),
        (not cuda, "CUDA only"),
        (dropout, "needs lora_dropout 0 (a replayed recompute would draw other dropout masks)"),
        (recipe.compile_layers, "not with compile_layers"),
    )
    varlen_off = varlen_attention.unsupported_reason(device)
    window = sliding_window(model_config) if model_config is not None else None
    window = window if window is not None and window < recipe.max_seq_length else None
    window_off = f"sliding-window attention ({window} tokens) under max_seq_length" if window is not None else None
    # packed steps have one shape for the graphs to capture and ~1% padding (finetune/accel/packing.py); without
    # graphs, padded + length-grouped batches measured as fast as padding-free
    packs_off = _first(
        (graphable is not None, f"needs CUDA graphs ({graphable})"),
        (varlen_off is not None, f"needs FlashAttention's varlen kernel ({varlen_off})"),
        (recipe.attn_implementation != "sdpa", "needs attn_implementation sdpa"),
        (bool(recipe.micro_batch), "micro_batch asks for passes of padded rows"),
        (sequential, "curriculum order (synth.curriculum): rows train in file order"),
        (
            window_off is not None and not varlen_attention.keeps_window(),
            f"{window_off} (this torch's varlen attention has no window)",
        ),
    )
    batching = recipe.batching if recipe.batching != "auto" else ("packed" if packs_off is None else "padded")
    if batching == "packed":
        if varlen_off is not None:
            raise PlanError(
                f"batching 'packed' needs FlashAttention's varlen kernel: {varlen_off}",
                hint="set batching: padded (or auto) in the recipe",
            )
        if sequential:
            raise PlanError(
                "the rows are in curriculum order (synth.curriculum), which packed steps do not keep",
                hint="set batching: padded (or auto) in the recipe",
            )
        if window_off is not None and not varlen_attention.keeps_window():
            raise PlanError(
                f"batching 'packed' does not apply sliding-window attention ({window} tokens, under "
                f"max_seq_length {recipe.max_seq_length}) with this torch",
                hint="set batching: padded (or auto) in the recipe, or use torch 2.11+",
            )
    elif recipe.batching == "auto" and packs_off is not None:
        off["packed"] = packs_off
    liger_off = (
        _first(
            (not recipe.liger, "off in the config"),
            (not cuda, "CUDA only"),
            (recipe.compile_layers, "not with compile_layers"),
        )
        or (cuda and _liger_unimportable())
        or None
    )
    if liger_off:
        off["liger"] = liger_off
    bf16 = cuda and torch.cuda.is_bf16_supported()
    lora_dtype = recipe.lora_dtype if (bf16 and quant == "none") else "float32"
    graphs_off = graphable or _first(
        (batching not in ("padded", "packed"), "padded or packed batching only"),
        (batching == "padded" and window_off is not None, window_off or ""),
    )
    if graphs_off:
        off["cuda_graphs"] = graphs_off
    fused_off = _first(
        (not recipe.fused_lora, "off in the config"), (dropout, "needs lora_dropout 0 (peft applies the dropout)")
    )
    if fused_off:
        off["fused_lora"] = fused_off
    fp8_off = _first(
        (not recipe.fp8_matmuls, "off in the config"),
        (fused_off is not None, "needs fused_lora"),
        (recipe.compile_layers, "not with compile_layers"),
        (not cuda, "CUDA only"),
        (not bf16, "needs bf16 compute"),
    ) or fp8_ops.unsupported_reason(device)
    if fp8_off:
        off["fp8"] = fp8_off
    # the user's own allocator settings win (read when a run starts, never at import)
    user_alloc = os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or os.environ.get("PYTORCH_ALLOC_CONF")
    note = None
    if dropout and cuda:
        note = (
            f"lora_dropout {recipe.lora_dropout:g} turned off the fast path (CUDA graphs, packed steps, fused LoRA, "
            "FP8 GEMMs): every step runs eagerly through peft's LoRA forward, which gives up most of lorag's "
            "speed-up over plain trl (benchmarks/RESULTS.md); set lora_dropout: 0 in the recipe to keep it"
        )
    sdpa = recipe.sdpa_backend if recipe.sdpa_backend != "auto" else ("flash" if graphs_off is None else "")
    return Plan(
        accel=True,
        device=device,
        quantization=quant,
        batching=batching,
        bf16=bf16,
        attn_implementation=varlen_attention.NAME if batching == "packed" else recipe.attn_implementation,
        sdpa_backend=sdpa if cuda else "",
        lora_dtype=lora_dtype,
        liger=liger_off is None,
        compile_layers=bool(recipe.compile_layers and cuda),
        fused_lora=fused_off is None,
        cuda_graphs=graphs_off is None,
        fp8=fp8_off is None,
        fp8_fast_accum=fp8_off is None and recipe.fp8_fast_accum,
        fp8_lora_in_gemm=fp8_off is None and recipe.fp8_lora_in_gemm,
        expandable_segments=bool(cuda and recipe.expandable_segments and not user_alloc),
        sequential=sequential,
        varlen_kernel=varlen_attention.kernel() if batching == "packed" else "",
        off=tuple(off.items()),
        note=note,
    )
