"""The trainer phase of a training run (finetune/train.py): trl's SFTConfig and trainer (lorag's subclass unless
the plan is plain), the batch sizes and the step schedule, packed steps, and the plan applied to the peft model."""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from assistant.errors import LoragError
from finetune import accel
from finetune.config import TrainConfig
from finetune.distributed import World, trainer_options
from finetune.distributed import callbacks as world_callbacks
from finetune.train_data import _Data, _dataset

LogFn = Callable[[dict[str, Any]], None]
CPU_MICRO_BATCH = 2


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


def _schedule(cfg: TrainConfig, steps_per_epoch: int) -> tuple[int, int, int]:
    """Optimizer steps in all, steps between evaluations, warm-up steps."""
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(steps_per_epoch * cfg.epochs))
    return total, max(1, int(total * cfg.eval_fraction_steps)), max(0, int(total * cfg.warmup_ratio))


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
        logging_first_step=True,  # a loss from the first step: a short run's curve has a train point
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
        resume and its adapter is saved by the save phase (finetune/train_record.py), so only save_steps' own
        checkpoints are written."""

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
