"""One training run on several processes (DDP, or FSDP for bases that do not fit one card), seen from a rank.

`current_world` reads the rank and world size the launcher (torchrun / `accelerate launch`,
finetune/launch.py) gave this process. The rest is what changes under it, kept out of finetune/train.py:
the acceleration layer switched off with its reason (`apply_world`), the trainer's DDP/FSDP options, the
model's placement, and the adapter written once (`save_adapter`). One process: nothing changes.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import LoragError

STRATEGIES = ("ddp", "fsdp")


@dataclass(frozen=True)
class World:
    size: int = 1
    rank: int = 0
    local_rank: int = 0
    strategy: str = "ddp"

    @property
    def main(self) -> bool:
        """The rank that writes: logs, the adapter, result.json (and whose events the launcher reads)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def current_world(strategy: str = "ddp") -> World:
    """This process's place in the run, from the variables torchrun / accelerate launch set (one process without
    them)."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World(strategy=strategy)
    return World(size, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), strategy)


def unverified(world: World) -> str:
    return f"not verified under {world.size}-process {world.strategy.upper()} training yet: off on every rank"


def apply_world(plan: Any, cfg: Any, world: World) -> Any:
    """The run's acceleration plan (finetune/accel/plan.py) for this world: under several processes the
    acceleration layer (packed steps, CUDA graphs, fused LoRA, FP8 GEMMs) off with the reason, since none of it
    has been run multi-process (a packed step is one sequence per process, the graphs and fused kernels were
    captured and checked on one GPU only). A recipe that asks for packed steps explicitly is refused."""
    if not world.distributed:
        return plan
    if cfg.batching == "packed":
        raise LoragError(
            f"batching 'packed' is not available on {world.size} processes ({unverified(world)})",
            hint="set batching: padded (or auto) in the recipe, or train with gpus: 1",
        )
    why = unverified(world)
    off = dict(plan.off)
    changes: dict[str, Any] = {}
    if plan.batching == "packed":
        changes.update(batching="padded", attn_implementation=cfg.attn_implementation, varlen_kernel="")
        off["packed"] = why
    if plan.cuda_graphs:
        changes.update(cuda_graphs=False, sdpa_backend="" if cfg.sdpa_backend == "auto" else cfg.sdpa_backend)
        off["cuda_graphs"] = why
    if plan.fused_lora:
        changes["fused_lora"] = False
        off["fused_lora"] = why
    if plan.fp8:
        changes["fp8"] = False
        off["fp8"] = why
    return dataclasses.replace(plan, **changes, off=tuple(off.items()))


_WORDS = {"packed": "packed steps", "cuda_graphs": "CUDA graphs", "fused_lora": "fused LoRA", "fp8": "FP8 GEMMs"}


def world_record(plan: Any, world: World) -> dict[str, Any]:
    """What a run's card keeps of its world (beside the plan's record): its size, and what several processes
    turned off, once, with the reason."""
    if not world.distributed:
        return {"world_size": 1}
    why = unverified(world)
    off = [_WORDS[k] for k, v in plan.off if v == why and k in _WORDS]
    return {
        "world_size": world.size,
        "distributed": world.strategy,
        "accel_off": off,
        "accel_off_reason": why if off else None,
    }


def model_placement(world: World) -> dict[str, Any] | None:
    """from_pretrained's device_map on CUDA: each DDP rank's own GPU; none under FSDP (FSDP shards the model
    it loads onto the GPUs itself: a base that does not fit one card must not be loaded onto one)."""
    import torch

    if world.distributed and world.strategy == "fsdp":
        return None
    return {"": world.local_rank if world.distributed else torch.cuda.current_device()}


def trainer_options(world: World) -> dict[str, Any]:
    """SFTConfig options under several processes. LoRA uses every trainable parameter in every step, so DDP
    need not search for unused ones (a search that also breaks reentrant activation checkpointing)."""
    if not world.distributed:
        return {}
    return {"ddp_find_unused_parameters": False} if world.strategy == "ddp" else {}


def save_adapter(trainer: Any, adapter_dir: Path, world: World) -> None:
    """The adapter as a standard PEFT folder, written once. Under FSDP the full state dict is gathered first (a
    collective: every rank takes part); rank 0 writes; the others wait until the folder is complete."""
    if not world.distributed:
        trainer.model.save_pretrained(str(adapter_dir))
        return
    acc = trainer.accelerator
    state = acc.get_state_dict(trainer.model_wrapped) if world.strategy == "fsdp" else None
    if world.main:
        acc.unwrap_model(trainer.model).save_pretrained(str(adapter_dir), state_dict=state)
    acc.wait_for_everyone()


def gather_per_rank(value: float | None) -> list[float | None]:
    """One figure from every rank, in rank order (a collective: every rank calls it), e.g. each GPU's peak memory."""
    from accelerate.utils import gather_object

    return list(gather_object([value]))


def callbacks(world: World) -> list[Any]:
    """Trainer callbacks under several processes. transformers adds the loss since the last log to the run's
    train_loss as rank 0's own figure, not the processes' mean: the last step is logged too, which averages it."""
    if not world.distributed:
        return []
    from transformers import TrainerCallback

    class _LogLastStep(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step >= state.max_steps:
                control.should_log = True

    return [_LogLastStep()]
