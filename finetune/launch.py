"""`lorag train --gpus N`: one training run on N processes of this host, through the standard launchers.

`train_run` trains in this process when the recipe's `gpus` is 1 (as always), else writes the run's
settings to run_dir/launch.json and starts N copies of this module's worker: `accelerate launch`
(--multi_gpu for DDP, --use_fsdp with FSDP2 for bases that do not fit one card) on CUDA, torchrun
with gloo on CPU (accelerate launches several CPU processes only through MPI). Each worker calls
finetune.train.train_adapter, which reads its rank from the launcher's variables (finetune/distributed.py);
rank 0 alone writes the log, the adapter and result.json, and prints its progress as event lines this
process turns back into on_log calls. The caller (finetune/jobs.py) registers the adapter once, from
result.json, exactly as after a one-process run. Everything the processes print goes to run_dir/launch.log.
"""

from __future__ import annotations

import collections
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from assistant.child_env import child_env
from assistant.errors import LoragError
from finetune.config import TrainConfig

EVENT = "LORAG-EVENT "  # prefix of rank 0's stdout lines that carry an on_log entry or the run's error
SPEC_FILE = "launch.json"
LOG_FILE = "launch.log"
LogFn = Callable[[dict[str, Any]], None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_processes(cfg: TrainConfig, device: str) -> None:
    """Refuse, before anything starts, a world this machine cannot hold."""
    if cfg.gpus <= 1:
        return
    if device == "cuda":
        import torch

        have = torch.cuda.device_count()
        if have < cfg.gpus:
            raise LoragError(
                f"gpus: {cfg.gpus} processes asked for, but this machine has {have} CUDA GPU(s)",
                hint=f"use --gpus {have} or fewer (or set gpus in the recipe)",
            )
    elif device != "cpu":
        raise LoragError(
            f"gpus: {cfg.gpus}: training on several processes runs on CUDA GPUs (or CPU processes), not on {device}",
            hint="train with gpus: 1 on this machine",
        )
    if cfg.distributed == "fsdp" and device != "cuda":
        raise LoragError(
            "distributed 'fsdp' shards the base over CUDA GPUs: this machine trains on CPU",
            hint="set distributed: ddp (or gpus: 1) in the recipe",
        )


def launch_command(cfg: TrainConfig, device: str, spec_file: Path) -> list[str]:
    """The launcher's command line that starts cfg.gpus workers on spec_file."""
    n = str(cfg.gpus)
    worker = ["-m", "finetune.launch", str(spec_file)]
    if device != "cuda":  # gloo; torchrun picks a free rendezvous port itself (--standalone)
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes",
            "1",
            "--nproc_per_node",
            n,
            *worker,
        ]
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        n,
        "--num_machines",
        "1",
        "--main_process_port",
        str(_free_port()),
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    # (the trainer's own bf16 setting chooses the precision: an Accelerator's argument wins over the launcher's)
    if cfg.distributed == "fsdp":  # FSDP2, the decoder layers (the model's _no_split_modules) as shards
        cmd += [
            "--use_fsdp",
            "--fsdp_version",
            "2",
            "--fsdp_auto_wrap_policy",
            "TRANSFORMER_BASED_WRAP",
            "--fsdp_state_dict_type",
            "FULL_STATE_DICT",
            "--fsdp_cpu_ram_efficient_loading",
            "true",
            "--fsdp_reshard_after_forward",
            "true",
            "--fsdp_offload_params",
            "false",
        ]
    else:
        cmd += ["--multi_gpu"]
    return cmd + worker


def train_run(
    cfg: TrainConfig,
    *,
    model_path: str,
    train_file: Path,
    eval_file: Path | None,
    run_dir: Path,
    device: str,
    resume: bool = False,
    on_log: LogFn | None = None,
    trainer_overrides: dict[str, Any] | None = None,
) -> Any:
    """finetune.train.train_adapter's TrainResult, trained on cfg.gpus processes (in this process when 1)."""
    from finetune.train import RESULT_FILE, TrainResult, train_adapter

    if cfg.gpus <= 1:
        return train_adapter(
            cfg,
            model_path=model_path,
            train_file=train_file,
            eval_file=eval_file,
            run_dir=run_dir,
            device=device,
            resume=resume,
            on_log=on_log,
            trainer_overrides=trainer_overrides,
        )
    check_processes(cfg, device)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "config": cfg.to_dict(),
        "model_path": model_path,
        "train_file": str(train_file),
        "eval_file": str(eval_file) if eval_file else None,
        "run_dir": str(run_dir),
        "device": device,
        "resume": resume,
        "trainer_overrides": trainer_overrides or {},
    }
    try:
        (run_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    except TypeError as e:
        raise LoragError(f"trainer_overrides must be JSON values to reach {cfg.gpus} processes: {e}") from e
    (run_dir / RESULT_FILE).unlink(missing_ok=True)  # a resumed run's result comes from this launch
    error = _run_workers(launch_command(cfg, device, run_dir / SPEC_FILE), run_dir / LOG_FILE, on_log, cfg.gpus)
    if error is not None:
        raise error
    saved = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
    return TrainResult(run_dir / "adapter", saved["metrics"], saved["hyperparameters"])


def _run_workers(cmd: list[str], log_file: Path, on_log: LogFn | None, n: int) -> LoragError | None:
    """Run the launcher; rank 0's events to on_log, every line to log_file. The run's error, if it failed."""
    tail: collections.deque[str] = collections.deque(maxlen=30)
    failure: dict[str, Any] | None = None
    with (
        log_file.open("a", encoding="utf-8") as log,
        subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=child_env(PYTHONUNBUFFERED="1"),
            bufsize=1,
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if line.startswith(EVENT):
                    event = json.loads(line[len(EVENT) :])
                    if "error" in event:
                        failure = event
                    elif on_log:
                        on_log(event)
                else:
                    tail.append(line.rstrip())
            rc = proc.wait()
        except BaseException:  # Ctrl-C (the launcher gets it too) or a failing on_log: stop the workers
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    if rc == 0:
        return None
    if failure is not None:
        return LoragError(failure["error"], hint=failure.get("hint"))
    last = "\n".join(tail)
    return LoragError(
        f"training on {n} processes failed (launcher exit {rc}); the processes' last lines:\n{last}",
        hint=f"all of their output is in {log_file}",
    )


def _worker(spec_file: str) -> int:
    """One rank of a launched run (started by the launcher, never by hand)."""
    from finetune.distributed import current_world
    from finetune.train import train_adapter

    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    cfg = TrainConfig(**spec["config"])
    world = current_world(cfg.distributed)
    if spec["device"] == "cuda":
        import torch

        torch.cuda.set_device(world.local_rank)

    def emit(entry: dict[str, Any]) -> None:
        print(EVENT + json.dumps(entry, default=str), flush=True)

    try:
        train_adapter(
            cfg,
            model_path=spec["model_path"],
            train_file=Path(spec["train_file"]),
            eval_file=Path(spec["eval_file"]) if spec["eval_file"] else None,
            run_dir=Path(spec["run_dir"]),
            device=spec["device"],
            resume=spec["resume"],
            on_log=emit if world.main else None,
            trainer_overrides=spec["trainer_overrides"] or None,
        )
    except LoragError as e:  # every rank checks the same data and recipe; rank 0 says what went wrong
        if world.main:
            emit({"error": e.args[0] if e.args else str(e), "hint": e.hint})
        return 3
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
