"""`lorag eval` through typer on fake backends (real embedded Qdrant)."""

import json

import pytest
import typer
from typer.testing import CliRunner

from assistant.errors import LoragError
from eval.gate import promotion_gate
from tests.fakes import HashingEmbedder
from tests.test_eval_support import ArmGenerator, adapter_knows, make_adapter, write_testset
from ui import cli, cli_adapters, cli_eval
from ui.components import Components

runner = CliRunner()


@pytest.fixture
def lorag(tmp_path, monkeypatch, bm25, corpus):
    """`lorag eval ...` as ui/cli.py registers it: app.add_typer(eval_app, name="eval")."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LORAG_PATHS__MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LORAG_RETRIEVAL__MIN_RELEVANCE", "0.2")
    gen = ArmGenerator(adapter_knows("hr-v1"))
    comps: dict = {}

    def factory(s):
        comps["c"] = Components(s, dense=HashingEmbedder(2048), sparse=bm25, generator=gen)
        return comps["c"]

    monkeypatch.setattr(cli.state, "factory", factory)
    monkeypatch.setattr(cli.state, "_settings", None)
    monkeypatch.setattr(cli.state, "_components", None)
    others: dict = {}
    monkeypatch.setattr(
        cli_eval, "model_loader", lambda spec: others.setdefault(spec, ArmGenerator(lambda q, a: f"{spec} says hi"))
    )
    app = typer.Typer()
    app.add_typer(cli_eval.eval_app, name="eval")
    app.add_typer(cli_adapters.adapters_app, name="adapters")

    def run(*args):
        return runner.invoke(app, list(args))

    c = Components(cli.state.settings, dense=HashingEmbedder(2048), sparse=bm25, generator=gen)
    assert c.ingestor().run([corpus], "hr").ok
    make_adapter(c.registry, tmp_path)
    c.close()
    run.gen, run.others, run.comps = gen, others, comps
    yield run
    if "c" in comps:
        comps["c"].close()


def _settings_again():
    """The settings read anew at the next command, as `lorag`'s own callback does for each."""
    if cli.state._components is not None:
        cli.state._components.close()
    cli.state._settings = cli.state._components = None


def test_ab_run_writes_a_report_attaches_it_and_feeds_the_gate(lorag, tmp_path, monkeypatch):
    testset = write_testset(tmp_path / "t.jsonl")
    r = lorag(
        "eval",
        "--domain",
        "hr",
        "--testset",
        str(testset),
        "--ab",
        "base,hr-v1",
        "--out",
        str(tmp_path / "rep"),
        "--json",
    )
    assert r.exit_code == 0, r.output + repr(r.exception)
    out = json.loads(r.output)
    assert out["attached_to"] == ["hr-v1"] and out["counts"]["generated"] == 20
    f1 = out["comparisons"][0]["metrics"]["answer_f1"]
    assert (out["comparisons"][0]["a"], out["comparisons"][0]["b"]) == ("base", "hr-v1") and f1["ci_low"] > 0
    assert (tmp_path / "rep" / "report.html").is_file() and (tmp_path / "rep" / "plots" / "diffs.png").is_file()
    registry = lorag.comps["c"].registry
    card = registry.get("hr-v1")
    rep = card.reports[-1]
    assert rep["run_id"] == out["run_id"] and rep["report_html"] == str(tmp_path / "rep" / "report.html")
    assert rep["vs"]["base"]["answer_f1"]["ci_low"] == f1["ci_low"] and rep["means"]["answer_f1"] > 0.9
    assert out["min_questions"] == 20 and out["verdict"][0].startswith("hr-v1 vs base: inconclusive")  # the default
    # a report that called itself inconclusive never passes the gate, even where the caller asks fewer questions
    decision = promotion_gate(card, registry, "answer_f1", min_questions=10)
    assert not decision["ok"] and decision["min_questions"] == 20 and decision["reason"].startswith("too few questions")
    # the same run with the minimum lowered to the test set's 10 questions (answers from the cache) feeds the gate
    monkeypatch.setenv("LORAG_EVAL__MIN_QUESTIONS", "10")
    _settings_again()
    r = lorag("eval", "-d", "hr", "-t", str(testset), "--ab", "base,hr-v1", "--out", str(tmp_path / "rep2"), "--json")
    out = json.loads(r.output)
    assert out["min_questions"] == 10 and out["verdict"][0].startswith("hr-v1 answers better than base")
    decision = promotion_gate(registry.get("hr-v1"), registry, "answer_f1", min_questions=10)
    assert decision["ok"] and decision["against"] == "base" and decision["run_id"] == out["run_id"]
    monkeypatch.delenv("LORAG_EVAL__MIN_QUESTIONS")
    _settings_again()

    # the human summary, from the cache this time
    r = lorag("eval", "-d", "hr", "-t", str(testset), "--ab", "base,hr-v1", "--limit", "4")
    assert r.exit_code == 0, r.output
    assert (
        "answer_f1 *" in r.output
        and "A = base, B = hr-v1" in r.output
        and "B − A" in r.output
        and "0 generated, 8 from cache" in r.output
    )
    assert "report: " in r.output and "reports" in r.output  # default folder under <data_dir>/reports/
    assert lorag.gen.n_generated == 20


def test_one_question_is_inconclusive_and_promote_refuses_it(lorag, tmp_path, monkeypatch):
    """A 1-row test set: the adapter answers it and base does not, a CI of one point above zero; the verdict, the
    report and the gate say it is too few questions (eval.min_questions, default 20), and --force still promotes."""
    one = write_testset(tmp_path / "one_row.jsonl", 1, unanswerable=False)
    r = lorag("eval", "--domain", "hr", "--ab", "base,hr-v1", "--testset", str(one), "--out", str(tmp_path / "rep"))
    assert r.exit_code == 0, r.output + repr(r.exception)
    line = "hr-v1 vs base: inconclusive, too few questions: n=1, the gate needs at least 20 (eval.min_questions)"
    assert line in r.output and "answers better" not in r.output
    assert line in (tmp_path / "rep" / "report.html").read_text()
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["min_questions"] == 20
    r = lorag("adapters", "promote", "hr-v1")
    assert r.exit_code == 1 and isinstance(r.exception, LoragError)
    assert "refused: too few questions: n=1, the gate needs at least 20" in str(r.exception)
    assert not lorag.comps["c"].registry.get("hr-v1").promoted
    r = lorag("adapters", "promote", "hr-v1", "--force")
    assert r.exit_code == 0 and "promoted hr-v1 (forced; recorded on the card): too few questions" in r.output

    monkeypatch.setenv("LORAG_EVAL__MIN_QUESTIONS", "1")  # the user's own choice: one question decides
    monkeypatch.setattr(cli.state, "_settings", None)
    lorag.comps.pop("c").close()
    monkeypatch.setattr(cli.state, "_components", None)
    r = lorag("eval", "--domain", "hr", "--ab", "base,hr-v1", "--testset", str(one))
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "hr-v1 answers better than base: +" in r.output and ", 1 question." in r.output


def test_model_arm_and_default_testset(lorag, tmp_path):
    r = lorag("eval", "--domain", "hr", "--ab", "base,model:tiny")
    assert r.exit_code == 1 and isinstance(r.exception, LoragError)
    assert "held-out split" in str(r.exception) and "heldout.jsonl" in str(r.exception)
    heldout = tmp_path / "data" / "datasets" / "hr" / "heldout.jsonl"
    heldout.parent.mkdir(parents=True)
    write_testset(heldout, 3, unanswerable=False)
    r = lorag("eval", "--domain", "hr", "--ab", "base,model:tiny", "--json", "--no-cache")
    assert r.exit_code == 0, r.output + repr(r.exception)
    out = json.loads(r.output)
    assert out["attached_to"] == [] and out["counts"]["generated"] == 6
    assert lorag.others["tiny"].n_generated == 3


def test_user_errors(lorag, tmp_path):
    testset = write_testset(tmp_path / "t.jsonl", 2)
    r = lorag("eval", "--domain", "hr", "--testset", str(testset), "--ab", "base,hr-v7")
    assert isinstance(r.exception, LoragError) and "no adapter named 'hr-v7'" in str(r.exception)
    r = lorag("eval", "--domain", "nope", "--testset", str(testset), "--ab", "base,hr-v1")
    assert isinstance(r.exception, LoragError) and "unknown domain 'nope'" in str(r.exception)
    r = lorag("eval", "--domain", "hr")
    assert isinstance(r.exception, LoragError) and "--ab" in str(r.exception)
    r = lorag("eval")
    assert r.exit_code == 0 and "import" in r.output and "robustness" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Fine question?", "answer": "x"}\n{"question": "no answer?"}\n')
    r = lorag("eval", "--domain", "hr", "--testset", str(bad), "--ab", "base,hr-v1")
    assert isinstance(r.exception, LoragError) and "line 2: answer: missing" in str(r.exception)


def test_import_csv_command(lorag, tmp_path):
    csv = tmp_path / "qa.csv"
    csv.write_text("question,answer,sources\nHow many days?,27 days,leave.md\nWho approves overtime?,The team lead.,\n")
    r = lorag("eval", "import", str(csv), "--out", str(tmp_path / "qa.jsonl"))
    assert r.exit_code == 0, r.output
    assert "wrote 2 rows" in r.output
    lines = [json.loads(x) for x in (tmp_path / "qa.jsonl").read_text().splitlines()]
    assert lines[0] == {
        "id": "qa-001",
        "question": "How many days?",
        "answer": "27 days",
        "sources": ["leave.md"],
        "tags": [],
    }
    csv.write_text("question,answer\nok?,yes\n,no question\n")
    r = lorag("eval", "import", str(csv), "--out", str(tmp_path / "qa2.jsonl"))
    assert isinstance(r.exception, LoragError) and str(r.exception) == (  # the file named, the reason in words
        f"{csv}: 1 bad row(s), nothing written:\n  line 3: question: empty (at least 3 characters)"
    )


def test_robustness_command(lorag, tmp_path):
    testset = write_testset(tmp_path / "t.jsonl", 2, unanswerable=False)
    r = lorag(
        "eval",
        "robustness",
        "--domain",
        "hr",
        "--ab",
        "base,hr-v1",
        "--testset",
        str(testset),
        "--max-k",
        "3",
        "--max-distractors",
        "2",
        "--out",
        str(tmp_path / "rob"),
    )
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert (tmp_path / "rob" / "robustness.png").is_file() and (tmp_path / "rob" / "robustness.html").is_file()
    data = json.loads((tmp_path / "rob" / "robustness.json").read_text())
    assert data["top_k"]["x"] == [1, 2, 3] and data["distractors"]["x"] == [0, 1, 2]
    assert [p["mean"] for p in data["distractors"]["arms"]["hr-v1"]["answer_f1"]] == [1.0, 1.0, 1.0]
    assert "distractors" in r.output and "plot:" in r.output


def test_a_refused_promotion_points_at_a_test_set_when_the_domain_held_nothing_out(lorag, tmp_path):
    """With no held-out split (synth from one document, no curated Q&A) the refusal's command takes --testset,
    which works there; once the domain has held-out questions, the plain command."""
    r = lorag("adapters", "promote", "hr-v1")
    assert r.exit_code == 1 and isinstance(r.exception, LoragError)
    assert "run `lorag eval --domain hr --testset FILE.jsonl --ab base,hr-v1`" in str(r.exception)
    heldout = tmp_path / "data" / "datasets" / "hr" / "heldout.jsonl"
    heldout.parent.mkdir(parents=True)
    write_testset(heldout, 3, unanswerable=False)
    r = lorag("adapters", "promote", "hr-v1")
    assert r.exit_code == 1 and "run `lorag eval --domain hr --ab base,hr-v1`" in str(r.exception)
