"""The A/B runner and reports on fakes (real embedded Qdrant, hashing embedder, scripted generators)."""

import json

import pytest

from eval.arms import parse_arms
from eval.cache import EvalCache
from eval.metrics import MetricSuite
from eval.report_build import build_report
from eval.report_compare import comparison
from eval.report_summary import card_summary
from eval.report_write import write_report
from eval.runner import run_ab
from eval.testset import TestItem, describe_testset, load_testset
from tests.test_eval_support import UNANSWERABLE, ArmGenerator, adapter_knows, make_adapter, write_testset

GEN = {"max_new_tokens": 64, "temperature": 0.0, "repetition_penalty": 1.1}


@pytest.fixture
def hr(components, corpus, tmp_path):
    assert components.ingestor().run([corpus], "hr").ok
    make_adapter(components.registry, tmp_path)
    return components


def _run(comps, items, arms, gen, cache=None, suite=None, generation=GEN, **kw):
    return run_ab(
        items,
        arms,
        retriever=comps.retriever,
        domain="hr",
        generator_for=lambda arm: gen,
        suite=suite or MetricSuite(use_ragas=False),
        cache=cache or EvalCache(None),
        top_k=3,
        generation=generation,
        **kw,
    )


def test_every_arm_answers_from_identical_passages_in_shared_batches(hr, tmp_path):
    items = load_testset(write_testset(tmp_path / "t.jsonl", 5))
    arms = parse_arms("base,hr-v1", registry=hr.registry, base_model="fake")
    gen = ArmGenerator(adapter_knows("hr-v1"))
    res = _run(hr, items, arms, gen, batch_size=4)
    # 5 answerable questions x 2 arms, batches of 2 questions holding both arms
    assert [len(b) for b in gen.batches] == [4, 4, 2]
    for batch in gen.batches:
        for (msg_a, ad_a), (msg_b, ad_b) in zip(batch[::2], batch[1::2]):
            assert msg_a == msg_b and (ad_a, ad_b) == (None, "hr-v1")
    q0 = res.questions[0]
    assert q0.relevant and q0.passages[0].source == "leave.md" and len(q0.passages) == 3
    assert q0.answers["hr-v1"] == "Full-time staff receive 27 days of annual leave each year."
    assert {k: q0.answer_scores["hr-v1"].scores[k] for k in ("answer_f1", "exact_match")} == {
        "answer_f1": 1.0,
        "exact_match": 1.0,
    }
    assert q0.answer_scores["base"].scores["answer_f1"] == 0.0
    # a question without a relevant passage gets the serving reply for every arm, no generation
    last = res.questions[-1]
    assert last.item.question == UNANSWERABLE and not last.relevant
    assert set(last.source.values()) == {"fixed"} and last.answers["base"] == last.answers["hr-v1"]
    assert res.counts == {"questions": 6, "generated": 10, "cached": 0, "fixed": 2, "not_relevant": 1}


class RowByRowGenerator(ArmGenerator):
    """Ends a batch's answers one after the other, saying so (on_done); records the progress seen meanwhile."""

    def __init__(self, answer, seen):  # noqa: ANN001
        super().__init__(answer)
        self.seen = seen  # the progress calls, shared with the test's recorder
        self.inside: list[list[tuple[str, int, int]]] = []  # the progress calls made while each batch ran

    def generate_batch(self, batch, *, adapters=None, max_new_tokens=None, on_done=None):  # noqa: ANN001
        before = len(self.seen)
        out = super().generate_batch(batch, adapters=adapters, max_new_tokens=max_new_tokens)
        for i in reversed(range(len(batch))):  # any order: the count is of answers ended
            if on_done is not None:
                on_done(i)
        self.inside.append(self.seen[before:])
        return out


def test_the_generate_count_moves_with_each_answer_not_each_batch(hr, tmp_path):
    """2 questions x 2 arms in one batch: the progress counts 1/4, 2/4, 3/4, 4/4 as the answers end, while the
    batch runs (not 0/4 until it returns); a generator that cannot say when each answer ends counts the batch."""
    items = load_testset(write_testset(tmp_path / "t.jsonl", 2))
    arms = parse_arms("base,hr-v1", registry=hr.registry, base_model="fake")
    seen: list[tuple[str, int, int]] = []
    gen = RowByRowGenerator(adapter_knows("hr-v1"), seen)
    _run(hr, items, arms, gen, progress=lambda *p: seen.append(p))
    generate = [p for p in seen if p[0] == "generate"]
    assert [len(b) for b in gen.batches] == [4]
    assert generate == [("generate", n, 4) for n in range(5)]  # no repeat of 4/4 once the batch returns
    assert gen.inside == [[("generate", n, 4) for n in range(1, 5)]]  # each counted while the batch ran
    seen.clear()
    _run(hr, items, arms, ArmGenerator(adapter_knows("hr-v1")), progress=lambda *p: seen.append(p))
    assert [p for p in seen if p[0] == "generate"] == [("generate", 0, 4), ("generate", 4, 4)]


class CutAtLimitGenerator(ArmGenerator):
    """As the in-process model on an accelerator: the answer that ends early is told while the batch runs, the
    others (cut at the token limit) all at once when it returns."""

    def generate_batch(self, batch, *, adapters=None, max_new_tokens=None, on_done=None):  # noqa: ANN001
        out = super().generate_batch(batch, adapters=adapters, max_new_tokens=max_new_tokens)
        if on_done is not None:
            on_done(0)
            for i in range(1, len(batch)):  # the burst at the end of the batch
                on_done(i)
        return out


def test_each_phase_ends_at_n_of_n_before_the_next_and_scoring_counts_retrieval_too(hr, tmp_path):
    """retrieve, generate, score in turn, each ending at done == total before the next one's first count, however the
    answers end (one early, three in a burst at the token limit); the scoring phase counts the 4 answers, then the 2
    questions' retrieval scores, so it does not sit at 4/4 while retrieval is scored."""
    items = load_testset(write_testset(tmp_path / "t.jsonl", 2, unanswerable=False))
    arms = parse_arms("base,hr-v1", registry=hr.registry, base_model="fake")
    seen: list[tuple[str, int, int]] = []
    _run(hr, items, arms, CutAtLimitGenerator(adapter_knows("hr-v1")), progress=lambda *p: seen.append(p))
    stages = [s for s, _, _ in seen]
    assert stages == sorted(stages, key=["retrieve", "generate", "score"].index)  # phases in turn, never back
    for stage, total in (("retrieve", 2), ("generate", 4), ("score", 6)):
        counts = [(d, t) for s, d, t in seen if s == stage]
        done = [d for d, _ in counts]
        assert done == sorted(done) and done[-1] == total and {t for _, t in counts} == {total}, (stage, counts)
    assert [p for p in seen if p[0] == "generate"] == [("generate", n, 4) for n in range(5)]
    assert [p for p in seen if p[0] == "score"] == [("score", n, 6) for n in range(7)]


def test_the_fixed_nothing_relevant_reply_scores_as_an_abstention(hr, tmp_path):
    """A question under retrieval.min_relevance whose reference source is still among the passages: every arm gets
    the fixed reply, which counts as abstained and is left out of unsupported (the metrics' own definitions)."""
    probe = hr.retriever.retrieve(UNANSWERABLE, "hr", top_k=3)
    assert not probe.relevant and probe.passages
    item = TestItem(id="q", question=UNANSWERABLE, answer="n/a", sources=[probe.passages[0].source])
    arms = parse_arms("base,hr-v1", registry=hr.registry, base_model="fake")
    [q] = _run(hr, [item], arms, ArmGenerator(adapter_knows("hr-v1"))).questions
    assert set(q.source.values()) == {"fixed"}
    for arm in ("base", "hr-v1"):
        scores = q.answer_scores[arm].scores
        assert (scores["abstained"], scores["unsupported"], scores["right_source"]) == (1.0, None, 0.0), arm


def test_report_files_are_written_and_well_formed(hr, tmp_path):
    path = write_testset(tmp_path / "t.jsonl")
    items = load_testset(path)
    arms = parse_arms("base,hr-v1", registry=hr.registry, base_model="fake")
    res = _run(hr, items, arms, ArmGenerator(adapter_knows("hr-v1")), suite=MetricSuite(embedder=hr.dense))
    report = build_report(res, testset=describe_testset(path, items), run_id="run-1")
    files = write_report(report, tmp_path / "rep")
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    for k in (
        "schema",
        "run_id",
        "domain",
        "testset",
        "arms",
        "baseline",
        "gate_metric",
        "means",
        "retrieval",
        "comparisons",
        "failures",
        "disagreements",
        "questions",
        "counts",
        "timings_s",
        "metric_help",
        "files",
    ):
        assert k in data, k
    assert data["baseline"] == "base" and [a["label"] for a in data["arms"]] == ["base", "hr-v1"]
    assert set(data["metrics"]["answer"]) >= {
        "answer_f1",
        "exact_match",
        "rouge_l",
        "string_presence",
        "semantic_similarity",
    }
    assert data["means"]["hr-v1"]["answer_f1"]["n"] == 11
    assert all(q["answers"]["hr-v1"]["scores"]["answer_f1"] == 1.0 for q in data["questions"] if q["relevant"])
    assert data["counts"]["not_relevant"] == 1  # the unanswerable one got the fixed reply
    f1 = comparison(data, "base", "hr-v1")["answer_f1"]
    assert f1["diff"] > 0.5 and f1["ci_low"] > 0 and f1["n"] == 11
    assert comparison(data, "hr-v1", "base")["answer_f1"]["ci_high"] == pytest.approx(-f1["ci_low"])
    assert data["retrieval"]["source_recall"]["n"] == 10 and data["retrieval"]["source_recall"]["mean"] > 0.5
    assert data["failures"]["retrieval"]["context_precision"]["n/a"] == 11  # no reference contexts in this set
    top = data["disagreements"][0]
    assert (top["a"], top["b"], top["metric"]) == ("base", "hr-v1", "answer_f1") and len(top["items"]) == 10
    q = data["questions"][0]
    assert set(q["answers"]) == {"base", "hr-v1"} and q["passages"][0]["ref"].startswith("leave.md")
    for p in files["plots"].values():
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.startswith("<!doctype html>") and html.count("data:image/png;base64,") == 3
    assert "Failed scores" in html and "answers side by side" in html and "&lt;" not in q["question"]
    summary = card_summary(data, "hr-v1")
    assert summary["vs"]["base"]["answer_f1"]["ci_low"] == f1["ci_low"] and summary["report_html"] == files["html"]
    assert summary["min_questions"] == data["min_questions"]  # the gate holds a report to its own minimum too


def test_html_escapes_model_output(hr, tmp_path):
    items = load_testset(write_testset(tmp_path / "t.jsonl", 2, unanswerable=False))
    arms = parse_arms("base,hr-v1", registry=hr.registry, base_model="fake")
    res = _run(hr, items, arms, ArmGenerator(lambda q, a: "<script>alert(1)</script>"))
    report = build_report(res, testset={"path": "t", "n": 2}, run_id="r")
    write_report(report, tmp_path / "rep")
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_rerun_generates_nothing_and_only_changes_are_recomputed(hr, tmp_path):
    items = load_testset(write_testset(tmp_path / "t.jsonl", 4, unanswerable=False))
    arms = parse_arms("base,hr-v1", registry=hr.registry, base_model="fake")
    cache_file = tmp_path / "cache.jsonl"
    gen = ArmGenerator(adapter_knows("hr-v1"))
    first = _run(hr, items, arms, gen, cache=EvalCache(cache_file))
    assert first.counts["generated"] == 8 and gen.n_generated == 8
    second = _run(hr, items, arms, gen, cache=EvalCache(cache_file))
    assert second.counts["generated"] == 0 and second.counts["cached"] == 8 and gen.n_generated == 8
    assert [q.answers for q in second.questions] == [q.answers for q in first.questions]
    # a new adapter version (other data hash) is a new arm identity: only its answers are generated
    make_adapter(hr.registry, tmp_path, version=2, data_hash="other")
    arms2 = parse_arms("base,hr-v2", registry=hr.registry, base_model="fake")
    third = _run(hr, items, arms2, gen, cache=EvalCache(cache_file))
    assert third.counts["generated"] == 4 and {a for _, a in gen.batches[-1]} == {"hr-v2"}
    # other generation settings change every answer's key
    fourth = _run(hr, items, arms, gen, cache=EvalCache(cache_file), generation={**GEN, "max_new_tokens": 32})
    assert fourth.counts["generated"] == 8
    # one more question: only its two answers are new
    items5 = load_testset(write_testset(tmp_path / "t5.jsonl", 5, unanswerable=False))
    assert _run(hr, items5, arms, gen, cache=EvalCache(cache_file)).counts["generated"] == 2
    # a torn last line (killed mid-write) is ignored
    with cache_file.open("a") as fh:
        fh.write('{"k": "abc", "v": {"ans')
    assert _run(hr, items, arms, gen, cache=EvalCache(cache_file)).counts["generated"] == 0


def test_model_arms_use_their_own_generator(hr, tmp_path):
    items = load_testset(write_testset(tmp_path / "t.jsonl", 3, unanswerable=False))
    arms = parse_arms("base,model:other-model", registry=hr.registry, base_model="fake")
    assert arms[1].kind == "model" and arms[1].spec == "other-model" and arms[1].adapter is None
    main = ArmGenerator(lambda q, a: "main model answer")
    other = ArmGenerator(lambda q, a: "other model answer")
    res = run_ab(
        items,
        arms,
        retriever=hr.retriever,
        domain="hr",
        generator_for=lambda arm: other if arm.kind == "model" else main,
        suite=MetricSuite(use_ragas=False),
        cache=EvalCache(None),
        top_k=2,
        generation=GEN,
    )
    assert main.n_generated == 3 and other.n_generated == 3
    assert {q.answers["model:other-model"] for q in res.questions} == {"other model answer"}


def test_arm_parsing_errors(hr):
    from assistant.errors import LoragError

    with pytest.raises(LoragError, match="at least two arms"):
        parse_arms("base", registry=hr.registry, base_model="m")
    with pytest.raises(LoragError, match="appears twice"):
        parse_arms("base,base", registry=hr.registry, base_model="m")
    with pytest.raises(LoragError, match="no adapter named 'hr-v9'"):
        parse_arms("base,hr-v9", registry=hr.registry, base_model="m")
    with pytest.raises(LoragError, match="names no model"):
        parse_arms("base,model:", registry=hr.registry, base_model="m")
    # the bare domain name means its promoted version: none yet is an error naming the versions
    with pytest.raises(
        LoragError, match="domain 'hr' has no promoted adapter for its name to pick; its versions: hr-v1"
    ):
        parse_arms("base,hr", registry=hr.registry, base_model="m")
    hr.registry.promote("hr-v1")
    assert parse_arms("base,hr", registry=hr.registry, base_model="m")[1].label == "hr-v1"


def test_robustness_sweeps_top_k_and_distractors(hr, tmp_path, monkeypatch):
    from eval import robustness
    from eval.robustness import run_robustness, write_robustness

    items = load_testset(write_testset(tmp_path / "t.jsonl", 3, unanswerable=False))
    arms = parse_arms("base,hr-v1", registry=hr.registry, base_model="fake")
    seen = []

    def answer(q, a):
        return adapter_knows("hr-v1")(q, a)

    gen = ArmGenerator(answer)
    asked = []
    real_retrieve_all = robustness.retrieve_all
    monkeypatch.setattr(
        robustness,
        "retrieve_all",
        lambda r, *a, **k: asked.append(r.settings.drop_unrelated) or real_retrieve_all(r, *a, **k),
    )
    res = run_robustness(
        items,
        arms,
        retriever=hr.retriever,
        store=hr.store,
        domain="hr",
        generator_for=lambda arm: gen,
        suite=MetricSuite(use_ragas=False),
        cache=EvalCache(None),
        generation=GEN,
        ks=(1, 2, 3),
        distractors=(0, 1, 2),
        base_k=2,
    )
    # the top-k sweep gets every passage up to its largest k (retrieval.drop_unrelated off there); the app's stays on
    assert asked == [False] and hr.retriever.settings.drop_unrelated
    assert res["top_k"]["x"] == [1, 2, 3] and res["distractors"]["x"] == [0, 1, 2]
    assert [p["mean"] for p in res["top_k"]["arms"]["hr-v1"]["answer_f1"]] == [1.0, 1.0, 1.0]
    assert [p["n"] for p in res["distractors"]["arms"]["base"]["answer_f1"]] == [3, 3, 3]
    # 3 questions x 6 conditions x 2 arms; top-k 2 and 0 distractors are the same prompt: generated once
    assert res["counts"]["answers"] == 36 and res["counts"]["duplicates"] == 6 and gen.n_generated == 30
    # distractors: the prompt for d=2 holds 4 passages; none of the added ones comes from the question's source
    for batch in gen.batches:
        for msg, _ in batch:
            seen.append(msg)
    four = [m for m in seen if "[4] (" in m and "[5] (" not in m]
    assert four
    files = write_robustness(res, tmp_path / "rob", "answer_f1")
    assert open(files["png"], "rb").read(4) == b"\x89PNG"
    assert json.loads(open(files["json"]).read())["plot_metric"] == "answer_f1"
