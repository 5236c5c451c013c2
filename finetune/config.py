"""Per-domain training recipes: a dataclass with help text, checked in __post_init__, one YAML per domain.

Every problem in a recipe is reported at once, in one ConfigError.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import ConfigError, closest
from assistant.names import check_domain

CONFIG_DIR = Path(__file__).parent / "configs"


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


SYNTH_WRITERS = ("auto", "section", "sentence", "teacher", "answer_first", "cloze", "model", "heading")  # finetune.synth


@dataclass
class SynthConfig:
    max_chunks: int = _f(1000, "Chunks of the domain to write synthetic questions for (sampled with the seed).")
    writer: str = _f("auto", "Writers joined with '+' in order of preference: 'section' (questions from section titles "
                     "and definition-list terms, answered by their opening prose), 'sentence' (definition and procedure "
                     "sentences), 'teacher' (a teacher model writes several pairs per chunk; alias 'model'), "
                     "'answer_first' (a model writes the question a passage sentence answers), 'cloze' (a blanked fact). "
                     "'auto': teacher+section+sentence when synth.teacher or synth.teacher_url is set, else section+sentence.")
    pairs_per_chunk: int = _f(2, "Pairs kept per chunk at most (the teacher is asked for this many).")
    teacher: str | None = _f(None, "Model that writes the teacher's and answer_first's questions: a built-in name, HF id or "
                             "local folder (loaded here: the GPU when there is one), or with teacher_url the name the "
                             "endpoint serves. Unset: the served generator.")
    teacher_url: str | None = _f(None, "OpenAI-compatible endpoint of the teacher, e.g. http://localhost:8000/v1 (vLLM, "
                                 "llama.cpp server, Ollama, a hosted API).")
    teacher_api_key: str | None = _f(None, "Bearer token for teacher_url (default: $OPENAI_API_KEY).")
    teacher_concurrency: int = _f(4, "Requests to teacher_url at once.")
    p_oracle: float = _f(1.0, "RAFT P: share of examples whose context contains the oracle passage (among distractors); "
                         "the others teach the reply that the documents do not contain the answer. 1.0 by default: on "
                         "the three benchmark corpora, 0.9 made adapters abstain where the base model answered, at lower "
                         "F1 (benchmarks/RESULTS.md); the assistant's relevance check already refuses questions with "
                         "no relevant passage.")
    distractors: int = _f(3, "Retriever hard negatives shown with (or instead of) the oracle.")
    max_new_tokens: int = _f(512, "Token budget of one teacher reply.")
    batch_size: int = _f(8, "Chunks per writing batch (one batched generation for the model writers).")
    model_probe: int = _f(16, "The model writers stop once they have written for this many chunks without one pair kept "
                          "(a model too small to follow the format); the other writers do the rest. 0: never stops.")
    min_answer_support: float = _f(0.7, "Share of the answer's content words that must appear in the oracle.")
    min_answer_words: int = _f(6, "Shortest answer kept, in words (a bare span teaches bare answers).")
    max_answer_words: int = _f(80, "Longest answer kept, in words.")
    round_trip: bool = _f(True, "Keep a question only if retrieving it over the domain ranks its chunk in the top-k "
                          "(retrieval.top_k): questions a user could ask and the assistant could find.")
    heldout_max: int = _f(200, "With no curated Q&A: synthetic pairs held out (whole documents, half of heldout_fraction of "
                          "them) as the held-out split, at most this many.")
    general_data: str | None = _f(None, "JSONL of general instruction data mixed in against forgetting (rows of "
                                  "messages, prompt/completion, instruction/output or question/answer).")
    general_share: float = _f(0.0, "Share of training rows taken from general_data (0: none).")
    curriculum: bool = _f(False, "Order training rows easy first (short answers, oracle ranked high) instead of "
                          "shuffling; padded batches (batching auto trains padded).")
    seed: int = _f(0, "Sampling seed for chunks, oracle dropping and distractor order.")
    exclude_sources: list[str] = _f(
        [], "Glob patterns of document paths (as `lorag docs list` shows them, e.g. 'faq/*') kept out of the "
        "training data entirely: never an oracle, never a distractor. Keeps an evaluation's documents unseen.",
    )


@dataclass
class TrainConfig:
    domain: str = _f("", "Domain (collection) the adapter is for.")
    base_model: str | None = _f(None, "Generator to adapt; default: models.generator from the settings.")
    quantization: str = _f("auto", "'auto' (QLoRA NF4 on CUDA, plain LoRA on CPU), 'nf4' or 'none'.")
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA alpha (scale = alpha / r).")
    lora_dropout: float = _f(0.0, "Dropout on the LoRA path (0 lets CUDA runs train as CUDA graphs: see cuda_graphs).")
    target_modules: str | list[str] = _f("all-linear", "Modules to adapt: 'all-linear' or a list of names.")
    epochs: float = _f(3.0, "Passes over the training set.")
    max_steps: int = _f(-1, "Stop after this many optimizer steps (-1: use epochs).")
    learning_rate: float = _f(2e-4, "Peak learning rate.")
    lr_scheduler: str = _f("cosine", "transformers scheduler name.")
    warmup_ratio: float = _f(0.05, "Share of steps spent warming up.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    batch_size: int = _f(8, "Sequences per optimizer step (padded) or the row count folded into one padding-free step; "
                         "with gpus > 1 the step's rows are split evenly over the processes (the same global batch).")
    grad_accum: int = _f(1, "Gradient accumulation steps.")
    micro_batch: int = _f(0, "Rows per forward/backward pass inside each step of batch_size rows, each pass cut to its "
                          "own longest row (0: the whole batch in one pass). Same gradients, data order and steps; "
                          "less activation memory per pass, which keep_activations can spend instead of recomputing. "
                          "Padded batches only (a packed step is one sequence).")
    max_seq_length: int = _f(1024, "Tokens per row. `lorag synth` builds rows to fit it; a longer row loses the end of its "
                             "answer, or is left out when its prompt alone fills it (counted as rows_over_max_length).")
    max_row_loss: float = _f(0.02, "Largest share of training rows that may be longer than max_seq_length (left out or cut); "
                             "more stops the run with the count, before training.")
    batching: str = _f("auto", "'padded' (rows of similar length batched together), 'packed' (each step one sequence of a "
                       "fixed token count holding about batch_size rows, each row attending only to itself: one CUDA graph "
                       "shape, ~1% padding; CUDA with cuda_graphs, finetune/packing.py), 'padding_free' (rows concatenated, "
                       "no pad tokens, eager; CUDA), or 'auto' (packed where CUDA graphs run, else padded).")
    gpus: int = _f(1, "Processes (one per GPU) the run trains on, launched by `accelerate launch` (CUDA) or torchrun "
                   "(CPU, gloo: for tests); `lorag train --gpus N` sets it. batch_size must divide by it. Under several "
                   "processes the acceleration layer (packed steps, CUDA graphs, fused LoRA, FP8 GEMMs) is off, with "
                   "the reason in the run summary: none of it has been verified multi-process yet.")
    distributed: str = _f("ddp", "With gpus > 1: 'ddp' (each GPU holds the whole base, LoRA/QLoRA) or 'fsdp' (FSDP2 "
                          "through accelerate: the base sharded over the GPUs, for bases that do not fit one card; "
                          "CUDA only, not yet run on this project's machines).")
    gradient_checkpointing: bool = _f(True, "Recompute activations in the backward pass: much less memory, ~30% more compute.")
    attn_implementation: str = _f("sdpa", "'sdpa', 'flex_attention' (block-sparse masks for padding-free rows) or 'eager'.")
    sdpa_backend: str = _f("auto", "With attn_implementation 'sdpa': 'flash' (FlashAttention-2), 'cudnn', or 'auto': flash "
                           "when CUDA graphs are captured (cuDNN's attention builds a plan for every batch shape: 1.1 "
                           "of a 15 s 1B run on an H200, flash 0.1 s), else torch's choice (cuDNN on Hopper).")
    group_by_length: bool = _f(True, "Padded batching: batch rows of similar length together (less padding).")
    liger: bool = _f(True, "Use Liger kernels (fused linear + cross-entropy) on CUDA when installed.")
    compile_layers: bool = _f(False, "torch.compile each decoder layer (regional compilation, dynamic shapes) on CUDA, "
                              "without Liger's layer kernels (dynamo cannot trace them). Fewer, fused kernels, but the "
                              "compiles cost more than they saved on a 100 s run (0.38x), so off by default.")
    lora_dtype: str = _f("bfloat16", "dtype of the trained LoRA weights: 'bfloat16' (bf16 training without quantization "
                         "only, else float32: no casts on every LoRA call, 1.36x tokens/s on the H100) or 'float32' (peft's default).")
    cuda_graphs: bool = _f(True, "CUDA, padded batches, lora_dropout 0: run each decoder layer's checkpointed forward and "
                           "backward as CUDA graphs captured once per batch shape (a small model's step is "
                           "launch-bound). Same math as gradient checkpointing; anything else runs eagerly.")
    keep_activations: int = _f(0, "With cuda_graphs: the first N decoder layers keep their activations from forward to "
                               "backward instead of recomputing them (-1: every layer; gradient_checkpointing false "
                               "also keeps every layer). A LoRA layer then costs 4N FLOPs per token instead of 6N (no "
                               "recompute), for memory: about 1.25 GB per layer of a 1B Llama at 16 rows of ~730 "
                               "tokens (N=2 there: 1.10x the tokens/s of N=0 at about 1.5x the memory; 1B QLoRA with FP8 "
                               "GEMMs, N=1, in a fresh process: a 3% shorter step, 0.97x the tokens/s over 3 epochs, "
                               "its extra captures costing more).")
    fused_lora: bool = _f(True, "Each LoRA Linear (plain or bitsandbytes 4-bit base, no dropout) as one autograd node: "
                          "the adapter's delta added inside a GEMM and its input gradient folded into the base's, "
                          "instead of peft's output-sized elementwise passes (finetune/lora_fused.py). Same math; on "
                          "an H200 1.10-1.23x the tokens/s of peft's forward (1B and 135M LoRA).")
    share_graphs: bool = _f(True, "With cuda_graphs: decoder layers of one structure replay one stand-in layer's graphs "
                            "(its weights copied in first: its frozen tensors packed into one buffer, one copy) instead "
                            "of each capturing its own: two captures per batch shape instead of two per layer and shape "
                            "(1B on an H200: 0.62x instead of 0.76x plain trl's memory).")
    recompute_skip_unread: bool = _f(True, "With cuda_graphs and fused_lora: the checkpointed recompute does not compute "
                                     "LoRA Linear outputs nothing reads (a Llama MLP's down projection, 28% of its "
                                     "weights), found per layer by filling each output with NaN and checking the gradients.")
    fp8_matmuls: bool = _f(True, "With fused_lora, on GPUs with FP8 tensor cores (compute capability 8.9+): the frozen "
                           "base weight's GEMMs of the larger LoRA Linears (in x out >= 2^23: a 1B Llama's MLP) run in "
                           "FP8 e4m3 while training, operands scaled per token and per channel (finetune/fp8.py). The "
                           "adapter's own GEMMs, evaluation and serving stay in bf16. 1B LoRA and QLoRA on an H200: "
                           "1.09-1.14x the tokens/s of bf16 GEMMs, held-out loss within 0.25% of theirs.")
    expandable_segments: bool = _f(True, "CUDA: PyTorch's allocator grows memory segments in place instead of caching a "
                                   "block per size, so batches of varying length and the CUDA graphs' pools reserve less "
                                   "(135M QLoRA on an H200: 1.71 instead of 2.03 GB reserved). For the run only: the "
                                   "allocator is back to its default after it. Left alone when "
                                   "PYTORCH_CUDA_ALLOC_CONF or PYTORCH_ALLOC_CONF is set.")
    graph_bucket: int = _f(64, "Packed steps: their token count is a multiple of this. With cuda_graphs and padded batches: "
                           "pad every batch's length to a multiple of this: fewer shapes to capture "
                           "for more padding (on the benchmark's rows, length-grouped batches of 16: 128 pads 11% "
                           "of real tokens over 6 shapes, 64: 6% over 10, 32: 4% over 18).")
    eval_fraction_steps: float = _f(0.25, "Evaluate held-out loss every this share of training.")
    logging_steps: int = _f(5, "Log the loss every N steps.")
    save_steps: int = _f(50, "Checkpoint every N steps (for --resume).")
    heldout_fraction: float = _f(0.2, "Share of curated Q&A held out (fixed by id) for evaluation; never trains.")
    seed: int = _f(0, "Training seed.")
    gate_metric: str = _f("answer_f1", "Evaluation metric the promotion gate compares (a key of the report's means).")
    synth: SynthConfig = field(default_factory=SynthConfig, metadata={"help": "Synthetic data settings."})

    def __post_init__(self) -> None:
        if isinstance(self.synth, dict):
            self.synth = _build(SynthConfig, self.synth, "synth", [])
        problems = check(self)
        if problems:
            raise ConfigError(f"training config for '{self.domain or '?'}': {len(problems)} problem(s):\n" + "\n".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check(cfg: TrainConfig) -> list[str]:
    p: list[str] = []

    def bad(name: str, why: str) -> None:
        p.append(f"  - {name}: {why} (got {getattr(cfg, name, None)!r})" if "." not in name else f"  - {name}: {why}")

    import re

    if not re.match(r"^[a-z0-9][a-z0-9_-]{0,62}$", cfg.domain or ""):
        bad("domain", "lowercase letters, digits, '-' or '_'")
    if cfg.quantization not in ("auto", "nf4", "none"):
        bad("quantization", "one of auto, nf4, none")
    if cfg.attn_implementation not in ("sdpa", "flex_attention", "eager"):
        bad("attn_implementation", "one of sdpa, flex_attention, eager")
    if cfg.sdpa_backend not in ("auto", "flash", "cudnn"):
        bad("sdpa_backend", "one of auto, flash, cudnn")
    if cfg.batching not in ("auto", "packed", "padding_free", "padded"):
        bad("batching", "one of auto, packed, padding_free, padded")
    for name in ("lora_r", "lora_alpha", "batch_size", "grad_accum", "logging_steps", "save_steps", "graph_bucket"):
        if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
            bad(name, "a whole number >= 1")
    if not isinstance(cfg.gpus, int) or isinstance(cfg.gpus, bool) or cfg.gpus < 1:
        bad("gpus", "a whole number of processes >= 1")
    elif isinstance(cfg.batch_size, int) and cfg.batch_size >= 1 and cfg.batch_size % cfg.gpus:
        bad("batch_size", f"must divide evenly over gpus ({cfg.gpus} processes: each takes batch_size / gpus rows of a step)")
    if cfg.distributed not in ("ddp", "fsdp"):
        bad("distributed", "one of ddp, fsdp")
    if not isinstance(cfg.micro_batch, int) or cfg.micro_batch < 0:
        bad("micro_batch", "a whole number of rows >= 0 (0: the whole batch at once)")
    elif cfg.micro_batch and cfg.batching == "packed":
        bad("micro_batch", "padded batches only (a packed step is one sequence): 0, or batching padded/auto")
    if not isinstance(cfg.keep_activations, int) or cfg.keep_activations < -1:
        bad("keep_activations", "a whole number of layers, or -1 for all")
    if not 0 <= cfg.lora_dropout < 1:
        bad("lora_dropout", "between 0 and 1")
    if not 0 < cfg.learning_rate < 1:
        bad("learning_rate", "between 0 and 1")
    if cfg.epochs <= 0 and cfg.max_steps <= 0:
        bad("epochs", "> 0, or set max_steps")
    if not 64 <= cfg.max_seq_length <= 131072:
        bad("max_seq_length", "between 64 and 131072")
    if not 0 <= cfg.max_row_loss <= 1:
        bad("max_row_loss", "between 0 and 1")
    if not 0 <= cfg.warmup_ratio < 1:
        bad("warmup_ratio", "between 0 and 1")
    if not 0 < cfg.heldout_fraction < 1:
        bad("heldout_fraction", "between 0 and 1 (exclusive)")
    if cfg.lora_dtype not in ("float32", "bfloat16"):
        bad("lora_dtype", "'float32' or 'bfloat16'")
    if not 0 < cfg.eval_fraction_steps <= 1:
        bad("eval_fraction_steps", "between 0 and 1")
    if not (cfg.target_modules == "all-linear" or (isinstance(cfg.target_modules, list) and cfg.target_modules)):
        bad("target_modules", "'all-linear' or a non-empty list of module names")
    s = cfg.synth
    if isinstance(s, SynthConfig):
        names = [w.strip() for w in str(s.writer).split("+")]
        if not names or any(w not in SYNTH_WRITERS for w in names) or len(set(names)) != len(names) or \
                ("auto" in names and len(names) > 1):  # fmt: skip
            p.append("  - synth.writer: auto, or section, sentence, teacher, answer_first, cloze joined by '+' in order "
                     f"of preference (got {s.writer!r})")
        if s.pairs_per_chunk < 1 or s.teacher_concurrency < 1 or s.heldout_max < 0:
            p.append("  - synth: pairs_per_chunk >= 1, teacher_concurrency >= 1, heldout_max >= 0")
        if not 1 <= s.min_answer_words <= s.max_answer_words:
            p.append(f"  - synth.min_answer_words / max_answer_words: 1 <= min <= max (got {s.min_answer_words}, {s.max_answer_words})")
        if not 0 <= s.general_share < 1:
            p.append(f"  - synth.general_share: between 0 and 1 (got {s.general_share!r})")
        elif s.general_share > 0 and not s.general_data:
            p.append("  - synth.general_share: set synth.general_data (a JSONL file) to mix general data in")
        if not 0 <= s.p_oracle <= 1:
            p.append(f"  - synth.p_oracle: between 0 and 1 (got {s.p_oracle!r})")
        if s.distractors < 0 or s.max_chunks < 1 or s.batch_size < 1 or s.max_new_tokens < 8:
            p.append("  - synth: distractors >= 0, max_chunks >= 1, batch_size >= 1, max_new_tokens >= 8")
        if not isinstance(s.exclude_sources, list) or not all(isinstance(x, str) and x.strip() for x in s.exclude_sources):
            p.append(f"  - synth.exclude_sources: a list of non-empty glob patterns (got {s.exclude_sources!r})")
        if not 0 < s.min_answer_support <= 1:
            p.append(f"  - synth.min_answer_support: between 0 and 1 (got {s.min_answer_support!r})")
    return p


def _build(cls: type, data: dict[str, Any], where: str, problems: list[str]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s): {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    return cls(**data)


def _unknown(key: str, names: set[str], prefix: str = "") -> str:
    close = closest(key, names)
    return f"  - {prefix}{key}: unknown key" + (f" (did you mean {prefix}{close}?)" if close else "")


def _type_problems(cls: type, data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Values of the wrong type for fields with a plain bool/int/float/str default, by field name."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name not in data or "list" in str(f.type):
            continue
        v, d = data[f.name], f.default
        if isinstance(d, bool):
            ok, want = isinstance(v, bool), "true or false"
        elif isinstance(d, int):
            ok, want = isinstance(v, int) and not isinstance(v, bool), "a whole number"
        elif isinstance(d, float):
            ok, want = isinstance(v, (int, float)) and not isinstance(v, bool), "a number"
        elif isinstance(d, str):
            ok, want = isinstance(v, str), "a string"
        else:
            continue
        if not ok:
            out[f.name] = f"  - {prefix}{f.name}: {want} (got {v!r})"
    return out


def load_train_config(path: Path | None = None, *, domain: str | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
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
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    problems = [_unknown(k, names) for k in sorted(set(data) - names)]
    synth = data.get("synth") or {}
    snames = {f.name for f in dataclasses.fields(SynthConfig)}
    if isinstance(synth, dict):
        problems += [_unknown(k, snames, "synth.") for k in sorted(set(synth) - snames)]
    mistyped = _type_problems(TrainConfig, data)
    problems += list(mistyped.values())
    known = {k: v for k, v in data.items() if k in names and k not in mistyped}  # defaults stand in, so check() sees the rest
    if isinstance(synth, dict):
        smistyped = _type_problems(SynthConfig, synth, "synth.")
        problems += list(smistyped.values())
        known["synth"] = {k: v for k, v in synth.items() if k in snames and k not in smistyped}
    try:
        cfg = TrainConfig(**known)
    except ConfigError as e:
        lines = str(e).split("\n")[1:]
        problems += lines
        cfg = None
    except TypeError as e:
        problems.append(f"  - {e}")
        cfg = None
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s):\n" + "\n".join(problems))
    assert cfg is not None
    return cfg
