"""Metric wiring on fakes: known answers give known scores; judge parse failures are counted.

These import ragas (about 10-20 s, once per test session)."""

import json
import math

import pytest

from eval.judge import Judge, JudgeParseError, parse_structured
from eval.metric_catalog import FAILED, NA
from eval.metrics import MetricSuite
from tests.fakes import HashingEmbedder


@pytest.fixture(scope="module")
def suite():
    return MetricSuite(embedder=HashingEmbedder(256))


REF = "Full-time staff receive 27 days of annual leave."


def _row(answer, reference=REF, contexts=("Full-time staff receive 27 days of annual leave each year.",)):
    return {
        "question": "How much annual leave do full-time staff get?",
        "answer": answer,
        "reference": reference,
        "contexts": list(contexts),
    }


def test_offline_answer_metrics_on_known_answers(suite):
    assert suite.answer_metrics == [
        "answer_f1",
        "exact_match",
        "right_source",
        "abstained",
        "unsupported",
        "rouge_l",
        "string_presence",
        "semantic_similarity",
    ]
    same, disjoint, partial = suite.score_answers(
        [_row(REF), _row("Purple elephants dance quietly."), _row("27 days [1].")]
    )
    assert {k: v for k, v in same.scores.items() if v is not None} == pytest.approx(
        {"answer_f1": 1.0, "exact_match": 1.0, "rouge_l": 1.0, "string_presence": 1.0, "semantic_similarity": 1.0}
    )
    assert same.issues == {"right_source": "n/a", "abstained": "n/a", "unsupported": "n/a"}  # no passages, no sources
    assert disjoint.scores["answer_f1"] == 0 and disjoint.scores["exact_match"] == 0
    assert disjoint.scores["rouge_l"] == 0 and disjoint.scores["string_presence"] == 0
    assert disjoint.scores["semantic_similarity"] < 0.3
    # "27 days 1" vs 8 reference tokens: 2 shared -> P 2/3, R 2/8
    assert partial.scores["answer_f1"] == pytest.approx(2 * (2 / 3) * (2 / 8) / ((2 / 3) + (2 / 8)))
    assert 0 < partial.scores["rouge_l"] < 1 and partial.scores["string_presence"] == 0
    # the reference contained verbatim (after normalisation) counts as present
    assert (
        suite.score_answers([_row("As the handbook says: full-time staff receive 27 days of annual leave!")])[0].scores[
            "string_presence"
        ]
        == 1.0
    )


def test_retrieval_metrics_with_reference_contexts_and_source_ids(suite):
    ctx = "Full-time staff receive 27 days of annual leave each year."
    rows = [
        {
            "question": "q",
            "reference": REF,
            "contexts": [ctx, "Parking permits cost 12 euros."],
            "ids": ["leave.md", "parking.txt"],
            "reference_contexts": [ctx],
            "reference_ids": ["leave.md"],
        },
        {
            "question": "q",
            "reference": REF,
            "contexts": ["Parking permits cost 12 euros."],
            "ids": ["parking.txt"],
            "reference_contexts": [],
            "reference_ids": ["leave.md"],
        },
    ]
    hit, miss = suite.score_retrieval(rows)
    assert hit.scores == pytest.approx(
        {"context_precision": 1.0, "context_recall": 1.0, "source_precision": 0.5, "source_recall": 1.0}
    )
    assert miss.scores["source_precision"] == 0.0 and miss.scores["source_recall"] == 0.0
    assert miss.scores["context_precision"] is None and miss.issues["context_precision"] == NA
    # relevant passage ranked second: average precision 0.5
    rows[0]["contexts"].reverse()
    assert suite.score_retrieval(rows[:1])[0].scores["context_precision"] == pytest.approx(0.5)


def fake_judge_reply(prompt: str, *, verdicts=(1, 0), broken: bool = False) -> str:
    """Scripted judge: answers each Ragas prompt by the output schema it asks for."""
    if broken:
        return "I think the answer is fine, sorry, no JSON today."
    if "NLIStatementOutput" in prompt:
        return json.dumps(
            {"statements": [{"statement": f"s{i}", "reason": "r", "verdict": v} for i, v in enumerate(verdicts)]}
        )
    if "StatementGeneratorOutput" in prompt:
        return "Sure! ```json\n" + json.dumps({"statements": [f"s{i}" for i in range(len(verdicts))]}) + "\n```"
    if "AnswerRelevanceOutput" in prompt:
        return json.dumps({"question": "How much annual leave do full-time staff get?", "noncommittal": 0})
    if "ContextRecallOutput" in prompt:
        return json.dumps(
            {
                "classifications": [
                    {"statement": "a", "reason": "r", "attributed": 1},
                    {"statement": "b", "reason": "r", "attributed": 0},
                    {"statement": "c", "reason": "r", "attributed": 1},
                    {"statement": "d", "reason": "r", "attributed": 1},
                ]
            }
        )
    raise AssertionError("unexpected prompt: " + prompt[:200])


def test_judge_metrics_with_a_scripted_judge():
    judge = Judge(fake_judge_reply, name="scripted")
    suite = MetricSuite(embedder=HashingEmbedder(256), judge=judge)
    assert {"faithfulness", "answer_relevancy"} <= set(suite.answer_metrics)
    assert "llm_context_recall" in suite.retrieval_metrics
    [s] = suite.score_answers([_row(REF)])
    assert s.scores["faithfulness"] == pytest.approx(0.5)  # verdicts 1, 0
    assert s.scores["answer_relevancy"] == pytest.approx(1.0)  # regenerated question == the question
    [r] = suite.score_retrieval(
        [
            {
                "question": "q",
                "reference": REF,
                "contexts": ["c"],
                "ids": [],
                "reference_contexts": [],
                "reference_ids": [],
            }
        ]
    )
    assert r.scores["llm_context_recall"] == pytest.approx(0.75)
    assert judge.calls == 2 + 3 + 1 and not judge.parse_failures


def test_unparseable_judge_output_is_counted_not_dropped():
    judge = Judge(lambda p: fake_judge_reply(p, broken=True), name="broken")
    suite = MetricSuite(embedder=HashingEmbedder(256), judge=judge)
    [s] = suite.score_answers([_row(REF)])
    assert s.scores["faithfulness"] is None and s.issues["faithfulness"].startswith(FAILED)
    assert "StatementGeneratorOutput" in s.issues["faithfulness"]
    assert s.scores["answer_relevancy"] is None and s.issues["answer_relevancy"].startswith(FAILED)
    assert s.scores["answer_f1"] == 1.0  # the offline metrics are unaffected
    assert judge.parse_failures["StatementGeneratorOutput"] == 1


def test_a_metric_returning_nan_counts_as_failed_and_other_exceptions_as_errors():
    def reply(prompt):
        if "StatementGeneratorOutput" in prompt:
            return json.dumps({"statements": []})  # ragas: no statements -> NaN
        raise ConnectionError("endpoint down")

    suite = MetricSuite(embedder=HashingEmbedder(256), judge=Judge(reply, name="flaky"))
    [s] = suite.score_answers([_row(REF)])
    assert s.scores["faithfulness"] is None and s.issues["faithfulness"].startswith(FAILED)
    assert s.issues["answer_relevancy"].startswith("error: ConnectionError")
    assert s.has_errors


def test_parse_structured_extracts_json_from_chatty_output():
    from pydantic import BaseModel

    class Out(BaseModel):
        statements: list[str]

    assert parse_structured('Here you go: {"statements": ["a", "b"]} hope it helps', Out).statements == ["a", "b"]
    assert parse_structured('["x"]', Out).statements == ["x"]  # bare list for a one-list schema
    assert parse_structured('{"wrong": 1} then {"statements": []}', Out).statements == []
    with pytest.raises(JudgeParseError, match="Out: JSON does not match the schema"):
        parse_structured('{"statements": "nope"}', Out)
    with pytest.raises(JudgeParseError, match="no JSON value found"):
        parse_structured("nothing here", Out)


def test_suite_without_ragas_keeps_plain_metrics_only():
    s = MetricSuite(use_ragas=False)
    assert (
        s.answer_metrics == ["answer_f1", "exact_match", "right_source", "abstained", "unsupported"]
        and s.retrieval_metrics == []
    )
    [r] = s.score_answers([_row("27 days")])
    assert math.isclose(r.scores["answer_f1"], 2 * 1 * (2 / 8) / (1 + 2 / 8))


def test_openai_compatible_judge_speaks_chat_completions():
    import httpx

    from assistant.errors import LoragError
    from eval.judge import check_judge, openai_judge

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((str(request.url), request.headers.get("authorization"), body))
        if body["model"] == "down":
            return httpx.Response(503, text="overloaded")
        reply = (
            fake_judge_reply(body["messages"][0]["content"])
            if "Output:" in body["messages"][0]["content"]
            else '{"ok": true}'
        )
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": reply}}]})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    judge = openai_judge("http://judge.local/v1/", "big-judge", "sk-test", client=client)
    check_judge(judge)
    suite = MetricSuite(embedder=HashingEmbedder(256), judge=judge)
    [s] = suite.score_answers([_row(REF)])
    assert s.scores["faithfulness"] == pytest.approx(0.5) and s.scores["answer_relevancy"] == pytest.approx(1.0)
    url, auth, body = seen[-1]
    assert url == "http://judge.local/v1/chat/completions" and auth == "Bearer sk-test"
    assert body["model"] == "big-judge" and body["temperature"] == 0
    assert judge.identity()["name"] == "big-judge@http://judge.local/v1/"
    down = openai_judge("http://judge.local/v1", "down", client=client)
    n = len(seen)
    with pytest.raises(LoragError, match=r"HTTP 503: overloaded \(after 2 retries\)"):
        check_judge(down)
    assert len(seen) - n == 3  # a 503 is retried with backoff (the engine client's policy)
    [s] = MetricSuite(embedder=HashingEmbedder(256), judge=down).score_answers([_row(REF)])
    assert s.issues["faithfulness"].startswith("error: EngineError") and s.has_errors  # not cached: retried next run


def test_local_judge_uses_the_generator_with_one_user_message():
    from eval.judge import local_judge
    from tests.fakes import FakeGenerator

    gen = FakeGenerator(lambda messages: fake_judge_reply(messages[-1]["content"], verdicts=(1, 1, 1)))
    judge = local_judge(gen, name="tiny")
    [s] = MetricSuite(embedder=HashingEmbedder(256), judge=judge).score_answers([_row(REF)])
    assert s.scores["faithfulness"] == 1.0
    assert [m["role"] for m in gen.calls[0][0]] == ["user"] and gen.calls[0][1] is None


def test_grounding_metrics_right_source_abstention_and_unsupported():
    from assistant.abstention import no_context_message
    from eval.offline_metrics import grounding

    passages = [
        {"n": 1, "source": "parking.txt", "text": "Parking permits cost 12 euros per month."},
        {"n": 2, "source": "leave.md", "text": "Full-time staff receive 27 days of annual leave each year."},
    ]
    row = {
        "answer": "Full-time staff receive 27 days of annual leave [2].",
        "passages": passages,
        "reference_ids": ["leave.md"],
    }
    assert grounding(row) == {"right_source": 1.0, "abstained": 0.0, "unsupported": 0.0}
    assert grounding({**row, "answer": "Permits cost 12 euros [1]."})["right_source"] == 0.0
    assert grounding({**row, "answer": "Staff get 27 days of annual leave."})["right_source"] == 1.0  # cited by overlap
    abst = grounding({**row, "answer": "The documents do not contain the answer."})
    assert abst == {"right_source": 0.0, "abstained": 1.0, "unsupported": None}
    assert (
        grounding({**row, "answer": "The documents do not contain the answer.", "passages": passages[:1]})["abstained"]
        is None
    )
    assert grounding({**row, "answer": "Purple elephants dance quietly on Mars tonight [1]."})["unsupported"] == 1.0
    # lorag's own reply when no passage reached retrieval.min_relevance (no model ran) is an abstention too
    for domains in (["hr"], ["hr", "it"]):
        assert grounding({**row, "answer": no_context_message(domains)}) == {
            "right_source": 0.0,
            "abstained": 1.0,
            "unsupported": None,
        }
    assert grounding({**row, "reference_ids": []})["right_source"] is None
    # an answer that only rephrases the question (the chat's rule: it draws on no passage)
    asked = {**row, "question": "How many days of annual leave do full-time staff receive each year?"}
    assert grounding({**asked, "answer": "Full-time staff receive annual leave each year."})["right_source"] == 0.0
    assert grounding({**asked, "answer": "Full-time staff receive 27 days of annual leave."})["right_source"] == 1.0
