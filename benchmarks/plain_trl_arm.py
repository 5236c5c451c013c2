"""The plain trl arms of benchmarks/bench_train_gpu.py (`plain`, `plain-nodrop`, `plain-flash`): trl's
SFTTrainer with its defaults and peft's LoRA on the benchmark's rows and recipe, built from transformers' own
Llama modules (it warns when a kernel library patched them into the process)."""

from __future__ import annotations

from pathlib import Path

# benchmarks/, the script's folder; none of them imports transformers, trl or peft (the Unsloth arm's rule)
from train_profile import step_profiler, step_timer
from trainer_timing import timed_train


def run_plain_trl(
    model_path: str, rows, eval_rows, args, quant: bool, out: Path, dropout: float = 0.05, attention: str = ""
) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    init = {"dtype": torch.bfloat16 if torch.cuda.is_available() else torch.float32}
    patched = foreign_llama_parts()
    if patched:  # plain trl must be built from transformers' own modules (sessions 3-8 built it from Liger's)
        print(f"-- WARNING: plain trl's Llama uses patched {', '.join(patched)}", flush=True)
    if quant:
        init["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    cfg = SFTConfig(
        output_dir=str(out),
        per_device_train_batch_size=args.batch,
        per_device_eval_batch_size=args.batch,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        max_length=args.max_len,
        bf16=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),
        model_init_kwargs=init,
        report_to=[],
        save_strategy="no",
        logging_steps=10,
        seed=0,
        disable_tqdm=True,
    )
    tok = AutoTokenizer.from_pretrained(model_path)
    trainer = SFTTrainer(
        model=model_path,
        args=cfg,
        processing_class=tok,
        train_dataset=Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]),
        eval_dataset=Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in eval_rows]),
        peft_config=LoraConfig(
            r=16, lora_alpha=32, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
    )
    if args.profile:
        trainer.add_callback(step_profiler(args.profile_step))
    timer = step_timer()
    trainer.add_callback(timer)
    out = timed_train(trainer, tok, rows, args, attention)
    return {
        **out,
        "steps": timer.summary(),
        "optim": getattr(trainer.args.optim, "value", str(trainer.args.optim)),
        "patched": patched,
        "optimizer_steps": int(trainer.state.global_step),
        "rows_trained": len(trainer.train_dataset),
    }


def foreign_llama_parts() -> list[str]:
    """The Llama modeling module's layers and functions that are not transformers' own (a kernel library
    patched them into the process)."""
    from transformers.models.llama import modeling_llama

    names = ("LlamaRMSNorm", "LlamaMLP", "apply_rotary_pos_emb")
    return [n for n in names if not getattr(modeling_llama, n).__module__.startswith("transformers.")]
