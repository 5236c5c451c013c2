"""The promotion gate's decisions, on adapter cards with attached report summaries."""

import subprocess
import sys

import pytest

from assistant.errors import LoragError
from assistant.registry import Registry
from eval.gate import promotion_gate, run_command
from tests.test_eval_support import make_adapter


@pytest.fixture
def registry(tmp_path):
    return Registry(tmp_path / "adapters")


def _summary(vs, run_id="run-1", domain="hr"):
    """A card summary as `lorag eval` attaches it (only what the gate reads)."""
    return {"run_id": run_id, "kind": "ab", "domain": domain, "report_html": f"/r/{run_id}/report.html", "vs": vs}


def _cmp(diff, lo, hi, n=40):
    return {"answer_f1": {"diff": diff, "ci_low": lo, "ci_high": hi, "n": n}}


MIN_QUESTIONS = 20  # eval.min_questions' default; the summaries below compare over 40 questions unless they say


def _gate(registry, name, min_questions=MIN_QUESTIONS):
    return promotion_gate(registry.get(name), registry, "answer_f1", min_questions=min_questions)


def test_no_report_is_refused(registry, tmp_path):
    make_adapter(registry, tmp_path)
    d = _gate(registry, "hr-v1")
    assert not d["ok"] and d["against"] == "base" and d["metric"] == "answer_f1"
    assert "no evaluation report" in d["reason"] and "lorag eval --domain hr --ab base,hr-v1" in d["reason"]


def test_better_than_base_with_ci_above_zero_passes(registry, tmp_path):
    make_adapter(registry, tmp_path)
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.12, 0.05, 0.19)}))
    d = _gate(registry, "hr-v1")
    assert d["ok"] and (d["diff"], d["ci_low"], d["ci_high"], d["n"]) == (0.12, 0.05, 0.19, 40)
    assert d["run_id"] == "run-1" and d["report"] == "/r/run-1/report.html"
    card = registry.promote("hr-v1", gate=lambda c: _gate(registry, c.name))
    assert card.promoted and card.promotion["ok"] and not card.promotion["forced"] and card.promotion["ci_low"] == 0.05


def test_ci_straddling_zero_is_refused_with_the_numbers(registry, tmp_path):
    make_adapter(registry, tmp_path)
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.03, -0.02, 0.08)}))
    d = _gate(registry, "hr-v1")
    assert not d["ok"]
    assert "CI includes zero" in d["reason"] and "+0.0300" in d["reason"] and "[-0.0200, +0.0800]" in d["reason"]
    with pytest.raises(
        LoragError, match=r"promotion of hr-v1 refused: no evidence it beats the base model.*\[-0.0200, \+0.0800\]"
    ):
        registry.promote("hr-v1", gate=lambda c: _gate(registry, c.name))
    assert not registry.get("hr-v1").promoted


def test_too_few_questions_is_refused_whatever_the_ci_says(registry, tmp_path):
    """One question's bootstrap CI is a single point: above zero, yet it settles nothing."""
    make_adapter(registry, tmp_path)
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.0747, 0.0747, 0.0747, n=1)}))
    d = _gate(registry, "hr-v1")
    assert not d["ok"] and (d["n"], d["min_questions"], d["diff"]) == (1, 20, 0.0747)
    assert d["reason"].startswith("too few questions: n=1, the gate needs at least 20 (eval.min_questions): hr-v1")
    assert "[+0.0747, +0.0747], n=1" in d["reason"] and "lorag eval --domain hr --ab base,hr-v1" in d["reason"]
    with pytest.raises(LoragError, match=r"promotion of hr-v1 refused: too few questions: n=1, the gate needs"):
        registry.promote("hr-v1", gate=lambda c: _gate(registry, c.name))
    assert not registry.get("hr-v1").promoted
    card = registry.promote("hr-v1", force=True, gate=lambda c: _gate(registry, c.name))  # --force still promotes
    assert card.promoted and card.promotion["forced"] is True and "too few questions" in card.promotion["reason"]


def test_a_refusal_says_the_questions_needed_and_the_evaluation_to_run_as_fields(registry, tmp_path):
    """What a refusal's reason says in words is in the decision as fields too: the questions the gate needs and those
    it had when too few (the report's own minimum when higher), and the evaluation to run (its domain and arms)."""
    make_adapter(registry, tmp_path)
    d = _gate(registry, "hr-v1")  # no report yet
    assert (d["run"], d["needed"]) == ({"domain": "hr", "arms": "base,hr-v1"}, None)
    assert run_command(**d["run"]) in d["reason"]
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.12, 0.05, 0.19, n=7)}))
    d = _gate(registry, "hr-v1")
    assert (d["n"], d["needed"], d["run"]) == (7, 20, {"domain": "hr", "arms": "base,hr-v1"})
    assert (
        f"n={d['n']}, the gate needs at least {d['needed']}" in d["reason"] and run_command(**d["run"]) in d["reason"]
    )
    registry.attach_report(
        "hr-v1", {**_summary({"base": _cmp(0.12, 0.05, 0.19, n=25)}, run_id="run-2"), "min_questions": 30}
    )
    assert (_gate(registry, "hr-v1")["n"], _gate(registry, "hr-v1")["needed"]) == (25, 30)
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.03, -0.02, 0.08)}, run_id="run-3"))
    d = _gate(registry, "hr-v1")  # enough questions, no evidence: nothing needed, no evaluation to run
    assert not d["ok"] and (d["n"], d["needed"], d["run"]) == (40, None, None)
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.12, 0.05, 0.19)}, run_id="run-4"))
    d = _gate(registry, "hr-v1")
    assert d["ok"] and (d["needed"], d["run"]) == (None, None)
    assert (
        run_command("hr", "base,hr-v1", testset="qa.jsonl")
        == "run `lorag eval --domain hr --testset qa.jsonl --ab base,hr-v1`"
    )


def test_the_minimum_counts_the_questions_compared_and_is_the_callers(registry, tmp_path):
    make_adapter(registry, tmp_path)
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.12, 0.05, 0.19, n=19)}))
    assert _gate(registry, "hr-v1")["reason"].startswith("too few questions: n=19, the gate needs at least 20")
    assert _gate(registry, "hr-v1", min_questions=19)["ok"]
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.12, 0.05, 0.19, n=20)}, run_id="run-2"))
    assert _gate(registry, "hr-v1")["ok"]
    registry.attach_report("hr-v1", _summary({"base": _cmp(-0.1, -0.15, -0.05, n=3)}, run_id="run-3"))
    assert _gate(registry, "hr-v1")["reason"].startswith("too few questions: n=3")  # worse or not: too few to tell
    # a report made under a higher minimum (its verdict said "inconclusive") does not pass a lower setting later
    registry.attach_report(
        "hr-v1", {**_summary({"base": _cmp(0.12, 0.05, 0.19, n=25)}, run_id="run-4"), "min_questions": 30}
    )
    d = _gate(registry, "hr-v1")
    assert (
        not d["ok"]
        and d["min_questions"] == 30
        and d["reason"].startswith("too few questions: n=25, the gate needs at least 30")
    )


def test_worse_is_refused(registry, tmp_path):
    make_adapter(registry, tmp_path)
    registry.attach_report("hr-v1", _summary({"base": _cmp(-0.1, -0.15, -0.05)}))
    d = _gate(registry, "hr-v1")
    assert not d["ok"] and d["reason"].startswith("worse than the base model")


def test_force_overrides_and_is_recorded_on_the_card(registry, tmp_path):
    make_adapter(registry, tmp_path)
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.0, -0.05, 0.05)}))
    card = registry.promote("hr-v1", force=True, gate=lambda c: _gate(registry, c.name))
    assert card.promoted and card.promotion["forced"] is True and card.promotion["ok"] is False
    assert card.promotion["ci_low"] == -0.05 and "CI includes zero" in card.promotion["reason"]
    assert registry.get("hr-v1").promotion["forced"] is True  # persisted


def test_a_new_version_must_beat_the_promoted_one_not_base(registry, tmp_path):
    make_adapter(registry, tmp_path, version=1)
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.1, 0.05, 0.15)}))
    registry.promote("hr-v1", gate=lambda c: _gate(registry, c.name))
    make_adapter(registry, tmp_path, version=2)
    registry.attach_report("hr-v2", _summary({"base": _cmp(0.2, 0.1, 0.3)}))
    d = _gate(registry, "hr-v2")
    assert not d["ok"] and d["against"] == "hr-v1"
    assert (
        "with the promoted version hr-v1; its reports compare it with base;" in d["reason"]
        and "--ab hr-v1,hr-v2" in d["reason"]
    )
    registry.attach_report(
        "hr-v2", _summary({"hr-v1": _cmp(0.04, 0.01, 0.07), "base": _cmp(0.2, 0.1, 0.3)}, run_id="run-2")
    )
    d = _gate(registry, "hr-v2")
    assert d["ok"] and d["run_id"] == "run-2" and d["diff"] == 0.04
    registry.promote("hr-v2", gate=lambda c: _gate(registry, c.name))
    assert [c.name for c in registry.versions("hr") if c.promoted] == ["hr-v2"]


def test_the_latest_matching_report_decides(registry, tmp_path):
    make_adapter(registry, tmp_path)
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.1, 0.05, 0.15)}, run_id="old"))
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.01, -0.03, 0.05)}, run_id="new"))
    registry.attach_report("hr-v1", _summary({"base": _cmp(0.5, 0.4, 0.6)}, run_id="other-domain", domain="manual"))
    d = _gate(registry, "hr-v1")
    assert not d["ok"] and d["run_id"] == "new"


def test_the_gate_compares_on_the_metric_it_is_given(registry, tmp_path):
    make_adapter(registry, tmp_path)
    registry.attach_report(
        "hr-v1",
        _summary(
            {"base": {**_cmp(0.1, 0.05, 0.15), "rouge_l": {"diff": -0.1, "ci_low": -0.2, "ci_high": -0.01, "n": 40}}}
        ),
    )
    assert _gate(registry, "hr-v1")["metric"] == "answer_f1"
    d = promotion_gate(registry.get("hr-v1"), registry, metric="rouge_l", min_questions=MIN_QUESTIONS)
    assert not d["ok"] and d["metric"] == "rouge_l" and d["ci_high"] == -0.01 and d["reason"].startswith("worse")
    d = promotion_gate(registry.get("hr-v1"), registry, metric="faithfulness", min_questions=MIN_QUESTIONS)
    assert not d["ok"] and "no 'faithfulness' comparison" in d["reason"] and "answer_f1, rouge_l" in d["reason"]


def test_gate_module_imports_nothing_heavy():
    code = (
        "import sys, eval.gate; print(sorted(m for m in ('numpy', 'ragas', 'torch', 'matplotlib', "
        "'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
