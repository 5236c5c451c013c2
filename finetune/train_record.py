"""The save phase of a training run (finetune/train.py): the adapter folder, and the run's record, its metrics and
hyperparameters (the plan included), written to run_dir/result.json and returned as a TrainResult."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune import accel
from finetune.config import TrainConfig
from finetune.data import file_sha256
from finetune.distributed import World, gather_per_rank, save_adapter, world_record
from finetune.train_data import _Data
from finetune.train_run import _Ran
from finetune.train_setup import _Setup

RESULT_FILE = "result.json"  # run_dir/result.json: metrics + hyperparameters, read back by `lorag adapters import`


@dataclass
class TrainResult:
    adapter_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)


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
