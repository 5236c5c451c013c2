"""Training on several processes (finetune/launch.py, finetune/distributed.py), on CPU: torchrun starts two
gloo ranks of the tiny random model. The same global batch gives the same adapter as one process; the run
registers once with its world size on the card; resume continues from the two ranks' checkpoint. Plus the
checks that need no processes: the recipe keys, the acceleration layer off with its reason, the launch
commands for CUDA (DDP and FSDP, which cannot run here) and the refusals."""

import json
import sys

import pytest
import torch
from safetensors.torch import load_file

from assistant.errors import ConfigError, LoragError
from finetune.config import TrainConfig
from finetune.distributed import World, apply_world, world_record
from finetune.launch import _run_workers, check_processes, launch_command, train_run
from finetune.runtime import describe_runtime
from tests.test_accel_plan import gpu_like  # noqa: F401  (a fixture)
from tests.test_finetune_lora import cfg, write_rows

# the same global batch of 4 rows in the same order: length grouping groups per process batch, so it is off here
SAME = dict(group_by_length=False, batch_size=4)


def adapter(folder):
    return load_file(folder / "adapter_model.safetensors")


def assert_same_adapter(a, b):
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=2e-5, rtol=1e-4, msg=k)


class Models:
    def __init__(self, path):
        self.path = path

    def resolve(self, spec):
        return str(self.path)


@pytest.mark.slow  # two runs, one a launch of two processes: 115 s at load average ~15 on 2 cores
def test_two_gloo_processes_train_the_adapter_of_one_and_register_it_once(settings, store, tiny_lm, tmp_path):
    from assistant.registry import Registry
    from finetune.jobs import dataset_dir, train_domain

    data = dataset_dir(settings, "toy")
    data.mkdir(parents=True)
    rows = write_rows(data / "train.jsonl")
    write_rows(data / "heldout_examples.jsonl", n_repeat=1)
    one = train_run(
        cfg(max_steps=4, save_steps=10, logging_steps=3, **SAME),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=data / "heldout_examples.jsonl",
        run_dir=tmp_path / "one",
        device="cpu",
    )
    registry = Registry(settings.paths.data_dir / "adapters")
    events = []
    card = train_domain(
        cfg(max_steps=4, save_steps=10, logging_steps=3, gpus=2, **SAME),
        settings=settings,
        store=store,
        registry=registry,
        model_cache=Models(tiny_lm),
        on_log=events.append,
    )

    assert_same_adapter(adapter(one.adapter_dir), adapter(registry.folder(card)))
    m = card.metrics
    assert (
        m["world_size"] == 2
        and card.hyperparameters["runtime"]["world_size"] == 2
        and card.hyperparameters["gpus"] == 2
    )
    assert m["train_loss"] == pytest.approx(one.metrics["train_loss"], rel=1e-5)
    assert m["eval_loss"] == pytest.approx(one.metrics["eval_loss"], rel=1e-5)
    assert m["tokens_seen"] == one.metrics["tokens_seen"] > 0  # both ranks' tokens, not rank 0's
    assert [c.name for c in registry.versions("toy")] == [card.name] == ["toy-v1"]
    run = settings.paths.data_dir / "runs" / "toy" / "v1"
    assert (run / "DONE").is_file() and (run / "launch.log").is_file()
    logged = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    # rank 0 writes each logged step once (the first, then every logging_steps); the last step is logged too, so
    # train_loss is every process's mean
    assert [s for s, _ in one.metrics["loss_curve"]] == [1, 3]
    assert [e["step"] for e in logged if "loss" in e] == [1, 3, 4]
    # rank 0's progress comes back through the launcher: the stages, then every logged step
    assert {"stage": "training"} in events and [e["step"] for e in events if "loss" in e] == [1, 3, 4]
    line = describe_runtime(m, card.hyperparameters)
    assert "padded batches of 2 per process; 2 processes (DDP), global batch 4" in line


@pytest.mark.slow  # three runs, two of them launches of two processes (3 min on a loaded 2-core machine)
def test_two_processes_resume_from_their_checkpoint(tiny_lm, tmp_path):
    rows = write_rows(tmp_path / "train.jsonl")
    run = tmp_path / "run"
    flat = dict(SAME, lr_scheduler="constant", warmup_ratio=0.0)  # steps 1-2 the same in a 2- and a 4-step run
    straight = train_run(
        cfg(max_steps=4, **flat),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=tmp_path / "straight",
        device="cpu",
    )
    train_run(
        cfg(max_steps=2, save_steps=2, gpus=2, **flat),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=run,
        device="cpu",
    )
    assert (run / "checkpoint-2").is_dir()
    r = train_run(
        cfg(max_steps=4, save_steps=2, gpus=2, **flat),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=run,
        device="cpu",
        resume=True,
    )
    assert r.metrics["resumed_from"].endswith("checkpoint-2") and r.metrics["steps"] == 4
    assert_same_adapter(adapter(straight.adapter_dir), adapter(r.adapter_dir))


def fake_launcher(tmp_path, body):
    script = tmp_path / "fake_launcher.py"
    script.write_text(f"import sys\nfrom finetune.launch import EVENT\n{body}\n")
    return [sys.executable, str(script)]


def test_the_launcher_passes_rank_0s_events_and_its_error_on(tmp_path):
    cmd = fake_launcher(
        tmp_path,
        """print("torch noise"); print(EVENT + '{"stage": "training"}')
print(EVENT + '{"step": 1, "max_steps": 2, "loss": 1.5}')
print(EVENT + '{"error": "train.jsonl: no row fits max_seq_length (64 tokens)", "hint": "raise max_seq_length"}')
sys.exit(3)""",
    )
    events = []
    err = _run_workers(cmd, tmp_path / "launch.log", events.append, 2)
    assert events == [{"stage": "training"}, {"step": 1, "max_steps": 2, "loss": 1.5}]
    assert (
        isinstance(err, LoragError)
        and str(err) == "train.jsonl: no row fits max_seq_length (64 tokens)\nhint: raise max_seq_length"
    )
    assert "torch noise" in (tmp_path / "launch.log").read_text()


def test_a_crash_on_the_ranks_is_reported_with_their_last_lines(tmp_path):
    cmd = fake_launcher(tmp_path, "print('RuntimeError: gloo connection refused', flush=True); sys.exit(1)")
    err = _run_workers(cmd, tmp_path / "launch.log", None, 2)
    assert "training on 2 processes failed (launcher exit 1)" in str(err) and "gloo connection refused" in str(err)
    assert str(tmp_path / "launch.log") in err.hint
    assert _run_workers(fake_launcher(tmp_path, "print('ok')"), tmp_path / "launch.log", None, 2) is None


def test_recipe_keys_for_several_processes():
    assert TrainConfig(domain="toy", gpus=4, batch_size=8).gpus == 4
    with pytest.raises(ConfigError, match="batch_size: must divide evenly over gpus"):
        TrainConfig(domain="toy", gpus=3, batch_size=8)
    with pytest.raises(ConfigError, match="gpus: a whole number"):
        TrainConfig(domain="toy", gpus=0)
    with pytest.raises(ConfigError, match="distributed: one of ddp, fsdp"):
        TrainConfig(domain="toy", distributed="zero3")


def test_the_acceleration_layer_is_off_under_several_processes_with_its_reason(gpu_like):  # noqa: F811
    from finetune import accel

    c = TrainConfig(domain="toy", gpus=2, batch_size=4)
    cuda_plan = accel.decide(c, "cuda")  # an H100's plan: packed steps, CUDA graphs, fused LoRA, FP8 GEMMs
    assert (cuda_plan.batching, cuda_plan.cuda_graphs, cuda_plan.fused_lora, cuda_plan.fp8) == (
        "packed",
        True,
        True,
        True,
    )
    one = apply_world(cuda_plan, c, World())
    assert one is cuda_plan and world_record(one, World()) == {"world_size": 1}
    two = apply_world(cuda_plan, c, World(2, 1, 1))
    assert two.batching == "padded" and not two.cuda_graphs and not two.fp8 and not two.fused_lora
    assert two.attn_implementation == "sdpa" and two.varlen_kernel == ""
    rec = {**two.record(), **world_record(two, World(2, 1, 1))}
    assert rec["accel_off"] == ["packed steps", "CUDA graphs", "fused LoRA", "FP8 GEMMs"]
    assert rec["cuda_graphs_off"] == rec["fp8_off"] == rec["packed_off"] == rec["accel_off_reason"]
    assert "not verified under 2-process DDP" in rec["accel_off_reason"]
    line = describe_runtime(
        {}, {"batch_size": 4, "runtime": {**rec, "device": "cuda", "batch_rows": 2, "micro_batch": 2}}
    )
    assert (
        "2 processes (DDP), global batch 4: packed steps, CUDA graphs, fused LoRA, FP8 GEMMs off (not verified" in line
    )
    assert (
        "CUDA graphs off" not in line and "FP8 GEMMs off (not" not in line.split(": packed steps")[1].split(")", 1)[1]
    )
    with pytest.raises(LoragError, match="batching 'packed' is not available on 2 processes"):
        apply_world(cuda_plan, TrainConfig(domain="toy", gpus=2, batch_size=4, batching="packed"), World(2))


def test_launch_commands(tmp_path):
    spec = tmp_path / "launch.json"
    cpu = launch_command(TrainConfig(domain="toy", gpus=2, batch_size=4), "cpu", spec)
    assert cpu[1:3] == ["-m", "torch.distributed.run"] and cpu[cpu.index("--nproc_per_node") + 1] == "2"
    assert cpu[-3:] == ["-m", "finetune.launch", str(spec)]
    ddp = launch_command(TrainConfig(domain="toy", gpus=8), "cuda", spec)
    assert ddp[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in ddp and "--use_fsdp" not in ddp
    assert ddp[ddp.index("--num_processes") + 1] == "8"
    fsdp = launch_command(TrainConfig(domain="toy", gpus=4, distributed="fsdp"), "cuda", spec)
    assert "--use_fsdp" in fsdp and fsdp[fsdp.index("--fsdp_version") + 1] == "2" and "--multi_gpu" not in fsdp


def test_processes_this_machine_cannot_hold_are_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(LoragError, match="gpus: 2 processes asked for, but this machine has 1 CUDA GPU"):
        check_processes(TrainConfig(domain="toy", gpus=2, batch_size=4), "cuda")
    with pytest.raises(LoragError, match="'fsdp' shards the base over CUDA GPUs"):
        check_processes(TrainConfig(domain="toy", gpus=2, batch_size=4, distributed="fsdp"), "cpu")
    with pytest.raises(LoragError, match="not on mps"):
        check_processes(TrainConfig(domain="toy", gpus=2, batch_size=4), "mps")
    check_processes(TrainConfig(domain="toy", gpus=2, batch_size=4), "cpu")  # gloo processes


# On a machine with two CUDA GPUs (not run yet: no multi-GPU machine so far). The one-GPU run turns the
# acceleration layer off as the two-GPU run does, and both keep fp32 LoRA weights, so the adapters compare.
PLAIN_CUDA = dict(SAME, batching="padded", cuda_graphs=False, fused_lora=False, fp8_matmuls=False, lora_dtype="float32")


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
@pytest.mark.parametrize("quantization, distributed", [("none", "ddp"), ("nf4", "ddp"), ("none", "fsdp")])
def test_two_gpus_train_the_adapter_of_one(tiny_lm, tmp_path, quantization, distributed):
    rows = write_rows(tmp_path / "train.jsonl")
    kw = dict(max_steps=4, logging_steps=2, quantization=quantization, **PLAIN_CUDA)
    one = train_run(
        cfg(**kw), model_path=str(tiny_lm), train_file=rows, eval_file=rows, run_dir=tmp_path / "one", device="cuda"
    )
    two = train_run(
        cfg(gpus=2, distributed=distributed, **kw),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=rows,
        run_dir=tmp_path / "two",
        device="cuda",
    )
    a, b = adapter(one.adapter_dir), adapter(two.adapter_dir)
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k].float(), b[k].float(), atol=1e-3, rtol=1e-2, msg=k)
    assert two.metrics["world_size"] == 2 and len(two.metrics["peak_gpu_mem_gb_per_rank"]) == 2
    assert two.metrics["train_loss"] == pytest.approx(one.metrics["train_loss"], rel=1e-3)


def test_a_process_count_that_does_not_divide_the_batch_is_refused(tmp_path, monkeypatch):
    """torchrun started by hand with another count than the recipe's gpus: refused before anything loads."""
    from finetune.train import train_adapter

    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(LoragError, match="batch_size 8 does not divide over 3 processes"):
        train_adapter(
            TrainConfig(domain="toy", batch_size=8),
            model_path=str(tmp_path / "none"),
            train_file=tmp_path / "train.jsonl",
            eval_file=None,
            run_dir=tmp_path / "run",
            device="cpu",
        )
