"""Per-domain training recipes: pydantic models with a description per key, one YAML per domain.

Every problem in a recipe is reported at once, in one ConfigError: values of the wrong type, out of range,
unknown keys (with the key most likely meant), and settings that do not go together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from assistant.errors import ConfigError, closest
from assistant.names import DOMAIN_PATTERN, check_domain

CONFIG_DIR = Path(__file__).parent / "configs"
SYNTH_WRITERS = (
    "auto",
    "section",
    "sentence",
    "teacher",
    "answer_first",
    "cloze",
    "model",
    "heading",
)  # finetune.synth


def _rule(ok: Callable[[Any], bool], want: str) -> AfterValidator:
    """A check on one value; `want` is what the problem line says the value must be."""

    def check(v: Any) -> Any:
        if not ok(v):
            raise PydanticCustomError("recipe", want)
        return v

    return AfterValidator(check)


def _auto_or_count(v: Any) -> Any:
    """A whole number >= 1 or 'auto' (a command line gives numbers as text)."""
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
        return v
    if isinstance(v, str):
        word = v.strip().lower()
        if word == "auto":
            return word
        if word.isascii() and word.isdecimal() and int(word) >= 1:
            return int(word)
    raise PydanticCustomError("recipe", "a whole number >= 1 or auto")


def _auto_or_bool(v: Any) -> Any:
    """true / false / 'auto', with YAML's and a command line's spellings of on and off."""
    words = {"auto": "auto", "true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}
    if isinstance(v, bool) or v == "auto":
        return v
    if isinstance(v, str) and v.strip().lower() in words:
        return words[v.strip().lower()]
    raise PydanticCustomError("recipe", "true, false or auto")


def _one_of(*choices: str) -> AfterValidator:
    return _rule(lambda v: v in choices, f"one of {', '.join(choices)}")


def _between(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False, what: str = "") -> AfterValidator:
    ok = lambda v: (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)  # noqa: E731
    return _rule(ok, what or f"between {lo:g} and {hi:g}")


_AT_LEAST_1 = _rule(lambda v: v >= 1, "a whole number >= 1")
Positive = Annotated[int, _AT_LEAST_1]


def _writers_ok(v: str) -> bool:
    names = [w.strip() for w in str(v).split("+")]
    return (
        bool(names)
        and all(w in SYNTH_WRITERS for w in names)
        and len(set(names)) == len(names)
        and not ("auto" in names and len(names) > 1)
    )


def _problem(line: str) -> PydanticCustomError:
    """A problem of several settings together: `line` starts with the setting to change (after the section)."""
    return PydanticCustomError("recipe_combination", line)


_TYPES = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping of settings",
}


def _problems(error: ValidationError, model: type[BaseModel], prefix: str = "") -> list[str]:
    """One line per problem: `  - section.key: what it must be (got value)`."""
    out = []
    for e in error.errors(include_url=False):
        loc = [str(x) for x in e["loc"] if not isinstance(x, int)]
        path = prefix + ".".join(loc)
        if e["type"] == "extra_forbidden":
            names = _field_names(model, loc[:-1])
            close = closest(loc[-1], names)
            out.append(
                f"  - {path}: unknown key" + (f" (did you mean {path[: -len(loc[-1])]}{close}?)" if close else "")
            )
        elif e["type"] == "recipe_combination":
            out.append(f"  - {prefix + ''.join(x + '.' for x in loc)}{e['msg']}")
        elif e["type"] == "recipe":
            out.append(f"  - {path}: {e['msg']} (got {e['input']!r})")
        elif e["type"] in _TYPES:
            out.append(f"  - {path}: {_TYPES[e['type']]} (got {e['input']!r})")
        else:
            out.append(f"  - {path}: {e['msg']} (got {e['input']!r})")
    return out


def _field_names(model: type[BaseModel], loc: list[str]) -> set[str]:
    for name in loc:
        ann = model.model_fields[name].annotation if name in model.model_fields else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return set()
        model = ann
    return set(model.model_fields)


class _Recipe(BaseModel):
    """A recipe section: unknown keys and values of the wrong type are problems (YAML's `1` is no `true`)."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False)
    _prefix: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            problems = _problems(e, type(self), self._prefix)
            raise ConfigError(f"{self._what(data)}: {len(problems)} problem(s):\n" + "\n".join(problems)) from None

    # a section inside a recipe is validated as part of it (its problems listed with the rest), not by this __init__
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def _what(cls, data: dict[str, Any]) -> str:
        return "recipe"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class SynthConfig(_Recipe):
    _prefix: ClassVar[str] = "synth."

    max_chunks: Positive = Field(
        1000, description="Chunks of the domain to write synthetic questions for (sampled with the seed)."
    )
    writer: Annotated[
        str,
        _rule(
            _writers_ok, "auto, or section, sentence, teacher, answer_first, cloze joined by '+' in order of preference"
        ),
    ] = Field(
        "auto",
        description="Writers joined with '+' in order of preference: 'section' (questions from section titles "
        "and definition-list terms, answered by their opening prose), 'sentence' (definition and procedure "
        "sentences), 'teacher' (a teacher model writes several pairs per chunk; alias 'model'), "
        "'answer_first' (a model writes the question a passage sentence answers), 'cloze' (a blanked fact). "
        "'auto': teacher+section+sentence when synth.teacher or synth.teacher_url is set, else section+sentence.",
    )
    pairs_per_chunk: Positive = Field(
        2, description="Pairs kept per chunk at most (the teacher is asked for this many)."
    )
    teacher: str | None = Field(
        None,
        description="Model that writes the teacher's and answer_first's questions: a built-in name, HF id or "
        "local folder (loaded here: the GPU when there is one), or with teacher_url the name the "
        "endpoint serves. Unset: the served generator.",
    )
    teacher_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint of the teacher, e.g. http://localhost:8000/v1 (vLLM, "
        "llama.cpp server, Ollama, a hosted API).",
    )
    teacher_api_key: str | None = Field(None, description="Bearer token for teacher_url (default: $OPENAI_API_KEY).")
    teacher_concurrency: Positive = Field(4, description="Requests to teacher_url at once.")
    p_oracle: Annotated[float, _between(0, 1)] = Field(
        1.0,
        description="RAFT P: share of examples whose context contains the oracle passage (among distractors); "
        "the others teach the reply that the documents do not contain the answer. 1.0 by default: on the benchmark "
        "corpora a lower share made adapters abstain where the base model answered (benchmarks/RESULTS.md); the "
        "assistant's relevance check already refuses questions with no relevant passage.",
    )
    distractors: Annotated[int, _rule(lambda v: v >= 0, "a whole number >= 0")] = Field(
        3, description="Retriever hard negatives shown with (or instead of) the oracle."
    )
    max_new_tokens: Annotated[int, _rule(lambda v: v >= 8, "a whole number >= 8")] = Field(
        512, description="Token budget of one teacher reply."
    )
    batch_size: Positive = Field(
        8, description="Chunks per writing batch (one batched generation for the model writers)."
    )
    model_probe: Annotated[int, _rule(lambda v: v >= 0, "a whole number >= 0")] = Field(
        16,
        description="The model writers stop once they have written for this many chunks without one pair kept "
        "(a model too small to follow the format); the other writers do the rest. 0: never stops.",
    )
    min_answer_support: Annotated[float, _between(0, 1, lo_open=True)] = Field(
        0.7, description="Share of the answer's content words that must appear in the oracle."
    )
    min_answer_words: Positive = Field(
        6, description="Shortest answer kept, in words (a bare span teaches bare answers)."
    )
    max_answer_words: Positive = Field(80, description="Longest answer kept, in words.")
    round_trip: bool = Field(
        True,
        description="Keep a question only if retrieving it over the domain ranks its chunk in the top-k "
        "(retrieval.top_k) and its best passage reaches retrieval.min_relevance (else the assistant replies "
        "'nothing relevant'): questions a user could ask and the assistant would answer.",
    )
    heldout_max: Annotated[int, _rule(lambda v: v >= 0, "a whole number >= 0")] = Field(
        200,
        description="With no curated Q&A: synthetic pairs held out (whole documents, half of heldout_fraction of "
        "them) as the held-out split, at most this many.",
    )
    general_data: str | None = Field(
        None,
        description="JSONL of general instruction data mixed in against forgetting (rows of "
        "messages, prompt/completion, instruction/output or question/answer).",
    )
    general_share: Annotated[float, _between(0, 1, hi_open=True)] = Field(
        0.0, description="Share of training rows taken from general_data (0: none)."
    )
    curriculum: bool = Field(
        False,
        description="Order training rows easy first (short answers, oracle ranked high) instead of "
        "shuffling; padded batches (batching auto trains padded).",
    )
    seed: int = Field(0, description="Sampling seed for chunks, oracle dropping and distractor order.")
    exclude_sources: list[Annotated[str, _rule(lambda v: bool(v.strip()), "a non-empty glob pattern")]] = Field(
        default_factory=list,
        description="Glob patterns of document paths (as `lorag docs list` shows them, e.g. "
        "'faq/*') kept out of the training data entirely: never an oracle, never a distractor. Keeps an evaluation's "
        "documents unseen.",
    )

    @model_validator(mode="after")
    def _together(self) -> "SynthConfig":
        if self.min_answer_words > self.max_answer_words:
            raise _problem(
                f"min_answer_words / max_answer_words: 1 <= min <= max (got {self.min_answer_words}, "
                f"{self.max_answer_words})"
            )
        if self.general_share > 0 and not self.general_data:
            raise _problem("general_share: set synth.general_data (a JSONL file) to mix general data in")
        return self


class TrainConfig(_Recipe):
    domain: Annotated[
        str, _rule(lambda v: bool(re.fullmatch(DOMAIN_PATTERN, v)), "lowercase letters, digits, '-' or '_'")
    ] = Field("", description="Domain (collection) the adapter is for.")
    base_model: str | None = Field(None, description="Generator to adapt; default: models.generator from the settings.")
    quantization: Annotated[str, _one_of("auto", "nf4", "none")] = Field(
        "auto", description="'auto' (QLoRA NF4 on CUDA, plain LoRA on CPU), 'nf4' or 'none'."
    )
    lora_r: Positive = Field(16, description="LoRA rank.")
    lora_alpha: Positive = Field(32, description="LoRA alpha (scale = alpha / r).")
    lora_dropout: Annotated[float, _between(0, 1, hi_open=True)] = Field(
        0.0,
        description="Dropout on the LoRA path. Above 0 turns off the fast path on CUDA (CUDA graphs, packed "
        "steps, fused LoRA, FP8 GEMMs: a replayed recompute would draw other dropout masks); the run summary says so.",
    )
    target_modules: str | list[str] = Field(
        "all-linear", description="Modules to adapt: 'all-linear' or a list of names."
    )
    epochs: float = Field(3.0, description="Passes over the training set.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: use epochs).")
    learning_rate: Annotated[float, _between(0, 1, lo_open=True, hi_open=True)] = Field(
        2e-4, description="Peak learning rate."
    )
    lr_scheduler: str = Field("cosine", description="transformers scheduler name.")
    warmup_ratio: Annotated[float, _between(0, 1, hi_open=True)] = Field(
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
    micro_batch: Annotated[int, _rule(lambda v: v >= 0, "a whole number of rows >= 0 (0: the whole batch at once)")] = (
        Field(
            0,
            description="Rows per forward/backward pass inside each step of batch_size rows, each pass cut to its "
            "own longest row (0: the whole batch in one pass). Same gradients, data order and steps; less activation "
            "memory per pass, which keep_activations can spend instead of recomputing. Padded batches only (a packed "
            "step is one sequence).",
        )
    )
    max_seq_length: Annotated[int, _between(64, 131072)] = Field(
        1024,
        description="Tokens per row. `lorag synth` builds rows to fit it; a longer row loses the end of its "
        "answer, or is left out when its prompt alone fills it (counted as rows_over_max_length).",
    )
    max_row_loss: Annotated[float, _between(0, 1)] = Field(
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
    batching: Annotated[str, _one_of("auto", "packed", "padding_free", "padded")] = Field(
        "auto",
        description="'padded' (rows of similar length batched together), 'packed' (each step one sequence of "
        "a fixed token count holding about batch_size rows, each row attending only to itself: one CUDA graph shape, "
        "little padding; CUDA with cuda_graphs, finetune/accel/packing.py), 'padding_free' (rows concatenated, no pad "
        "tokens, eager; CUDA), or 'auto' (packed where CUDA graphs run, else padded).",
    )
    gpus: Annotated[int, _rule(lambda v: v >= 1, "a whole number of processes >= 1")] = Field(
        1,
        description="Processes (one per GPU) the run trains on, launched by `accelerate launch` (CUDA) or torchrun "
        "(CPU, gloo: for tests); `lorag train --gpus N` sets it. batch_size must divide by it. Under several processes "
        "the acceleration layer (packed steps, CUDA graphs, fused LoRA, FP8 GEMMs) is off, with the reason in the run "
        "summary: none of it has been verified multi-process yet.",
    )
    distributed: Annotated[str, _one_of("ddp", "fsdp")] = Field(
        "ddp",
        description="With gpus > 1: 'ddp' (each GPU holds the whole base, LoRA/QLoRA) or 'fsdp' (FSDP2 through "
        "accelerate: the base sharded over the GPUs, for bases that do not fit one card; CUDA only, not yet run on "
        "this project's machines).",
    )
    gradient_checkpointing: bool = Field(
        True, description="Recompute activations in the backward pass: much less memory, more compute."
    )
    attn_implementation: Annotated[str, _one_of("sdpa", "flex_attention", "eager")] = Field(
        "sdpa", description="'sdpa', 'flex_attention' (block-sparse masks for padding-free rows) or 'eager'."
    )
    sdpa_backend: Annotated[str, _one_of("auto", "flash", "cudnn")] = Field(
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
    lora_dtype: Annotated[str, _one_of("float32", "bfloat16")] = Field(
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
    keep_activations: Annotated[int, _rule(lambda v: v >= -1, "a whole number of layers, or -1 for all")] = Field(
        0,
        description="With cuda_graphs: the first N decoder layers keep their activations from forward to backward "
        "instead of recomputing them (-1: every layer; gradient_checkpointing false also keeps every layer). A LoRA "
        "layer then costs 4N FLOPs per token instead of 6N (no recompute), for about a layer's activations of memory "
        "each (benchmarks/RESULTS.md has measured trade-offs).",
    )
    offload_activations: Annotated[bool | Literal["auto"], BeforeValidator(_auto_or_bool)] = Field(
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
    recompute_mlp_tiles: Annotated[int | Literal["auto"], BeforeValidator(_auto_or_count)] = Field(
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
    eval_fraction_steps: Annotated[float, _between(0, 1, lo_open=True)] = Field(
        0.25, description="Evaluate held-out loss every this share of training."
    )
    logging_steps: Positive = Field(5, description="Log the loss every N steps.")
    save_steps: Positive = Field(50, description="Checkpoint every N steps (for --resume).")
    heldout_fraction: Annotated[
        float, _between(0, 1, lo_open=True, hi_open=True, what="between 0 and 1 (exclusive)")
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
            raise _problem(
                "micro_batch: padded batches only (a packed step is one sequence): 0, or batching padded/auto"
            )
        if self.batch_size % self.gpus:
            raise _problem(
                f"batch_size: must divide evenly over gpus ({self.gpus} processes: each takes batch_size / "
                "gpus rows of a step)"
            )
        if self.epochs <= 0 and self.max_steps <= 0:
            raise _problem(f"epochs: > 0, or set max_steps (got {self.epochs!r})")
        if not (self.target_modules == "all-linear" or (isinstance(self.target_modules, list) and self.target_modules)):
            raise _problem(
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
        problems = _problems(e, TrainConfig)
        raise ConfigError(f"{source}: {len(problems)} problem(s):\n" + "\n".join(problems)) from None
