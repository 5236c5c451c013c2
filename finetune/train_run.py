"""The run phase of a training run (finetune/train.py): trainer.train() (resumed from the latest checkpoint when
asked), the peak GPU memory, the final held-out loss, and the acceleration plan undone after it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune import accel
from finetune.accel.layers import sdpa_backend
from finetune.config import TrainConfig
from finetune.train_data import _Data
from finetune.train_setup import _quiet, _Setup


def latest_checkpoint(run_dir: Path) -> str | None:
    cps = sorted(
        run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]) if p.name.split("-")[1].isdigit() else -1
    )
    return str(cps[-1]) if cps else None


@dataclass
class _Ran:
    """The run phase's output."""

    output: Any
    seconds: float
    report: dict[str, Any]  # what the applied plan did (graphs, fused layers)
    peak: tuple[float | None, float | None]  # allocated, reserved GB during training
    final_eval: dict[str, Any]
    checkpoint: str | None


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
