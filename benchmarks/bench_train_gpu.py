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
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from memory_trace import memory_trace_report, memory_trace_start, memory_trace_stop

# benchmarks/, the script's folder; none of them imports transformers, trl or peft (the Unsloth arm's rule)
from random_llama import RANDOM_LLAMAS, build_random_llama, random_llama_config
from train_arms import VARIANTS, module_constants
from train_profile import peak_gb, step_profiler, step_timer
from train_report import host_line, step_mfu, summarize
from unsloth_arm import UNSLOTH, import_unsloth_first, unsloth_env, unsloth_trainer

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12}  # dense bf16 tensor-core peak (SXM)


def rows_of(path: Path, limit: int | None) -> list[dict]:
    rows = [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]
    return rows[:limit] if limit else rows


def row_tokens(row: dict, tokenizer) -> int:
    ids = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def fitting_rows(rows: list[dict], tokenizer, max_len: int) -> tuple[list[dict], int]:
    """The rows whose whole text fits max_len tokens (trained by every arm, uncut), and how many do not."""
    kept = [r for r in rows if row_tokens(r, tokenizer) <= max_len]
    return kept, len(rows) - len(kept)


def real_tokens(rows: list[dict], tokenizer) -> int:
    """The trained rows' tokens (each fits max_len: fitting_rows)."""
    return sum(row_tokens(r, tokenizer) for r in rows)


class ArmsDiffer(RuntimeError):
    """Two arms trained different rows: their tokens/s are not comparable."""


def counted_parameters(model) -> int:
    """N of the MFU: every weight but the input embeddings and LoRA's, plus the output head once (an
    untied head is a parameter of its own; a tied one is the embedding's, and still a matmul per token)."""
    cfg = model.config
    n = sum(p.numel() for name, p in model.named_parameters() if "embed" not in name and "lora" not in name)
    if getattr(cfg, "tie_word_embeddings", False):
        n += cfg.vocab_size * cfg.hidden_size
    return n


def model_flops_per_token(model_path: str) -> float:
    """flops_per_token of the model at model_path, from its config (a meta-device model: no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        return flops_per_token(AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_path)))


def flops_per_token(model) -> float:
    """6·N for the matmuls (forward + backward; the standard MFU convention); attention's own FLOPs
    and recomputation are not counted."""
    return 6 * counted_parameters(model)


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
    out = _timed(trainer, tok, rows, args, attention)
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
        domain="bench",
        quantization="nf4" if quant else "none",
        lora_r=16,
        lora_alpha=32,
        epochs=args.epochs,
        learning_rate=lr,
        batch_size=batch,
        max_seq_length=args.max_len,
        save_steps=10**6,
        logging_steps=10,
        eval_fraction_steps=1.0,
        warmup_ratio=0.0,
        lr_scheduler="linear",
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


def _timed(trainer, tok, rows, args, attention: str = "") -> dict:
    import torch

    cuda = torch.cuda.is_available()
    backend = contextlib.nullcontext()  # torch's own choice, as plain trl and Unsloth leave it
    if attention:
        from finetune.accel.layers import sdpa_backend

        backend = sdpa_backend(attention, "cuda" if cuda else "cpu")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with backend:
        trainer.train()
    if cuda:
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    peak, reserved = peak_gb()  # training only, as lorag's figures
    ev = trainer.evaluate()
    n_tok = real_tokens(rows, tok) * args.epochs
    return {
        "seconds": secs,
        "tokens": n_tok,
        "tokens_per_s": n_tok / secs,
        "peak_gb": peak,
        "reserved_gb": reserved,
        "eval_loss": ev["eval_loss"],
    }


@contextlib.contextmanager
def host_profile(on: bool, key: str, dump: Path | None = None):
    """cProfile over one arm's run (model load included): its 30 costliest calls by cumulative time and
    the 20 by own time; the whole profile into `dump` (pstats format) when given."""
    if not on:
        yield
        return
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        print(f"-- cProfile of {key}, by cumulative time:", flush=True)
        stats = pstats.Stats(prof, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
        if dump is not None:
            dump.parent.mkdir(parents=True, exist_ok=True)
            stats.dump_stats(dump)


class ArmFailed(RuntimeError):
    """An arm could not run (the reason is recorded with the figures; the other arms go on)."""


def run_unsloth(model_path: str, rows, eval_rows, args, quant: bool, out: Path) -> dict:
    """The Unsloth arm (benchmarks/unsloth_arm.py), in this process: it must have imported unsloth first."""
    from transformers import AutoTokenizer

    trainer, chosen = unsloth_trainer(model_path, rows, eval_rows, args, quant, out)
    print(f"-- unsloth: {json.dumps(chosen)}", flush=True)
    timer = step_timer()
    trainer.add_callback(timer)
    if args.profile:
        trainer.add_callback(step_profiler(args.profile_step))
    tok = AutoTokenizer.from_pretrained(model_path)  # the tokens counted as for every arm
    res = _timed(trainer, tok, rows, args)
    return {
        **res,
        "steps": timer.summary(),
        "optim": chosen["optim"],
        "unsloth": chosen,
        "optimizer_steps": int(trainer.state.global_step),
        "rows_trained": len(trainer.train_dataset),
    }


def child_command(model_path: str, train_file: Path, args, quant: bool, arm: str, out: Path, res: Path) -> list[str]:
    """The command line of one arm's fresh process: this script with the run's settings, the one arm, and
    the rows already chosen (train_file; args.eval is the fitting held-out rows' file by then)."""
    return [
        sys.executable,
        __file__,
        "--model",
        model_path,
        "--train",
        str(train_file),
        "--eval",
        str(args.eval),
        "--epochs",
        str(args.epochs),
        "--batch",
        str(args.batch),
        "--lr",
        str(args.lr),
        "--max-len",
        str(args.max_len),
        "--quant",
        "qlora" if quant else "lora",
        "--arms",
        arm,
        "--out",
        str(out / "run"),
        "--json",
        str(res),
        "--child",
        *(["--cprofile"] if args.cprofile else []),
        *(["--memory-trace"] if args.memory_trace else []),
        *(["--profile", "--profile-step", str(args.profile_step)] if args.profile else []),
    ]


def run_in_fresh_process(model_path: str, train_file: Path, args, quant: bool, arm: str, out: Path) -> dict:
    """One arm's run by this script in a new Python process: its figures from the child's JSON. The
    Unsloth arm's process gets the Unsloth site first on its PYTHONPATH (unsloth_arm.unsloth_env)."""
    import signal
    import subprocess

    out.mkdir(parents=True, exist_ok=True)
    res = out / "fresh.json"
    res.unlink(missing_ok=True)
    key = arm_key(arm, quant)
    print(f"== {key}: {host_line()}", flush=True)
    cmd = child_command(model_path, train_file, args, quant, arm, out, res)
    env = unsloth_env(dict(os.environ), args.unsloth_site, args.out) if arm == UNSLOTH else None
    proc = subprocess.Popen(cmd, env=env, process_group=0)  # its own group, so its workers end with it
    try:
        proc.wait(timeout=args.arm_timeout)
    except subprocess.TimeoutExpired:
        raise ArmFailed(f"no figures within --arm-timeout {args.arm_timeout:g} s (the process was ended)") from None
    finally:
        if proc.poll() is None:  # timed out, or this process is being stopped (SIGTERM: main)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    data = json.loads(res.read_text()) if res.exists() else {}
    if key in data:
        return data[key][0]
    reason = data.get("_failed", {}).get(key)
    raise ArmFailed(reason or f"its process exited with code {proc.returncode} and wrote no figures (output above)")


def arm_key(arm: str, quant: bool) -> str:
    return f"{arm}-{'qlora' if quant else 'lora'}"


PLAIN_ARMS = ("plain", "plain-nodrop", "plain-flash")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="HF folder of the model (SmolLM2-135M-Instruct).")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--random-1b", action="store_true", help="A 1B-class Llama with random weights instead.")
    size.add_argument(
        "--random-8b", action="store_true", help="Llama-3.1-8B shapes with random weights instead (16 GB of bf16)."
    )
    ap.add_argument("--tokenizer", help="Tokenizer folder for --random-1b / --random-8b (their vocabulary).")
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None, help="First N training rows.")
    ap.add_argument("--eval-limit", type=int, default=None, help="First N held-out rows that fit (default all).")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--max-len", type=int, default=1024)
    ap.add_argument("--quant", choices=["lora", "qlora", "both"], default="both")
    ap.add_argument(
        "--arms",
        default="plain,lorag",
        help=f"{', '.join(PLAIN_ARMS)}, {UNSLOTH} (with --fresh) and any of {', '.join(VARIANTS)}",
    )
    ap.add_argument(
        "--unsloth-site",
        type=Path,
        default=None,
        help="A `pip install --target` folder of Unsloth and its pins, first on the unsloth arm's PYTHONPATH "
        "(the other arms keep this environment's trl and datasets).",
    )
    ap.add_argument("--warmup", action="store_true", help="A short untimed run first.")
    ap.add_argument(
        "--repeat", type=int, default=1, help="Run the arms N times, alternating; report medians and every run's ratio."
    )
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="Each run in a process of its own, as a user runs a training script "
        "(nothing cached from an earlier run: cuDNN plans, captured shapes); --warmup runs in this one.",
    )
    ap.add_argument(
        "--arm-timeout",
        type=float,
        default=None,
        help="With --fresh: seconds one run's process may take (load, train, evaluate) before it is ended and "
        "recorded as failed.",
    )
    ap.add_argument(
        "--cprofile",
        action="store_true",
        help="cProfile each run (host side: imports, kernel loads, captures) "
        "and print its 30 costliest calls by cumulative time; with --fresh, in each run's own process.",
    )
    ap.add_argument(
        "--memory-trace",
        action="store_true",
        help="Record the allocator's history in lorag's arms and print, at train end, which code held the "
        "blocks live when the reserved memory peaked (slower steps while it records).",
    )
    ap.add_argument(
        "--profile", action="store_true", help="torch.profiler over 3 steps of each arm (timings include it)."
    )
    ap.add_argument(
        "--profile-step",
        type=int,
        default=3,
        help="The first profiled step (after every shape was captured: steady state).",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="Check the arguments, print the model's shapes, parameters and FLOPs per token as JSON (config "
        "only, nothing loaded or built) and exit.",
    )
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_train"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # a --fresh run's own process
    return ap


def argument_problem(args) -> str | None:
    """What is wrong with the arguments, before anything is loaded; None when nothing is."""
    arms = args.arms.split(",")
    known = (*PLAIN_ARMS, UNSLOTH, *VARIANTS)
    unknown = [a for a in arms if a not in known]
    if unknown:
        return f"--arms: unknown arm(s) {', '.join(unknown)}; known: {', '.join(known)}"
    size = random_size(args)
    if size and not args.tokenizer:
        return f"--random-{size} needs --tokenizer FOLDER (the vocabulary of the random model)"
    if not size and not args.model:
        return "give --model FOLDER, --random-1b or --random-8b"
    if UNSLOTH in arms and not (args.fresh or args.child):
        return (
            "the unsloth arm runs only with --fresh: Unsloth must be imported before transformers, trl and "
            "peft and patches them for the whole process, so it cannot share a process with other arms"
        )
    if args.arm_timeout is not None and not args.fresh:
        return "--arm-timeout applies to --fresh runs (each in a process of its own)"
    if args.unsloth_site is not None and not (args.unsloth_site / "unsloth" / "__init__.py").is_file():
        return (
            f"--unsloth-site {args.unsloth_site}: no unsloth package in that folder "
            "(pip install --no-deps --target FOLDER unsloth unsloth_zoo trl==1.15.0 datasets==4.8.5 ...)"
        )
    if UNSLOTH in arms and args.unsloth_site is None and importlib.util.find_spec("unsloth") is None:
        return "the unsloth arm needs Unsloth: install it here or give --unsloth-site FOLDER"
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = build_parser()
    args = ap.parse_args(argv)
    problem = argument_problem(args)
    if problem:
        ap.error(problem)
    return args


def random_size(args) -> str | None:
    return "1b" if args.random_1b else "8b" if args.random_8b else None


def check_report(args) -> dict:
    """The model's shapes and MFU count from its config alone (a meta-device model: no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    size = random_size(args)
    if size:
        cfg = random_llama_config(AutoTokenizer.from_pretrained(args.tokenizer), size)
    else:
        cfg = AutoConfig.from_pretrained(args.model)
    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(cfg)
    keys = (*RANDOM_LLAMAS["8b"], "vocab_size", "rope_parameters", "head_dim")
    shown = {k: getattr(cfg, k) for k in keys if hasattr(cfg, k)}
    return {
        "model": f"random-{size}" if size else args.model,
        "config": shown,
        "parameters": sum(p.numel() for p in meta.parameters()),
        "counted_parameters": counted_parameters(meta),
        "flops_per_token": flops_per_token(meta),
        "arms": args.arms.split(","),
    }


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
