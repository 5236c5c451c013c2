"""Test-set files: validation with line numbers, reference contexts, CSV import."""

import json

import pytest

from assistant.errors import LoragError
from eval.testset import default_testset, import_csv, load_testset


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_good_rows_load_with_contexts_and_sources(tmp_path):
    f = _write(
        tmp_path / "t.jsonl",
        [
            json.dumps(
                {
                    "id": "q1",
                    "question": "How many days?",
                    "answer": "27 days",
                    "sources": ["leave.md"],
                    "contexts": ["Full-time staff receive 27 days."],
                    "tags": ["leave"],
                }
            ),
            "",
            json.dumps({"question": "Who approves overtime?", "answer": "The team lead."}),
        ],
    )
    items = load_testset(f)
    assert [i.key() for i in items][0] == "q1"
    assert items[0].contexts == ["Full-time staff receive 27 days."] and items[0].sources == ["leave.md"]
    assert items[1].contexts == [] and items[1].id == ""


def test_bad_rows_are_all_reported_with_line_numbers(tmp_path):
    f = _write(
        tmp_path / "bad.jsonl",
        [
            json.dumps({"id": "q1", "question": "How many days?", "answer": "27"}),
            "{not json",
            json.dumps({"id": "q2", "question": "Where?"}),
            json.dumps({"id": "q3", "question": "ok question?", "answer": "x", "contexts": ["  "]}),
            json.dumps(["a", "list"]),
            json.dumps({"id": "q1", "question": "Again?", "answer": "dup"}),
            json.dumps({"id": "q5", "question": "   ", "answer": "blank question"}),
            json.dumps({"id": "q6", "question": "sources wrong?", "answer": "x", "sources": "leave.md"}),
        ],
    )
    with pytest.raises(LoragError) as e:
        load_testset(f)
    msg = str(e.value)
    assert "7 bad row(s)" in msg and str(f) in msg
    for expected in (
        "line 2: not valid JSON",
        "line 3: answer: missing",
        "line 4: contexts: must not contain blank strings",
        "line 5: expected an object",
        "line 6: duplicate id/question (first on line 1)",
        "line 7: question: must not be blank",
        "line 8: sources: must be a list, not 'leave.md'",
    ):
        assert expected in msg, expected


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(LoragError, match="test set not found"):
        load_testset(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(LoragError, match="no test rows"):
        load_testset(tmp_path / "empty.jsonl")


def test_default_testset_is_the_heldout_split(tmp_path):
    with pytest.raises(LoragError, match="held-out split .*heldout.jsonl does not exist") as e:
        default_testset(tmp_path, "hr")
    assert "--testset" in str(e.value)
    p = tmp_path / "hr" / "heldout.jsonl"
    p.parent.mkdir()
    p.write_text(json.dumps({"question": "How many days?", "answer": "27"}) + "\n")
    assert default_testset(tmp_path, "hr") == p


def test_the_sample_qa_files_are_valid_test_sets():
    from tests.conftest import SAMPLES

    for name in ("handbook", "manual", "itsupport"):
        items = load_testset(SAMPLES / "qa" / f"{name}.jsonl")
        assert len(items) > 50 and all(i.sources for i in items)


def test_csv_import_round_trips(tmp_path):
    csv = tmp_path / "qa.csv"
    csv.write_text(
        "question,answer,sources,tags\n"
        "How many days of leave?,27 days,leave.md,leave;annual\n"
        '"Who approves ""overtime""?","The team lead,\nin writing.",faq.json;policy.md,\n'
        "\n"
        "Where do visitors sign in?,At the lobby kiosk.,,\n",
        encoding="utf-8",
    )
    info = import_csv(csv, tmp_path / "out" / "hr-test.jsonl")
    assert info["rows"] == 3
    items = load_testset(tmp_path / "out" / "hr-test.jsonl")
    assert [i.id for i in items] == ["hr-test-001", "hr-test-002", "hr-test-003"]
    assert items[0].tags == ["leave", "annual"] and items[0].sources == ["leave.md"]
    assert items[1].question == 'Who approves "overtime"?' and items[1].answer == "The team lead,\nin writing."
    assert items[1].sources == ["faq.json", "policy.md"] and items[2].sources == []
    assert "contexts" not in json.loads((tmp_path / "out" / "hr-test.jsonl").read_text().splitlines()[0])


def test_csv_bad_rows_are_reported_with_their_line_numbers(tmp_path):
    csv = tmp_path / "qa.csv"
    csv.write_text(
        "question,answer\n"
        "How many days?,27\n"  # line 2 ok
        '"A question spanning\ntwo lines?",\n'  # line 3: empty answer
        ",An answer without question\n"  # line 5
        "How many days?,again\n"  # line 6: duplicate of line 2
        "Too many?,a,b\n",  # line 7
        encoding="utf-8",
    )
    with pytest.raises(LoragError) as e:
        import_csv(csv, tmp_path / "out.jsonl")
    msg = str(e.value)
    assert "4 bad row(s), nothing written" in msg
    for expected in (
        "line 3: answer: empty",
        "line 5: question: empty (at least 3 characters)",
        "line 6: duplicate id/question (first on line 2)",
        "line 7: 3 fields",
    ):
        assert expected in msg, msg
    assert not (tmp_path / "out.jsonl").exists()


def test_csv_without_the_required_columns(tmp_path):
    csv = tmp_path / "qa.csv"
    csv.write_text("q,a\nx,y\n")
    with pytest.raises(LoragError, match=r"line 1: the header has no column 'question', 'answer'"):
        import_csv(csv, tmp_path / "o.jsonl")
    csv.write_text("question,answer,colour\nx?,y,red\n")
    with pytest.raises(LoragError, match="unknown column"):
        import_csv(csv, tmp_path / "o.jsonl")
    with pytest.raises(LoragError, match="CSV file not found"):
        import_csv(tmp_path / "missing.csv", tmp_path / "o.jsonl")


def test_an_empty_heldout_split_says_why_and_what_to_pass(tmp_path):
    """synth without curated --qa holds no question out: eval's default test set is then empty."""
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "heldout.jsonl").write_text("")
    with pytest.raises(LoragError, match="is empty: the domain's training data held no questions out") as err:
        default_testset(tmp_path, "hr")
    assert "--testset FILE.jsonl" in err.value.hint and "--qa" in err.value.hint


def test_a_bad_field_is_said_in_words_not_pydantics(tmp_path):
    """Each bad field in the project's words: what is wrong and, for a length, the least it takes; a list item by
    its index (as the API names fields). A row with two bad fields is one bad row."""
    f = _write(
        tmp_path / "words.jsonl",
        [
            json.dumps({"question": "", "answer": "x"}),
            json.dumps({"question": "ab", "answer": "x"}),
            json.dumps({"question": 5, "answer": ""}),
            json.dumps({"question": "Which tags?", "answer": "x", "tags": ["leave", 3]}),
        ],
    )
    with pytest.raises(LoragError) as e:
        load_testset(f)
    assert str(e.value).splitlines() == [
        f"{f}: 4 bad row(s):",
        "  line 1: question: empty (at least 3 characters)",
        "  line 2: question: too short: 'ab' (at least 3 characters)",
        "  line 3: question: must be text, not 5",
        "  line 3: answer: empty",
        "  line 4: tags[1]: must be text, not 3",
    ]
