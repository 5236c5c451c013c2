"""Train a LoRA / QLoRA adapter with trl's SFTTrainer on prompt/completion rows (loss on the answer only).

QLoRA (bitsandbytes NF4, double quant, bf16 compute) on CUDA, plain LoRA on CPU. Batching is packed
where CUDA graphs run (each step one sequence of a fixed token count holding about batch_size rows, each
row attending only to itself: finetune/packing.py), else padded with rows of similar length together;
or padding-free: rows concatenated with position_ids restarting per row, so no compute goes to pad
tokens and attention never crosses rows (transformers builds the block-diagonal mask). bf16 runs keep
the LoRA weights in bf16.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from assistant.errors import LoragError
from finetune.config import TrainConfig
from finetune.data import file_sha256
from finetune.distributed import apply_world, current_world, gather_per_rank, model_placement, save_adapter, trainer_options
from finetune.distributed import callbacks as world_callbacks
from finetune.runtime import cuda_allocator, module_restored, resolve_runtime
from finetune.sft import lorag_trainer

LogFn = Callable[[dict[str, Any]], None]
RESULT_FILE = "result.json"  # run_dir/result.json: metrics + hyperparameters, read back by `lorag adapters import`
CPU_MICRO_BATCH = 2


@dataclass
class TrainResult:
    adapter_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)


def load_trainable_model(model_path: str, runtime: dict[str, Any], cfg: TrainConfig) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar: the CLI shows the run's progress
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if runtime["bf16"] else torch.float32}
    if runtime["quantization"] == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if runtime["device"] != "cpu" else torch.float32,
            **({"bnb_4bit_quant_storage": torch.bfloat16} if runtime.get("distributed") == "fsdp" else {}),  # FSDP shards it
        )
    if runtime["device"] == "cuda":  # this rank's GPU (none under FSDP: finetune/distributed.py)
        kwargs["device_map"] = model_placement(current_world(cfg.distributed))
    if runtime["batching"] == "packed":
        from finetune import varlen_attention

        kwargs["attn_implementation"] = varlen_attention.register()
    else:
        kwargs["attn_implementation"] = cfg.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    model.config.use_cache = False  # a cache would also hide packed rows from the attention mask
    return model, tokenizer


def lora_config(cfg: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules,
        task_type="CAUSAL_LM",
        bias="none",
    )


def decoder_layers(model: Any) -> list[Any]:
    """The repeated transformer blocks (the largest nn.ModuleList of the model)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    return list(max(lists, key=len)) if lists else []


def compile_decoder_layers(model: Any) -> int:
    """Regional compilation: every decoder layer compiled in place (one graph reused by all layers,
    dynamic sequence length), so compile time stays small and checkpointing still wraps each layer."""
    layers = decoder_layers(model)
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)


def sliding_window(config: Any) -> int | None:
    """The attention window of a model that uses one (Mistral-style), else None."""
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "use_sliding_window", True) is False:
        return None
    return int(window)


@contextlib.contextmanager
def _quiet() -> Any:
    """No dataset-preparation progress bars or library deprecation warnings in a run's output: the
    CLI and the app show their own progress (tests still see warnings raised outside training)."""
    import datasets

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if bars:
            datasets.enable_progress_bars()


def sdpa_backend(name: str, device: str, graphs: bool = False) -> Any:
    """The scaled-dot-product attention kernels training may use ('auto': FlashAttention-2 under CUDA graphs,
    whose warm-ups would otherwise build a cuDNN plan per batch shape; else torch's own choice)."""
    if name == "auto":
        name = "flash" if graphs else ""
    if not name or device != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    first = SDPBackend.FLASH_ATTENTION if name == "flash" else SDPBackend.CUDNN_ATTENTION
    return sdpa_kernel([first, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH], set_priority=True)


def in_curriculum_order(train_file: Path) -> bool:
    """synth.curriculum wrote the rows easy first (the dataset's build.json says so)."""
    try:
        return bool(json.loads((Path(train_file).parent / "build.json").read_text(encoding="utf-8")).get("curriculum"))
    except (OSError, ValueError):
        return False


def _read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])


def _n_tokens(tokenizer: Any, row: dict[str, Any], prompt_only: bool = False) -> int:
    messages = row["prompt"] if prompt_only else row["prompt"] + row["completion"]
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=prompt_only)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def _fitting_rows(rows: list[dict[str, Any]], tokenizer: Any, max_len: int, batching: str,
                  path: Path | None, max_loss: float = 1.0) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """The rows that can train within max_len tokens, and how many cannot. Padded rows are cut at the end by
    trl, which leaves out a row whose prompt alone fills max_len (no answer token is left); padding-free
    rows are not cut, so a row over max_len is left out. When none fits, the file is named in an error;
    when more than `max_loss` of the rows are left out or cut, too."""
    full = [_n_tokens(tokenizer, r) for r in rows]
    if batching == "padding_free":
        kept = [r for r, n in zip(rows, full) if n <= max_len]
    else:
        kept = [r for r, n in zip(rows, full) if n <= max_len or _n_tokens(tokenizer, r, prompt_only=True) < max_len]
    over = sum(n > max_len for n in full)
    if path is not None and kept and over > max_loss * len(rows):
        raise LoragError(f"{path}: {over} of {len(rows)} rows ({100 * over / len(rows):.1f}%) are longer than max_seq_length "
                         f"({max_len} tokens): they would be left out or lose the end of their answer",
                         hint="run `lorag synth` again (it builds rows to fit the recipe's max_seq_length), raise "
                              "max_seq_length, or raise max_row_loss in the recipe to train anyway")  # fmt: skip
    if not kept and path is not None:
        shortest = min(_n_tokens(tokenizer, r, prompt_only=batching != "padding_free") for r in rows)
        what = "row" if batching == "padding_free" else "prompt"
        raise LoragError(f"{path}: no row fits max_seq_length ({max_len} tokens): the shortest {what} has {shortest} tokens",
                         hint="raise max_seq_length in the training recipe (the domain's, or the --config file), or "
                              "build the data with fewer or shorter passages (synth.distractors, ingest.chunk_tokens)")  # fmt: skip
    return kept, len(rows) - len(kept)


def _schedule(cfg: TrainConfig, steps_per_epoch: int) -> tuple[int, int, int]:
    """Optimizer steps in all, steps between evaluations, warm-up steps."""
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(steps_per_epoch * cfg.epochs))
    return total, max(1, int(total * cfg.eval_fraction_steps)), max(0, int(total * cfg.warmup_ratio))


def latest_checkpoint(run_dir: Path) -> str | None:
    cps = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]) if p.name.split("-")[1].isdigit() else -1)
    return str(cps[-1]) if cps else None


def train_adapter(
    cfg: TrainConfig,
    *,
    model_path: str,
    train_file: Path,
    eval_file: Path | None,
    run_dir: Path,
    device: str,
    resume: bool = False,
    on_log: LogFn | None = None,
    trainer_overrides: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Fine-tune and save a standard PEFT folder into run_dir/adapter. Returns metrics."""
    runtime = apply_world(resolve_runtime(cfg, device), cfg, current_world(cfg.distributed))
    if in_curriculum_order(train_file):
        if cfg.batching == "packed":
            raise LoragError(f"{train_file} is in curriculum order (synth.curriculum), which packed steps do not keep",
                             hint="set batching: padded (or auto) in the recipe")  # fmt: skip
        if runtime["batching"] == "packed":
            runtime.update(batching="padded", packed_off="curriculum order (synth.curriculum): rows train in file order")
        runtime["sequential"] = True
    rows = _read_rows(train_file)
    eval_rows = _read_rows(eval_file) if eval_file and Path(eval_file).is_file() else []
    if not rows:
        raise LoragError(f"{train_file}: no training rows")
    with contextlib.ExitStack() as undo, cuda_allocator(runtime):
        return _train(cfg, runtime, rows, eval_rows, model_path=model_path, train_file=train_file, run_dir=run_dir,
                      device=device, resume=resume, on_log=on_log, trainer_overrides=trainer_overrides, callbacks=callbacks,
                      undo=undo)  # fmt: skip


def _train(cfg: TrainConfig, runtime: dict[str, Any], rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]], *,
           model_path: str, train_file: Path, run_dir: Path, device: str, resume: bool, on_log: LogFn | None,
           trainer_overrides: dict[str, Any] | None, callbacks: list[Any] | None,
           undo: contextlib.ExitStack) -> TrainResult:  # fmt: skip
    import torch
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    world = current_world(cfg.distributed)  # several processes: this rank's share of each step, rank 0 writes

    def stage(name: str) -> None:  # before the first step: what the run is doing (the CLI's bar, the app's job)
        if on_log:
            on_log({"stage": name})

    stage("loading the base model")
    model, tokenizer = load_trainable_model(model_path, runtime, cfg)
    undo.enter_context(module_restored(sys.modules[type(model).__module__]))  # Liger patches it for the process
    window = sliding_window(model.config)
    if window is not None and window < cfg.max_seq_length:  # the graphs and packed attention drop the window
        if runtime["batching"] == "packed":
            if cfg.batching == "packed":
                raise LoragError(f"batching 'packed' does not apply sliding-window attention ({window} tokens, under "
                                 f"max_seq_length {cfg.max_seq_length})", hint="set batching: padded (or auto) in the recipe")  # fmt: skip
            model.set_attn_implementation(cfg.attn_implementation)  # auto: padded batches, the model's own attention
            runtime.update(batching="padded", packed_off=f"sliding-window attention ({window} tokens) under max_seq_length")
        if runtime["cuda_graphs"]:
            runtime.update(cuda_graphs=False, cuda_graphs_off=f"sliding-window attention ({window} tokens) under max_seq_length")
    rows, too_long = _fitting_rows(rows, tokenizer, cfg.max_seq_length, runtime["batching"], train_file, cfg.max_row_loss)
    if eval_rows:
        eval_rows, _ = _fitting_rows(eval_rows, tokenizer, cfg.max_seq_length, runtime["batching"], None)

    # On CPU the activations of a whole batch of long prompts do not fit in RAM: passes of CPU_MICRO_BATCH rows
    # inside each step (finetune/sft.py), unless the recipe sets micro_batch. Padding-free rows have no per-row
    # mask to split by, so there transformers' gradient accumulation makes the passes instead.
    cpu_rows = CPU_MICRO_BATCH if device == "cpu" else 0
    batch = cfg.batch_size // world.size  # this process's rows of each step (config.py: batch_size divides by gpus)
    if runtime["batching"] == "padding_free" and cpu_rows:
        micro, pass_rows = min(batch, cpu_rows), 0
    else:
        micro, pass_rows = batch, cfg.micro_batch or cpu_rows
    accum = cfg.grad_accum * math.ceil(batch / micro)
    rows_per_pass = pass_rows if 0 < pass_rows < micro else 0  # split inside each step (finetune/sft.py)
    total_steps, eval_steps, warmup_steps = _schedule(cfg, math.ceil(len(rows) / (micro * accum * world.size)))
    kwargs: dict[str, Any] = dict(
        output_dir=str(run_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=micro,
        per_device_eval_batch_size=rows_per_pass or micro,
        gradient_accumulation_steps=accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=warmup_steps,
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if eval_rows else "no",
        eval_steps=eval_steps,
        bf16=runtime["bf16"],
        max_length=None if runtime["batching"] == "padding_free" else cfg.max_seq_length,
        completion_only_loss=True,
        padding_free=runtime["batching"] == "padding_free",
        use_liger_kernel=runtime["liger"],
        report_to=[],
        seed=cfg.seed,
        use_cpu=device == "cpu",
        include_num_input_tokens_seen=True,  # non-pad tokens, counted on the device (finetune/sft.py)
        logging_nan_inf_filter=False,  # it reads every micro-batch's loss back from the GPU (finetune/sft.py)
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    if device == "cuda":  # batches go to the GPU from pinned memory without waiting for it (no read per step)
        kwargs["accelerator_config"] = {"non_blocking": True}
    fields = SFTConfig.__dataclass_fields__
    # with CUDA graphs the graphed layers checkpoint themselves (finetune/graphs.py); the option was renamed in transformers 5
    ckpt_name = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    kwargs[ckpt_name] = cfg.gradient_checkpointing and not runtime["cuda_graphs"]
    if runtime.get("sequential"):  # curriculum order: the rows train in the order synth wrote them
        if "train_sampling_strategy" not in fields:
            raise LoragError("curriculum order needs transformers 5 (train_sampling_strategy)")
        kwargs["train_sampling_strategy"] = "sequential"
    elif cfg.group_by_length and runtime["batching"] == "padded":  # the option's name moved in transformers 5
        if "train_sampling_strategy" in fields:
            kwargs["train_sampling_strategy"] = "group_by_length"
        elif "group_by_length" in fields:
            kwargs["group_by_length"] = True
    bucket_len = math.ceil(cfg.max_seq_length / cfg.graph_bucket) * cfg.graph_bucket
    if runtime["cuda_graphs"]:  # few distinct batch shapes, so few graphs to capture
        kwargs["pad_to_multiple_of"] = cfg.graph_bucket
    kwargs.update(trainer_options(world))
    kwargs.update(trainer_overrides or {})
    args = SFTConfig(**kwargs)
    history: list[dict[str, Any]] = []

    class _Log(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            entry = {"step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch, **(logs or {})}
            history.append(entry)
            if not world.main:  # every rank logs the same (reduced) figures; rank 0 writes and reports them
                return
            with (run_dir / "log.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
            if on_log:
                on_log(entry)

    class _NoFinalCheckpoint(TrainerCallback):
        """transformers checkpoints the last step too (optimizer state included); a finished run has nothing to
        resume and its adapter is saved below, so only save_steps' own checkpoints are written."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step >= state.max_steps and state.global_step % max(args.save_steps, 1):
                control.should_save = False

    run_dir.mkdir(parents=True, exist_ok=True)
    packed = runtime["batching"] == "packed"
    collator = None
    if packed:  # evaluation batches packed too (any size; training's steps come from PackedSteps below)
        from finetune.packing import PackedCollator

        collator = PackedCollator(tokenizer.pad_token_id, cfg.max_seq_length, multiple=cfg.graph_bucket)
    stage("tokenizing the rows")
    with _quiet():
        trainer = lorag_trainer(SFTTrainer, micro_rows=rows_per_pass, multiple=getattr(args, "pad_to_multiple_of", None) or 1,
                                mask_free=runtime["cuda_graphs"])(
            model=model,
            args=args,
            train_dataset=_dataset(rows),
            eval_dataset=_dataset(eval_rows) if eval_rows else None,
            processing_class=tokenizer,
            data_collator=collator,
            peft_config=lora_config(cfg),
            callbacks=[_Log(), _NoFinalCheckpoint(), *world_callbacks(world), *(callbacks or [])],
        )
    trainer.remove_callback(PrinterCallback)  # raw log dicts on stdout; on_log reports progress instead
    max_tokens = (rows_per_pass or micro) * bucket_len
    if packed:  # steps of micro rows' tokens each, from trl's tokenized rows; the schedule by the steps made
        from finetune.packing import PackedSteps

        steps = trainer.packed_steps = PackedSteps.for_rows(trainer.train_lengths(), micro, cfg.graph_bucket, cfg.max_seq_length,
                                                            seed=cfg.seed, epochs=math.ceil(cfg.epochs))  # fmt: skip
        max_tokens = steps.capacity
        runtime.update(step_tokens=steps.capacity, step_slots=steps.slots)
        total_steps, trainer.args.eval_steps, trainer.args.warmup_steps = _schedule(cfg, math.ceil(len(steps) / accum))
    if runtime["lora_dtype"] == "bfloat16":  # before train() builds the optimizer
        for p in trainer.model.parameters():
            if p.requires_grad:
                p.data = p.data.to(torch.bfloat16)
    if runtime["compile_layers"]:
        compile_decoder_layers(trainer.model)
    unfuse = None
    if cfg.fused_lora and cfg.lora_dropout == 0 and runtime.get("fused_lora", True):
        from finetune import lora_fused

        unfuse = lora_fused.install(trainer.model, fp8=runtime.get("fp8", False))
    graphs = None
    if runtime["cuda_graphs"]:
        from finetune.graphs import LayerGraphs

        keep = cfg.keep_activations if cfg.gradient_checkpointing else -1
        graphs = LayerGraphs(decoder_layers(trainer.model), max_tokens=max_tokens, checkpoint=cfg.gradient_checkpointing,
                             keep=keep, share=cfg.share_graphs, skip_unread=cfg.recompute_skip_unread,
                             varlen_max=cfg.max_seq_length if packed else 0).install()  # fmt: skip
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    checkpoint = latest_checkpoint(run_dir) if resume else None
    stage("training")
    t0 = time.perf_counter()
    try:
        with _quiet(), sdpa_backend(cfg.sdpa_backend, device, graphs is not None):
            out = trainer.train(resume_from_checkpoint=checkpoint)
    finally:
        if graphs is not None:
            graph_summary = graphs.summary()
            graphs.uninstall()
        if unfuse is not None:
            unfuse()
    seconds = time.perf_counter() - t0
    cuda = device == "cuda"
    train_peak = (torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30) if cuda else (None, None)
    last_eval = next((h for h in reversed(history) if "eval_loss" in h), None)
    if eval_rows and last_eval is not None and last_eval["step"] == trainer.state.global_step:
        final_eval = {"eval_loss": last_eval["eval_loss"]}  # the scheduled evaluation already ran at the last step
    else:
        with _quiet():
            final_eval = trainer.evaluate() if eval_rows else {}
    adapter_dir = run_dir / "adapter"
    save_adapter(trainer, adapter_dir, world)
    tokens = trainer.tokens_seen()
    metrics = {
        "train_loss": float(out.training_loss),
        "eval_loss": float(final_eval["eval_loss"]) if "eval_loss" in final_eval else None,
        "steps": int(trainer.state.global_step),
        "train_rows": len(rows),
        "data_sha256": file_sha256(train_file),
        "rows_over_max_length": too_long,
        "eval_rows": len(eval_rows),
        "tokens_seen": tokens,
        "train_seconds": seconds,
        "tokens_per_s": tokens / seconds if seconds > 0 else None,
        "resumed_from": checkpoint,
        "cuda_graphs": graph_summary if graphs is not None else runtime["cuda_graphs_off"],
        "fused_lora_layers": getattr(unfuse, "count", 0),
        "fp8_layers": getattr(unfuse, "fp8_count", 0),
        "peak_gpu_mem_gb": train_peak[0],  # during training (the final evaluation is not counted)
        "peak_gpu_reserved_gb": train_peak[1],
        "world_size": world.size,
        **({"peak_gpu_mem_gb_per_rank": gather_per_rank(train_peak[0])} if world.distributed and cuda else {}),
        "loss_curve": [(h["step"], h["loss"]) for h in history if "loss" in h],
        "eval_curve": [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h],
    }
    hyper = {**cfg.to_dict(), "runtime": {**runtime, "batch_rows": micro, "micro_batch": rows_per_pass or micro, "grad_accum": accum}, "total_steps": total_steps}
    # next to the adapter, so `lorag adapters import` keeps the figures of a run made on another machine
    if world.main:
        (run_dir / RESULT_FILE).write_text(json.dumps({"metrics": metrics, "hyperparameters": hyper}, default=str))
    return TrainResult(adapter_dir, metrics, hyper)
