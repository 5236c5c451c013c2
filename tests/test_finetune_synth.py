"""Synthetic Q&A: prose out of any markup, the offline writers on different document styles, the
filters, the teacher (JSON and fallback replies, failures counted or refused), and the training set
builder's round trip, held-out split by document, rows that fit, general data and curriculum."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter

import pytest

from assistant.errors import ConfigError, LoragError
from assistant.store import Hit
from finetune.config import SynthConfig, TrainConfig, load_train_config
from finetune.data_report import report_lines
from finetune.raft import TrainingSetBuilder
from finetune.raft_examples import make_example
from finetune.synth import check_pair, synthesize, writer_names
from finetune.teacher import TeacherFailed, parse_pairs, parse_question
from finetune.text import blocks, opening, plain
from finetune.writers.candidate import qtype
from finetune.writers.cloze import cloze_candidates
from finetune.writers.section import section_candidates
from finetune.writers.sentence import sentence_candidates
from finetune.writers.titles import term_question, title_question
from tests.conftest import SAMPLES
from tests.fakes import FakeGenerator

RNG = random.Random(0)
PASSAGE = "Full-time employees receive 26 days of paid annual leave per leave year. Carry-over is capped at 5 days."


def _hit(i, text, display="leave.md", section="S"):
    return Hit(f"id{i}", 0.0, {"text": text, "display": display, "doc_id": f"/d/{display}", "section": section})


# -- prose out of markup ------------------------------------------------------------------------
def test_blocks_classify_rst_markdown_and_html_as_markdown():
    rst = (
        "Class creation can be customized using :ref:`metaclasses <metaclasses>`.\n\n.. index::\n   single: class\n\n"
        "Classes can be decorated::\n\n   @f1(arg)\n   class Foo: pass\n\nThe result is bound to the "
        ":keyword:`!class` name."
    )
    kinds = [(b.kind, b.text) for b in blocks(rst)]
    assert kinds[0] == ("prose", "Class creation can be customized using metaclasses.")
    assert [k for k, _ in kinds] == ["prose", "directive", "prose", "code", "prose"]
    assert kinds[-1][1] == "The result is bound to the class name."
    md = (
        "## Cloning\nSome **bold** text and `code`.\n\n--depth <depth>\n\nCreate a shallow clone.\n\n- an "
        "item\n\n| a | b |"
    )
    assert [(b.kind, b.text) for b in blocks(md)] == [
        ("heading", "Cloning"),
        ("prose", "Some bold text and code."),
        ("term", "--depth <depth>"),
        ("prose", "Create a shallow clone."),
        ("item", "an item"),
        ("table", "| a | b |"),
    ]
    assert plain("the .pyc file and os.path") == "the .pyc file and os.path"  # no space eaten before code


def test_opening_takes_whole_sentences_and_skips_remarks_about_the_page():
    paras = [
        "In this section we describe leave. Staff get 26 days of leave a year. Carry-over is capped at 5 days "
        "each year."
    ]
    assert (
        opening(paras, min_words=10) == "Staff get 26 days of leave a year. Carry-over is capped at 5 days each year."
    )
    assert opening(["Too short."], min_words=10) is None
    assert opening(["One " * 80 + "end."], max_words=60) is None


# -- the offline writers on different styles ----------------------------------------------------
@pytest.mark.parametrize(
    "title,parents,question",
    [
        ("Configuring a Proxy", [], "How do I configure a proxy?"),
        ("Create a table", [], "How do I create a table?"),
        ("How to undo your last commit", [], "How do I undo my last commit?"),
        ("Why is Python slow?", [], "Why is Python slow?"),
        ("DESCRIPTION", ["git-clone(1) Manual Page"], "What does git-clone do?"),
        ("Syntax", ["CREATE TABLE"], "What is the syntax of CREATE TABLE?"),
        ("2.3. Remote Branches", [], None),  # a noun phrase: one of the what-is forms
        ("See also", ["git-clone(1)"], None),
    ],
)
def test_title_questions(title, parents, question):
    q = title_question(title, parents, "remote branches track branches of another repository", random.Random(1))
    if question:
        assert q == question
    elif title.startswith("2.3"):
        assert q in (
            "What are remote branches?",
            "Can you explain remote branches?",
            "What should I know about remote branches?",
        )
    else:
        assert q is None


def test_title_questions_that_name_no_subject_are_not_asked():
    """Out of its section, "What to look for?" cannot be answered (nor retrieved for): asking words and generic verbs
    in any form are no subject; the same words with a subject, or a noun that looks like a verb form, are."""
    for title in ("What to look for", "Where to start", "Getting started", "What happens next", "How to use it"):
        assert title_question(title, [], "", RNG) is None, title
    assert title_question("What to look for in a queen cell", [], "", RNG) == "What to look for in a queen cell?"
    assert title_question("How to get help", [], "", RNG) == "How do I get help?"
    assert title_question("Checks", [], "", RNG) in {
        "What are checks?",
        "Can you explain checks?",
        "What should I know about checks?",
    }
    md = "## What to look for\n\n" + "A healthy brood frame shows capped cells in a solid pattern with few gaps. " * 3
    assert section_candidates(md, "Hive inspection > What to look for", RNG) == []


@pytest.mark.parametrize(
    "title,subject",
    [
        ("find(1)", "find"),
        ("`make`", "make"),
        ("`go`", "go"),
        ("`watch`", "watch"),
        ("`expect`", "expect"),
        ("Mean", "mean"),
        ("Check", "check"),
    ],
)
def test_titles_naming_commands_after_verbs_are_asked_about(title, subject):
    """The "no subject" filter judges the title's own words, not the question's: a command or word named after a
    generic verb is the subject of "What should I know about find?", not an asking word."""
    assert title_question(title, [], "", RNG) in {
        f"What is {subject}?",
        f"Can you explain {subject}?",
        f"What should I know about {subject}?",
    }, title


def test_title_questions_about_a_verb_named_command_or_pointing_back_are_told_apart():
    assert title_question("Using find", [], "", RNG) == "How do I use find?"
    assert title_question("How to use find", [], "", RNG) == "How do I use find?"
    assert title_question("Exit codes", ["find(1) Manual Page"], "", RNG) == "What are the exit codes of find?"
    for title in ("What is this", "What are those", "How do I get started?", "Get started", "Where to start"):
        assert title_question(title, [], "", RNG) is None, title
    assert title_question("Overview", ["Getting started"], "", RNG) is None  # the parent it asks about: no subject


def test_term_questions_name_options_settings_and_calls():
    assert (
        term_question("--depth <depth>", ["git-clone(1) Manual Page", "OPTIONS"], "", RNG)
        == "What does the --depth option of git-clone do?"
    )
    assert term_question("core.autocrlf", [], "", RNG) == "What is core.autocrlf used for?"
    assert term_question("sqlite3_open(filename, ppDb)", [], "", RNG) == "What does sqlite3_open do?"


def test_section_writer_on_markdown_rst_html_and_man_pages():
    md = (
        "## Annual leave\n\nFull-time staff receive 27 days of annual leave each year, and part-time staff a "
        "share of it by hours."
    )
    [c] = section_candidates(md, "Leave policy > Annual leave", RNG)
    assert c.question in (
        "What is annual leave?",
        "Can you explain annual leave?",
        "What should I know about annual leave?",
    )
    assert c.answer.startswith("Full-time staff receive 27 days") and c.writer == "section"
    rst = (
        "Method Objects\n\nUsually, a method is called right after it is bound. In the MyClass example, this will "
        "return the string 'hello world'. However, it is not necessary to call a method right away."
    )
    [c] = section_candidates(rst, "Classes > Method Objects", RNG)
    assert (
        c.answer.startswith("Usually, a method is called right after it is bound.")
        and 20 <= len(c.answer.split()) <= 70
    )
    name = "# NAME\n\ngit-clone - Clone a repository into a new directory"
    [c] = section_candidates(name, "git-clone(1) Manual Page > NAME", RNG)
    assert (c.question, c.answer) == ("What does git-clone do?", "git-clone clones a repository into a new directory.")
    opts = (
        "# OPTIONS\n\n--depth <depth>\n\nCreate a shallow clone with a history truncated to the specified "
        "number of commits.\n\n"
        "--bare\n\nMake a bare Git repository."
    )
    qs = {c.question for c in section_candidates(opts, "git-clone(1) Manual Page > OPTIONS", RNG)}
    assert "What does the --depth option of git-clone do?" in qs
    assert section_candidates("mid-section text that does not open it. " * 3, "Classes > Method Objects", RNG) == []


@pytest.mark.parametrize(
    "sentence,question",
    [
        ("To undo your last commit, run git reset with the --soft option.", "How do I undo my last commit?"),
        ("If you want to ignore a file, add its name to the .gitignore file.", "How do I ignore a file?"),
        ("A tuple is an immutable sequence of arbitrary Python objects.", "What is a tuple?"),
        ("If the file does not exist, open raises FileNotFoundError.", "What happens if the file does not exist?"),
        (
            "Git cannot track empty directories without a placeholder file.",
            "Can Git track empty directories without a placeholder file?",
        ),
        (
            "SQLite is slow on network drives because file locking is unreliable there.",
            "Why is SQLite slow on network drives?",
        ),
        ("It is a sequence of characters in a string.", None),  # no subject to ask about
    ],
)
def test_sentence_writer(sentence, question):
    found = sentence_candidates(sentence, random.Random(0))
    assert [c.question for c in found] == ([question] if question else [])
    if found:
        assert found[0].answer.startswith(sentence) and found[0].writer == "sentence"


def test_cloze_never_blanks_section_numbers_footnotes_urls_or_list_indexes():
    for text in (
        "Run mount(8) with no arguments to list every mounted file system.",
        "See the locale(7) manual page for the details of every category.",
        "The release notes are at https://example.org/v2/notes.html for version two.",
        "This behaviour is described in the standard [1] and in later drafts.",
    ):
        assert cloze_candidates(text, random.Random(0)) == [], text
    [c] = cloze_candidates("The cache holds 512 entries by default in every process here.", random.Random(0))
    assert "____" in c.question and c.answer == "The cache holds 512 entries by default in every process here."


def test_question_types():
    assert [
        qtype(q) for q in ("How do I x?", "What is y?", "Why z?", "Can I do it?", "Can you explain y?", "Tell me?")
    ] == ["how", "what", "why", "yes-no", "what", "other"]


# -- filters ------------------------------------------------------------------------------------
def test_filters_name_the_reason():
    cfg = SynthConfig()
    ok = "Full-time employees receive 26 days of paid annual leave per leave year."
    assert check_pair("How many days of paid annual leave do employees get?", ok, PASSAGE, cfg) is None
    assert check_pair("How many days?", ok, PASSAGE, cfg) == "question length out of bounds (4-40 words)"
    assert check_pair("How many days of leave do staff get?", "26 days", PASSAGE, cfg).startswith(
        "answer length out of bounds"
    )
    assert (
        check_pair("What is the capital of Peru today?", "Lima is the capital city of Peru.", PASSAGE, cfg)
        == "answer not supported by the passage"
    )
    assert check_pair("Tell me about annual leave please", ok, PASSAGE, cfg) == "question does not end with '?'"
    assert check_pair("What does this section say about leave?", ok, PASSAGE, cfg).startswith(
        "question leans on its context"
    )
    assert check_pair("What is `leave` in the handbook?", ok, PASSAGE, cfg) == "markup left in the text"
    assert (
        check_pair(
            "Do employees receive 26 days of paid annual leave per leave year?",
            "employees receive 26 days of paid annual leave",
            PASSAGE,
            cfg,
        )
        == "question contains its answer"
    )


# -- the teacher --------------------------------------------------------------------------------
def test_teacher_replies_parse_as_json_or_question_answer_lines():
    js = (
        'Sure!\n```json\n{"pairs": [{"question": "How many days of leave?", "answer": "26 days a year.", '
        '"type": "what-is"}]}\n```'
    )
    assert parse_pairs(js) == [("How many days of leave?", "26 days a year.")]
    assert parse_pairs('[{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answer": "A2."}]') == [
        ("Q1?", "A1."),
        ("Q2?", "A2."),
    ]
    lines = (
        "1. Question: How many days?\nAnswer: 26 days\na year.\n2. Question: What is carried over?\nAnswer: "
        "Up to 5 days."
    )
    assert parse_pairs(lines) == [("How many days?", "26 days a year."), ("What is carried over?", "Up to 5 days.")]
    assert parse_pairs("I cannot help with that.") == []
    assert (
        parse_question("Question: How many days of leave do I get?\n(more text)") == "How many days of leave do I get?"
    )
    assert parse_question("no question here") is None


def _teacher_reply(messages):
    if "Badges" in messages[-1]["content"]:
        return "I cannot do that."
    return json.dumps(
        {
            "pairs": [
                {
                    "question": "How many days of paid annual leave do full-time employees receive?",
                    "answer": "Full-time employees receive 26 days of paid annual leave per leave year.",
                },
                {
                    "question": "How much leave can be carried over?",
                    "answer": "Carry-over is capped at 5 days per leave year.",
                },
            ]
        }
    )


def test_teacher_writes_several_pairs_per_chunk_and_every_drop_is_counted():
    chunks = [_hit(0, PASSAGE), _hit(1, "Badges are red. Visitors sign in at the kiosk in the lobby.", "badges.md")]
    cfg = SynthConfig(writer="teacher", pairs_per_chunk=2, seed=1, min_answer_words=3)
    pairs, report = synthesize(chunks, cfg, teacher=FakeGenerator(_teacher_reply, name="teacher-model"))
    assert {p.question for p in pairs} == {
        "How many days of paid annual leave do full-time employees receive?",
        "How much leave can be carried over?",
    }
    assert all(p.writer == "teacher" and p.chunk_id == "id0" for p in pairs)
    assert report.dropped["teacher: reply is neither JSON pairs nor Question:/Answer: lines"] == 1
    assert report.teacher == "teacher-model"
    assert writer_names("auto", teacher_configured=True) == ["teacher", "section", "sentence"]
    assert writer_names("auto") == ["section", "sentence"] and writer_names("model+heading") == ["teacher", "section"]


class _DownTeacher(FakeGenerator):
    def generate_batch(self, batch, **kw):
        raise LoragError("teacher endpoint http://127.0.0.1:9/v1: ConnectError: connection refused")


def test_a_teacher_that_fails_every_request_stops_the_run_with_a_clear_error():
    chunks = [_hit(i, PASSAGE + f" Rule {i}.") for i in range(10)]
    with pytest.raises(TeacherFailed, match="failed on every request so far: teacher endpoint http://127.0.0.1:9/v1"):
        synthesize(chunks, SynthConfig(writer="teacher+section", batch_size=4), teacher=_DownTeacher(name="t"))


def test_a_teacher_failing_some_requests_is_counted_and_the_rest_kept():
    calls = Counter()

    class Flaky(FakeGenerator):
        def generate_batch(self, batch, **kw):
            calls["n"] += 1
            if len(batch) > 1 or "Rule 1." in batch[0][-1]["content"]:
                raise LoragError("HTTP 503")
            return [_teacher_reply(batch[0])]

    chunks = [_hit(i, PASSAGE + f" Rule {i}.", f"d{i}.md") for i in range(3)]
    pairs, report = synthesize(chunks, SynthConfig(writer="teacher", batch_size=3, min_answer_words=3), teacher=Flaky())
    assert report.dropped["teacher: request failed (LoragError)"] == 1 and pairs  # one chunk failed alone, two answered


def test_recipe_checks_the_writers_and_the_general_share():
    with pytest.raises(ConfigError, match="synth.writer: auto, or section"):
        TrainConfig(domain="d", synth=SynthConfig(writer="section+poem"))
    with pytest.raises(ConfigError, match="synth.general_share: set synth.general_data"):
        TrainConfig(domain="d", synth=SynthConfig(general_share=0.2))


# -- the builder --------------------------------------------------------------------------------
def _builder(components, tmp_path, count_tokens=None, **synth):
    assert components.ingestor().run([SAMPLES / "corpus" / "handbook"], "handbook").ok
    cfg = load_train_config(domain="handbook", overrides={"synth": {"writer": "section+sentence", **synth}})
    return TrainingSetBuilder(
        components.store, components.retriever, None, cfg, tmp_path / "ds", count_tokens=count_tokens
    )


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_without_curated_qa_whole_documents_are_held_out(components, tmp_path):
    summary = _builder(components, tmp_path).build(None)
    out = tmp_path / "ds"
    held, train = _rows(out / "heldout.jsonl"), _rows(out / "train.jsonl")
    assert summary["heldout_from"] == "synthetic documents" and summary["heldout"] == len(held) > 0
    held_docs = {s for h in held for s in h["sources"]}
    assert held_docs == set(summary["heldout_documents"])
    trained = {s["source"] for s in _rows(out / "synthetic.jsonl")}  # the pairs that train
    assert trained and held_docs and not trained & held_docs
    assert {r["id"].rsplit(":", 1)[1] for r in train} <= {s["chunk_id"] for s in _rows(out / "synthetic.jsonl")}
    assert len(_rows(out / "heldout_examples.jsonl")) == len(held)  # held-out loss has its rows
    r = summary["report"]
    assert set(r["writers"]) <= {"section", "sentence"} and r["answer_words"]["median"] >= 8
    assert r["round_trip"]["checked"] >= r["round_trip"]["passed"] > 0


def test_the_round_trip_drops_questions_that_do_not_find_their_chunk(components, tmp_path, monkeypatch):
    b = _builder(components, tmp_path)
    real = b._retrievals

    def nothing_found_for_leave(questions, k):  # the retriever never ranks a leave question's chunk
        return [
            dataclasses.replace(r, passages=[p for p in r.passages if "leave" not in p.source])
            for r in real(questions, k)
        ]

    monkeypatch.setattr(b, "_retrievals", nothing_found_for_leave)
    summary = b.build(None)
    synth = _rows(tmp_path / "ds" / "synthetic.jsonl")
    assert synth and not [s for s in synth if "leave" in s["source"]]
    assert any("round trip: its chunk is not in the question's top" in k for k in summary["dropped"])


def test_the_round_trip_drops_questions_the_assistant_finds_nothing_relevant_for(components, tmp_path):
    """A question whose best passage is under retrieval.min_relevance gets the fixed "nothing relevant" reply at
    ask and eval time: it neither trains nor joins the held-out test set, and its drop is counted."""
    b = _builder(components, tmp_path)
    first = b.build(None)
    asked = [r["question"] for name in ("synthetic", "heldout") for r in _rows(tmp_path / "ds" / f"{name}.jsonl")]
    best = sorted(components.retriever.retrieve(q, "handbook").best_dense for q in asked)
    assert first["report"]["round_trip"]["min_relevance"] < best[0]  # all relevant at the default bar
    bar = best[len(best) // 2]  # about half of them under a higher bar
    components.retriever.settings.min_relevance = bar
    out = tmp_path / "ds2"
    summary = TrainingSetBuilder(components.store, components.retriever, None, b.cfg, out).build(None)
    kept = [r["question"] for name in ("synthetic", "heldout") for r in _rows(out / f"{name}.jsonl")]
    assert kept and all(components.retriever.retrieve(q, "handbook").relevant for q in kept)
    why = [n for k, n in summary["dropped"].items() if "round trip: under retrieval.min_relevance" in k]
    assert sum(why) >= len([b for b in best if b < bar]) > 0
    rt = summary["report"]["round_trip"]
    assert rt["min_relevance"] == bar and rt["passed"] < rt["checked"]
    assert f"reach retrieval.min_relevance ({bar:g})" in " ".join(report_lines(summary["report"]))


def test_rows_are_built_to_fit_max_seq_length(components, tmp_path):
    """Distractors are dropped, longest first, until a row fits; a row that cannot fit is counted."""

    def words(messages):
        return sum(len(m["content"].split()) for m in messages)

    b = _builder(components, tmp_path, count_tokens=words)
    b.cfg.max_seq_length = 220
    summary = b.build(None)
    train = _rows(tmp_path / "ds" / "train.jsonl")
    assert train and all(words(r["prompt"] + r["completion"]) <= 220 for r in train)
    fit = summary["report"]["fit"]
    assert fit["max_seq_length"] == 220 and fit["trimmed"] == sum(r["distractors_trimmed"] > 0 for r in train) > 0


def test_make_example_trims_distractors_but_never_the_oracle():
    from assistant.retrieval import Passage

    oracle = Passage(0, "short oracle text about leave", "a.md", "S", None, 0.0, "hr", "/a", "o")
    negs = [Passage(0, "x " * n, f"n{n}.md", "S", None, 0.0, "hr", f"/n{n}", f"n{n}") for n in (50, 200, 20)]
    ex = make_example(
        "Q?",
        "A.",
        oracle,
        negs,
        k=4,
        include_oracle=True,
        rng=random.Random(0),
        count_tokens=lambda m: sum(len(x["content"].split()) for x in m),
        max_tokens=150,
    )
    assert ex["distractors_trimmed"] == 1 and "short oracle text" in ex["prompt"][-1]["content"]
    assert (
        make_example(
            "Q?",
            "A.",
            oracle,
            negs,
            k=4,
            include_oracle=True,
            rng=random.Random(0),
            count_tokens=lambda m: 10_000,
            max_tokens=150,
        )
        is None
    )


def test_general_data_is_mixed_in_at_its_share_and_curriculum_orders_rows(components, tmp_path):
    gen = tmp_path / "general.jsonl"
    gen.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in (
                [{"instruction": f"Say the number {i}.", "output": f"{i}"} for i in range(50)]
                + [{"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}]
            )
        )
    )
    b = _builder(components, tmp_path, general_data=str(gen), general_share=0.2, curriculum=True)
    summary = b.build(None)
    train = _rows(tmp_path / "ds" / "train.jsonl")
    n_general = sum(r["kind"] == "general" for r in train)
    assert n_general == summary["general_rows"] > 0 and abs(n_general / len(train) - 0.2) < 0.05
    keys = [len(r["answer"].split()) // 10 for r in train]
    assert keys == sorted(keys)  # easy (short) first
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x", "output": "y"}\n{"foo": 1}\nnot json\n')
    with pytest.raises(LoragError, match=r"bad.jsonl: 2 row\(s\) are not instruction data \(line 2, 3\)"):
        _builder(components, tmp_path, general_data=str(bad), general_share=0.2).build(None)


def test_how_and_why_titles_without_a_question_mark_still_ask():
    assert (
        title_question("How do I share global variables across modules", [], "", RNG)
        == "How do I share global variables across modules?"
    )
    assert title_question("Why is Python slow", [], "", RNG) == "Why is Python slow?"
    assert title_question("SQLite is Embedded, not Client-Server", [], "", RNG) is None


def test_plain_text_reads_markdown_reference_links_as_their_text():
    """Training answers from Markdown API docs: "[child_process][]" and "[the docs][api]" read as their text; a
    signature's optional arguments, "spawn(command[, args][, options])", and a lone "[x]" stay as written."""
    assert plain("See the [child_process][] module and call [`stream.write()`][] after [the docs][api].") == (
        "See the child_process module and call stream.write() after the docs."
    )
    assert plain("child_process.spawn(command[, args][, options]) and a [x] b") == (
        "child_process.spawn(command[, args][, options]) and a [x] b"
    )
