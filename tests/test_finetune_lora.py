"""LoRA invariants on a tiny random model: base frozen, adapter moved, save/load round trip,
padding-free batching equals padded batching, mixed-adapter batches, and the QLoRA path."""

import json

import pytest
import torch

from assistant.adapters import BASE, attach_adapters, base_fingerprint
from assistant.generation import HFGenerator
from assistant.prompt import build_messages
from assistant.settings_pipeline import ModelSettings
from finetune.accel import decide
from finetune.config import TrainConfig
from finetune.train import load_trainable_model, train_adapter

FACTS = [
    ("What colour is the lobby lanyard?", "Red."),
    ("How many sick days need no note?", "Three days."),
    ("Which class are trains booked in?", "Second class."),
    ("Who approves overtime?", "The team lead."),
]


def write_rows(path, n_repeat=4):
    class P:
        def __init__(self, n, text):
            self.n, self.text, self.ref = n, text, f"doc{n}.md"

    rows = []
    for _ in range(n_repeat):
        for q, a in FACTS:
            rows.append(
                {
                    "prompt": build_messages(q, [P(1, f"{q} {a}")]),
                    "completion": [{"role": "assistant", "content": f"{a} [1]"}],
                }
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cfg(**kw):
    base = dict(
        domain="toy",
        epochs=1,
        max_steps=12,
        learning_rate=5e-3,
        batch_size=4,
        logging_steps=2,
        save_steps=6,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        max_seq_length=256,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained(tiny_lm, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    rows = write_rows(tmp / "train.jsonl")
    from transformers import AutoModelForCausalLM

    base_sd = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(tiny_lm).state_dict().items()}
    result = train_adapter(
        cfg(), model_path=str(tiny_lm), train_file=rows, eval_file=rows, run_dir=tmp / "run", device="cpu"
    )
    return result, base_sd, tmp


def test_runtime_choices_on_cpu(tiny_lm):
    rt = decide(cfg(compile_layers=True), "cpu").record()
    assert rt["quantization"] == "none" and rt["batching"] == "padded" and not rt["bf16"]
    assert rt["lora_dtype"] == "float32" and rt["compile_layers"] is False  # bf16 weights and compile: CUDA only
    from transformers import AutoModelForCausalLM

    from finetune.accel.layers import decoder_layers

    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    assert decoder_layers(model) == list(model.model.layers)  # what compile_layers compiles


def test_training_lowers_loss_and_saves_a_peft_folder(trained):
    result, _, _ = trained
    m = result.metrics
    assert m["steps"] == 12 and m["tokens_seen"] > 0
    curve = [loss for _, loss in m["loss_curve"]]
    assert curve[-1] < curve[0], curve
    assert m["eval_loss"] is not None
    assert (result.adapter_dir / "adapter_config.json").is_file()
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()


def test_run_summary_says_how_it_trained(trained):
    from finetune.runtime import describe_runtime

    result, _, _ = trained
    line = describe_runtime(result.metrics, result.hyperparameters)
    assert line.startswith("on cpu: LoRA, padded batches of 4 in passes of 2")  # CPU passes of CPU_MICRO_BATCH rows
    assert "tokens/s" in line and "CUDA graphs off (CUDA only)" in line
    assert (
        f"{result.metrics['fused_lora_layers']} LoRA layers fused" in line and result.metrics["fused_lora_layers"] > 0
    )
    graphs = {
        "shapes": 3,
        "kept_layers": 2,
        "eager_reason": None,
        "graphs": 10,
        "capture_s": 0.43,
        "unread": ["mlp.down_proj"],
        "offloaded": 62,
    }
    gpu = describe_runtime(
        {"tokens_per_s": 45000.0, "peak_gpu_mem_gb": 5.2, "cuda_graphs": graphs},
        {"runtime": {"device": "cuda", "quantization": "nf4", "batching": "padded", "micro_batch": 16}},
    )
    assert gpu == (
        "on cuda: QLoRA NF4, padded batches of 16; 45,000 tokens/s; 5.20 GB peak; CUDA graphs: 3 shapes "
        "(10 captured in 0.4 s), 2 layers kept, recompute skips mlp.down_proj, layer inputs held in CPU memory"
    )
    fp8 = describe_runtime(
        {"fused_lora_layers": 112, "fp8_layers": 48, "gated_mlps_recomputed": 16},
        {"runtime": {"device": "cuda", "fp8_off": None}},
    )
    assert fp8 == (
        "on cuda: LoRA, ? batches of ?; 112 LoRA layers fused, 48 with FP8 base GEMMs, "
        "16 MLPs' gated products recomputed in backward"
    )
    old_gpu = describe_runtime(
        {}, {"runtime": {"device": "cuda", "fp8_off": "needs FP8 tensor cores (compute capability 8.9+)"}}
    )
    assert old_gpu.endswith("; FP8 GEMMs off (needs FP8 tensor cores (compute capability 8.9+))")
    assert "FP8" not in describe_runtime({}, {"runtime": {"device": "cuda", "fp8_off": "off in the config"}})


def test_base_frozen_adapter_moved_and_round_trip(trained, tiny_lm):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    result, base_sd, _ = trained
    adapter = load_file(str(result.adapter_dir / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # lora_B starts at zero: it moved
    base = AutoModelForCausalLM.from_pretrained(tiny_lm)
    for k, v in base.state_dict().items():  # the saved base weights are untouched
        assert torch.equal(v, base_sd[k]), k
    peft_model = PeftModel.from_pretrained(base, str(result.adapter_dir)).eval()
    base2 = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        with_adapter = peft_model(ids).logits
        plain = base2(ids).logits
        again = (
            PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm), str(result.adapter_dir))
            .eval()(ids)
            .logits
        )
    assert not torch.allclose(with_adapter, plain)
    assert torch.allclose(with_adapter, again, atol=1e-6)  # save/load round trip: identical logits
    with torch.no_grad(), peft_model.disable_adapter():
        assert torch.allclose(peft_model(ids).logits, plain, atol=1e-6)


def test_resume_continues_from_the_checkpoint(tiny_lm, tmp_path):
    rows = write_rows(tmp_path / "train.jsonl")
    run = tmp_path / "run"
    train_adapter(cfg(max_steps=6), model_path=str(tiny_lm), train_file=rows, eval_file=None, run_dir=run, device="cpu")
    assert (run / "checkpoint-6").is_dir()
    r = train_adapter(
        cfg(max_steps=12),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=run,
        device="cpu",
        resume=True,
    )
    assert r.metrics["resumed_from"].endswith("checkpoint-6") and r.metrics["steps"] == 12


def test_a_finished_run_writes_only_its_save_steps_checkpoints(tiny_lm, tmp_path):
    """transformers would also checkpoint the last step (optimizer state included): nothing to resume there,
    and the adapter is saved anyway."""
    rows = write_rows(tmp_path / "train.jsonl")
    run = tmp_path / "run"
    r = train_adapter(
        cfg(max_steps=4, save_steps=3),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=run,
        device="cpu",
    )
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-3"]
    assert (r.adapter_dir / "adapter_model.safetensors").is_file() and r.metrics["steps"] == 4


def test_resumed_run_keeps_the_settings_it_started_with(tmp_path):
    from assistant.errors import LoragError
    from finetune.jobs import recorded_config

    run = tmp_path / "v3"
    run.mkdir()
    assert recorded_config(run) is None  # nothing recorded: the caller's recipe
    (run / "job.json").write_text(
        json.dumps({"domain": "toy", "version": 3, "config": cfg(batch_size=2, max_steps=3).to_dict()})
    )
    got = recorded_config(run)
    assert (got.batch_size, got.max_steps, got.domain, got.synth.writer) == (2, 3, "toy", cfg().synth.writer)
    (run / "job.json").write_text('{"config": {"domain": "toy", "batch_size": 0}}')
    with pytest.raises(LoragError, match="job.json: the interrupted run's settings cannot be read"):
        recorded_config(run)


def test_micro_batches_give_the_whole_batchs_gradients(tiny_lm, tmp_path):
    """micro_batch splits each step's batch into passes cut to their own longest row; the loss of each
    is its share of the whole batch's mean, so the step's gradients are the whole batch's."""
    from transformers import TrainerCallback

    rows = write_rows(tmp_path / "train.jsonl", n_repeat=1)
    lines = rows.read_text().splitlines()
    long = json.loads(lines[0])
    long["completion"][0]["content"] = (
        "Red, and it is worn on the left side every working day. [1]"  # rows of unequal length
    )
    rows.write_text(json.dumps(long) + "\n" + "\n".join(lines[1:]) + "\n")

    def first_step_grads(**kw):
        grads = {}

        class Grab(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, model=None, **k):
                if not grads:
                    grads.update({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})

        res = train_adapter(
            cfg(max_steps=1, batch_size=2, group_by_length=False, **kw),
            model_path=str(tiny_lm),
            train_file=rows,
            eval_file=None,
            run_dir=tmp_path / f"run{len(kw)}",
            device="cpu",
            callbacks=[Grab()],
        )
        return grads, res.metrics

    whole, m_whole = first_step_grads()
    split, m_split = first_step_grads(micro_batch=1)
    assert m_split["steps"] == 1 and m_split["tokens_seen"] == m_whole["tokens_seen"] > 0
    assert whole.keys() == split.keys() and any(
        g.abs().sum() > 0 for g in whole.values()
    )  # B starts at 0: A's grads are 0
    for name, g in whole.items():
        assert torch.allclose(split[name], g, atol=1e-6, rtol=1e-4), name


def test_padding_free_loss_equals_padded_loss(tiny_lm):
    """The GPU batching: rows concatenated with restarting position_ids give the padded batch's loss."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_lm, attn_implementation="sdpa").eval()
    seqs = [torch.randint(3, 500, (n,)) for n in (7, 12, 4)]
    # padded
    L = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), L, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)], labels[i, : len(s)] = s, 1, s
    # padding-free: one row, position ids restart at each sequence
    flat = torch.cat(seqs)[None]
    pos = torch.cat([torch.arange(len(s)) for s in seqs])[None]
    flat_labels = torch.cat([torch.cat([torch.tensor([-100]), s[1:]]) for s in seqs])[None]
    with torch.no_grad():
        padded_logits = model(input_ids=ids, attention_mask=mask).logits
        free_logits = model(input_ids=flat, position_ids=pos, use_cache=False).logits
    offset = 0
    for i, s in enumerate(seqs):
        assert torch.allclose(padded_logits[i, : len(s)], free_logits[0, offset : offset + len(s)], atol=1e-5)
        offset += len(s)
    del labels, flat_labels


def test_mixed_adapter_batch_equals_single_adapter_runs(trained, tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, _, _ = trained
    # a second, different adapter: same training, other seed and data order
    rows = write_rows(tmp_path / "t.jsonl", n_repeat=2)
    other = train_adapter(
        cfg(max_steps=6, seed=7, learning_rate=1e-2),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=tmp_path / "run2",
        device="cpu",
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    model, timings = attach_adapters(model, {"a": result.adapter_dir, "b": other.adapter_dir})
    gen = HFGenerator(
        model, AutoTokenizer.from_pretrained(tiny_lm), ModelSettings(max_new_tokens=8, repetition_penalty=1.0)
    )
    assert gen.adapters() == ["a", "b"]
    msgs = [[{"role": "user", "content": q}] for q, _ in FACTS[:3]]
    mixed = gen.generate_batch(msgs, adapters=["a", None, "b"])
    singles = [gen.generate_batch([m], adapters=[a])[0] for m, a in zip(msgs, ["a", None, "b"])]
    assert mixed == singles
    streamed = "".join(gen.stream(msgs[0], adapter="a")).strip()
    assert streamed == singles[0]
    from assistant.errors import LoragError

    with pytest.raises(LoragError, match="not loaded"):
        gen.generate_batch(msgs[:1], adapters=["nope"])
    assert BASE == "__base__"


def test_base_fingerprint_depends_on_architecture(tiny_lm):
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(tiny_lm)
    fp = base_fingerprint(c)
    c.hidden_size = 64
    assert base_fingerprint(c) != fp


def test_qlora_path_on_this_device(tiny_lm, tmp_path):
    """NF4 4-bit base + LoRA: runs wherever bitsandbytes supports the device (its CPU backend too)."""
    bnb = pytest.importorskip("bitsandbytes")
    plan = decide(cfg(quantization="nf4"), "cpu")
    try:
        model, tok = load_trainable_model(str(tiny_lm), plan)
    except Exception as e:  # pragma: no cover - depends on the bitsandbytes build
        pytest.skip(f"bitsandbytes {bnb.__version__} cannot quantize on this device: {e}")
    quantized = [m for m in model.modules() if type(m).__name__ == "Linear4bit"]
    assert quantized, "no 4-bit layers"
    rows = write_rows(tmp_path / "train.jsonl", n_repeat=1)
    r = train_adapter(
        cfg(max_steps=3, quantization="nf4"),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=tmp_path / "run",
        device="cpu",
    )
    assert (r.adapter_dir / "adapter_model.safetensors").is_file()
    assert r.hyperparameters["runtime"]["quantization"] == "nf4"


def test_generation_stats_are_per_thread(tiny_lm):
    import threading

    from transformers import AutoModelForCausalLM, AutoTokenizer

    gen = HFGenerator(
        AutoModelForCausalLM.from_pretrained(tiny_lm).eval(),
        AutoTokenizer.from_pretrained(tiny_lm),
        ModelSettings(max_new_tokens=3, repetition_penalty=1.0),
    )
    "".join(gen.stream([{"role": "user", "content": "hi"}], max_new_tokens=3))
    mine = gen.last_stats
    seen = {}
    t = threading.Thread(target=lambda: seen.setdefault("other", gen.last_stats))
    t.start()
    t.join()
    assert mine.new_tokens > 0 and seen["other"].new_tokens == 0


def test_an_answer_cut_at_the_token_limit_says_so(tiny_lm):
    """finish_reason "length" when generation stopped at max_new_tokens, "stop" when the model ended it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gen = HFGenerator(
        AutoModelForCausalLM.from_pretrained(tiny_lm).eval(),
        AutoTokenizer.from_pretrained(tiny_lm),
        ModelSettings(max_new_tokens=3, repetition_penalty=1.0),
    )
    msgs = [{"role": "user", "content": "hi"}]
    "".join(gen.stream(msgs))
    assert (gen.last_stats.new_tokens, gen.last_stats.finish_reason) == (3, "length")
    assert gen.last_stats.prompt_tokens > 1
    enc = gen.encode(msgs)
    first = int(gen.model.generate(**enc, **gen.generation_kwargs(1))[0, -1])
    gen.model.generation_config.eos_token_id = first  # the model's first token now ends its answer
    "".join(gen.stream(msgs, max_new_tokens=3))
    assert (gen.last_stats.new_tokens, gen.last_stats.finish_reason) == (1, "stop")


def test_import_registers_an_adapter_trained_elsewhere_and_refuses_another_base(trained, tiny_lm, tmp_path):
    """`lorag adapters import`: a PEFT folder from another machine gets a version, its run's metrics and
    lineage; weights that do not fit the configured base are refused before anything is registered."""
    from transformers import AutoConfig, LlamaConfig, LlamaForCausalLM

    from assistant.errors import LoragError
    from assistant.registry import Registry
    from finetune.importing import import_adapter

    result, _, trained_dir = trained
    reg = Registry(tmp_path / "adapters")
    data = tmp_path / "datasets" / "toy"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_bytes((trained_dir / "train.jsonl").read_bytes())  # the set it trained on
    (data / "build.json").write_text(json.dumps({"corpus_fingerprint": "fp-at-synth"}))
    card = import_adapter(
        result.adapter_dir,
        "toy",
        registry=reg,
        base_model="tiny",
        model_path=str(tiny_lm),
        datasets_dir=tmp_path / "datasets",
    )
    assert card.name == "toy-v1" and card.corpus_fingerprint == "fp-at-synth" and len(card.data_hash) == 64
    assert card.metrics["eval_loss"] == pytest.approx(result.metrics["eval_loss"])  # from the run's result.json
    assert card.base_fingerprint == base_fingerprint(AutoConfig.from_pretrained(tiny_lm))
    attached, _ = attach_adapters(LlamaForCausalLM.from_pretrained(tiny_lm), {"toy-v1": reg.folder(card)})
    assert "toy-v1" in attached.peft_config
    with pytest.raises(LoragError, match="already registered as toy-v1 \\(the same adapter weights\\)"):
        import_adapter(
            result.adapter_dir,
            "toy",
            registry=reg,
            base_model="tiny",
            model_path=str(tiny_lm),
            datasets_dir=tmp_path / "datasets",
        )

    other = tmp_path / "wider"
    c = AutoConfig.from_pretrained(tiny_lm).to_dict()
    c.update(hidden_size=48, intermediate_size=96)
    LlamaForCausalLM(
        LlamaConfig(**{k: v for k, v in c.items() if k not in ("architectures", "transformers_version")})
    ).save_pretrained(other)
    with pytest.raises(LoragError, match="does not fit the base model 'wider'") as err:
        import_adapter(
            result.adapter_dir,
            "toy",
            registry=reg,
            base_model="wider",
            model_path=str(other),
            datasets_dir=tmp_path / "datasets",
        )
    assert "in_features" in str(err.value) or "out_features" in str(err.value)
    assert [x.name for x in reg.versions("toy")] == ["toy-v1"]  # nothing registered by the refused import
    with pytest.raises(LoragError, match="no adapter_config.json"):
        import_adapter(tmp_path, "toy", registry=reg, base_model="tiny", model_path=str(tiny_lm), datasets_dir=tmp_path)
    run = tmp_path / "run"  # a training run's folder: its checkpoints are the adapter folders
    for name in ("checkpoint-2", "checkpoint-10"):
        (run / name).mkdir(parents=True)
        (run / name / "adapter_config.json").write_text("{}")
    with pytest.raises(LoragError, match="adapter folders inside it: checkpoint-2, checkpoint-10") as err:
        import_adapter(run, "toy", registry=reg, base_model="tiny", model_path=str(tiny_lm), datasets_dir=tmp_path)
    assert err.value.hint == f"pass {run / 'checkpoint-10'}"
    with pytest.raises(LoragError, match="no such folder"):
        import_adapter(
            tmp_path / "nope", "toy", registry=reg, base_model="tiny", model_path=str(tiny_lm), datasets_dir=tmp_path
        )
    bad = tmp_path / "bad"
    bad.mkdir()
    for config, weights, why in (
        ("[]", None, "expected a JSON object"),
        ("{}", None, "adapter_model.safetensors is missing"),
        ('{"peft_type": "LORA"}', b"garbage", "not a readable safetensors file"),
    ):
        (bad / "adapter_config.json").write_text(config)
        if weights is not None:
            (bad / "adapter_model.safetensors").write_bytes(weights)
        with pytest.raises(LoragError, match=why):
            import_adapter(bad, "toy", registry=reg, base_model="tiny", model_path=str(tiny_lm), datasets_dir=tmp_path)

    # trained on other data than the domain's current training set: its own hash, no borrowed lineage
    (data / "train.jsonl").write_text('{"x": 2}\n')
    import shutil

    copied = tmp_path / "copied"  # a copy of a registry folder: its card.json carries the run's figures
    shutil.copytree(reg.folder(card), copied)
    reg.remove("toy-v1")  # the same weights again: refused as a duplicate while toy-v1 is registered
    other = import_adapter(
        copied, "toy", registry=reg, base_model="tiny", model_path=str(tiny_lm), datasets_dir=tmp_path / "datasets"
    )
    assert other.data_hash == result.metrics["data_sha256"] and other.corpus_fingerprint == ""
    assert other.metrics["eval_loss"] == pytest.approx(result.metrics["eval_loss"])
    assert other.created_at == card.created_at  # when it was trained, not when it was imported
    assert [x.name for x in reg.versions("toy")] == [other.name]
    with pytest.raises(LoragError, match="expected the adapter's folder, not a file") as err:  # a file of the adapter
        import_adapter(
            copied / "adapter_config.json",
            "toy",
            registry=reg,
            base_model="tiny",
            model_path=str(tiny_lm),
            datasets_dir=tmp_path,
        )
    assert err.value.hint == f"pass {copied}"
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(LoragError, match="not a file") as err:  # any other file: its folder is no adapter either
        import_adapter(
            tmp_path / "notes.txt",
            "toy",
            registry=reg,
            base_model="tiny",
            model_path=str(tiny_lm),
            datasets_dir=tmp_path,
        )
    assert err.value.hint is None


def test_lean_loss_and_mask_free_forward_match_trls_loss(tiny_lm, tmp_path, monkeypatch):
    """lorag's training loss (finetune/accel/trainer.py) is trl's: the same gradients and the same logged entropy,
    token accuracy and token count, read once per log instead of after every batch; and without the
    attention mask (mask_free, used under CUDA graphs) right-padded rows give the masked gradients."""
    from transformers import TrainerCallback

    from finetune.accel import trainer as sft

    rows = write_rows(tmp_path / "train.jsonl", n_repeat=1)
    lines = rows.read_text().splitlines()
    long = json.loads(lines[0])
    long["completion"][0]["content"] = (
        "Red, and it is worn on the left side every working day. [1]"  # padding in the batch
    )
    rows.write_text(json.dumps(long) + "\n" + "\n".join(lines[1:]) + "\n")
    masks = []

    flushed = []
    real = sft.lorag_trainer  # the trainer phase builds its class through finetune.accel.trainer.lorag_trainer

    def run(tag, lean=True, **trainer_kw):
        grads, logs = {}, []

        class Grab(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **k):
                base = model.get_base_model().model
                base.register_forward_pre_hook(
                    lambda m, a, kw: masks.append((tag, kw.get("attention_mask") is not None)), with_kwargs=True
                )

            def on_pre_optimizer_step(self, args, state, control, model=None, **k):
                if not grads:
                    grads.update({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})

        def make(cls, **kw):
            trainer = real(cls, **{**kw, **trainer_kw})

            def flush(self):
                flushed.append((tag, self._loss_stats is not None))
                trainer._flush_loss_stats(self)

            return type(
                "Probe",
                (trainer,),
                {"_flush_loss_stats": flush, **({} if lean else {"_plain_loss": lambda self: False})},
            )

        monkeypatch.setattr(sft, "lorag_trainer", make)
        train_adapter(
            cfg(max_steps=2, batch_size=2, group_by_length=False, logging_steps=2),
            model_path=str(tiny_lm),
            train_file=rows,
            eval_file=None,
            run_dir=tmp_path / tag,
            device="cpu",
            callbacks=[Grab()],
            on_log=logs.append,
        )
        return grads, next(e for e in logs if "entropy" in e)

    trl_grads, trl_log = run("trl", lean=False)
    lean_grads, lean_log = run("lean")
    free_grads, free_log = run("free", mask_free=True)
    assert {t: any(m for x, m in masks if x == t) for t in ("trl", "lean", "free")} == {
        "trl": True,
        "lean": True,
        "free": False,
    }
    assert {t: any(f for x, f in flushed if x == t) for t in ("trl", "lean", "free")} == {
        "trl": False,
        "lean": True,
        "free": True,
    }
    for name, g in trl_grads.items():
        assert torch.allclose(lean_grads[name], g, atol=1e-6, rtol=1e-4), name
        assert torch.allclose(free_grads[name], g, atol=1e-5, rtol=1e-4), name
    for key in ("entropy", "mean_token_accuracy", "num_tokens", "loss"):
        assert lean_log[key] == pytest.approx(trl_log[key], rel=1e-4), key
        assert free_log[key] == pytest.approx(trl_log[key], rel=1e-4), key


def test_rows_whose_prompt_fills_max_seq_length_are_left_out_or_named(tiny_lm, tmp_path):
    """trl cuts rows at max_seq_length from the end and drops a row left with no answer token: more than
    max_row_loss of such rows stops the run; within it lorag counts them (the run summary says so), and
    when no row fits, names the file and the shortest prompt."""
    from transformers import AutoTokenizer

    from assistant.errors import LoragError
    from finetune.runtime import describe_runtime
    from finetune.train import _n_tokens

    rows = write_rows(tmp_path / "train.jsonl", n_repeat=1)
    lines = rows.read_text().splitlines()
    long = json.loads(lines[0])
    long["prompt"][-1]["content"] += " Please answer using the passages above, and say which one you used." * 3
    rows.write_text("\n".join([json.dumps(long), *lines[1:]]) + "\n")
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    lengths = sorted(_n_tokens(tok, json.loads(x), prompt_only=True) for x in rows.read_text().splitlines())
    assert lengths[-1] > lengths[-2]  # one prompt longer than the rest
    with pytest.raises(LoragError, match=rf"1 of {len(lengths)} rows \(25.0%\) are longer than max_seq_length") as e:
        train_adapter(
            cfg(max_steps=1, max_seq_length=lengths[-1]),
            model_path=str(tiny_lm),
            train_file=rows,
            eval_file=None,
            run_dir=tmp_path / "run0",
            device="cpu",
        )
    assert "run `lorag synth` again" in e.value.hint  # more than max_row_loss (2%) is never lost silently
    r = train_adapter(
        cfg(max_steps=1, max_seq_length=lengths[-1], max_row_loss=0.5),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=tmp_path / "run",
        device="cpu",
    )
    assert r.metrics["rows_over_max_length"] == 1
    n = len(lengths)
    assert f"1 of {n} rows over max_seq_length ({lengths[-1]} tokens) left out" in describe_runtime(
        r.metrics, r.hyperparameters
    )
    assert lengths[0] > 64
    with pytest.raises(
        LoragError,
        match=rf"train.jsonl: no row fits max_seq_length \(64 tokens\): the shortest prompt has {lengths[0]} tokens",
    ):
        train_adapter(
            cfg(max_steps=1, max_seq_length=64),
            model_path=str(tiny_lm),
            train_file=rows,
            eval_file=None,
            run_dir=tmp_path / "run2",
            device="cpu",
        )


def test_a_run_that_fails_before_a_checkpoint_leaves_no_run_folder(settings, store, tiny_lm, tmp_path, monkeypatch):
    """A fresh run refused before training (e.g. no row fits max_seq_length) leaves no run folder behind:
    nothing in it could be resumed, and its version number would collide with a later import's."""
    import finetune.train as ft
    from assistant.errors import LoragError
    from assistant.registry import Registry
    from finetune.jobs import run_root, run_versions, train_domain

    data = settings.datasets_dir / "toy"
    data.mkdir(parents=True)
    write_rows(data / "train.jsonl")

    class Models:
        def resolve(self, spec):
            return str(tiny_lm)

    def refuse(*a, **kw):
        raise LoragError("train.jsonl: no row fits max_seq_length (64 tokens)")

    monkeypatch.setattr(ft, "train_adapter", refuse)
    registry = Registry(settings.paths.data_dir / "adapters")
    with pytest.raises(LoragError, match="no row fits"):
        train_domain(cfg(), settings=settings, store=store, registry=registry, model_cache=Models())
    assert run_versions(settings, "toy") == [] and not any(run_root(settings, "toy").glob("v*"))
    (run_root(settings, "toy") / "v1" / "checkpoint-5").mkdir(parents=True)  # an interrupted run keeps its number
    assert registry.next_folder("toy", run_versions(settings, "toy"))[0] == 2


def test_training_a_domain_without_data_says_what_to_run(settings, store, fake_dense, bm25, corpus, monkeypatch):
    """No training set: an unknown domain points at ingest (synth would fail on it too), a known one at synth;
    both before transformers is imported (seconds on a CPU box)."""
    import sys

    from assistant.errors import LoragError
    from assistant.registry import Registry
    from finetune.jobs import train_domain
    from ingest.pipeline import Ingestor

    registry = Registry(settings.paths.data_dir / "adapters")
    with pytest.raises(LoragError, match="unknown domain 'toy'") as e:
        train_domain(cfg(), settings=settings, store=store, registry=registry, model_cache=None)
    assert "lorag ingest PATH --domain toy" in e.value.hint
    assert Ingestor(store, fake_dense, bm25, settings.ingest).run([corpus / "leave.md"], "toy").ok
    monkeypatch.setitem(sys.modules, "transformers", None)  # importing it now raises ImportError
    with pytest.raises(LoragError, match="no training data for 'toy'") as e:
        train_domain(cfg(), settings=settings, store=store, registry=registry, model_cache=None)
    assert "lorag synth --domain toy" in e.value.hint


def test_training_leaves_the_modeling_module_as_it_found_it(tiny_lm, tmp_path):
    """Liger's kernels (CUDA) replace the model's modeling-module RMSNorm, MLP and rotary function for the
    process while the trainer runs; here a callback does the same on CPU: after train_adapter the module
    is transformers' again, so a model built later in the process (the app's, a benchmark's next arm)
    is built from it."""
    import sys

    from transformers import AutoConfig, AutoModelForCausalLM, TrainerCallback

    module = sys.modules[type(AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tiny_lm))).__module__]
    before = dict(vars(module))
    patched = [n for n in ("apply_rotary_pos_emb", "LlamaRMSNorm", "LlamaMLP") if n in before]
    assert patched

    def stand_in(orig):  # the same behaviour under another object, as Liger's replacements
        return type(orig.__name__, (orig,), {}) if isinstance(orig, type) else (lambda *a, **k: orig(*a, **k))

    stand_ins = {n: stand_in(before[n]) for n in patched}

    class Patch(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            for n, v in stand_ins.items():
                setattr(module, n, v)

        def on_step_end(self, args, state, control, **kw):
            assert all(getattr(module, n) is v for n, v in stand_ins.items())  # patched while training

    rows = write_rows(tmp_path / "train.jsonl")
    train_adapter(
        cfg(max_steps=1),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=tmp_path / "run",
        device="cpu",
        callbacks=[Patch()],
    )
    assert all(vars(module)[n] is before[n] for n in patched)


def test_curriculum_data_trains_in_file_order(tiny_lm, tmp_path, monkeypatch):
    """A training set synth wrote in curriculum order (build.json says so) trains its rows in file order:
    the sampler is sequential and batches are padded (packed steps would reorder them)."""
    from transformers import Trainer

    rows = write_rows(tmp_path / "train.jsonl", n_repeat=1)
    (tmp_path / "build.json").write_text(json.dumps({"curriculum": True}))
    seen = []
    real = Trainer._get_train_sampler

    def spy(self, *a, **k):
        sampler = real(self, *a, **k)
        seen.append(type(sampler).__name__)
        return sampler

    monkeypatch.setattr(Trainer, "_get_train_sampler", spy)
    r = train_adapter(
        cfg(max_steps=1),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=tmp_path / "run",
        device="cpu",
    )
    assert r.hyperparameters["runtime"]["sequential"] is True and r.hyperparameters["runtime"]["batching"] == "padded"
    assert seen == ["SequentialSampler"]
    (tmp_path / "build.json").write_text(json.dumps({"curriculum": False}))
    seen.clear()
    train_adapter(
        cfg(max_steps=1),
        model_path=str(tiny_lm),
        train_file=rows,
        eval_file=None,
        run_dir=tmp_path / "run2",
        device="cpu",
    )
    assert seen and seen != ["SequentialSampler"]


def test_a_batch_says_when_each_row_ends(tiny_lm):
    """generate_batch's on_done: a row that produced its end token is reported at once, while the rest of the
    batch is still generating; a row cut at the token limit when the batch returns; each row once, the answers as
    without it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    with torch.no_grad():  # sharper weights: the random model's rows then differ (not one token repeated)
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(10.0)
    gen = HFGenerator(
        model, AutoTokenizer.from_pretrained(tiny_lm), ModelSettings(max_new_tokens=12, repetition_penalty=1.0)
    )
    msgs = [[{"role": "user", "content": q}] for q, _ in FACTS[:3]]
    steps: list[int] = []  # one entry per forward pass: one per token generated
    model.register_forward_hook(lambda *_: steps.append(len(steps) + 1))
    generate, made = model.generate, []
    model.generate = lambda **kw: made.append((kw["input_ids"].shape[1], generate(**kw))) or made[-1][1]
    model.generation_config.eos_token_id = [10**6]  # no end token ever: every row runs to the token limit
    plain = gen.generate_batch(msgs)  # every row to the limit (rows 1 and 2 do not write row 0's second token)
    prompt, out = made[-1]
    rows = out[:, prompt:].tolist()
    end = rows[0][1]  # row 0's second token is made its end token (and ends any row that writes it)
    model.generation_config.eos_token_id = [end]
    want = {i: (r.index(end) + 1 if end in r else None) for i, r in enumerate(rows)}  # the step each row ends
    assert want[0] <= 2 and want[1] is None and want[2] is None, want
    steps.clear()
    told: list[tuple[int, int]] = []  # (row, forward passes so far)
    ended = gen.generate_batch(msgs, on_done=lambda i: told.append((i, len(steps))))
    assert sorted(i for i, _ in told) == [0, 1, 2]  # each row once
    last = len(steps)  # the batch's last pass: when every row has ended
    assert last == max(s or 12 for s in want.values())
    assert {i: at for i, at in told} == {i: s or last for i, s in want.items()}  # each at its end, not the batch's
    assert dict(told)[0] < last, (want, told)  # row 0 was told while the other rows still generated
    assert ended == gen.generate_batch(msgs) and ended[1:] == plain[1:]  # the answers are as without on_done


def test_a_run_shorter_than_the_logging_interval_logs_its_first_steps_loss(tiny_lm, tmp_path):
    """The loss curve of a short run (one step, logged every 5) has a train point: the first step is logged."""
    logs = []
    train_adapter(
        cfg(max_steps=1, logging_steps=5),
        model_path=str(tiny_lm),
        train_file=write_rows(tmp_path / "train.jsonl"),
        eval_file=None,
        run_dir=tmp_path / "run",
        device="cpu",
        on_log=logs.append,
    )
    assert [e["step"] for e in logs if "loss" in e] == [1]
