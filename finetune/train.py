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

The plan and model phases and the order of the phases are here; each later phase has its module:
finetune/train_data.py, finetune/train_setup.py, finetune/train_run.py and finetune/train_record.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from finetune import accel
from finetune.config import TrainConfig
from finetune.distributed import World, apply_world, current_world, model_placement
from finetune.train_data import _Data, _data_phase, _n_tokens, _read_rows, in_curriculum_order
from finetune.train_record import RESULT_FILE, TrainResult, _save_phase
from finetune.train_run import _run_phase, latest_checkpoint
from finetune.train_setup import CPU_MICRO_BATCH, LogFn, _Setup, _trainer_phase, lora_config

# read from here by finetune/launch.py, finetune/importing.py, the tests and the benchmarks
__all__ = [
    "CPU_MICRO_BATCH",
    "RESULT_FILE",
    "LogFn",
    "TrainResult",
    "_Data",
    "_Setup",
    "_n_tokens",
    "_run_phase",
    "decide_plan",
    "in_curriculum_order",
    "latest_checkpoint",
    "load_trainable_model",
    "lora_config",
    "train_adapter",
]


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
