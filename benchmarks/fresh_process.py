"""`--fresh` (benchmarks/bench_train_gpu.py): each arm's run by the script in a new Python process, as a user
runs a training script: the child's command line (the parent's settings, one arm, the rows already chosen),
its environment (the Unsloth site for the unsloth arm), its timeout, and its figures read back."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# benchmarks/, the script's folder; none of them imports transformers, trl or peft (the Unsloth arm's rule)
from train_args import arm_key
from train_report import host_line
from unsloth_arm import UNSLOTH, unsloth_env

SCRIPT = str(Path(__file__).with_name("bench_train_gpu.py"))  # what each fresh process runs


class ArmFailed(RuntimeError):
    """An arm could not run (the reason is recorded with the figures; the other arms go on)."""


def child_command(model_path: str, train_file: Path, args, quant: bool, arm: str, out: Path, res: Path) -> list[str]:
    """The command line of one arm's fresh process: the script (SCRIPT) with the run's settings, the one arm, and
    the rows already chosen (train_file; args.eval is the fitting held-out rows' file by then)."""
    return [
        sys.executable,
        SCRIPT,
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
    """One arm's run by the script in a new Python process: its figures from the child's JSON. The
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
