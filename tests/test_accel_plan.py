"""finetune/accel's plan (finetune/accel/plan.py): decided once, frozen, each speed-up that is off with its
reason; `accel: off` trains with plain trl + peft; lora_dropout > 0 says what it turned off; the package
is a leaf."""

import ast
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from finetune import accel
from finetune.config import TrainConfig

ACCEL_DIR = Path(accel.__file__).parent


@pytest.fixture()
def gpu_like(monkeypatch):
    """decide() for 'cuda' on this CPU: bf16, FlashAttention varlen and FP8 GEMMs as on an H100."""
    import finetune.accel.plan as plan_mod

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(plan_mod.fp8_ops, "unsupported_reason", lambda device: None)
    monkeypatch.setattr(accel.varlen_attention, "unsupported_reason", lambda device: None)
    monkeypatch.setattr(plan_mod, "_liger_unimportable", lambda: None)


def test_the_fast_path_on_a_gpu_and_the_plan_is_frozen(gpu_like):
    plan = accel.decide(TrainConfig(domain="t"), "cuda")
    assert plan.quantization == "nf4" and plan.lora_dtype == "float32"  # bf16 LoRA weights: without quantization only
    assert accel.decide(TrainConfig(domain="t", quantization="none"), "cuda").lora_dtype == "bfloat16"
    assert (plan.batching, plan.cuda_graphs, plan.fused_lora, plan.fp8, plan.liger) == (
        "packed",
        True,
        True,
        True,
        True,
    )
    assert plan.attn_implementation == accel.varlen_attention.NAME and plan.sdpa_backend == "flash"
    assert plan.off == () and plan.note is None
    assert plan.lines() == ["acceleration: packed steps, CUDA graphs, fused LoRA, FP8 GEMMs, Liger"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.cuda_graphs = False
    assert json.loads(json.dumps(plan.record()))["batching"] == "packed"  # what a run's card keeps


def test_lora_dropout_turns_the_fast_path_off_and_the_summary_says_so(gpu_like):
    from finetune.runtime import describe_runtime

    plan = accel.decide(TrainConfig(domain="t", lora_dropout=0.05), "cuda")
    assert plan.batching == "padded" and not (plan.cuda_graphs or plan.fused_lora or plan.fp8)
    assert "lora_dropout 0" in plan.why_off("cuda_graphs") and "lora_dropout 0" in plan.why_off("fused_lora")
    assert plan.note.startswith(
        "lora_dropout 0.05 turned off the fast path (CUDA graphs, packed steps, fused LoRA, FP8 GEMMs)"
    )
    assert "set lora_dropout: 0" in plan.note and plan.lines()[-1] == plan.note
    line = describe_runtime(
        {"cuda_graphs": plan.why_off("cuda_graphs")},
        {"runtime": {**plan.record(), "batch_rows": 16, "micro_batch": 16}},
    )
    assert line.endswith(plan.note) and "CUDA graphs off" not in line  # said once, plainly
    assert accel.decide(TrainConfig(domain="t", lora_dropout=0.05), "cpu").note is None  # a CPU run has no fast path


def test_accel_off_plans_plain_trl_and_peft(gpu_like):
    plan = accel.decide(TrainConfig(domain="t", accel=False), "cuda")
    assert not (plan.accel or plan.cuda_graphs or plan.fused_lora or plan.fp8 or plan.liger or plan.expandable_segments)
    assert plan.batching == "padded" and plan.lora_dtype == "float32" and plan.attn_implementation == "sdpa"
    assert plan.lines() == ["acceleration off (accel: off in the recipe): plain trl + peft"]
    assert accel.trainer_class(object, plan) is object  # trl's own trainer
    with pytest.raises(accel.PlanError, match="batching 'packed' is lorag's acceleration"):
        accel.decide(TrainConfig(domain="t", accel=False, batching="packed"), "cuda")


def test_a_recipe_says_accel_off_in_yaml(tmp_path):
    from finetune.config import load_train_config

    f = tmp_path / "t.yaml"
    f.write_text("domain: t\naccel: off\n")  # YAML's off is false
    assert load_train_config(f, domain="t").accel is False


def test_accel_off_trains_with_trls_own_trainer(tiny_lm, tmp_path, monkeypatch):
    import finetune.accel.trainer as trainer_mod
    from finetune.runtime import describe_runtime
    from finetune.train import train_adapter

    def refuse(*a, **k):
        raise AssertionError("lorag's trainer built for a plain plan")

    monkeypatch.setattr(trainer_mod, "lorag_trainer", refuse)
    rows = tmp_path / "train.jsonl"
    rows.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": [{"role": "user", "content": f"Question {i} about the lanyard?"}],
                    "completion": [{"role": "assistant", "content": "Red, always."}],
                }
            )
            + "\n"
            for i in range(8)
        )
    )
    cfg = TrainConfig(
        domain="toy",
        accel=False,
        max_steps=3,
        batch_size=4,
        learning_rate=5e-3,
        lora_r=4,
        lora_alpha=8,
        max_seq_length=256,
        logging_steps=1,
        save_steps=100,
    )
    res = train_adapter(
        cfg, model_path=str(tiny_lm), train_file=rows, eval_file=None, run_dir=tmp_path / "run", device="cpu"
    )
    rt = res.hyperparameters["runtime"]
    assert rt["accel"] is False and res.metrics["fused_lora_layers"] == 0 and res.metrics["steps"] == 3
    assert rt["batch_rows"] == 2 and rt["grad_accum"] == 2  # CPU passes of 2 rows as gradient accumulation
    assert res.metrics["tokens_seen"] > 0 and (res.adapter_dir / "adapter_model.safetensors").is_file()
    assert "acceleration off (accel: off in the recipe): plain trl + peft" in describe_runtime(
        res.metrics, res.hyperparameters
    )


def test_the_accel_package_imports_nothing_from_the_rest_of_the_project():
    for path in sorted(ACCEL_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top not in ("finetune", "assistant", "ingest", "eval", "ui"), f"{path.name} imports {name}"


def test_the_final_evaluation_runs_before_the_plan_is_undone(tmp_path):
    """When training ends without an evaluation at its last step, the held-out evaluation after it runs on the
    model as trained (the plan's layers, whose evaluation runs the MLP over token tiles), then the plan is undone;
    and one scheduled at the last step is reused, not run again."""
    from types import SimpleNamespace

    from finetune.config import TrainConfig
    from finetune.train import _Data, _run_phase, _Setup

    order: list[str] = []

    class Trainer:
        state = SimpleNamespace(global_step=0)

        def train(self, resume_from_checkpoint=None):
            self.state.global_step = 3
            return "trained"

        def evaluate(self):
            order.append(f"evaluate@{self.state.global_step}")
            return {"eval_loss": 1.5}

    plan = accel.decide(TrainConfig(domain="t"), "cpu")
    data = _Data(rows=[{}], eval_rows=[{}], too_long=0)
    for history, want, loss in (
        ([{"step": 2, "eval_loss": 2.0}], ["evaluate@3", "undone"], 1.5),
        ([{"step": 3, "eval_loss": 2.0}], ["undone"], 2.0),
    ):
        order.clear()
        applied = accel.Applied(plan, _undo=[lambda: order.append("undone")])
        setup = _Setup(Trainer(), applied, micro=1, rows_per_pass=0, accum=1, total_steps=3, history=history)
        ran = _run_phase(TrainConfig(domain="t"), plan, setup, data, run_dir=tmp_path, device="cpu", resume=False)
        assert order == want and ran.final_eval == {"eval_loss": loss} and ran.output == "trained"
