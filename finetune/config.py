"""Per-domain training recipes: pydantic models with a description per key, one YAML per domain.

Every problem in a recipe is reported at once, in one ConfigError: values of the wrong type, out of range,
unknown keys (with the key most likely meant), and settings that do not go together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, Field, ValidationError, model_validator

from assistant.errors import ConfigError
from assistant.names import DOMAIN_PATTERN, check_domain

from .config_synth import SynthConfig
from .recipe_rules import (
    Positive,
    RecipeSection,
    auto_or_bool,
    auto_or_count,
    between,
    combination_problem,
    one_of,
    problem_lines,
    rule,
)

CONFIG_DIR = Path(__file__).parent / "configs"


class TrainConfig(RecipeSection):
    domain: Annotated[
        str, rule(lambda v: bool(re.fullmatch(DOMAIN_PATTERN, v)), "lowercase letters, digits, '-' or '_'")
    ] = Field("", description="Domain (collection) the adapter is for.")
    base_model: str | None = Field(None, description="Generator to adapt; default: models.generator from the settings.")
    quantization: Annotated[str, one_of("auto", "nf4", "none")] = Field(
        "auto", description="'auto' (QLoRA NF4 on CUDA, plain LoRA on CPU), 'nf4' or 'none'."
    )
    lora_r: Positive = Field(16, description="LoRA rank.")
    lora_alpha: Positive = Field(32, description="LoRA alpha (scale = alpha / r).")
    lora_dropout: Annotated[float, between(0, 1, hi_open=True)] = Field(
        0.0,
        description="Dropout on the LoRA path. Above 0 turns off the fast path on CUDA (CUDA graphs, packed "
        "steps, fused LoRA, FP8 GEMMs: a replayed recompute would draw other dropout masks); the run summary says so.",
    )
    target_modules: str | list[str] = Field(
        "all-linear", description="Modules to adapt: 'all-linear' or a list of names."
    )
    epochs: float = Field(3.0, description="Passes over the training set.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: use epochs).")
    learning_rate: Annotated[float, between(0, 1, lo_open=True, hi_open=True)] = Field(
        2e-4, description="Peak learning rate."
    )
    lr_scheduler: str = Field("cosine", description="transformers scheduler name.")
    warmup_ratio: Annotated[float, between(0, 1, hi_open=True)] = Field(
        0.05, description="Share of steps spent warming up."
    )
    weight_decay: float = Field(0.0, description="AdamW weight decay.")
    batch_size: Positive = Field(
        8,
        description="Sequences per optimizer step (padded) or the row count folded into one "
        "padding-free step; with gpus > 1 the step's rows are split evenly over the processes "
        "(the same global batch).",
    )
    grad_accum: Positive = Field(1, description="Gradient accumulation steps.")
    micro_batch: Annotated[int, rule(lambda v: v >= 0, "a whole number of rows >= 0 (0: the whole batch at once)")] = (
        Field(
            0,
            description="Rows per forward/backward pass inside each step of batch_size rows, each pass cut to its "
            "own longest row (0: the whole batch in one pass). Same gradients, data order and steps; less activation "
            "memory per pass, which keep_activations can spend instead of recomputing. Padded batches only (a packed "
            "step is one sequence).",
        )
    )
    max_seq_length: Annotated[int, between(64, 131072)] = Field(
        1024,
        description="Tokens per row. `lorag synth` builds rows to fit it; a longer row loses the end of its "
        "answer, or is left out when its prompt alone fills it (counted as rows_over_max_length).",
    )
    max_row_loss: Annotated[float, between(0, 1)] = Field(
        0.02,
        description="Largest share of training rows that may be longer than max_seq_length (left out or cut); "
        "more stops the run with the count, before training.",
    )
    accel: bool = Field(
        True,
        description="lorag's training acceleration (finetune/accel: packed steps, CUDA graphs, fused "
        "LoRA, FP8 GEMMs, Liger, bf16 LoRA weights), each where this machine and model allow it; the run "
        "summary says what was on and why anything was off. false (or off): plain trl + peft.",
    )
    batching: Annotated[str, one_of("auto", "packed", "padding_free", "padded")] = Field(
        "auto",
        description="'padded' (rows of similar length batched together), 'packed' (each step one sequence of "
        "a fixed token count holding about batch_size rows, each row attending only to itself: one CUDA graph shape, "
        "little padding; CUDA with cuda_graphs, finetune/accel/packing.py), 'padding_free' (rows concatenated, no pad "
        "tokens, eager; CUDA), or 'auto' (packed where CUDA graphs run, else padded).",
    )
    gpus: Annotated[int, rule(lambda v: v >= 1, "a whole number of processes >= 1")] = Field(
        1,
        description="Processes (one per GPU) the run trains on, launched by `accelerate launch` (CUDA) or torchrun "
        "(CPU, gloo: for tests); `lorag train --gpus N` sets it. batch_size must divide by it. Under several processes "
        "the acceleration layer (packed steps, CUDA graphs, fused LoRA, FP8 GEMMs) is off, with the reason in the run "
        "summary: none of it has been verified multi-process yet.",
    )
    distributed: Annotated[str, one_of("ddp", "fsdp")] = Field(
        "ddp",
        description="With gpus > 1: 'ddp' (each GPU holds the whole base, LoRA/QLoRA) or 'fsdp' (FSDP2 through "
        "accelerate: the base sharded over the GPUs, for bases that do not fit one card; CUDA only, not yet run on "
        "this project's machines).",
    )
    gradient_checkpointing: bool = Field(
        True, description="Recompute activations in the backward pass: much less memory, more compute."
    )
    attn_implementation: Annotated[str, one_of("sdpa", "flex_attention", "eager")] = Field(
        "sdpa", description="'sdpa', 'flex_attention' (block-sparse masks for padding-free rows) or 'eager'."
    )
    sdpa_backend: Annotated[str, one_of("auto", "flash", "cudnn")] = Field(
        "auto",
        description="With attn_implementation 'sdpa': 'flash' (FlashAttention-2), 'cudnn', or 'auto': flash "
        "when CUDA graphs are captured (cuDNN's attention builds a plan for every batch shape), else torch's choice.",
    )
    group_by_length: bool = Field(
        True, description="Padded batching: batch rows of similar length together (less padding)."
    )
    liger: bool = Field(True, description="Use Liger kernels (fused linear + cross-entropy) on CUDA when installed.")
    compile_layers: bool = Field(
        False,
        description="torch.compile each decoder layer (regional compilation, dynamic shapes) on "
        "CUDA, without Liger's layer kernels (dynamo cannot trace them). Fewer, fused kernels, but "
        "the compiles cost more than they save on short runs (benchmarks/RESULTS.md), so off by default.",
    )
    lora_dtype: Annotated[str, one_of("float32", "bfloat16")] = Field(
        "bfloat16",
        description="dtype of the trained LoRA weights: 'bfloat16' (bf16 training without quantization "
        "only, else float32: no casts on every LoRA call) or 'float32' (peft's default).",
    )
    cuda_graphs: bool = Field(
        True,
        description="CUDA, padded or packed batches, lora_dropout 0: run each decoder layer's "
        "checkpointed forward and backward as CUDA graphs captured once per batch shape (a small "
        "model's step is launch-bound). Same math as gradient checkpointing; anything else runs eagerly.",
    )
    keep_activations: Annotated[int, rule(lambda v: v >= -1, "a whole number of layers, or -1 for all")] = Field(
        0,
        description="With cuda_graphs: the first N decoder layers keep their activations from forward to backward "
        "instead of recomputing them (-1: every layer; gradient_checkpointing false also keeps every layer). A LoRA "
        "layer then costs 4N FLOPs per token instead of 6N (no recompute), for about a layer's activations of memory "
        "each (benchmarks/RESULTS.md has measured trade-offs).",
    )
    offload_activations: Annotated[bool | Literal["auto"], BeforeValidator(auto_or_bool)] = Field(
        "auto",
        description="true, false or 'auto'. With cuda_graphs and gradient_checkpointing: each checkpointed decoder "
        "layer's input (one tokens x hidden tensor: 3.4 GB over an 8B model's 32 layers at 12,864 tokens a step) "
        "waits for its backward in pinned CPU memory instead of on the GPU, copied out and back on side streams "
        "while other layers compute (finetune/accel/offload.py). The same math for less GPU memory; needs that much "
        "host memory. 'auto': on when those inputs would take 1 GiB or more. Measured on an H100 "
        "(benchmarks/RESULTS.md): 8B QLoRA, on, reserves 9.5 GB instead of 11.9 at about the same step time; 1B "
        "QLoRA (0.8 GB of inputs, so 'auto' leaves it off), on: 2.40 GB instead of 2.99 for an 11% longer step, and "
        "with recompute_mlp_tiles 2 as well 2.29 GB (Unsloth's 2.30 in the same run) for a 22% longer one.",
    )
    fused_lora: bool = Field(
        True,
        description="Each LoRA Linear (plain or bitsandbytes 4-bit base, no dropout) as one autograd "
        "node: the adapter's delta added inside a GEMM and its input gradient folded into the base's, "
        "instead of peft's output-sized elementwise passes (finetune/accel/lora_fused.py). Same math. In a gated "
        "(SwiGLU) MLP the down projection's node keeps the gate's two operands instead of their product and "
        "makes it only in its backward, the recompute skipping it with Liger's SiLU-mul (finetune/accel/gated_mlp.py): "
        "8B QLoRA on an H100, 0.33 GB less reserved at the same step time.",
    )
    share_graphs: bool = Field(
        True,
        description="With cuda_graphs: decoder layers of one structure replay one stand-in layer's "
        "graphs (its weights copied in first: its frozen tensors packed into one buffer, one copy) "
        "instead of each capturing its own: two captures per batch shape instead of two per layer "
        "and shape, and less memory.",
    )
    recompute_mlp_tiles: Annotated[int | Literal["auto"], BeforeValidator(auto_or_count)] = Field(
        1,
        description="A whole number >= 1 or 'auto'. With cuda_graphs and recompute_skip_unread: each checkpointed "
        "layer's MLP runs over this many token tiles, its intermediates (tokens x intermediate size, several of "
        "them) then a tile at a time; the recompute skips the MLP and the backward runs it a tile at a time "
        "(finetune/accel/tiled_mlp.py). The same math and FLOPs for less GPU memory, at some speed. 1: off. "
        "Needs gradient_checkpointing and fused_lora, and applies where the MLP's output is found unread in "
        "the recompute (Llama-like layers; not a layer that normalises its MLP's output, such as Gemma's). "
        "'auto': one tile per hidden-size tokens of a step where layer inputs are held in CPU memory "
        "(offload_activations), else 1. Measured on an H100 (benchmarks/RESULTS.md): 8B QLoRA, 8 tiles, reserves "
        "7.66 GB instead of 8.67 (the default's then; 8.34 since its gated MLPs recompute their product) for a step "
        "about 14% longer (4 tiles, before: 8.7 GB instead of 9.5, 8.5% "
        "longer); 8B, 2 tiles, 7.54 GB instead of 7.79 (Unsloth: 7.56) for a 5% longer step; 1B with its layer "
        "inputs in CPU memory, 2 tiles, 2.29 GB instead of 2.40 for a 10% longer one.",
    )
    recompute_skip_unread: bool = Field(
        True,
        description="With cuda_graphs and fused_lora: the checkpointed recompute does not "
        "compute LoRA Linear outputs nothing reads (a Llama MLP's down projection), found per "
        "layer by filling each output with NaN and checking the gradients.",
    )
    fp8_matmuls: bool = Field(
        True,
        description="With fused_lora, on GPUs with FP8 tensor cores (compute capability 8.9+): the "
        "frozen base weight's GEMMs of the larger LoRA Linears (in x out >= 2^22: a 1B Llama's MLP, q and o) "
        "run in FP8 e4m3 while training, operands scaled per token and per channel "
        "(finetune/accel/fp8.py). The adapter's own GEMMs, evaluation and serving stay in bf16.",
    )
    fp8_fast_accum: bool = Field(
        True,
        description="With fp8_matmuls: the forward FP8 GEMMs accumulate at the tensor cores' own "
        "precision instead of promoting partial sums to float32 (torchao's default for its "
        "output GEMM; faster). The input-gradient GEMMs always accumulate in float32.",
    )
    fp8_lora_in_gemm: bool = Field(
        True,
        description="With fp8_matmuls: the adapter's delta "
        "s·(x·Aᵀ)·Bᵀ is computed inside the base's FP8 GEMM as r more inner columns "
        "([x | x·Aᵀ]·[W | s·B]ᵀ, r rounded up to 128), and the input gradient's s·(g·B)·A likewise, "
        "instead of an addmm that reads and writes the whole output again. The delta then shares each "
        "token's e4m3 scale with the base: as exact as the base's FP8 GEMM while the delta's terms stay "
        "under the base's (training from B = 0), less so for an adapter whose delta outgrows the base. "
        "The adapter's weight gradients stay in bf16. On an H100 (benchmarks/RESULTS.md): 8B QLoRA step "
        "790 vs 838 ms, 1B 172 vs 182 ms, the same held-out loss. Off: the addmm.",
    )
    expandable_segments: bool = Field(
        True,
        description="CUDA: PyTorch's allocator grows memory segments in place instead of "
        "caching a block per size, so batches of varying length and the CUDA graphs' pools "
        "reserve less. For the run only: the allocator is back to its default after it. Left "
        "alone when PYTORCH_CUDA_ALLOC_CONF or PYTORCH_ALLOC_CONF is set.",
    )
    graph_bucket: Positive = Field(
        64,
        description="Packed steps: their token count is a multiple of this. With cuda_graphs and "
        "padded batches: pad every batch's length to a multiple of this: fewer shapes to capture "
        "for more padding.",
    )
    eval_fraction_steps: Annotated[float, between(0, 1, lo_open=True)] = Field(
        0.25, description="Evaluate held-out loss every this share of training."
    )
    logging_steps: Positive = Field(5, description="Log the loss every N steps.")
    save_steps: Positive = Field(50, description="Checkpoint every N steps (for --resume).")
    heldout_fraction: Annotated[
        float, between(0, 1, lo_open=True, hi_open=True, what="between 0 and 1 (exclusive)")
    ] = Field(0.2, description="Share of curated Q&A held out (fixed by id) for evaluation; never trains.")
    seed: int = Field(0, description="Training seed.")
    gate_metric: str = Field(
        "answer_f1", description="Evaluation metric the promotion gate compares (a key of the report's means)."
    )
    synth: SynthConfig = Field(default_factory=SynthConfig, description="Synthetic data settings.")

    @classmethod
    def _what(cls, data: dict[str, Any]) -> str:
        return f"training config for '{data.get('domain') or '?'}'"

    @model_validator(mode="after")
    def _together(self) -> "TrainConfig":
        if self.micro_batch and self.batching == "packed":
            raise combination_problem(
                "micro_batch: padded batches only (a packed step is one sequence): 0, or batching padded/auto"
            )
        if self.batch_size % self.gpus:
            raise combination_problem(
                f"batch_size: must divide evenly over gpus ({self.gpus} processes: each takes batch_size / "
                "gpus rows of a step)"
            )
        if self.epochs <= 0 and self.max_steps <= 0:
            raise combination_problem(f"epochs: > 0, or set max_steps (got {self.epochs!r})")
        if not (self.target_modules == "all-linear" or (isinstance(self.target_modules, list) and self.target_modules)):
            raise combination_problem(
                f"target_modules: 'all-linear' or a non-empty list of module names (got {self.target_modules!r})"
            )
        return self


def recipe_keys(model: type[BaseModel] = TrainConfig, prefix: str = "") -> list[tuple[str, Any, str]]:
    """Every recipe key with its default and description, sections' keys as section.key (`lorag train --keys`)."""
    out = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += recipe_keys(ann, f"{prefix}{name}.")
        else:
            out.append((prefix + name, f.get_default(call_default_factory=True), f.description or ""))
    return out


def load_train_config(
    path: Path | None = None, *, domain: str | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Read a recipe (default finetune/configs/<domain>.yaml, else defaults) and validate it whole."""
    data: dict[str, Any] = {}
    if domain is not None:
        check_domain(domain)
    if path is None and domain and (CONFIG_DIR / f"{domain}.yaml").is_file():
        path = CONFIG_DIR / f"{domain}.yaml"
    source = str(path) if path else "defaults"
    if any(v not in (None, {}) for v in (overrides or {}).values()):
        source += " + command-line options"
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: training config not found")
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of training settings")
    if domain:
        data.setdefault("domain", domain)
        if data["domain"] != domain:
            raise ConfigError(f"{source}: is for domain '{data['domain']}', not '{domain}'")
    for k, v in (overrides or {}).items():  # a synth override merges into the recipe's synth section
        data[k] = {**(data.get(k) or {}), **v} if k == "synth" and isinstance(v, dict) else v
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as e:
        problems = problem_lines(e, TrainConfig)
        raise ConfigError(f"{source}: {len(problems)} problem(s):\n" + "\n".join(problems)) from None
