"""Packed steps (finetune/accel/packing.py, finetune/accel/varlen_attention.py): every row once per epoch in steps of
one fixed size, each row attending only to itself, the packed loss and gradients equal to the rows
trained padded, the graphed layers replaying one shape, and a packed training run end to end.

On this CPU the attention runs each row through SDPA apart (the reference the CUDA varlen kernel must
equal); FlashAttention's varlen kernel itself runs in benchmarks/bench_train_gpu.py on a GPU."""

import dataclasses
import json
import random

import pytest
import torch

from finetune.accel.graphs import LayerGraphs
from finetune.accel.layers import decoder_layers
from finetune.accel.packing import PackedCollator, PackedSteps, best_fit_decreasing, step_capacity


def test_steps_hold_every_row_once_within_capacity_and_as_many_steps_as_batches():
    rng = random.Random(3)
    lengths = [rng.randint(40, 300) for _ in range(101)]
    cap = step_capacity(lengths, rows_per_step=8, multiple=16)
    assert cap % 16 == 0 and cap >= max(lengths)
    assert len(best_fit_decreasing(lengths, cap)) == 13  # ceil(101 / 8): the padded batches' step count
    assert len(best_fit_decreasing(lengths, cap - 16)) > 13  # the smallest such capacity
    steps = PackedSteps(lengths, cap, max_len=300, seed=0, epochs=3)
    epochs = [list(steps) for _ in range(3)]
    for bins in epochs:
        assert len(bins) == len(steps) == 13
        assert sorted(i for b in bins for i in b) == list(range(101))
        assert all(sum(lengths[i] for i in b) <= cap for b in bins)
        pads = [cap - sum(lengths[i] for i in b) for b in bins]
        assert all(len(b) + -(-p // 300) <= steps.slots for b, p in zip(bins, pads))
    assert epochs[0] != epochs[1]  # a new order every epoch
    steps.set_epoch(1)  # the trainer's epoch (a resumed run) picks that epoch's packing
    assert list(steps) == epochs[1]
    again = PackedSteps(lengths, cap, max_len=300, seed=0, epochs=3)
    assert [list(again) for _ in range(3)] == epochs  # deterministic by seed
    with pytest.raises(ValueError, match="row 0 has 500 tokens"):
        best_fit_decreasing([500], 400)


def test_collator_ends_rows_to_end_then_pad_runs_and_marks_each_rows_start():
    ex = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8, 9], "labels": [-100, 9]}]
    out = PackedCollator(pad_id=0, max_len=4, capacity=12, slots=6)(ex)
    assert out["input_ids"].tolist() == [[5, 6, 7, 8, 9, 0, 0, 0, 0, 0, 0, 0]]
    assert out["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3, 0, 1, 2]]  # pads: runs of at most max_len
    assert out["labels"].tolist() == [[-100, 6, 7, -100, 9] + [-100] * 7]
    assert out["cu_seq_lens_q"].tolist() == [0, 3, 5, 9, 12, 12, 12]  # unused slots: empty sequences at the end
    assert out["cu_seq_lens_q"].dtype == torch.int32 and out["real_tokens"] == 5 and out["max_length_q"] == 4
    unfixed = PackedCollator(pad_id=0, max_len=4, multiple=8)(ex)  # evaluation: any size, rounded up
    assert unfixed["input_ids"].shape == (1, 8) and unfixed["cu_seq_lens_q"].tolist() == [0, 3, 5, 8]
    with pytest.raises(ValueError, match="do not fit a step of 4"):
        PackedCollator(pad_id=0, max_len=4, capacity=4, slots=6)(ex)


def _rows(lengths, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, 200, (n,), generator=g) for n in lengths]


def _packed(rows, capacity, slots, max_len):
    return PackedCollator(0, max_len, capacity, slots)([{"input_ids": r.tolist(), "labels": r.tolist()} for r in rows])


def _padded(rows):
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, 0] = -100  # as the packed rows: a row's first token is no target
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@pytest.fixture()
def varlen_lora_model(tiny_lm):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from finetune.accel import varlen_attention

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_lm, attn_implementation=varlen_attention.register())
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False)
    )
    model.train()
    return model


def _grads(model, batch):
    model.zero_grad(set_to_none=True)
    batch = {k: v for k, v in batch.items() if k != "real_tokens"}
    out = model(**batch)
    out.loss.backward()
    return out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_packed_rows_train_as_the_same_rows_padded(varlen_lora_model):
    """Each row attends only to itself: the packed step's logits, loss and LoRA gradients are the padded
    batch's (which attends under a mask). Trailing pad runs and empty slots change nothing."""
    model = varlen_lora_model
    rows = _rows([9, 5, 12])
    packed = _packed(rows, capacity=40, slots=6, max_len=12)
    with torch.no_grad():
        flat = model(**{k: v for k, v in packed.items() if k != "real_tokens"}).logits[0]
        padded = model(**_padded(rows)).logits
    at = 0
    for i, r in enumerate(rows):
        assert torch.allclose(flat[at : at + len(r)], padded[i, : len(r)], atol=1e-5), i
        at += len(r)
    loss_p, grads_p = _grads(model, packed)
    loss_d, grads_d = _grads(model, _padded(rows))
    assert torch.allclose(loss_p, loss_d, atol=1e-6)
    for name, g in grads_d.items():
        assert torch.allclose(grads_p[name], g, atol=1e-5, rtol=1e-4), name


def test_graphed_layers_replay_one_shape_for_packed_steps(varlen_lora_model):
    """Packed steps of one size with different rows: one shape, its offsets copied in each step, and the
    gradients of the same steps run eagerly under checkpointing."""
    model = varlen_lora_model
    steps = [
        _packed(_rows(n, seed=s), capacity=32, slots=5, max_len=16)
        for n, s in (([9, 5, 12], 1), ([16, 3], 2), ([7, 7, 7, 7], 3))
    ]
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    reference = [_grads(model, b) for b in steps]
    graphs = LayerGraphs(decoder_layers(model), max_tokens=32, capture=False, varlen_max=16).install()
    got = [_grads(model, b) for b in steps]
    summary = graphs.summary()
    graphs.uninstall()
    assert summary["failure"] is None and summary["eager"] == 0 and summary["shapes"] == 1, summary
    for (loss_r, ref), (loss_g, grads) in zip(reference, got):
        assert torch.allclose(loss_g, loss_r, atol=1e-6)
        for name, g in ref.items():
            assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name


def test_packed_rows_without_a_length_bound_run_eagerly(varlen_lora_model):
    graphs = LayerGraphs(decoder_layers(varlen_lora_model), max_tokens=32, capture=False).install()
    _grads(varlen_lora_model, _packed(_rows([9, 5]), capacity=32, slots=4, max_len=16))
    summary = graphs.summary()
    graphs.uninstall()
    assert summary["replayed"] == 0 and "packed rows" in summary["eager_reason"]


def _packed_on_cpu(monkeypatch):
    """train_adapter with the plan it makes on this CPU, but packed (packed is CUDA-only in the plan)."""
    import finetune.train as train_mod
    from finetune import accel

    real = accel.decide

    def packed(recipe, device, **kw):
        plan = real(recipe.model_copy(update={"batching": "padded"}), device, **kw)
        return dataclasses.replace(plan, batching="packed", attn_implementation="lorag_varlen")

    monkeypatch.setattr(accel, "decide", packed)
    return train_mod


def _qa_rows(path, n=6):
    from assistant.prompt import build_messages

    facts = [
        ("What colour is the lanyard?", "Red."),
        ("How many sick days need no note?", "Three."),
        ("Which class are trains booked in?", "Second class, unless the trip is over four hours."),
    ]
    path.write_text(
        "".join(
            json.dumps(
                {"prompt": build_messages(f"{q} ({i})", []), "completion": [{"role": "assistant", "content": a}]}
            )
            + "\n"
            for i in range(n)
            for q, a in facts[: 1 + i % 3]
        )
    )  # 2n rows of several lengths
    return path


def test_packed_run_resumed_after_an_interruption_trains_the_same_steps(tiny_lm, tmp_path, monkeypatch):
    """Stopped after 4 of 6 steps (in its second epoch) and resumed: the steps it trains after the
    checkpoint are the uninterrupted run's (the packing follows the trainer's epoch), so the adapters match."""
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from finetune.config import TrainConfig

    train_mod = _packed_on_cpu(monkeypatch)
    rows = _qa_rows(tmp_path / "train.jsonl")
    cfg = TrainConfig(
        domain="toy",
        epochs=2,
        learning_rate=5e-3,
        batch_size=4,
        logging_steps=1,
        save_steps=4,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        max_seq_length=256,
        warmup_ratio=0.0,
    )

    class StopAt4(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 4:
                control.should_training_stop = True

    whole = train_mod.train_adapter(
        cfg, model_path=str(tiny_lm), train_file=rows, eval_file=None, run_dir=tmp_path / "a", device="cpu"
    )
    train_mod.train_adapter(
        cfg,
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=tmp_path / "b",
        device="cpu",
        callbacks=[StopAt4()],
    )
    resumed = train_mod.train_adapter(
        cfg, model_path=str(tiny_lm), train_file=rows, eval_file=None, run_dir=tmp_path / "b", device="cpu", resume=True
    )
    assert (
        resumed.metrics["resumed_from"].endswith("checkpoint-4")
        and resumed.metrics["steps"] == whole.metrics["steps"] == 6
    )
    a, b = (load_file(str(r.adapter_dir / "adapter_model.safetensors")) for r in (whole, resumed))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_packed_training_run_end_to_end(tiny_lm, tmp_path, monkeypatch):
    """A packed run through lorag's trainer (on this CPU the rows attend apart through SDPA): its steps come
    from the packing, tokens_seen counts real tokens only, evaluation runs packed, the adapter trains."""
    from finetune.config import TrainConfig

    train_mod = _packed_on_cpu(monkeypatch)  # CPU: packed is CUDA-only in resolve_runtime
    rows = _qa_rows(tmp_path / "train.jsonl")
    cfg = TrainConfig(
        domain="toy",
        epochs=2,
        learning_rate=5e-3,
        batch_size=4,
        logging_steps=2,
        save_steps=100,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        max_seq_length=256,
    )
    res = train_mod.train_adapter(
        cfg, model_path=str(tiny_lm), train_file=rows, eval_file=rows, run_dir=tmp_path / "run", device="cpu"
    )
    rt = res.hyperparameters["runtime"]
    assert rt["batching"] == "packed" and rt["step_tokens"] % 64 == 0
    assert res.metrics["steps"] == 2 * 3  # 12 rows, about 4 per step: 3 packed steps per epoch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    n_real = sum(
        len(tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=True, return_dict=True)["input_ids"])
        for r in map(json.loads, rows.read_text().splitlines())
    )
    assert (
        abs(res.metrics["tokens_seen"] - 2 * n_real) <= 2 * 12
    )  # real tokens (trl's tokenization, +-1 a row), no pads
    assert res.metrics["tokens_seen"] < res.metrics["steps"] * rt["step_tokens"]
    assert res.metrics["eval_loss"] is not None and res.metrics["train_loss"] > 0
    logged = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["num_tokens"] for e in logged if "num_tokens" in e][-1] == res.metrics[
        "tokens_seen"
    ]  # trl's metric: no pads
    from finetune.runtime import describe_runtime

    assert f"packed steps of {rt['step_tokens']:,} tokens (~4 rows)" in describe_runtime(
        res.metrics, res.hyperparameters
    )


def test_a_sliding_window_model_packs_only_where_varlen_attention_keeps_the_window(monkeypatch):
    """torch's public varlen attention (window_size) keeps a Mistral-style window: such a model packs and graphs
    as any other. Without it, `auto` trains padded with the model's own attention (and no graphs: they drop
    the window), and packed asked for by name is refused before any step."""
    from types import SimpleNamespace

    import finetune.accel.plan as plan_mod
    from finetune.accel import PlanError, decide, varlen_attention
    from finetune.config import TrainConfig

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(plan_mod.fp8_ops, "unsupported_reason", lambda device: None)
    monkeypatch.setattr(varlen_attention, "unsupported_reason", lambda device: None)
    windowed = SimpleNamespace(sliding_window=64)  # a window under max_seq_length
    monkeypatch.setattr(varlen_attention, "keeps_window", lambda: True)
    plan = decide(TrainConfig(domain="t"), "cuda", model_config=windowed)
    assert plan.batching == "packed" and plan.cuda_graphs and plan.attn_implementation == varlen_attention.NAME
    monkeypatch.setattr(varlen_attention, "keeps_window", lambda: False)
    plan = decide(TrainConfig(domain="t"), "cuda", model_config=windowed)
    assert plan.batching == "padded" and plan.attn_implementation == "sdpa" and not plan.cuda_graphs
    assert "sliding-window attention (64 tokens)" in plan.why_off("packed") and "64 tokens" in plan.why_off(
        "cuda_graphs"
    )
    assert (
        decide(TrainConfig(domain="t"), "cuda", model_config=SimpleNamespace(sliding_window=4096)).batching == "packed"
    )
    with pytest.raises(PlanError, match="batching 'packed' does not apply sliding-window attention"):
        decide(TrainConfig(domain="t", batching="packed"), "cuda", model_config=windowed)


def test_varlen_reference_keeps_a_sliding_window():
    """The CPU reference of packed attention with a window: each query sees itself and the window-1 keys
    before it in its own row, as a full causal mask cut to the window does."""
    import torch.nn.functional as F

    from finetune.accel.varlen_attention import rows_apart

    torch.manual_seed(0)
    q, k, v = torch.randn(12, 4, 8), torch.randn(12, 2, 8), torch.randn(12, 2, 8)
    cu = torch.tensor([0, 7, 12], dtype=torch.int32)
    out = rows_apart(q, k, v, cu, None, window=3)
    for a, b in ((0, 7), (7, 12)):
        n = b - a
        i = torch.arange(n)
        mask = (i[None] <= i[:, None]) & (i[:, None] - i[None] < 3)
        kk, vv = (t[a:b].transpose(0, 1).repeat_interleave(2, 0) for t in (k, v))
        ref = F.scaled_dot_product_attention(q[a:b].transpose(0, 1), kk, vv, attn_mask=mask).transpose(0, 1)
        assert torch.allclose(out[a:b], ref, atol=1e-6)
    assert not torch.allclose(out, rows_apart(q, k, v, cu, None))  # the window changed something


def test_auto_packs_where_graphs_run_and_packed_is_refused_without_flashattention(monkeypatch):
    import finetune.accel.plan as plan_mod
    from assistant.errors import LoragError
    from finetune.accel import PlanError, decide, varlen_attention
    from finetune.config import TrainConfig

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(plan_mod.fp8_ops, "unsupported_reason", lambda device: None)  # FP8: not what is checked here
    monkeypatch.setattr(
        varlen_attention, "unsupported_reason", lambda device: None if device == "cuda" else "CUDA only"
    )
    plan = decide(TrainConfig(domain="t"), "cuda")
    assert plan.batching == "packed" and plan.cuda_graphs is True
    assert decide(TrainConfig(domain="t", lora_dropout=0.05), "cuda").batching == "padded"  # no graphs
    assert decide(TrainConfig(domain="t", attn_implementation="eager"), "cuda").batching == "padded"
    assert decide(TrainConfig(domain="t"), "cpu").batching == "padded"
    assert decide(TrainConfig(domain="t", micro_batch=4), "cuda").batching == "padded"  # passes asked for
    with pytest.raises(PlanError, match="batching 'packed' needs FlashAttention's varlen kernel: CUDA only"):
        decide(TrainConfig(domain="t", batching="packed"), "cpu")
    with pytest.raises(LoragError, match="micro_batch: padded batches only"):  # the config's own check
        TrainConfig(domain="t", batching="packed", micro_batch=4)
