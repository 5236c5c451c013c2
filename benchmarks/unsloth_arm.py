"""The Unsloth arm of benchmarks/bench_train_gpu.py: Unsloth's documented LoRA/QLoRA path
(FastLanguageModel.from_pretrained, FastLanguageModel.get_peft_model, trl's SFTTrainer as importing
unsloth patches it) on the benchmark's rows and settings; everything else at Unsloth's defaults.

Unsloth must be imported before transformers, trl and peft, and it patches them for the whole process,
so the arm runs only in a process of its own (`--fresh`). Its pins (trl, datasets) differ from lorag's:
`--unsloth-site DIR` (a `pip install --target DIR` of Unsloth and those pins) goes first on the arm's
PYTHONPATH, so the other arms keep the environment's own versions.

Settings as the other arms: LoRA r=16, alpha=32 on every linear projection (q, k, v, o, gate, up,
down), dropout 0 (Unsloth's fast LoRA kernels need 0), the same rows, 16 rows per optimizer step,
learning rate, linear schedule without warmup, optimizer, epochs, max length and bf16 (Unsloth's
SFTConfig defaults to other ones: set back); QLoRA loads NF4 through Unsloth's own bitsandbytes config.
Gradient checkpointing is Unsloth's recommended `use_gradient_checkpointing="unsloth"` (its default:
activations offloaded to CPU memory, "30% less VRAM"); attention, kernels and batching (padding-free
where Unsloth chooses it) are Unsloth's choices, reported with the figures.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# benchmarks/, the script's folder; neither imports transformers, trl or peft (this arm's rule)
from train_profile import step_profiler, step_timer
from trainer_timing import timed_train

UNSLOTH = "unsloth"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # peft's all-linear
_PATCHED_BEFORE = ("transformers", "trl", "peft")


def unsloth_env(base: dict[str, str], site: Path | None, out: Path) -> dict[str, str]:
    """The environment of the arm's process: the Unsloth site first on PYTHONPATH, no network calls
    (statistics, model-name lookups), Unsloth's compiled modules kept under the benchmark's folder."""
    env = dict(base)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site.resolve()), base.get("PYTHONPATH", "")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["UNSLOTH_DISABLE_STATISTICS"] = "1"
    env.setdefault("UNSLOTH_COMPILE_LOCATION", str(out / "unsloth_compiled_cache"))
    return env


def import_unsloth_first() -> None:
    """Import unsloth before anything imports transformers, trl or peft (Unsloth's own rule)."""
    early = [m for m in _PATCHED_BEFORE if m in sys.modules]
    if early:
        raise RuntimeError(f"{', '.join(early)} imported before unsloth: the arm must start its process with it")
    import unsloth  # noqa: F401  (patches transformers, trl and peft on import)


def unsloth_trainer(model_path: str, rows: list[dict], eval_rows: list[dict], args, quant: bool, out: Path):
    """An SFTTrainer built Unsloth's way, ready to train, and what Unsloth chose (for the figures)."""
    import torch
    import trl
    import unsloth
    from datasets import Dataset
    from transformers import TrainingArguments
    from trl import SFTConfig, SFTTrainer
    from unsloth import FastLanguageModel

    model, tok = FastLanguageModel.from_pretrained(
        model_name=model_path,
        max_seq_length=args.max_len,
        dtype=torch.bfloat16,
        load_in_4bit=quant,
        load_in_16bit=not quant,  # Unsloth's flag for 16-bit LoRA
    )
    four_bit = sum(type(getattr(m, "weight", None)).__name__ == "Params4bit" for m in model.modules())  # bnb NF4
    if quant and not four_bit:  # Unsloth falls back to 16-bit when bitsandbytes cannot run: that is not QLoRA
        raise RuntimeError("Unsloth loaded the model without 4-bit layers (bitsandbytes unusable here?)")
    model = FastLanguageModel.get_peft_model(
        model,
        r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS,
        bias="none",
        use_gradient_checkpointing="unsloth",
        random_state=0,
    )
    cfg = SFTConfig(  # Unsloth's SFTConfig defaults differ (2 accumulation steps, 10% warmup, weight decay
        # 0.001, adamw_8bit): the recipe is set to the other arms' (16 rows a step, no warmup, no decay, the
        # optimizer plain trl defaults to) so the figures compare the same training
        output_dir=str(out),
        per_device_train_batch_size=args.batch,
        gradient_accumulation_steps=1,
        per_device_eval_batch_size=args.batch,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        optim=TrainingArguments.__dataclass_fields__["optim"].default,
        max_length=args.max_len,
        bf16=True,
        report_to=[],
        save_strategy="no",
        logging_steps=10,
        seed=0,
        disable_tqdm=True,
    )

    def data(part: list[dict]):
        return Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in part])

    trainer = SFTTrainer(
        model=model, args=cfg, processing_class=tok, train_dataset=data(rows), eval_dataset=data(eval_rows)
    )
    gpu_path = sys.modules.get("unsloth.models._utils")  # what Unsloth found at import (its GPU path only)
    chosen = {
        "version": unsloth.__version__,
        "trl": trl.__version__,
        "gradient_checkpointing": "unsloth",
        "trainer_gradient_checkpointing": bool(trainer.args.gradient_checkpointing),  # as Unsloth left trl's flag
        "padding_free": bool(getattr(trainer.args, "padding_free", False)),
        "packing": bool(getattr(trainer.args, "packing", False)),
        "optim": getattr(trainer.args.optim, "value", str(trainer.args.optim)),
        "xformers": getattr(gpu_path, "xformers_version", None),  # None: PyTorch SDPA (no xformers for this CUDA)
        "flash_attn": bool(getattr(gpu_path, "HAS_FLASH_ATTENTION", False)),
        "linear4bit_layers": four_bit,
    }
    return trainer, chosen


def run_unsloth(model_path: str, rows, eval_rows, args, quant: bool, out: Path) -> dict:
    """The Unsloth arm, in this process: it must have imported unsloth first."""
    from transformers import AutoTokenizer

    trainer, chosen = unsloth_trainer(model_path, rows, eval_rows, args, quant, out)
    print(f"-- unsloth: {json.dumps(chosen)}", flush=True)
    timer = step_timer()
    trainer.add_callback(timer)
    if args.profile:
        trainer.add_callback(step_profiler(args.profile_step))
    tok = AutoTokenizer.from_pretrained(model_path)  # the tokens counted as for every arm
    res = timed_train(trainer, tok, rows, args)
    return {
        **res,
        "steps": timer.summary(),
        "optim": chosen["optim"],
        "unsloth": chosen,
        "optimizer_steps": int(trainer.state.global_step),
        "rows_trained": len(trainer.train_dataset),
    }
