"""Training throughput: `lorag train`'s trainer vs plain trl SFTTrainer defaults, side by side, one run.

Both arms: the same model, the same prompt/completion rows, LoRA r=16 on all linear layers, the same
max length, epochs, learning rate and rows per step; completion-only loss. Plain trl keeps its
defaults (padded batches, its gradient checkpointing default, no kernels, fp32 LoRA weights). lorag
chooses batching (packed steps of one size where CUDA graphs run, finetune/accel/packing.py; the `padded`
arm is its length-grouped padded batches), kernels (Liger when installed), bf16 LoRA weights and
checkpointing; the variants in train_arms.VARIANTS measure other choices (padding-free, larger batches,
torch.compile). `--profile` prints where a step's time goes (torch.profiler).

    python benchmarks/bench_train_gpu.py --model PATH --train train.jsonl --eval heldout.jsonl [--quant both]
    python benchmarks/bench_train_gpu.py --random-1b --tokenizer PATH ...   # 1B-class Llama, random weights
    python benchmarks/bench_train_gpu.py --random-8b --tokenizer PATH ...   # Llama-3.1-8B shapes, random weights
    python benchmarks/bench_train_gpu.py ... --fresh --arms plain,lorag,unsloth --unsloth-site DIR

The `unsloth` arm (benchmarks/unsloth_arm.py) is Unsloth's own path on the same rows and recipe; it runs
only with --fresh (Unsloth patches transformers, trl and peft for its whole process), with its pinned
trl/datasets from --unsloth-site first on its PYTHONPATH. An arm that cannot run (an import, a size, a
timeout: --arm-timeout) is recorded with its reason ("_failed" in the JSON) and the others go on.
`--check` prints the model's shapes and MFU count without loading anything.

Prints tokens/s (real, non-pad tokens of the rows trained), peak memory, final held-out loss, MFU, each
arm's optimizer steps and rows, and the ratios. Only rows that fit --max-len whole are trained, by every
arm: the others are left out before any arm runs (and counted), so no arm trains a row another drops or
cuts, and no token is counted that no arm trained; an arm that trained other rows stops the benchmark.
plain trl pads each batch to its longest row, and a step on a batch shape new to the process costs it
35–45% more than one on a shape met before (RESULTS.md), so a second run on the same data
in one process is faster than the first. `--repeat N` alternates the arms N times; `--fresh` runs each
run in a new process, as a user runs a training script, so no run meets shapes an earlier run met.
Without finetune/accel/apply.py's `module_restored`, a lorag run would leave Liger's
RMSNorm, SwiGLU MLP and RoPE in transformers' Llama module, so every plain arm after the warm-up would be
built with them; the plain arm says when that happens.

The parts, each in this folder: the command line (train_args.py), the rows (train_rows.py), the MFU count and
--check (train_mfu.py), the random models (random_llama.py), the arms (plain_trl_arm.py, lorag_arm.py with
train_arms.py's variants, unsloth_arm.py; trainer_timing.py times the trl ones), the fresh processes
(fresh_process.py), step timing and profiles (train_profile.py, memory_trace.py) and the summary (train_report.py).
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

# benchmarks/, the script's folder; none of them imports transformers, trl or peft (the Unsloth arm's rule)
from fresh_process import ArmFailed, run_in_fresh_process
from lorag_arm import run_lorag
from plain_trl_arm import run_plain_trl
from random_llama import build_random_llama
from train_args import arm_key, parse_args, random_size
from train_mfu import PEAK_BF16_FLOPS, check_report, model_flops_per_token
from train_profile import host_profile
from train_report import step_mfu, summarize
from train_rows import fitting_rows, real_tokens, rows_of
from unsloth_arm import UNSLOTH, import_unsloth_first, run_unsloth


class ArmsDiffer(RuntimeError):
    """Two arms trained different rows: their tokens/s are not comparable."""


def run_arm(arm: str, quant: bool, model_path: str, rows, eval_rows, train_file: Path, args, out: Path) -> dict:
    if args.fresh:
        return run_in_fresh_process(model_path, train_file, args, quant, arm, out)
    with host_profile(args.cprofile, arm_key(arm, quant), args.out / f"{arm_key(arm, quant)}.prof"):
        if arm == UNSLOTH:  # a --fresh run's own process (argument_problem)
            return run_unsloth(model_path, rows, eval_rows, args, quant, out)
        if arm.startswith("plain"):  # plain-nodrop: without LoRA dropout; plain-flash: FlashAttention-2
            return run_plain_trl(
                model_path,
                rows,
                eval_rows,
                args,
                quant,
                out,
                dropout=0.0 if arm == "plain-nodrop" else 0.05,
                attention="flash" if arm == "plain-flash" else "",
            )
        return run_lorag(model_path, train_file, args.eval, args, quant, out, rows, variant=arm)


def write_json(path: Path | None, runs: dict, failed: dict) -> None:
    if path:  # after every run: a run cut short keeps the figures so far
        path.write_text(json.dumps({**runs, **({"_failed": failed} if failed else {})}, indent=2, default=str))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.check:
        print(json.dumps(check_report(args), indent=2, default=str))
        return
    arms = args.arms.split(",")
    quants = {"lora": [False], "qlora": [True], "both": [False, True]}[args.quant]
    if args.child and arms == [UNSLOTH]:
        try:
            import_unsloth_first()  # before this script imports transformers
        except Exception as e:  # recorded for the parent: the other arms go on
            write_json(args.json, {}, {arm_key(UNSLOTH, q): f"import unsloth: {type(e).__name__}: {e}" for q in quants})
            raise
    if args.fresh:  # a `timeout` or kill of this process ends the arm's process too (run_in_fresh_process)
        import signal

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import torch

    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), 989e12)
    model_path = args.model
    size = random_size(args)
    if size:
        model_path = build_random_llama(args.tokenizer, args.out / f"random-{size}", size)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    rows, left_out = fitting_rows(rows_of(args.train, args.limit), tok, args.max_len)
    eval_rows, eval_left_out = fitting_rows(rows_of(args.eval, None), tok, args.max_len)
    eval_rows = eval_rows[: args.eval_limit] if args.eval_limit else eval_rows
    print(
        f"== rows: {len(rows)} train (left out {left_out} over --max-len {args.max_len}), {len(eval_rows)} held out "
        f"(left out {eval_left_out}); {real_tokens(rows, tok):,} tokens per epoch",
        flush=True,
    )
    if not rows:
        raise SystemExit(f"no training row fits --max-len {args.max_len}")
    train_file = args.out / "train.jsonl"
    eval_file = args.out / "heldout.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)
    train_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    eval_file.write_text("".join(json.dumps(r) + "\n" for r in eval_rows))
    args.eval = eval_file  # every arm (and each fresh process) evaluates on the same fitting rows
    fpt = 0.0 if args.child else model_flops_per_token(model_path)  # MFU: the parent's (Unsloth patches models)
    if args.warmup:  # CUDA context, cuBLAS and kernel caches: paid here, not by the first measured arm
        print("== warmup", flush=True)
        run_plain_trl(model_path, rows[: args.batch * 2], eval_rows[:4], args, False, args.out / "warmup")
        # and lorag's kernels (Liger's Triton kernels compile on first use; a user pays that once per machine)
        warm = args.out / "warmup.jsonl"
        warm.write_text("".join(json.dumps(r) + "\n" for r in rows[: args.batch * 2]))
        run_lorag(model_path, warm, args.eval, args, False, args.out / "warmup-lorag", rows[: args.batch * 2])
    runs: dict[str, list[dict]] = {}
    failed: dict[str, str] = {}
    # arms alternate within each repeat, so a drift of the machine's speed reaches every arm alike
    for quant, rep, arm in [(q, n, a) for q in quants for n in range(args.repeat) for a in arms]:
        key = arm_key(arm, quant)
        print(f"== {key}" + (f" (run {rep + 1} of {args.repeat})" if args.repeat > 1 else ""), flush=True)
        try:
            r = run_arm(arm, quant, model_path, rows, eval_rows, train_file, args, args.out / key)
        except Exception as e:  # one failing arm does not lose the others' figures; the reason is kept
            import traceback

            if not isinstance(e, ArmFailed):
                traceback.print_exc()
            failed[key] = f"{type(e).__name__}: {e}" if not isinstance(e, ArmFailed) else str(e)
            print(f"== {key} FAILED: {failed[key]}", flush=True)
            write_json(args.json, runs, failed)
            continue
        if not args.child and r.get("rows_trained") != len(rows):  # its tokens/s would count rows it did not train
            raise ArmsDiffer(
                f"{key} trained {r.get('rows_trained')} rows, not the benchmark's {len(rows)} (-1: it left "
                "rows out for length): the arms' figures are not comparable"
            )
        r["mfu"] = fpt * r["tokens_per_s"] / peak
        r["mfu_step"] = step_mfu(r, fpt, peak)
        runs.setdefault(key, []).append(r)
        print(json.dumps({key: {k: v for k, v in r.items() if k != "runtime"}}, default=str), flush=True)
        write_json(args.json, runs, failed)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if not args.child:
        summarize(args, name, len(rows), fpt, runs, failed, random_size(args))


if __name__ == "__main__":
    main()
