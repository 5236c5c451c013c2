"""Train a LoRA / QLoRA adapter with trl's SFTTrainer on prompt/completion rows (loss on the answer only).

QLoRA (bitsandbytes NF4, double quant, bf16 compute) on CUDA, plain LoRA on CPU. What the run speeds up
(packed steps, CUDA graphs, fused LoRA, FP8 GEMMs, Liger, bf16 LoRA weights) is the acceleration plan,
decided once from the recipe, the model and the machine by finetune/accel (a recipe's `accel: off`
trains with plain trl + peft). A run goes through named phases, as torchtune's recipes do:

  plan     the acceleration plan (finetune/accel/plan.py)
  model    the base model and tokenizer, loaded as the plan says
  data     the rows that fit max_seq_length (too many that do not stop the run, naming the file)
  trainer  trl's SFTConfig and trainer (lorag's subclass unless the plan is plain), packed steps, and the
           plan applied to the peft model
  run      trainer.train(), the plan undone after it, the final held-out loss
  save     the adapter folder and run_dir/result.json (metrics, hyperparameters, the plan)
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
from finetune import accel
from finetune.accel.layers import sdpa_backend
from finetune.config import TrainConfig
from finetune.data import file_sha256
from finetune.distributed import (
    World,
    apply_world,
    current_world,
    gather_per_rank,
    model_placement,
    save_adapter,
    trainer_options,
    world_record,
)
from finetune.distributed import callbacks as world_callbacks

LogFn = Callable[[dict[str, Any]], None]
RESULT_FILE = "result.json"  # run_dir/result.json: metrics + hyperparameters, read back by `lorag adapters import`
CPU_MICRO_BATCH = 2


@dataclass
class TrainResult:
    adapter_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)


def decide_plan(cfg: TrainConfig, model_path: str, device: str, train_file: Path | None = None) -> accel.Plan:
    """The run's acceleration plan: from the recipe, the device, the model's config (its attention window)
    and the data's order (synth.curriculum). A recipe asking for what cannot run here is a LoragError."""
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError):  # no config to read here: the model phase names the problem
        model_config = None
    sequential = train_file is not None and in_curriculum_order(train_file)
    try:
        return accel.decide(cfg, device, model_config=model_config, sequential=sequential)
    except accel.PlanError as e:
        where = f"{train_file}: " if sequential and "curriculum" in str(e) else ""
        raise LoragError(where + str(e), hint=e.hint) from None


def load_trainable_model(model_path: str, plan: accel.Plan, world: World | None = None) -> tuple[Any, Any]:
    """The model phase: the tokenizer, and the base model in the plan's dtype, quantization and attention."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar: the CLI shows the run's progress
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if plan.bf16 else torch.float32}
    if plan.quantization == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if plan.device != "cpu" else torch.float32,
            **(
                {"bnb_4bit_quant_storage": torch.bfloat16}
                if world and world.distributed and world.strategy == "fsdp"
                else {}
            ),  # FSDP shards it
        )
    if plan.device == "cuda":  # this rank's GPU (none under FSDP: finetune/distributed.py)
        kwargs["device_map"] = model_placement(world or World())
    if plan.batching == "packed":
        from finetune.accel import varlen_attention

        varlen_attention.register()
    kwargs["attn_implementation"] = plan.attn_implementation
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


def _fitting_rows(
    rows: list[dict[str, Any]], tokenizer: Any, max_len: int, batching: str, path: Path | None, max_loss: float = 1.0
) -> tuple[list[dict[str, Any]], int]:
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
        raise LoragError(
            f"{path}: {over} of {len(rows)} rows ({100 * over / len(rows):.1f}%) are longer than max_seq_length "
            f"({max_len} tokens): they would be left out or lose the end of their answer",
            hint="run `lorag synth` again (it builds rows to fit the recipe's max_seq_length), raise "
            "max_seq_length, or raise max_row_loss in the recipe to train anyway",
        )
    if not kept and path is not None:
        shortest = min(_n_tokens(tokenizer, r, prompt_only=batching != "padding_free") for r in rows)
        what = "row" if batching == "padding_free" else "prompt"
        raise LoragError(
            f"{path}: no row fits max_seq_length ({max_len} tokens): the shortest {what} has {shortest} tokens",
            hint="raise max_seq_length in the training recipe (the domain's, or the --config file), or "
            "build the data with fewer or shorter passages (synth.distractors, ingest.chunk_tokens)",
        )
    return kept, len(rows) - len(kept)


def _schedule(cfg: TrainConfig, steps_per_epoch: int) -> tuple[int, int, int]:
    """Optimizer steps in all, steps between evaluations, warm-up steps."""
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(steps_per_epoch * cfg.epochs))
    return total, max(1, int(total * cfg.eval_fraction_steps)), max(0, int(total * cfg.warmup_ratio))


def latest_checkpoint(run_dir: Path) -> str | None:
    cps = sorted(
        run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]) if p.name.split("-")[1].isdigit() else -1
    )
    return str(cps[-1]) if cps else None


@dataclass
class _Data:
    """The data phase's output: the rows that train and evaluate, and how many were left out for length."""

    rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]
    too_long: int


@dataclass
class _Setup:
    """The trainer phase's output."""

    trainer: Any
    applied: accel.Applied
    micro: int  # rows per device batch
    rows_per_pass: int  # rows per forward/backward pass inside a step (0: the whole batch)
    accum: int
    total_steps: int
    history: list[dict[str, Any]]
    packing: dict[str, int] = field(default_factory=dict)  # packed: step_tokens, step_slots


@dataclass
class _Ran:
    """The run phase's output."""

    output: Any
    seconds: float
    report: dict[str, Any]  # what the applied plan did (graphs, fused layers)
    peak: tuple[float | None, float | None]  # allocated, reserved GB during training
    final_eval: dict[str, Any]
    checkpoint: str | None


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
    world = current_world(cfg.distributed)  # one process, or this rank of several (finetune/launch.py)
    if world.distributed and cfg.batch_size % world.size:  # started by hand with another process count than gpus
        raise LoragError(
            f"batch_size {cfg.batch_size} does not divide over {world.size} processes",
            hint="set batch_size to a multiple of the process count (gpus)",
        )
    plan = apply_world(decide_plan(cfg, model_path, device, train_file), cfg, world)
    rows = _read_rows(train_file)
    eval_rows = _read_rows(eval_file) if eval_file and Path(eval_file).is_file() else []
    if not rows:
        raise LoragError(f"{train_file}: no training rows")

    def stage(name: str) -> None:  # before the first step: what the run is doing (the CLI's bar, the app's job)
        if on_log:
            on_log({"stage": name})

    with accel.process(plan) as proc:
        stage("loading the base model")
        model, tokenizer = load_trainable_model(model_path, plan, world)
        proc.restore(sys.modules[type(model).__module__])  # Liger patches it for the process
        data = _data_phase(cfg, plan, tokenizer, rows, eval_rows, train_file)
        stage("tokenizing the rows")
        setup = _trainer_phase(
            cfg,
            plan,
            model,
            tokenizer,
            data,
            run_dir=run_dir,
            device=device,
            on_log=on_log,
            trainer_overrides=trainer_overrides,
            callbacks=callbacks,
            world=world,
        )
        stage("training")
        ran = _run_phase(cfg, plan, setup, data, run_dir=run_dir, device=device, resume=resume)
        return _save_phase(cfg, plan, setup, data, ran, run_dir=run_dir, train_file=train_file, world=world)


def _data_phase(
    cfg: TrainConfig,
    plan: accel.Plan,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    train_file: Path,
) -> _Data:
    rows, too_long = _fitting_rows(rows, tokenizer, cfg.max_seq_length, plan.batching, train_file, cfg.max_row_loss)
    if eval_rows:
        eval_rows, _ = _fitting_rows(eval_rows, tokenizer, cfg.max_seq_length, plan.batching, None)
    return _Data(rows, eval_rows, too_long)


def _batches(cfg: TrainConfig, plan: accel.Plan, device: str, world: World) -> tuple[int, int, int]:
    """Rows per device batch, rows per pass inside a step (0: the whole batch), gradient accumulation steps.
    On CPU the activations of a whole batch of long prompts do not fit in RAM: passes of CPU_MICRO_BATCH rows
    inside each step (finetune/accel/trainer.py), unless the recipe sets micro_batch. Padding-free rows have no
    per-row mask to split by, and trl's own trainer (a plain plan) does not split, so there transformers'
    gradient accumulation makes the passes instead. Under several processes each trains its share of a step."""
    cpu_rows = CPU_MICRO_BATCH if device == "cpu" else 0
    batch = cfg.batch_size // world.size  # this process's rows of each step (config.py: batch_size divides by gpus)
    pass_rows = cfg.micro_batch or cpu_rows
    if plan.batching == "padding_free" and cpu_rows:
        micro, pass_rows = min(batch, cpu_rows), 0
    elif not plan.lorag_trainer and 0 < pass_rows < batch:
        micro, pass_rows = pass_rows, 0
    else:
        micro = batch
    accum = cfg.grad_accum * math.ceil(batch / micro)
    return micro, (pass_rows if 0 < pass_rows < micro else 0), accum


def _trainer_args(
    cfg: TrainConfig,
    plan: accel.Plan,
    data: _Data,
    micro: int,
    rows_per_pass: int,
    accum: int,
    eval_steps: int,
    warmup_steps: int,
    run_dir: Path,
    device: str,
    overrides: dict[str, Any] | None,
    world: World,
) -> Any:
    from trl import SFTConfig

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
        eval_strategy="steps" if data.eval_rows else "no",
        eval_steps=eval_steps,
        bf16=plan.bf16,
        max_length=None if plan.batching == "padding_free" else cfg.max_seq_length,
        completion_only_loss=True,
        padding_free=plan.batching == "padding_free",
        use_liger_kernel=plan.liger,
        report_to=[],
        seed=cfg.seed,
        use_cpu=device == "cpu",
        include_num_input_tokens_seen=True,  # non-pad tokens, counted on the device (finetune/accel/trainer.py)
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    if plan.lorag_trainer:
        kwargs["logging_nan_inf_filter"] = False  # it reads every micro-batch's loss back from the GPU
        if device == "cuda":  # batches go to the GPU from pinned memory without waiting for it (no read per step)
            kwargs["accelerator_config"] = {"non_blocking": True}
    fields = SFTConfig.__dataclass_fields__
    # with CUDA graphs the graphed layers checkpoint themselves (finetune/accel/graphs.py); the option was
    # renamed in transformers 5
    ckpt_name = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    kwargs[ckpt_name] = cfg.gradient_checkpointing and not plan.cuda_graphs
    if plan.sequential:  # curriculum order: the rows train in the order synth wrote them
        if "train_sampling_strategy" not in fields:
            raise LoragError("curriculum order needs transformers 5 (train_sampling_strategy)")
        kwargs["train_sampling_strategy"] = "sequential"
    elif cfg.group_by_length and plan.batching == "padded":  # the option's name moved in transformers 5
        if "train_sampling_strategy" in fields:
            kwargs["train_sampling_strategy"] = "group_by_length"
        elif "group_by_length" in fields:
            kwargs["group_by_length"] = True
    if plan.cuda_graphs:  # few distinct batch shapes, so few graphs to capture
        kwargs["pad_to_multiple_of"] = cfg.graph_bucket
    kwargs.update(trainer_options(world))
    kwargs.update(overrides or {})
    return SFTConfig(**kwargs)


def _callbacks(run_dir: Path, history: list[dict[str, Any]], on_log: LogFn | None, world: World) -> list[Any]:
    from transformers import TrainerCallback

    class _Log(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            entry = {"step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch, **(logs or {})}
            history.append(entry)
            if not world.main:  # rank 0 writes the log and reports progress
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

    return [_Log(), _NoFinalCheckpoint(), *world_callbacks(world)]


def _trainer_phase(
    cfg: TrainConfig,
    plan: accel.Plan,
    model: Any,
    tokenizer: Any,
    data: _Data,
    *,
    run_dir: Path,
    device: str,
    on_log: LogFn | None,
    trainer_overrides: dict[str, Any] | None,
    callbacks: list[Any] | None,
    world: World,
) -> _Setup:
    from transformers import PrinterCallback
    from trl import SFTTrainer

    micro, rows_per_pass, accum = _batches(cfg, plan, device, world)
    total_steps, eval_steps, warmup_steps = _schedule(cfg, math.ceil(len(data.rows) / (micro * accum * world.size)))
    args = _trainer_args(
        cfg,
        plan,
        data,
        micro,
        rows_per_pass,
        accum,
        eval_steps,
        warmup_steps,
        run_dir,
        device,
        trainer_overrides,
        world,
    )
    history: list[dict[str, Any]] = []
    run_dir.mkdir(parents=True, exist_ok=True)
    packed = plan.batching == "packed"
    collator = None
    if packed:  # evaluation batches packed too (any size; training's steps come from PackedSteps below)
        from finetune.accel.packing import PackedCollator

        collator = PackedCollator(tokenizer.pad_token_id, cfg.max_seq_length, multiple=cfg.graph_bucket)
    trainer_cls = accel.trainer_class(
        SFTTrainer, plan, micro_rows=rows_per_pass, multiple=getattr(args, "pad_to_multiple_of", None) or 1
    )
    with _quiet():
        trainer = trainer_cls(
            model=model,
            args=args,
            train_dataset=_dataset(data.rows),
            eval_dataset=_dataset(data.eval_rows) if data.eval_rows else None,
            processing_class=tokenizer,
            data_collator=collator,
            peft_config=lora_config(cfg),
            callbacks=[*_callbacks(run_dir, history, on_log, world), *(callbacks or [])],
        )
    trainer.remove_callback(PrinterCallback)  # raw log dicts on stdout; on_log reports progress instead
    bucket_len = math.ceil(cfg.max_seq_length / cfg.graph_bucket) * cfg.graph_bucket
    max_tokens = (rows_per_pass or micro) * bucket_len
    packing: dict[str, int] = {}
    if packed:  # steps of micro rows' tokens each, from trl's tokenized rows; the schedule by the steps made
        from finetune.accel.packing import PackedSteps

        steps = trainer.packed_steps = PackedSteps.for_rows(
            trainer.train_lengths(),
            micro,
            cfg.graph_bucket,
            cfg.max_seq_length,
            seed=cfg.seed,
            epochs=math.ceil(cfg.epochs),
        )
        max_tokens = steps.capacity
        packing = {"step_tokens": steps.capacity, "step_slots": steps.slots}
        total_steps, trainer.args.eval_steps, trainer.args.warmup_steps = _schedule(cfg, math.ceil(len(steps) / accum))
    applied = accel.apply(
        plan,
        trainer.model,
        max_tokens=max_tokens,
        varlen_max=cfg.max_seq_length,  # before train()
        checkpoint=cfg.gradient_checkpointing,
        keep=cfg.keep_activations,
        offload=cfg.offload_activations,
        share=cfg.share_graphs,
        skip_unread=cfg.recompute_skip_unread,
        mlp_tiles=cfg.recompute_mlp_tiles,
    )
    if applied.gated_mlps:
        trainer.add_callback(applied.callback())  # puts them back after train() has bound Liger's MLP forwards
    return _Setup(trainer, applied, micro, rows_per_pass, accum, total_steps, history, packing)


def _run_phase(
    cfg: TrainConfig, plan: accel.Plan, setup: _Setup, data: _Data, *, run_dir: Path, device: str, resume: bool
) -> _Ran:
    import torch

    trainer = setup.trainer
    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    checkpoint = latest_checkpoint(run_dir) if resume else None
    t0 = time.perf_counter()
    try:
        with _quiet(), sdpa_backend(plan.sdpa_backend, device):
            out = trainer.train(resume_from_checkpoint=checkpoint)
            seconds = time.perf_counter() - t0
            peak = (
                (torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30)
                if cuda
                else (None, None)
            )
            # the final evaluation runs before the plan is undone, as the scheduled ones do: its layers run their
            # MLP over token tiles (graphs.LayerGraphs), not a whole batch's intermediates at once
            final_eval = _final_evaluation(trainer, setup.history, bool(data.eval_rows))
    finally:
        report = setup.applied()  # the model is peft's again (saving)
    return _Ran(out, seconds, report, peak, final_eval, checkpoint)


def _final_evaluation(trainer: Any, history: list[dict[str, Any]], has_rows: bool) -> dict[str, Any]:
    """The held-out loss at the last step: the scheduled evaluation's when one ran there, else a new one."""
    last = next((h for h in reversed(history) if "eval_loss" in h), None)
    if not has_rows:
        return {}
    if last is not None and last["step"] == trainer.state.global_step:
        return {"eval_loss": last["eval_loss"]}
    return trainer.evaluate()


def _save_phase(
    cfg: TrainConfig,
    plan: accel.Plan,
    setup: _Setup,
    data: _Data,
    ran: _Ran,
    *,
    run_dir: Path,
    train_file: Path,
    world: World,
) -> TrainResult:
    trainer = setup.trainer
    adapter_dir = run_dir / "adapter"
    save_adapter(trainer, adapter_dir, world)  # written once (rank 0)
    tokens = trainer.tokens_seen() if hasattr(trainer, "tokens_seen") else int(trainer.state.num_input_tokens_seen or 0)
    history = setup.history
    metrics = {
        "train_loss": float(ran.output.training_loss),
        "eval_loss": float(ran.final_eval["eval_loss"]) if "eval_loss" in ran.final_eval else None,
        "steps": int(trainer.state.global_step),
        "train_rows": len(data.rows),
        "data_sha256": file_sha256(train_file),
        "rows_over_max_length": data.too_long,
        "eval_rows": len(data.eval_rows),
        "tokens_seen": tokens,
        "train_seconds": ran.seconds,
        "tokens_per_s": tokens / ran.seconds if ran.seconds > 0 else None,
        "resumed_from": ran.checkpoint,
        **ran.report,  # cuda_graphs (their summary, or why off), fused_lora_layers, fp8_layers
        "peak_gpu_mem_gb": ran.peak[0],  # during training (the final evaluation is not counted)
        "peak_gpu_reserved_gb": ran.peak[1],
        "world_size": world.size,
        **(
            {"peak_gpu_mem_gb_per_rank": gather_per_rank(ran.peak[0])}
            if world.distributed and plan.device == "cuda"
            else {}
        ),
        "loss_curve": [(h["step"], h["loss"]) for h in history if "loss" in h],
        "eval_curve": [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h],
    }
    runtime = {
        **plan.record(),
        **world_record(plan, world),
        **setup.packing,
        "batch_rows": setup.micro,
        "micro_batch": setup.rows_per_pass or setup.micro,
        "grad_accum": setup.accum,
    }
    hyper = {**cfg.to_dict(), "runtime": runtime, "total_steps": setup.total_steps}
    # next to the adapter, so `lorag adapters import` keeps the figures of a run made on another machine
    if world.main:
        (run_dir / RESULT_FILE).write_text(json.dumps({"metrics": metrics, "hyperparameters": hyper}, default=str))
    return TrainResult(adapter_dir, metrics, hyper)
