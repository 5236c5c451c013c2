"""The command line of benchmarks/bench_train_gpu.py: its options, what it refuses before anything is loaded,
and the names of the arms and of their runs."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

# benchmarks/, the script's folder; none of them imports transformers, trl or peft (the Unsloth arm's rule)
from train_arms import VARIANTS
from unsloth_arm import UNSLOTH


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
