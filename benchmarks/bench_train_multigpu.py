"""Training on several GPUs of one host: tokens/s on 1, 2, 4, 8 GPUs, the scaling efficiency, peak memory per GPU.

Every arm is `lorag train`'s own path (finetune/launch.py): N > 1 GPUs are N processes started by
`accelerate launch` (DDP, or FSDP2 with --distributed fsdp), one GPU is the same worker in a process of
its own, so every arm pays the same start-up outside its timed `trainer.train()`. Weak scaling: each GPU
trains --batch rows a step (the global batch is N x --batch) for the same --max-steps, so each arm's
tokens/s is its real (non-pad) tokens over its training seconds, and

    scaling efficiency(N) = tokens/s on N GPUs / (N x tokens/s on 1 GPU)

against the one-GPU run with the same settings: on several processes the acceleration layer (packed
steps, CUDA graphs, fused LoRA, FP8 GEMMs) is off (finetune/distributed.py), so the baseline arm turns
it off too. `--accelerated-baseline` adds the one-GPU run with the layer on, to show what DDP gives up.
Peak memory is each rank's torch.cuda.max_memory_allocated during training (result.json's
peak_gpu_mem_gb_per_rank). Issue 23's targets: efficiency >= 0.9 at 2 GPUs and >= 0.8 at 8 for LoRA
on a 1B-class model; an 8B-class QLoRA run across GPUs.

    python benchmarks/bench_train_multigpu.py --random-1b --tokenizer tok --train train.jsonl --quant lora \
        --gpus 1,2,4,8
    python benchmarks/bench_train_multigpu.py --model /path/to/8b --train train.jsonl --quant qlora \
        --gpus 1,2,4,8 --batch 8
    python benchmarks/bench_train_multigpu.py --model /path/to/70b --train train.jsonl --quant lora \
        --distributed fsdp --gpus 8

(tok, train.jsonl: as for bench_train_gpu.py, the RESULTS.md section "Training throughput on a GPU".)
Arms with more GPUs than the machine has are skipped, with a line saying so. `--cpu` runs the same arms as
gloo processes on the CPU (a check of the script on a machine without GPUs: its figures say nothing of GPUs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _common import header, table, verdict  # benchmarks/, the script's folder
from train_arms import RECIPE

TARGETS = {2: 0.9, 8: 0.8}  # issue 23, LoRA on a 1B-class model


def arm_config(args, gpus: int, accelerated: bool):
    from finetune.config import TrainConfig

    off = {} if accelerated else dict(batching="padded", cuda_graphs=False, fused_lora=False, fp8_matmuls=False)
    return TrainConfig(
        **RECIPE,
        quantization="nf4" if args.quant == "qlora" else "none",
        max_steps=args.max_steps,
        learning_rate=2e-4,
        batch_size=args.batch * gpus,
        max_seq_length=args.max_len,
        gpus=gpus,
        distributed=args.distributed if gpus > 1 else "ddp",
        **off,
    )


def run_arm(args, model_path: str, gpus: int, accelerated: bool, out: Path) -> dict:
    """One run in processes of its own through lorag's launcher; its result.json's figures."""
    from finetune.launch import SPEC_FILE, _run_workers, launch_command

    cfg = arm_config(args, gpus, accelerated)
    out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.cpu else "cuda"
    spec = {
        "config": cfg.to_dict(),
        "model_path": model_path,
        "train_file": str(args.train),
        "eval_file": None,
        "run_dir": str(out),
        "device": device,
        "resume": False,
        "trainer_overrides": {"eval_strategy": "no"},
    }
    (out / SPEC_FILE).write_text(json.dumps(spec))
    cmd = (
        launch_command(cfg, device, out / SPEC_FILE)
        if gpus > 1
        else [sys.executable, "-m", "finetune.launch", str(out / SPEC_FILE)]
    )
    error = _run_workers(cmd, out / "launch.log", None, gpus)
    if error is not None:
        raise error
    saved = json.loads((out / "result.json").read_text())
    m, rt = saved["metrics"], saved["hyperparameters"]["runtime"]
    peaks = m.get("peak_gpu_mem_gb_per_rank") or [m.get("peak_gpu_mem_gb")]
    return {
        "gpus": gpus,
        "accelerated": accelerated,
        "global_batch": cfg.batch_size,
        "steps": m["steps"],
        "tokens": m["tokens_seen"],
        "seconds": m["train_seconds"],
        "tokens_per_s": m["tokens_per_s"],
        "peak_gb_per_gpu": peaks,
        "train_loss": m["train_loss"],
        "accel_off": rt.get("accel_off"),
        "batching": rt.get("batching"),
        "cuda_graphs": rt.get("cuda_graphs"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="HF folder of the base model.")
    ap.add_argument("--random-1b", action="store_true", help="A 1B-class Llama with random weights (random_llama.py).")
    ap.add_argument("--tokenizer", help="Tokenizer folder for --random-1b.")
    ap.add_argument("--train", type=Path, required=True, help="Training rows (prompt/completion JSONL).")
    ap.add_argument("--gpus", default="1,2,4,8", help="GPU counts to run, comma-separated (1 is the baseline).")
    ap.add_argument("--quant", choices=["lora", "qlora"], default="lora")
    ap.add_argument("--distributed", choices=["ddp", "fsdp"], default="ddp")
    ap.add_argument("--batch", type=int, default=16, help="Rows per GPU per step.")
    ap.add_argument("--max-steps", type=int, default=60, help="Optimizer steps of every arm.")
    ap.add_argument("--max-len", type=int, default=1024)
    ap.add_argument("--accelerated-baseline", action="store_true", help="Also one GPU with the acceleration layer on.")
    ap.add_argument("--cpu", action="store_true", help="gloo processes on the CPU: checks the script, measures no GPU.")
    ap.add_argument("--out", type=Path, default=None, help="Run folders (default: a temporary folder).")
    ap.add_argument("--json", type=Path, default=None, help="Write every arm's figures here.")
    args = ap.parse_args()
    header("Training on several GPUs: tokens/s, scaling efficiency, peak memory per GPU")

    import torch

    if args.cpu:
        have = max(int(x) for x in args.gpus.split(","))
        print(f"CPU     : {have} gloo processes at most (--cpu: a check of the script, no GPU figures)")
    elif not torch.cuda.is_available():
        sys.exit("needs CUDA GPUs (a multi-GPU machine for the N > 1 arms), or --cpu to check the script")
    else:
        have = torch.cuda.device_count()
        print(f"GPUs    : {have} x {torch.cuda.get_device_name(0)}")
    out = args.out or Path(tempfile.mkdtemp(prefix="lorag-bench-multigpu-"))
    model_path = args.model
    if args.random_1b:
        from random_llama import build_random_llama

        model_path = build_random_llama(args.tokenizer, out / "random-1b", "1b")
    if not model_path:
        sys.exit("give --model PATH or --random-1b --tokenizer PATH")
    counts = sorted({int(x) for x in args.gpus.split(",")} | {1})
    runs = []
    if args.accelerated_baseline:
        runs.append(run_arm(args, model_path, 1, True, out / "gpus1-accelerated"))
    for n in counts:
        if n > have:
            print(f"skipped : {n} GPUs (this machine has {have})")
            continue
        runs.append(run_arm(args, model_path, n, False, out / f"gpus{n}"))
    base = next(r for r in runs if r["gpus"] == 1 and not r["accelerated"])
    rows = []
    for r in runs:
        eff = r["tokens_per_s"] / (r["gpus"] * base["tokens_per_s"])
        r["scaling_efficiency"] = None if r["accelerated"] else eff
        target = TARGETS.get(r["gpus"]) if args.quant == "lora" and not (r["accelerated"] or args.cpu) else None
        rows.append(
            [
                f"{r['gpus']}" + (" (accel. layer on)" if r["accelerated"] else ""),
                r["global_batch"],
                r["steps"],
                r["tokens_per_s"],
                "" if r["accelerated"] else f"{eff:.3f}",
                "/".join(f"{p:.2f}" for p in r["peak_gb_per_gpu"] if p is not None),
                r["train_loss"],
                f">= {target}: {verdict(eff >= target)}" if target else "",
            ]
        )
    print(
        table(
            ["GPUs", "global batch", "steps", "tokens/s", "scaling eff.", "peak GB per GPU", "train loss", "target"],
            rows,
        )
    )
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
