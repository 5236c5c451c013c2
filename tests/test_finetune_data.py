"""Curated JSONL validation, shipped recipes, synthetic Q&A filters, RAFT examples, registry, routing."""

import json
import random
from pathlib import Path

import numpy as np
import pytest

from assistant.errors import ConfigError, LoragError
from tests.fakes import FakeGenerator
from assistant.prompt import NO_ANSWER
from assistant.retrieval import Passage
from assistant.routing import Router
from assistant.settings import RoutingSettings
from finetune.config import CONFIG_DIR, SynthConfig, load_train_config
from finetune.data import load_qa, split_qa
from finetune.raft import TrainingSetBuilder, make_example
from assistant.registry import AdapterCard, Registry, check_base, is_stale
from tests.conftest import SAMPLES


# -- data ---------------------------------------------------------------------------------------
def test_bad_jsonl_rows_are_listed_with_line_numbers(tmp_path):
    f = tmp_path / "qa.jsonl"
    f.write_text(
        '{"question": "How many days?", "answer": "27"}\n'
        "not json\n"
        '{"question": "  ", "answer": "x"}\n'
        "\n"
        '{"answer": "no question"}\n'
        "[1, 2]\n"
        '{"question": "How many days?", "answer": "27"}\n'
    )
    with pytest.raises(LoragError) as e:
        load_qa(f)
    msg = str(e.value)
    assert "5 bad row(s)" in msg
    for needle in ["line 2: not valid JSON", "line 3: question", "line 5: question: Field required", "line 6: expected an object",
                   "line 7: duplicate id/question (first on line 1)"]:
        assert needle in msg, needle


def test_heldout_split_is_fixed_and_disjoint():
    rows = load_qa(SAMPLES / "qa" / "handbook.jsonl")
    train, held = split_qa(rows, 0.2)
    train2, held2 = split_qa(list(reversed(rows)), 0.2)
    assert {r.id for r in held} == {r.id for r in held2}  # order does not matter
    assert not {r.id for r in train} & {r.id for r in held}
    assert 0.1 < len(held) / len(rows) < 0.3


def test_every_shipped_recipe_is_valid():
    files = sorted(CONFIG_DIR.glob("*.yaml"))
    assert {f.stem for f in files} >= {"handbook", "manual", "itsupport"}
    for f in files:
        cfg = load_train_config(f, domain=f.stem)
        assert cfg.domain == f.stem


def recipe_error(tmp_path, text: str) -> str:
    """The ConfigError message for recipe `text` of domain x."""
    f = tmp_path / "x.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_train_config(f, domain="x")
    return str(e.value)


def test_bad_recipe_lists_every_problem(tmp_path):
    msg = recipe_error(tmp_path, "domain: x\nlora_r: 0\nlearning_rate: 5\nquantization: fp8\nbatchsize: 4\nsynth:\n  p_oracle: 1.5\n  colour: red\n")
    for needle in ["batchsize: unknown key", "synth.colour: unknown key", "lora_r", "learning_rate", "quantization", "synth.p_oracle"]:
        assert needle in msg, needle
    assert "6 problem(s)" in msg
    assert "batchsize: unknown key (did you mean batch_size?)" in msg


def test_recipe_values_of_the_wrong_type_are_named(tmp_path):
    msg = recipe_error(tmp_path, "domain: x\nlearning_rate: fast\nbatch_size: 0\ncuda_graphs: maybe\nsynth:\n  distractors: many\n")
    for needle in ["learning_rate: a number (got 'fast')", "batch_size: a whole number >= 1 (got 0)",
                   "cuda_graphs: true or false (got 'maybe')", "synth.distractors: a whole number (got 'many')"]:
        assert needle in msg, msg
    assert "4 problem(s)" in msg


def test_training_speed_options_are_checked(tmp_path):
    msg = recipe_error(tmp_path, "domain: x\nmicro_batch: -2\nkeep_activations: -3\nsdpa_backend: fast\n")
    for needle in ["micro_batch: a whole number of rows >= 0", "keep_activations: a whole number of layers",
                   "sdpa_backend: one of auto, flash, cudnn (got 'fast')"]:  # fmt: skip
        assert needle in msg, msg
    assert "3 problem(s)" in msg


def test_recipe_for_another_domain_is_refused(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("domain: manual\n")
    with pytest.raises(ConfigError, match="not 'handbook'"):
        load_train_config(f, domain="handbook")


PASSAGE = "Full-time employees receive 26 days of paid annual leave per leave year. Carry-over is capped at 5 days."


# -- RAFT ---------------------------------------------------------------------------------------
def _p(doc, text, cid):
    return Passage(0, text, doc, "S", None, 0.0, "hr", f"/d/{doc}", cid)


def test_raft_example_with_and_without_oracle():
    oracle = _p("leave.md", PASSAGE, "o")
    negs = [_p("travel.md", "Trains second class.", "n1"), _p("parking.md", "Permits 12 euros.", "n2"), _p("leave.md", "other leave chunk", "n3")]
    ex = make_example("How many days?", "26 days", oracle, negs, k=3, include_oracle=True, rng=random.Random(0))
    user = ex["prompt"][-1]["content"]
    n = ex["target"].split("[")[1].rstrip("]")
    assert f"[{n}] (leave.md#S)\n{PASSAGE}" in user and ex["oracle_in_context"]
    assert ex["completion"] == [{"role": "assistant", "content": ex["target"]}]
    ex2 = make_example("How many days?", "26 days", oracle, negs, k=3, include_oracle=False, rng=random.Random(0))
    assert ex2["target"] == NO_ANSWER and PASSAGE not in ex2["prompt"][-1]["content"]
    assert "other leave chunk" not in ex2["prompt"][-1]["content"]  # no chunk of the oracle's document


def test_raft_share_without_the_oracle_follows_p_oracle(components, tmp_path):
    cfg = _handbook_cloze_cfg(components, max_chunks=30, p_oracle=0.7)
    summary = TrainingSetBuilder(components.store, components.retriever, None, cfg, tmp_path / "ds").build(SAMPLES / "qa" / "handbook.jsonl")
    share = summary["without_oracle"] / summary["train_examples"]
    assert 0.15 < share < 0.45  # RAFT: about 1 - p_oracle of the examples have no oracle
    rows = [json.loads(x) for x in (tmp_path / "ds" / "train.jsonl").read_text().splitlines()]
    assert all(r["target"] == NO_ANSWER for r in rows if not r["oracle_in_context"])


def _handbook_cloze_cfg(components, **synth):
    """The handbook sample ingested, and its recipe with the offline writers (no model) and `synth` overrides."""
    assert components.ingestor().run([SAMPLES / "corpus" / "handbook"], "handbook").ok
    cfg = load_train_config(domain="handbook")
    cfg.synth.writer = "section+sentence+cloze"
    for k, v in synth.items():
        setattr(cfg.synth, k, v)
    return cfg


def test_training_set_builder_end_to_end(components, tmp_path):
    cfg = _handbook_cloze_cfg(components, max_chunks=30)
    out = tmp_path / "ds"
    summary = TrainingSetBuilder(components.store, components.retriever, None, cfg, out).build(SAMPLES / "qa" / "handbook.jsonl")
    rows = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    held = [json.loads(x) for x in (out / "heldout.jsonl").read_text().splitlines()]
    assert summary["train_examples"] == len(rows) > 50
    assert summary["heldout"] == len(held) > 5
    held_q = {h["question"] for h in held}
    assert not held_q & {r["question"] for r in rows}  # the held-out split never trains
    assert summary["without_oracle"] == 0 and cfg.synth.p_oracle == 1.0  # the default: every example holds its oracle
    assert summary["by_kind"].get("curated", 0) > 30 and summary["by_kind"].get("synthetic:section", 0) >= 3
    assert (out / "heldout_examples.jsonl").is_file() and len(summary["data_hash"]) == 64
    from finetune.jobs import with_data_settings

    hyper = with_data_settings({"lora_r": 16, "synth": {"writer": "auto"}}, out)  # the card gets the data's writer
    assert hyper["synth"]["writer"] == cfg.synth.writer == "section+sentence+cloze" and hyper["lora_r"] == 16
    assert with_data_settings({"synth": {"writer": "x"}}, tmp_path / "none") == {"synth": {"writer": "x"}}
    for r in rows[:20]:
        assert r["prompt"][0]["role"] == "system" and r["prompt"][-1]["content"].startswith("Passages:\n[1] (")
    builder = TrainingSetBuilder(components.store, components.retriever, None, cfg, out)
    negatives = [builder._negatives(ps, None) for ps in builder._retrieve(["annual leave", "Employee Handbook", "expenses"], 4)]
    assert all(negatives) and all(len(p.text.split()) >= 8 for ps in negatives for p in ps)  # no title-only distractors


# -- registry -----------------------------------------------------------------------------------
def _card(reg, domain, fp="base1", corpus="c1"):
    version, folder = reg.next_folder(domain)
    staged = folder.parent / f".staged-{version}"
    staged.mkdir(parents=True)
    (staged / "adapter_config.json").write_text("{}")
    card = AdapterCard(name=f"{domain}-v{version}", domain=domain, version=version, base_model="tiny",
                       base_fingerprint=fp, data_hash="d", corpus_fingerprint=corpus)
    return reg.register(staged, card)


def test_registry_versions_promotion_and_removal(tmp_path):
    reg = Registry(tmp_path / "adapters")
    a1, a2 = _card(reg, "hr"), _card(reg, "hr")
    assert [c.name for c in reg.versions("hr")] == ["hr-v1", "hr-v2"]
    assert reg.get("hr").name == "hr-v2"  # latest when none promoted
    reg.promote("hr-v1")
    assert reg.get("hr").name == "hr-v1" and reg.promoted()["hr"].name == "hr-v1"
    reg.promote("hr-v2")
    assert [c.promoted for c in reg.versions("hr")] == [False, True]
    with pytest.raises(LoragError, match="refused: worse"):
        reg.promote("hr-v1", gate=lambda c: {"ok": False, "reason": "worse"})
    forced = reg.promote("hr-v1", force=True, gate=lambda c: {"ok": False, "reason": "worse"})
    assert forced.promotion["forced"] and forced.promotion["reason"] == "worse"
    assert json.loads((reg.folder(forced) / "card.json").read_text())["promotion"]["forced"] is True
    reg.remove("hr-v2")
    assert [c.name for c in reg.versions("hr")] == ["hr-v1"]
    with pytest.raises(LoragError, match="no adapter named 'hr-v9'"):
        reg.get("hr-v9")
    assert _card(reg, "hr").version == 3  # versions are never reused


def test_card_text_shows_lineage_figures_and_the_gate_record(tmp_path):
    from assistant.registry import card_text

    reg = Registry(tmp_path)
    card = _card(reg, "hr", corpus="c1")
    text = card_text(card, stale=False)
    assert "hr-v1" in text and "not promoted" in text and "evaluations    none yet: lorag eval --domain hr --ab base,hr-v1" in text
    card.hyperparameters = {"lora_r": 16, "lora_alpha": 32, "epochs": 2, "runtime": {"device": "cuda", "quantization": "nf4"}}
    card.metrics = {"train_loss": 1.25, "eval_loss": 1.5, "steps": 32, "train_rows": 128, "tokens_per_s": 3896.2}
    card.reports = [{"run_id": "r1", "means": {"answer_f1": 0.103}, "report": "/x/report.html",
                     "vs": {"base": {"answer_f1": {"diff": 0.0492, "ci_low": -0.0064, "ci_high": 0.109}}}}]  # fmt: skip
    text = card_text(card, stale=True)
    assert "STALE" in text and "r 16, alpha 32" in text and "(cuda, nf4)" in text and "3,896 tokens/s" in text
    assert "train 1.2500, held-out 1.5000" in text
    assert "answer_f1 0.1030; vs base: +0.0492 [-0.0064, +0.1090]" in text and "/x/report.html" in text
    card.hyperparameters = {"epochs": 3, "max_steps": 2, "runtime": {"device": "cpu", "quantization": "none"}}
    text = card_text(card)
    assert "(cpu, no quantization)" in text and "max_steps 2" in text and "peak GPU memory" not in text
    assert "32 steps on 128 rows" in text
    card.metrics, card.reports = {"steps": 1, "train_rows": 57}, []
    text = card_text(card, heldout=False)  # synth without curated --qa: nothing held out for eval to default to
    assert "1 step on 57 rows" in text
    assert "none yet: lorag eval --domain hr --testset FILE.jsonl --ab base,hr-v1" in text


def test_stale_and_base_checks(tmp_path):
    reg = Registry(tmp_path)
    card = _card(reg, "hr", fp="aaa", corpus="c1")
    assert not is_stale(card, "c1") and is_stale(card, "c2") and is_stale(card, None)
    check_base(card, "aaa")
    with pytest.raises(LoragError, match="trained on base model 'tiny'"):
        check_base(card, "bbb")


def test_stale_detection_follows_the_corpus(components, corpus):
    from assistant.store.base import corpus_fingerprint

    components.ingestor().run([corpus], "hr")
    before = corpus_fingerprint(components.store, "hr")
    components.ingestor().run([corpus], "hr")
    assert corpus_fingerprint(components.store, "hr") == before  # unchanged corpus, same fingerprint
    (corpus / "parking.txt").write_text("Parking is free now.\n")
    components.ingestor().run([corpus], "hr")
    assert corpus_fingerprint(components.store, "hr") != before


# -- routing ------------------------------------------------------------------------------------
def test_router_precedence_and_threshold():
    cents = {"hr": np.array([1.0, 0, 0]), "manual": np.array([0, 1.0, 0])}
    r = Router(RoutingSettings(threshold=0.6), {"hr": "hr-v2", "manual": "manual-v1"}, cents)
    assert r.route(choice="base").adapter is None
    assert r.route(choice="manual-v1", domain="hr").adapter == "manual-v1"  # explicit beats the domain
    assert r.route(domain="hr").adapter == "hr-v2"
    auto = r.route(query_vec=np.array([0.9, 0.1, 0]), hit_domains=["hr", "hr", "hr", "manual"])
    assert auto.adapter == "hr-v2" and auto.domain == "hr" and auto.confidence > 0.6 and "routed to hr" in auto.reason
    unsure = r.route(query_vec=np.array([0.5, 0.5, 0]), hit_domains=["hr", "manual"])
    assert unsure.adapter is None and "threshold" in unsure.reason
    with pytest.raises(LoragError, match="not loaded"):
        r.route(choice="legal-v1")
    assert Router(RoutingSettings(), {}).route().reason.startswith("no promoted adapters")


def test_ask_reports_which_adapter_answered(components, corpus):
    from assistant.answer import AskService

    components.ingestor().run([corpus], "hr")
    gen = FakeGenerator(lambda m: "27 days [1].", adapters=["hr-v1"])
    router = Router(RoutingSettings(threshold=0.3), {"hr": "hr-v1"}, {"hr": components.store.dense_centroid("hr")})
    svc = AskService(components.retriever, gen, router)
    a = svc.ask("How many days of annual leave do full-time staff receive?")
    assert a.adapter == "hr-v1" and a.route["adapter"] == "hr-v1" and "routed to hr" in a.route["reason"]
    assert gen.calls[-1][1] == "hr-v1"
    b = svc.ask("How many days of annual leave do full-time staff receive?", adapter="base")
    assert b.adapter is None and gen.calls[-1][1] is None and b.to_dict()["route"]["adapter"] == "base"


def test_excluded_sources_never_reach_the_training_data(components, tmp_path):
    """synth.exclude_sources keeps documents (an evaluation's, say) out: no oracle, no distractor from them."""
    cfg = _handbook_cloze_cfg(components, max_chunks=40, exclude_sources=["leave-*", "*.json", "/abs/leave-policy.md"])
    out = tmp_path / "ds"
    summary = TrainingSetBuilder(components.store, components.retriever, None, cfg, out).build(None)
    rows = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    synth = [json.loads(x) for x in (out / "synthetic.jsonl").read_text().splitlines()]
    assert summary["excluded_chunks"] > 0 and rows and synth
    assert summary["exclude_patterns_matching_nothing"] == ["/abs/leave-policy.md"]  # reported, not silently ignored
    assert not [s for s in synth if s["source"] in ("leave-policy.md", "benefits-faq.json")]
    prompts = "\n".join(r["prompt"][-1]["content"] for r in rows)
    assert "(leave-policy.md" not in prompts and "(benefits-faq.json" not in prompts
    assert "(onboarding-guide.md" in prompts  # the rest of the corpus still trains

    cfg.synth.exclude_sources = ["*"]
    with pytest.raises(LoragError, match="leaves no chunk"):
        TrainingSetBuilder(components.store, components.retriever, None, cfg, tmp_path / "ds2").build(None)


def test_a_training_set_with_no_example_says_why_and_keeps_the_earlier_one(components, tmp_path, monkeypatch):
    """synth that keeps nothing names what it dropped and why, and writes nothing: the domain's earlier
    training set (train.jsonl and its held-out split) stays as it was."""
    cfg = _handbook_cloze_cfg(components, max_chunks=30)
    out = tmp_path / "ds"
    TrainingSetBuilder(components.store, components.retriever, None, cfg, out).build(SAMPLES / "qa" / "handbook.jsonl")
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    from collections import Counter

    from finetune import raft
    from finetune.synth import SynthReport

    def writes_nothing(chunks, *a, **k):  # a writer whose every pair the filters drop
        return [], SynthReport(chunks=2, dropped=Counter({"cloze: no sentence with a fact": 2}))

    monkeypatch.setattr(raft, "synthesize", writes_nothing)
    with pytest.raises(LoragError, match=r"for 'handbook': 0 synthetic pair\(s\) from 2 chunk\(s\), 0 curated; "
                                         r"dropped: 2 cloze: no sentence with a fact") as e:
        TrainingSetBuilder(components.store, components.retriever, None, cfg, out).build(None)
    assert "nothing was written" in e.value.hint
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
