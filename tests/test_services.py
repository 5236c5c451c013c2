"""The user actions below ui/ (services/): the metric the promotion gate judges on, where a domain's recipe comes
from, and what a synth run reads. The web app's jobs (ui/web_jobs.py) are driven the way its tabs and API drive them."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from assistant.errors import LoragError
from assistant.registry import AdapterCard, Registry
from services.adapters import promote, promote_with_line
from services.recipes import card_gate_metric, domain_gate_metric, load_recipe


@pytest.fixture
def core(components):
    """The web app's core on fake backends; rows fit by words (no tokenizer download)."""
    from ui.app import AppCore

    app_core = AppCore(components)
    app_core.count_tokens = lambda messages: sum(len(m["content"].split()) for m in messages)
    return app_core


def _register(reg: Registry, tmp_path, domain: str, hyperparameters: dict) -> AdapterCard:
    staged = tmp_path / f"staged-{domain}"
    staged.mkdir()
    (staged / "adapter_config.json").write_text("{}")
    card = AdapterCard(
        name=f"{domain}-v1",
        domain=domain,
        version=1,
        base_model="fake",
        base_fingerprint="fp",
        data_hash="d",
        corpus_fingerprint="c",
        hyperparameters=hyperparameters,
    )
    return reg.register(staged, card)


def _ab_report(reg: Registry, name: str) -> None:
    """A report where the adapter beats the base on answer F1 and loses on ROUGE-L, both with CIs clear of zero."""
    vs = {
        "base": {
            "answer_f1": {"diff": 0.10, "ci_low": 0.05, "ci_high": 0.15, "n": 30},
            "rouge_l": {"diff": -0.05, "ci_low": -0.09, "ci_high": -0.01, "n": 30},
        }
    }
    reg.attach_report(name, {"run_id": "run-1", "kind": "ab", "domain": name.rsplit("-v", 1)[0], "vs": vs})


def _comps(settings) -> SimpleNamespace:
    return SimpleNamespace(settings=settings, registry=Registry(settings.adapters_dir))


def _user_recipe(settings, domain: str, text: str) -> None:
    settings.recipes_dir.mkdir(parents=True, exist_ok=True)
    (settings.recipes_dir / f"{domain}.yaml").write_text(f"domain: {domain}\n{text}", encoding="utf-8")


def test_the_gate_judges_an_adapter_on_the_metric_of_the_recipe_it_was_trained_with(settings, tmp_path):
    # trained with `--config` naming rouge_l: the packaged handbook recipe (answer F1) must not decide
    comps = _comps(settings)
    card = _register(comps.registry, tmp_path, "handbook", {"gate_metric": "rouge_l", "learning_rate": 3e-4})
    _ab_report(comps.registry, card.name)
    assert load_recipe(settings, "handbook").gate_metric == "answer_f1"
    with pytest.raises(LoragError, match=r"refused: worse than the base model.*on rouge_l"):
        promote(comps, card.name)
    assert not comps.registry.get(card.name).promoted


def test_a_recipe_changed_after_training_does_not_move_the_gate(settings, tmp_path):
    comps = _comps(settings)
    card = _register(comps.registry, tmp_path, "hr", {"gate_metric": "answer_f1"})
    _ab_report(comps.registry, card.name)
    _user_recipe(settings, "hr", "gate_metric: rouge_l\n")  # today's recipe names another metric
    promoted = promote(comps, card.name)
    assert promoted.promoted and promoted.promotion["metric"] == "answer_f1"


def test_promoting_the_promoted_adapter_again_changes_nothing_and_does_not_ask_the_gate(settings, tmp_path, core):
    from ui.web_jobs import promote as promote_in_app

    comps = _comps(settings)
    card = _register(comps.registry, tmp_path, "handbook", {"gate_metric": "rouge_l"})
    _ab_report(comps.registry, card.name)  # the gate refuses it on rouge_l
    forced = promote(comps, card.name, force=True)
    assert forced.promoted and forced.promotion["forced"]
    again, line, changed = promote_with_line(comps, card.name)
    assert not changed and line == "handbook-v1 is already the promoted adapter for 'handbook': nothing changed"
    assert again.promoted and again.promotion == forced.promotion  # no new gate decision recorded
    assert promote(comps, card.name).promotion == forced.promotion
    # the web app's Promote step (and the API) say the same
    core.comps.registry.promote(_register(core.comps.registry, tmp_path, "hr", {}).name)
    assert promote_in_app(core, "hr-v1") == "hr-v1 is already the promoted adapter for 'hr': nothing changed"


def test_a_card_without_a_gate_metric_is_judged_on_the_domains_recipe_from_the_data_folder(settings, tmp_path):
    comps = _comps(settings)
    card = _register(comps.registry, tmp_path, "handbook", {})  # imported without its run's result.json
    _ab_report(comps.registry, card.name)
    _user_recipe(settings, "handbook", "gate_metric: rouge_l\n")
    assert card_gate_metric(settings, comps.registry.get(card.name)) == "rouge_l"
    with pytest.raises(LoragError, match="on rouge_l"):
        promote(comps, card.name)


def test_the_gate_needs_the_questions_eval_min_questions_asks_for(settings, tmp_path):
    comps = _comps(settings)
    card = _register(comps.registry, tmp_path, "hr", {"gate_metric": "answer_f1"})
    _ab_report(comps.registry, card.name)  # 30 questions
    settings.eval.min_questions = 40
    with pytest.raises(LoragError, match=r"refused: too few questions: n=30, the gate needs at least 40") as e:
        promote(comps, card.name)
    assert "on a test set of at least 40 questions" in str(e.value)
    with pytest.raises(LoragError, match="in the Evaluation tab on a test set of at least 40 questions"):
        promote(comps, card.name, face="app")
    assert not comps.registry.get(card.name).promoted
    settings.eval.min_questions = 30
    promoted = promote(comps, card.name)
    assert promoted.promoted and promoted.promotion["n"] == 30 and promoted.promotion["min_questions"] == 30


def _thirty_compared_forty_needed(settings, tmp_path, heldout_questions: int):
    """An hr adapter whose A/B report compared 30 questions where the gate needs 40, and a held-out split of
    `heldout_questions`: (components, card, the split's file)."""
    comps = _comps(settings)
    card = _register(comps.registry, tmp_path, "hr", {"gate_metric": "answer_f1"})
    _ab_report(comps.registry, card.name)  # 30 questions
    settings.eval.min_questions = 40
    heldout = settings.datasets_dir / "hr" / "heldout.jsonl"
    heldout.parent.mkdir(parents=True)
    rows = (json.dumps({"id": f"q{i}", "question": "q?", "answer": "a"}) + "\n" for i in range(heldout_questions))
    heldout.write_text("".join(rows))
    return comps, card, heldout


def test_a_refusal_for_too_few_questions_points_at_a_test_set_when_the_held_out_split_is_smaller(settings, tmp_path):
    """The evaluation the refusal names must be able to pass: over a held-out split smaller than the gate needs, the
    command takes --testset (the CLI) or the tab is told to choose a test set (the web app)."""
    comps, card, heldout = _thirty_compared_forty_needed(settings, tmp_path, heldout_questions=9)
    with pytest.raises(LoragError) as e:
        promote(comps, card.name)
    assert "run `lorag eval --domain hr --testset FILE.jsonl --ab base,hr-v1` on a test set of at least 40" in str(
        e.value
    )
    assert e.value.hint.startswith("the held-out split the command defaults to has 9 questions, fewer than the gate")
    assert "--force promotes anyway" in e.value.hint
    with pytest.raises(
        LoragError, match=r"held-out split has 9 questions, fewer than the gate needs: choose a test set there"
    ):
        promote(comps, card.name, face="app")
    heldout.write_text(heldout.read_text() * 5)  # 45: enough, the plain command
    with pytest.raises(LoragError) as e:
        promote(comps, card.name)
    assert "run `lorag eval --domain hr --ab base,hr-v1` on a test set of at least 40" in str(e.value)


def test_a_refusal_for_too_few_questions_is_told_from_the_gates_fields_not_its_words(settings, tmp_path, monkeypatch):
    """The refusal reads the questions the gate needs from its decision: however the gate words its reason, a held-out
    split with more questions than the report had (35 > 30) but fewer than the gate needs (40) is not what the
    evaluation should default to."""
    import eval.gate

    gate = eval.gate.promotion_gate

    def reworded(*args, **kwargs):
        decision = gate(*args, **kwargs)
        return {
            **decision,
            "reason": decision["reason"].replace(
                "too few questions: n=30, the gate needs at least", "30 compared, fewer than"
            ),
        }

    monkeypatch.setattr(eval.gate, "promotion_gate", reworded)
    comps, card, heldout = _thirty_compared_forty_needed(settings, tmp_path, heldout_questions=35)
    with pytest.raises(LoragError) as e:
        promote(comps, card.name)
    assert "too few questions" not in str(e.value)
    assert "run `lorag eval --domain hr --testset FILE.jsonl --ab base,hr-v1` on a test set of at least 40" in str(
        e.value
    )
    assert e.value.hint.startswith("the held-out split the command defaults to has 35 questions, fewer than the gate")
    with pytest.raises(LoragError, match=r"held-out split has 35 questions, fewer than the gate needs: choose a test"):
        promote(comps, card.name, face="app")


def test_recipes_come_from_the_data_folder_before_the_package(settings, tmp_path):
    assert load_recipe(settings, "handbook").learning_rate == 3e-4  # the packaged recipe
    assert load_recipe(settings, "hr").learning_rate != 1e-3  # no recipe anywhere: the defaults
    _user_recipe(settings, "handbook", "learning_rate: 0.001\n")
    _user_recipe(settings, "hr", "learning_rate: 0.001\nepochs: 4\n")
    assert load_recipe(settings, "handbook").learning_rate == 1e-3
    assert (load_recipe(settings, "hr").learning_rate, load_recipe(settings, "hr").epochs) == (1e-3, 4)
    named = tmp_path / "other.yaml"
    named.write_text("learning_rate: 0.002\n")
    assert load_recipe(settings, "hr", named).learning_rate == 2e-3  # --config FILE names one outright


def test_a_broken_user_recipe_says_which_file_and_the_report_falls_back_to_answer_f1(settings):
    _user_recipe(settings, "hr", "learning_rate: [oops\n")
    with pytest.raises(LoragError, match=r"recipes/hr.yaml: not valid YAML"):
        load_recipe(settings, "hr")
    warned = []
    assert domain_gate_metric(settings, "hr", warned.append) == "answer_f1" and "recipes/hr.yaml" in warned[0]


def test_the_web_apps_training_job_uses_the_users_recipe(core, corpus):
    from ui.web_jobs import start_train

    seen = {}

    def capture(cfg, **_kw):
        seen["cfg"] = cfg
        raise LoragError("stop here")

    core.comps.ingestor().run([corpus], "hr")
    core.train_fn = capture
    _user_recipe(core.settings, "hr", "learning_rate: 0.001\n")
    job = core.jobs.wait(start_train(core, "hr", max_steps=3), 30)
    assert job["status"] == "failed" and "stop here" in job["error"]
    assert (seen["cfg"].learning_rate, seen["cfg"].max_steps) == (1e-3, 3)
    assert job["title"] == "train hr (3 steps)"
    job = core.jobs.wait(start_train(core, "hr", max_steps=1), 30)
    assert job["title"] == "train hr (1 step)" and seen["cfg"].max_steps == 1


def test_the_web_apps_synth_reads_only_the_uploaded_qa_never_samples_from_the_working_directory(
    core, corpus, tmp_path, monkeypatch
):
    from ui.web_jobs import start_synth

    core.comps.ingestor().run([corpus], "hr")
    row = {
        "id": "hr-1",
        "question": "How many days of annual leave do full-time staff receive?",
        "answer": "27 days of annual leave each year.",
        "sources": ["leave.md"],
    }
    (tmp_path / "samples" / "qa").mkdir(parents=True)
    (tmp_path / "samples" / "qa" / "hr.jsonl").write_text(json.dumps(row) + "\n")
    monkeypatch.chdir(tmp_path)  # where `lorag ui` was started, with a samples/qa/hr.jsonl lying there
    job = core.jobs.wait(start_synth(core, "hr", None, writer="cloze"), 60)
    assert job["status"] == "done", job
    assert job["result"]["curated_total"] == 0 and not (core.settings.datasets_dir / "hr" / "curated.jsonl").exists()
    uploaded = tmp_path / "upload.jsonl"
    uploaded.write_text(json.dumps(row) + "\n")
    job = core.jobs.wait(start_synth(core, "hr", uploaded, writer="cloze"), 60)
    assert job["status"] == "done" and job["result"]["curated_total"] == 1


def test_the_web_apps_jobs_take_a_domain_as_typed(core, corpus):
    """The Adapters and Evaluation tabs (and POST /v1/jobs) read a domain as every face does: 'HR' is 'hr'."""
    from assistant.names import domain_name
    from ui.web_jobs import eval_available, start_eval, start_synth, start_train

    core.comps.ingestor().run([corpus], "hr")
    core.train_fn = lambda cfg, **_kw: (_ for _ in ()).throw(LoragError(f"stop here: {cfg.domain}"))
    job = core.jobs.wait(start_train(core, " HR ", max_steps=3), 30)
    assert job["params"]["domain"] == "hr" and "stop here: hr" in job["error"], job
    # every chunk (3 picked of 10 by the store's id order, which moves with the corpus' folder, can hold no
    # cloze-able sentence)
    job = core.jobs.wait(start_synth(core, "HR", None, writer="cloze", max_chunks=50), 60)
    assert job["status"] == "done" and job["params"]["domain"] == "hr", (job.get("error"), job.get("log"))
    for start in (lambda d: start_synth(core, d), lambda d: start_train(core, d)):
        with pytest.raises(LoragError) as e:
            start("Bad Name!")
        with pytest.raises(LoragError) as want:
            domain_name("Bad Name!")
        assert str(e.value) == str(want.value)  # the one rule's message, not "use lowercase letters"
    if eval_available() is None:
        with pytest.raises(LoragError, match="nope-v9"):  # past the domain: the arm is what is wrong
            start_eval(core, "HR", "base,nope-v9")
