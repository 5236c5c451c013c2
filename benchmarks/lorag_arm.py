"""The lorag arms of benchmarks/bench_train_gpu.py: `lorag train`'s trainer (finetune.train.train_adapter) on
the benchmark's rows, with the recipe of one of train_arms.VARIANTS (`lorag`: the shipped CUDA default), and
`--memory-trace`'s allocator report at train end."""

from __future__ import annotations

from pathlib import Path

# benchmarks/, the script's folder; none of them imports transformers, trl or peft (the Unsloth arm's rule)
from memory_trace import memory_trace_report, memory_trace_start, memory_trace_stop
from train_arms import RECIPE, VARIANTS, module_constants
from train_profile import step_profiler, step_timer
from train_rows import real_tokens


def run_lorag(
    model_path: str, train_file: Path, eval_file: Path, args, quant: bool, out: Path, rows, variant: str = "lorag"
) -> dict:
    import torch
    from transformers import AutoTokenizer

    from finetune.config import TrainConfig
    from finetune.train import train_adapter

    spec = dict(VARIANTS[variant])
    batch, lr = spec.pop("batch", args.batch), args.lr * spec.pop("lr_scale", 1.0)
    constants = module_constants(spec)  # pops its keys before the recipe is made of the rest
    overrides = {"eval_strategy": "no", **spec.pop("overrides", {})}
    cfg = TrainConfig(
        **RECIPE,
        quantization="nf4" if quant else "none",
        epochs=args.epochs,
        learning_rate=lr,
        batch_size=batch,
        max_seq_length=args.max_len,
        **spec,
    )
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timer = step_timer()
    traced = args.memory_trace and memory_trace_start()
    try:
        with constants:
            res = train_adapter(
                cfg,
                model_path=model_path,
                train_file=train_file,
                eval_file=eval_file,
                run_dir=out,
                device="cuda" if cuda else "cpu",
                trainer_overrides=overrides,
                callbacks=[
                    timer,
                    *([step_profiler(args.profile_step)] if args.profile else []),
                    *([_MemoryTraceAtTrainEnd()] if traced else []),
                ],
            )
    finally:
        if traced:
            memory_trace_stop()  # a no-op after the report at train end
    from finetune.runtime import describe_runtime

    tok = AutoTokenizer.from_pretrained(model_path)
    n_tok = real_tokens(rows, tok) * args.epochs
    secs = res.metrics["train_seconds"]
    print(
        f"-- {variant}: {describe_runtime(res.metrics, res.hyperparameters)}", flush=True
    )  # the plan, and what was off
    return {
        "seconds": secs,
        "tokens": n_tok,
        "tokens_per_s": n_tok / secs,
        "peak_gb": res.metrics["peak_gpu_mem_gb"],
        "reserved_gb": res.metrics["peak_gpu_reserved_gb"],
        "eval_loss": res.metrics["eval_loss"],
        "runtime": res.hyperparameters["runtime"],
        "graphs": res.metrics.get("cuda_graphs"),
        "steps": timer.summary(),
        "optimizer_steps": res.metrics["steps"],
        "rows_trained": res.metrics["train_rows"] if not res.metrics["rows_over_max_length"] else -1,
        "tokens_seen": res.metrics["tokens_seen"],
    }


def _MemoryTraceAtTrainEnd():
    """A TrainerCallback printing where the peak reserved memory came from when training ends (before the
    final evaluation), from the allocator trace `memory_trace_start` began."""
    from transformers import TrainerCallback

    class MemoryTrace(TrainerCallback):
        def on_train_end(self, args, state, control, **kw):
            memory_trace_report()

    return MemoryTrace()
