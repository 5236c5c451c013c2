"""Curated JSONL validation, shipped recipes, synthetic Q&A filters, RAFT examples and the training-set builder."""

import json
import random

import pytest

from assistant.errors import ConfigError, LoragError
from assistant.prompt import NO_ANSWER
from assistant.retrieval import Passage
from finetune.config import CONFIG_DIR, load_train_config
from finetune.data import load_qa, split_qa
from finetune.raft import TrainingSetBuilder
from finetune.raft_examples import make_example
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
    for needle in [
        "line 2: not valid JSON",
        "line 3: question: empty (at least 3 characters)",
        "line 5: question: missing",
        "line 6: expected an object",
        "line 7: duplicate id/question (first on line 1)",
    ]:
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
    msg = recipe_error(
        tmp_path,
        "domain: x\nlora_r: 0\nlearning_rate: 5\nquantization: fp8\nbatchsize: 4\nsynth:\n  p_oracle: 1.5\n  "
        "colour: red\n",
    )
    for needle in [
        "batchsize: unknown key",
        "synth.colour: unknown key",
        "lora_r",
        "learning_rate",
        "quantization",
        "synth.p_oracle",
    ]:
        assert needle in msg, needle
    assert "6 problem(s)" in msg
    assert "batchsize: unknown key (did you mean batch_size?)" in msg


def test_recipe_values_of_the_wrong_type_are_named(tmp_path):
    msg = recipe_error(
        tmp_path, "domain: x\nlearning_rate: fast\nbatch_size: 0\ncuda_graphs: maybe\nsynth:\n  distractors: many\n"
    )
    for needle in [
        "learning_rate: a number (got 'fast')",
        "batch_size: a whole number >= 1 (got 0)",
        "cuda_graphs: true or false (got 'maybe')",
        "synth.distractors: a whole number (got 'many')",
    ]:
        assert needle in msg, msg
    assert "4 problem(s)" in msg


def test_training_speed_options_are_checked(tmp_path):
    msg = recipe_error(tmp_path, "domain: x\nmicro_batch: -2\nkeep_activations: -3\nsdpa_backend: fast\n")
    for needle in [
        "micro_batch: a whole number of rows >= 0",
        "keep_activations: a whole number of layers",
        "sdpa_backend: one of auto, flash, cudnn (got 'fast')",
    ]:
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
    negs = [
        _p("travel.md", "Trains second class.", "n1"),
        _p("parking.md", "Permits 12 euros.", "n2"),
        _p("leave.md", "other leave chunk", "n3"),
    ]
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
    summary = TrainingSetBuilder(components.store, components.retriever, None, cfg, tmp_path / "ds").build(
        SAMPLES / "qa" / "handbook.jsonl"
    )
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
    summary = TrainingSetBuilder(components.store, components.retriever, None, cfg, out).build(
        SAMPLES / "qa" / "handbook.jsonl"
    )
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
    negatives = [
        builder._negatives(ps, None) for ps in builder._retrieve(["annual leave", "Employee Handbook", "expenses"], 4)
    ]
    assert all(negatives) and all(len(p.text.split()) >= 8 for ps in negatives for p in ps)  # no title-only distractors


def test_the_same_corpus_gives_the_same_training_set_wherever_its_folder_lies(components, tmp_path):
    """Chunk ids hash the document's path; the sample of chunks the writers see must not follow them."""
    import shutil

    questions = []
    for domain, folder in (("near", tmp_path / "a" / "handbook"), ("far", tmp_path / "b" / "c" / "d" / "handbook")):
        shutil.copytree(SAMPLES / "corpus" / "handbook", folder)
        assert components.ingestor().run([folder], domain).ok
        cfg = load_train_config(domain="handbook")
        cfg.domain, cfg.synth.writer, cfg.synth.max_chunks = domain, "section+sentence+cloze", 12
        TrainingSetBuilder(components.store, components.retriever, None, cfg, tmp_path / domain).build(None)
        rows = (tmp_path / domain / "synthetic.jsonl").read_text().splitlines()
        questions.append([json.loads(r)["question"] for r in rows])
    assert questions[0] and questions[0] == questions[1]


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
    with pytest.raises(
        LoragError,
        match=r"for 'handbook': 0 synthetic pair\(s\) from 2 chunk\(s\), 0 curated; "
        r"dropped: 2 cloze: no sentence with a fact",
    ) as e:
        TrainingSetBuilder(components.store, components.retriever, None, cfg, out).build(None)
    assert "nothing was written" in e.value.hint
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
