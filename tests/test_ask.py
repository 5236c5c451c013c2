import pytest

from assistant.citations import extract_citations
from assistant.errors import LoragError
from assistant.prompt import NO_ANSWER, build_messages
from assistant.retrieval import Passage
from assistant.store import Hit
from tests.fakes import FakeGenerator


@pytest.fixture
def indexed(components, corpus):
    report = components.ingestor().run([corpus], "hr")
    assert report.ok
    return components


def test_ask_cites_the_right_document(indexed):
    indexed._generator = FakeGenerator(lambda msgs: "Full-time staff receive 27 days [1].")
    answer = indexed.ask_service.ask("How many days of annual leave do full-time staff receive?", "hr")
    assert answer.relevant
    assert answer.passages[0].source == "leave.md"
    assert [c.source for c in answer.citations] == ["leave.md"]
    assert answer.citations[0].how == "marker"
    assert answer.citations[0].ref == "leave.md#Leave policy > Annual leave"


def test_prompt_holds_numbered_passages_and_the_question(indexed):
    gen = FakeGenerator()
    indexed._generator = gen
    indexed.ask_service.ask("How much does a parking permit cost?", "hr")
    messages, adapter = gen.calls[0]
    user = messages[-1]["content"]
    assert user.startswith("Passages:\n[1] (") and "Question: How much does a parking permit cost?" in user
    assert "12 euros" in user
    assert adapter is None


def test_streaming_yields_pieces_then_the_answer(indexed):
    from assistant.answer import Answer

    indexed._generator = FakeGenerator(lambda m: "Trains are booked in second class [1].")
    items = list(indexed.ask_service.stream("Which class are trains booked in?", "hr"))
    assert all(isinstance(i, str) for i in items[:-1]) and isinstance(items[-1], Answer)
    assert "".join(items[:-1]).strip() == items[-1].answer
    assert items[-1].citations[0].ref == "travel.pdf#page=1"


@pytest.mark.parametrize(
    "reply,shown",
    [
        ("A: Trains are booked in second class [1].", "Trains are booked in second class [1]."),
        ("Answer:  Second class [1].", "Second class [1]."),
        ("A train is booked in second class [1].", "A train is booked in second class [1]."),  # no label: kept
        ("Answer is second class [1].", "Answer is second class [1]."),
    ],
)
def test_a_leading_answer_label_is_left_out_of_the_stream_and_the_answer(indexed, reply, shown):
    """Small models often open with "A:" after the prompt's "Question:"; the streamed pieces and the answer
    (and its citations) leave the label out, and only a label."""
    from assistant.answer_label import stream_without_label

    indexed._generator = FakeGenerator(lambda m: reply)
    items = list(indexed.ask_service.stream("Which class are trains booked in?", "hr"))
    assert "".join(items[:-1]) == shown and items[-1].answer == shown
    assert items[-1].citations[0].ref == "travel.pdf#page=1"
    for pieces in (["A", ":", " x"], ["Ans", "wer", ":", " ", "x"], ["A:", "\tx"]):
        assert "".join(stream_without_label(pieces)) == "x"
    assert "".join(stream_without_label(["A", " cat"])) == "A cat" and list(stream_without_label(["A:"])) == []


def test_no_relevant_passage_gives_a_clear_answer_without_the_model(indexed):
    gen = FakeGenerator()
    indexed._generator = gen
    answer = indexed.ask_service.ask("zebra giraffe photosynthesis quasar", "hr")
    assert not answer.relevant and answer.citations == []
    assert "nothing relevant" in answer.answer
    assert gen.calls == []


def test_unknown_domain_and_empty_index(components):
    with pytest.raises(LoragError, match="nothing is indexed yet"):
        components.ask_service.ask("anything?")
    components.store.ensure_domain("hr", components.dense.dim)
    with pytest.raises(LoragError, match="has no documents yet"):
        components.ask_service.ask("anything?", "hr")
    with pytest.raises(LoragError, match="unknown domain 'legal'"):
        components.ask_service.ask("anything?", "legal")


def test_all_domains_are_searched_without_a_domain(components, corpus, tmp_path):
    ing = components.ingestor()
    ing.run([corpus / "leave.md"], "hr")
    other = tmp_path / "manual.md"
    other.write_text("# Aurora\n\nError E-104 means the lamp is overheating.\n")
    ing.run([other], "manual")
    answer = components.ask_service.ask("What does error E-104 mean?")
    assert answer.domains == ["hr", "manual"]
    assert answer.passages[0].source == "manual.md"


def test_a_search_over_domains_ranks_by_relevance_not_by_domain(components, tmp_path):
    """Without a domain, passages are ranked as if every domain were one collection: another domain's best
    hit, sharing one word with the question, does not outrank this domain's three relevant passages
    (fusing each domain's own ranking put every domain's first hit level with the best)."""
    ing = components.ingestor()
    hr, manual = tmp_path / "hr", tmp_path / "manual"
    hr.mkdir(), manual.mkdir()
    (hr / "annual.md").write_text("# Annual leave\n\nFull-time staff receive 27 days of annual leave each year.\n")
    (hr / "carry.md").write_text("# Carry-over\n\nUp to 5 days of annual leave carry over into the next year.\n")
    (hr / "booking.md").write_text("# Booking\n\nAnnual leave days are booked each year in the HR portal.\n")
    (manual / "service.md").write_text("# Service\n\nStaff at the service desk replace the lamp unit.\n")
    ing.run([hr], "hr")
    ing.run([manual], "manual")
    answer = components.ask_service.ask("How many days of annual leave do full-time staff receive each year?")
    assert answer.domains == ["hr", "manual"]
    got = [(p.domain, p.source) for p in answer.passages]
    assert [d for d, _ in got[:3]] == ["hr", "hr", "hr"], got


def test_a_tiny_domain_s_exact_answer_is_not_sunk_by_a_large_domain_s_idf(components, tmp_path):
    """A just-added one-document domain holds the exact answer; a large domain holds many generic documents, a few
    sharing some of the question's rarer words. Each domain's BM25 weighs a term by its own IDF: in the one-document
    domain every term is in every point, so its exact match scored a fraction of the large domain's partial ones
    and ranked below them all (5th here, top 4 shown). Scored with one IDF over both domains, it comes first."""
    ing = components.ingestor()
    big, tiny = tmp_path / "it", tmp_path / "pumps"
    big.mkdir(), tiny.mkdir()
    topics = ["printer", "laptop", "router", "monitor", "scanner", "phone", "badge", "projector", "keyboard", "headset"]
    for i in range(80):
        t = topics[i % len(topics)]
        (big / f"doc{i}.md").write_text(f"# {t.title()} {i}\n\nWhen the {t} shows an error, restart the {t}.\n")
    for i in range(8):
        (big / f"plant{i}.md").write_text(
            f"# Plant room {i}\n\nThe pump in plant room {i} has an intake valve that facilities inspect monthly.\n"
        )
    (tiny / "vexlo.md").write_text("# Vexlo\n\nError ZQ9 on the Vexlo pump means the intake valve is blocked.\n")
    ing.run([big], "it")
    ing.run([tiny], "pumps")
    r = components.retriever.retrieve("What does error ZQ9 on the Vexlo pump intake valve mean?")
    assert r.domains == ["it", "pumps"] and len(r.passages) == 4
    assert (r.passages[0].domain, r.passages[0].source) == ("pumps", "vexlo.md"), [p.source for p in r.passages]
    one = components.retriever.retrieve("What does error ZQ9 on the Vexlo pump intake valve mean?", "it")
    assert {p.source for p in one.passages} <= {f"plant{i}.md" for i in range(8)}  # one domain: as before


def _p(n, text):
    return Passage(n, text, f"doc{n}.md", "S", None, 1.0, "d", f"/x/doc{n}.md", str(n))


def test_citation_markers_out_of_range_are_dropped():
    ps = [_p(1, "alpha beta"), _p(2, "gamma delta")]
    cits = extract_citations("See [2] and [7] and [2].", ps)
    assert [c.n for c in cits] == [2]


def test_a_quoted_sentence_among_made_up_ones_is_cited_by_overlap():
    """An answer that quotes a passage's sentence, then goes on in words of its own (which dilute its share of the
    passage's words), still cites that passage; made-up sentences alone cite nothing."""
    ps = [
        _p(1, "Visitors park in lot C. The visitor car park code is 4417, changed every month."),
        _p(2, "Annual leave is 27 days per year for full-time staff."),
    ]
    tail = (
        " Remember that overnight stays require registering vehicles online through the portal beforehand."
        " Security guards patrol nightly, and bicycles belong in covered racks near reception entrances."
    )
    cits = extract_citations("The visitor car park code is 4417." + tail, ps)
    assert [(c.n, c.how) for c in cits] == [(1, "overlap")]
    assert "4417" in cits[0].quote
    assert extract_citations(tail.strip(), ps) == []


def test_a_quote_framed_as_what_the_document_says_is_cited_with_other_word_forms():
    """An answer's "The document recommends inspecting ..." quotes "Inspect ...": words that point to the source
    (document, passage, according, recommends ...) are left out and word forms meet ("inspecting" is "inspect",
    "days" is "day"); a sentence framed the same way about something no passage says still cites nothing."""
    ps = [
        _p(1, "## How often to inspect\nInspect a hive every 7 to 9 days between April and August."),
        _p(2, "Take off a super only when at least 80 percent of its cells are capped with wax."),
    ]
    q = "How often should I inspect a hive in summer?"
    tail = (
        " Beekeepers often enjoy watching their colonies grow strong through the warm months, and many keep notes"
        " about temperament, weather and flowering plants nearby."
    )
    quoted = "The document recommends inspecting a hive every 7 to 9 days between April and August."
    cits = extract_citations(quoted + tail, ps, question=q)
    assert [(c.n, c.how) for c in cits] == [(1, "overlap")]
    assert cits[0].quote == "Inspect a hive every 7 to 9 days between April and August."
    cits = extract_citations("According to the passage, supers are taken off once 80 percent of cells are capped.", ps)
    assert [(c.n, c.how) for c in cits] == [(2, "overlap")]
    for unrelated in (
        "The document recommends keeping a spare queen cage in the car during long trips to the coast.",
        "According to the passage, honey prices rose sharply across Europe during the last year.",
        "The text states what the document mentions, according to the source passage.",
    ):
        assert extract_citations(unrelated + tail, ps, question=q) == [], unrelated


@pytest.mark.parametrize(
    "other,right,answer",
    [
        (
            "Each county must file an annual budget report by June.",
            "Each state must file an annual budget report by June.",
            "Each state must file an annual budget report by June.",
        ),
        (
            "Build the binary package with dpkg-buildpackage before uploading it.",
            "Build the source package with dpkg-buildpackage before uploading it.",
            "Build the source package with dpkg-buildpackage before uploading it.",
        ),
        (
            "Customers are told of a delayed delivery by email within two days.",
            "Customers are told of a delayed delivery by text within two days.",
            "Customers are told of a delayed delivery by text within two days.",
        ),
    ],
)
def test_a_word_that_could_point_to_the_source_tells_passages_apart_when_a_passage_holds_it(other, right, answer):
    """Words such as "state", "source" and "text" are left out of citation matching only where they frame the answer
    ("The document states ..."): where a passage holds one, it is content, and the passage holding it is cited (not
    the first of two otherwise alike), and the chat's marker goes after the sentence that says it."""
    from assistant.answer import Answer

    for ps in ([_p(1, other), _p(2, right)], [_p(1, right), _p(2, other)]):
        want = next(p.n for p in ps if p.text == right)
        cits = extract_citations(answer, ps)
        assert [(c.n, c.how) for c in cits] == [(want, "overlap")], (answer, [p.text for p in ps])
        reply = f"{other} {answer}"  # one sentence each; the marker goes after the one its passage holds
        shown = Answer("q", reply, cits, ps, ["d"], True).marked_answer()
        assert shown == f"{other} {answer[:-1]} [{want}].", shown


def test_citation_inferred_from_overlap_but_not_for_abstention():
    ps = [_p(1, "Parking permits cost 12 euros per month"), _p(2, "Hotels cost 140 euros")]
    cits = extract_citations("Parking permits cost 12 euros each month.", ps)
    assert [(c.n, c.how) for c in cits] == [(1, "overlap")]
    assert extract_citations(NO_ANSWER, ps) == []
    assert extract_citations("I like turtles.", ps) == []


def test_an_answer_that_rephrases_the_question_cites_nothing_by_overlap():
    """Words the answer shares with the question do not make it drawn on a passage: the passage must also hold what
    the answer adds (the model turned the question into a made-up claim here); a short answer that adds the
    passage's figure still cites it."""
    ps = [
        _p(1, "Chaque salarié à temps plein bénéficie de 27 jours ouvrés de congés payés par an."),
        _p(2, "Le parking est gratuit pour les visiteurs."),
    ]
    q = "Combien de jours de congés payés pour un salarié à temps plein ?"
    made_up = "Combien de jours de congés payés pour un salarié à temps partiel régional ?"
    assert extract_citations(made_up, ps, question=q) == []
    assert [c.n for c in extract_citations(made_up, ps)] == [1]  # without the question: the words alone
    cits = extract_citations("Un salarié à temps plein a 27 jours ouvrés de congés payés.", ps, question=q)
    assert [(c.n, c.how) for c in cits] == [(1, "overlap")]
    # a passage that echoes the question does not hide the one holding the answer
    q = "How many days of annual leave do new full-time employees get?"
    echo = _p(1, "How many days of annual leave do new full-time employees get? See the entitlement table.")
    table = _p(2, "Entitlement: 25 days each year for full-time staff, prorated in the first year.")
    answer = "New full-time employees get 25 days of annual leave each year."
    assert [c.n for c in extract_citations(answer, [echo, table], question=q)] == [2]
    assert [c.n for c in extract_citations(answer, [table], question=q)] == [2]


def test_function_words_of_another_language_do_not_make_an_overlap():
    """A French reply to an English question shares only function words (la, est, pour...) with a French passage
    of the domain: that passage is not cited; the English one holding the reply's topic word is, or none."""
    ps = [
        _p(1, "Rollback: run falcon deploy --rollback to go back to the previous Falcon release."),
        _p(2, "Le café de la rue est ouvert pour les clients et la terrasse est fermée le lundi."),
    ]
    answer = "La question est très importante pour rollback Falcon."
    cits = extract_citations(answer, ps, question="How do I roll back Falcon?")
    assert 2 not in [c.n for c in cits]


def test_citation_inferred_from_overlap_in_chinese_japanese_and_accented_words():
    """Where no space separates words (Chinese, Japanese) the overlap counts pairs of adjacent characters; accented
    letters stay inside their words. The quote is the passage's sentence the answer shares most with."""
    ps = [
        _p(1, "停车许可每月收费十二欧元。访客停在C区。"),
        _p(2, "全职员工每年有二十七天年假。加班需要经理批准。"),
    ]
    cits = extract_citations("全职员工的年假是每年二十七天。", ps)
    assert [(c.n, c.how) for c in cits] == [(2, "overlap")]
    assert cits[0].quote == "全职员工每年有二十七天年假。"
    jp = [_p(1, "駐車許可は月額十二ユーロです。"), _p(2, "正社員の有給休暇は年に二十日です。")]
    assert [c.n for c in extract_citations("有給休暇は年に二十日あります。", jp)] == [2]
    assert extract_citations("我喜欢乌龟。", ps) == []
    fr = [_p(1, "Le café coûte deux euros à la cafétéria."), _p(2, "Les congés annuels durent cinq semaines.")]
    cits = extract_citations("Le café coûte deux euros.", fr)
    assert [(c.n, c.how) for c in cits] == [(1, "overlap")]


def _marked(reply, passage):
    from assistant.answer import Answer

    ps = [_p(1, passage)]
    return Answer("q", reply, extract_citations(reply, ps), ps, ["d"], True).marked_answer()


@pytest.mark.parametrize(
    "reply,passage,shown",
    [
        (
            "The dish of the day is Blue Lantern Risotto and is priced at $7.35.",
            "Blue Lantern Risotto: 7.35 dollars, the dish of the day",
            "The dish of the day is Blue Lantern Risotto and is priced at $7.35 [1].",
        ),
        (
            "Staff need Python 3.11.2 on the build server. The cafeteria opens at noon.",
            "The build server needs Python 3.11.2 for staff builds",
            "Staff need Python 3.11.2 on the build server [1]. The cafeteria opens at noon.",
        ),
        (
            "Pumps moved 1,000.5 litres last week. Nothing else changed.",
            "The pumps moved 1,000.5 litres of water last week",
            "Pumps moved 1,000.5 litres last week [1]. Nothing else changed.",
        ),
        (
            "Set retries in config.yaml, e.g. retries: 3, i.e. three tries, etc. and restart the worker.",
            "The worker reads retries from config.yaml; restart the worker after a change",
            "Set retries in config.yaml, e.g. retries: 3, i.e. three tries, etc. and restart the worker [1].",
        ),
        (
            "Leave rules are listed in the handbook at https://intranet.example.com/hr/handbook.html for staff.",
            "The handbook lists the leave rules",
            "Leave rules are listed in the handbook at https://intranet.example.com/hr/handbook.html for staff [1].",
        ),
    ],
)
def test_an_inferred_marker_goes_after_the_whole_sentence_not_inside_a_number_or_name(reply, passage, shown):
    """The chat shows an inferred citation's marker after the sentence it supports: a point inside a price,
    a version, a number, a file name or a URL, or after e.g. / i.e. / etc., is no sentence's end."""
    assert _marked(reply, passage) == shown


def test_the_api_and_the_chat_split_sentences_alike():
    """The sentences the API's citation quote is chosen from are the chat's: one splitter."""
    from assistant.citations import _cited_part
    from assistant.sentences import supporting_sentence

    text = "It costs $7.35 at the kiosk [1]. Use config.yaml, e.g. on 3.11.2 [2]. Bring pens etc. Then sign in."
    assert _cited_part(text, 2) == "Use config.yaml, e.g. on 3.11.2 [2]."
    from assistant.sentences import sentences

    assert sentences(text) == [
        "It costs $7.35 at the kiosk [1].",
        "Use config.yaml, e.g. on 3.11.2 [2].",
        "Bring pens etc.",
        "Then sign in.",
    ]
    assert supporting_sentence("Fees: $7.35 at the kiosk. Parking is free.", "kiosk fee 7.35") == (
        "Fees: $7.35 at the kiosk."
    )


def test_no_ends_a_sentence_unless_a_number_follows():
    """A "No." is an answer's whole sentence (and "the answer is no." ends one); only "No. 5" is the number sign."""
    from assistant.sentences import sentences

    assert sentences("Is overtime paid? No. It is given back as time off.") == [
        "Is overtime paid?",
        "No.",
        "It is given back as time off.",
    ]
    assert sentences("File form No. 5 with HR. Then wait.") == ["File form No. 5 with HR.", "Then wait."]
    # full-width ends, no space after them (Chinese, Japanese), a closing bracket kept with its sentence
    cjk = ["年假有27天。", "加班需要批准！", "「谁批准？」", "经理批准。"]
    assert sentences("".join(cjk)) == cjk
    assert (
        _marked(
            "Part-time staff are not eligible for the bonus, the answer is no. Contact HR for the form.",
            "Part-time staff are not eligible for the annual bonus",
        )
        == "Part-time staff are not eligible for the bonus, the answer is no [1]. Contact HR for the form."
    )


# a page of a hard-wrapped PDF as pypdf reads it (the Bash manual's, as a user asked about it): a running header,
# a numbered title, sentences carried over line breaks, a word cut by a hyphen at one
BASH_PAGE = """Chapter 3: Basic Shell Features 41
3.5.8 Filename Expansion
There are some differences between the tradi-
tional Bourne shell and Bash; this section details them. After word splitting,
unless the -f option has been set, Bash scans each word for the characters '*',
'?', and '['. If no matching filenames are found, and the shell option nullglob
is disabled, the word is left unchanged. If the nullglob option is set, and no
matches are found, the word is removed."""


def test_a_hard_wrapped_passage_gives_whole_sentences_as_quotes():
    """A PDF page's (or a wrapped .txt's) sentence goes on over a single line break: the quote is the whole
    sentence, the break read as a space and a word a hyphen cut at it ("tradi-" "tional") whole again; the page's
    running header and a title stay lines of their own."""
    from assistant.sentences import passage_opening, plain_sentences, supporting_sentence

    assert supporting_sentence(BASH_PAGE, "No matching filenames with nullglob disabled leave the word [1].") == (
        "If no matching filenames are found, and the shell option nullglob is disabled, the word is left unchanged."
    )
    assert supporting_sentence(BASH_PAGE, "What is the difference between the Bourne shell and Bash?") == (
        "There are some differences between the traditional Bourne shell and Bash; this section details them."
    )
    assert list(plain_sentences(BASH_PAGE))[:2] == ["Chapter 3: Basic Shell Features 41", "3.5.8 Filename Expansion"]
    assert passage_opening(BASH_PAGE, 120) == "Chapter 3: Basic Shell Features 41 — 3.5.8 Filename Expansion"
    p = Passage(1, BASH_PAGE, "bashref.pdf", "page 41", 41, 0.9, "bash", "/d/bashref.pdf", "c1")
    (c,) = extract_citations("An unmatched word stays unchanged while nullglob is disabled [1].", [p])
    assert c.quote == supporting_sentence(BASH_PAGE, "nullglob disabled unchanged")
    assert c.quote.endswith("the word is left unchanged.") and "\n" not in c.quote


def _bash_chunks():
    """Two chunks of one PDF page that overlap (the chunker's overlap): the first ends where a line of the
    nullglob sentence ends, the second starts before that sentence and holds the whole of it."""
    lines = BASH_PAGE.split("\n")
    first, second = "\n".join(lines[:6]), "\n".join(lines[4:])
    return [
        Passage(n, text, "bashref.pdf", "page 41", 41, 0.9, "bash", "/d/bashref.pdf", f"c{n}")
        for n, text in ((1, first), (3, second))
    ]


def test_overlapping_chunks_of_one_page_cited_for_one_sentence_are_one_source():
    """The answer cites [1] and [3], two overlapping chunks of one page, for the sentence both hold: one source,
    quoting the whole sentence from the chunk that holds it whole (the other's edge cut it), standing for both
    markers; a source on another page, or quoting another sentence, stays apart."""
    first, second = _bash_chunks()
    answer = "When no matching filenames are found under nullglob, the word stays [1]. It is left unchanged [3]."
    (c,) = extract_citations(answer, [first, second])
    assert (c.n, c.also, c.markers) == (3, [1], [1, 3])
    assert c.quote == (
        "If no matching filenames are found, and the shell option nullglob is disabled, the word is left unchanged."
    )
    assert c.to_dict()["also"] == [1]  # what the API and lorag ask --json give
    same = Passage(1, second.text, "bashref.pdf", "page 41", 41, 0.9, "bash", "/d/bashref.pdf", "c1")
    (c,) = extract_citations(answer, [same, second])  # the very same quote from both: the first stands for both
    assert (c.n, c.also) == (1, [3])
    other_page = Passage(3, second.text, "bashref.pdf", "page 42", 42, 0.9, "bash", "/d/bashref.pdf", "c3")
    assert [c.n for c in extract_citations(answer, [first, other_page])] == [1, 3]
    removed = "If the nullglob option is set, no matches remove the word [3]. Unmatched words stay unchanged [1]."
    assert [(c.n, c.also) for c in extract_citations(removed, [first, second])] == [(3, []), (1, [])]


@pytest.mark.parametrize(
    "text,shown",
    [
        # a blank line, a list item, a heading (left out), a code block's lines: each breaks
        (
            "Set it on\n\nthe next day.\n- Bring the form\n- Sign it\n## Next steps\nRun:\n```\nls -l\nwc\n```",
            ["Set it on", "the next day.", "Bring the form", "Sign it", "Run:", "ls -l", "wc"],
        ),
        # a wrapped list item goes on; markdown's hard break (two spaces: the ingest joins paragraphs so) breaks
        (
            "- Bring the signed form to\n  the front desk.\nParagraph one  \nends here",
            ["Bring the signed form to the front desk.", "Paragraph one", "ends here"],
        ),
        # CSV rows and JSON fields are lines of their own, a lowercase name or not
        (
            "#: 1; item: lamp; code: E-101\n#: 2; item: fan; code: E-205",
            ["#: 1; item: lamp; code: E-101", "#: 2; item: fan; code: E-205"],
        ),
        ("name: Quillon laptop\nwarranty: 3 years", ["name: Quillon laptop", "warranty: 3 years"]),
        # a short line before a capital is a title; a line ending on ":" introduces the next
        ("Dust\nThoroughly clean the lens.", ["Dust", "Thoroughly clean the lens."]),
        (
            "Backups are kept as follows:\nDaily ones for 35 days.",
            ["Backups are kept as follows:", "Daily ones for 35 days."],
        ),
        # Chinese and Japanese wrap with no space; "e.g." at a line's end does not end the sentence
        ("年假有27天，加班需要\n批准。", ["年假有27天，加班需要批准。"]),
        ("Bring a document, e.g.\nyour passport, to the desk.", ["Bring a document, e.g. your passport, to the desk."]),
        ("A name split as Jean-\nPaul stays hyphenated.", ["A name split as Jean-Paul stays hyphenated."]),
    ],
)
def test_line_breaks_that_end_a_sentence_and_those_that_do_not(text, shown):
    from assistant.sentences import plain_sentences

    assert list(plain_sentences(text)) == shown


def test_an_inferred_marker_goes_after_a_sentence_the_answer_wrapped():
    """The answer's own sentence over a line break is one: the inferred marker goes after its end, not at the
    break."""
    from assistant.sentences import sentences

    reply = "Full-time staff receive 27 days of annual\nleave each year. Ask HR."
    assert sentences(reply) == ["Full-time staff receive 27 days of annual\nleave each year.", "Ask HR."]
    assert _marked(reply, "Full-time staff receive 27 days of annual leave each year.") == (
        "Full-time staff receive 27 days of annual\nleave each year [1]. Ask HR."
    )


def test_the_sentence_splitter_splits_long_answers_and_runs_of_points():
    """A long answer, and a run of points or marks no space follows (a degenerate generation, a PDF's dot
    leaders): every sentence found once, a run inside a word not a sentence end."""
    from assistant.sentences import sentence_spans

    assert len(sentence_spans("Staff get 27 days of leave per year. " * 20000)) == 20000
    assert len(sentence_spans("a" + "." * 50000 + "b")) == 1
    assert len(sentence_spans("x" + "!?" * 25000 + "y. Done.")) == 2


def test_history_goes_before_the_question():
    msgs = build_messages("And for part-time?", [_p(1, "x")], history=[("How much leave?", "27 days [1].")])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[-1]["content"].endswith("Question: And for part-time?")


def test_reranker_reorders_candidates(indexed):
    """Any object with CrossEncoder's `predict(pairs)` reranks the fused candidates."""
    from assistant.retrieval import Retriever

    class PreferParking:
        def predict(self, pairs):
            return [1.0 if "Parking" in text else 0.0 for _, text in pairs]

    s = indexed.settings.retrieval.model_copy(update={"rerank": True, "top_k": 2})
    r = Retriever(indexed.store, indexed.dense, indexed.sparse, s, reranker=PreferParking())
    res = r.retrieve("How many days of annual leave do full-time staff receive?", "hr")
    assert res.passages[0].source == "parking.txt" and res.passages[0].score == 1.0
    plain = Retriever(indexed.store, indexed.dense, indexed.sparse, s.model_copy(update={"rerank": False}))
    assert (
        plain.retrieve("How many days of annual leave do full-time staff receive?", "hr").passages[0].source
        == "leave.md"
    )


def test_a_follow_up_passes_the_same_relevance_check_as_a_first_question(indexed):
    """A third turn off the documents' topic is refused as it would be as a first turn; a real follow-up is
    searched with the question it follows."""
    gen = FakeGenerator(lambda m: "Something [1].")
    indexed._generator = gen
    svc = indexed.ask_service
    history = [
        ("How many days of annual leave do full-time staff receive?", "27 days [1]."),
        ("And how much does a parking permit cost?", "12 euros per month [1]."),
    ]
    assert not svc.ask("What is the capital of France?", "hr").relevant  # as a first turn
    for q in ("What is the capital of France?", "And what is the capital of France?"):
        off = svc.ask(q, "hr", history=history)
        assert not off.relevant and "nothing relevant" in off.answer and off.citations == [], q
    assert gen.calls == []  # no model ran
    on = svc.ask("And for sick leave?", "hr", history=history[:1])
    assert (
        on.relevant
        and on.search_query == "How many days of annual leave do full-time staff receive? And for sick leave?"
    )
    chained = svc.ask("Who issues them?", "hr", history=history)  # a follow-up of a follow-up keeps the subject
    assert (
        chained.search_query.startswith("How many days")
        and "parking permit" in chained.search_query
        and chained.relevant
    )
    alone = svc.ask("Where do visitors sign in?", "hr", history=history)  # stands on its own: searched alone
    assert (
        alone.relevant
        and alone.search_query == "Where do visitors sign in?"
        and alone.passages[0].source == "security.html"
    )
    assert len(gen.calls[-1][0]) == 6  # the conversation still reaches the model: system, 2 turns, question


def test_citations_carry_a_supporting_sentence_and_a_short_label(indexed):
    from assistant.passage_label import passage_label

    indexed._generator = FakeGenerator(lambda m: "Full-time staff receive 27 days each year.")
    a = indexed.ask_service.ask("How many days of annual leave do full-time staff receive?", "hr")
    c = a.citations[0]
    assert c.how == "overlap" and c.label == "leave.md › Annual leave"
    assert c.quote == "Full-time staff receive 27 days of annual leave each year."
    assert (
        a.marked_answer() == "Full-time staff receive 27 days each year [1]."
    )  # the inferred citation's marker, inline
    by_source = {
        p.source: p for p in indexed.ask_service.retriever.retrieve("lamp failure code E-17", "hr", top_k=8).passages
    }
    assert "E-17" in by_source["codes.csv"].text and "E-42" in by_source["codes.csv"].text  # one passage, two rows
    assert passage_label(by_source["codes.csv"]) == "codes.csv › rows 1–2"  # the CSV rows, counted under the header
    travel = indexed.ask_service.retriever.retrieve("travel policy: trains and hotels", "hr").passages
    assert passage_label(next(p for p in travel if p.source == "travel.pdf")).startswith("travel.pdf › p. ")


def test_a_csv_passage_of_several_rows_is_labelled_with_their_range(components, settings):
    """The sample error-codes table, chunked as the user's trial had it: a passage of rows 4–6 names them all,
    a passage of one row names that row."""
    import re
    from pathlib import Path

    from assistant.passage_label import passage_label

    csv_file = Path(__file__).resolve().parents[1] / "samples" / "corpus" / "manual" / "error-codes.csv"
    codes = [line.split(",", 1)[0] for line in csv_file.read_text(encoding="utf-8").splitlines()[1:]]
    assert components.ingestor().run([csv_file], "manual").ok
    passages = components.ask_service.retriever.retrieve("What does error E-205 mean?", "manual", top_k=50).passages
    labels = set()
    for p in passages:
        rows = sorted(codes.index(c) + 1 for c in set(re.findall(r"code: (E-\d+);", p.text)))
        want = f"row {rows[0]}" if len(rows) == 1 else f"rows {rows[0]}–{rows[-1]}"
        assert passage_label(p) == f"error-codes.csv › {want}", p.text
        labels.add(want.split()[0])
    assert "rows" in labels  # the chunking put several rows in one passage


def test_a_named_domain_is_checked_without_listing_the_others(components, corpus, monkeypatch):
    """A question for a named domain checks that domain only; the others are listed for an error alone."""
    components.ingestor().run([corpus / "leave.md"], "hr")
    with pytest.raises(LoragError, match="unknown domain 'Legal!'") as e:
        components.ask_service.retriever.resolve_domains("Legal!")  # not even a valid name: still "unknown"
    assert "known domains: hr" in e.value.hint
    with pytest.raises(LoragError, match="unknown domain 'hrr'") as e:
        components.ask_service.retriever.resolve_domains("hrr")
    assert e.value.hint == "did you mean hr? known domains: hr"  # as `docs list` says it
    monkeypatch.setattr(components.store, "domains", lambda: pytest.fail("listed every domain"))
    assert components.ask_service.retriever.resolve_domains("hr") == ["hr"]


def test_a_citations_quote_is_plain_text_without_markdown_marks():
    """The quote the API, the CLI and the chat show is the passage's sentence as text: **bold**, __bold__, *em* and
    `code` marks are taken off (a leading ** too, which the list-marker strip used to leave half of)."""
    from assistant.citations import extract_citations
    from assistant.retrieval import Passage
    from assistant.sentences import supporting_sentence

    text = (
        "Les salariés à temps plein ont droit à **27 jours ouvrés** de congés payés.\n- __Report__ : `5` jours *max*."
    )
    assert supporting_sentence(text, "jours ouvrés de congés payés") == (
        "Les salariés à temps plein ont droit à 27 jours ouvrés de congés payés."
    )
    assert supporting_sentence(text, "report max") == "Report : 5 jours max."
    assert supporting_sentence("**27 days** of leave a year.", "days of leave") == "27 days of leave a year."
    assert supporting_sentence("Set max_tokens to 5 * 2 in config.", "max_tokens config") == (
        "Set max_tokens to 5 * 2 in config."
    )  # snake_case and a lone * are no emphasis
    assert supporting_sentence("See the [leave policy](https://x.example/p) now.", "leave policy") == (
        "See the leave policy now."
    )  # a link reads as its text, an image as its alt
    assert supporting_sentence('![The *form*](f.png "F") is signed.', "form signed") == "The form is signed."
    assert supporting_sentence("- Search for \\*wildcard\\*", "search wildcard") == "Search for *wildcard*"
    assert supporting_sentence("Use `a\\*b` or \\_x\\_.", "use") == "Use a\\*b or _x_."  # code keeps its \\
    p = Passage(1, text, "conges.md", "Congés", None, 0.9, "rh", "/d/conges.md", "c1")
    (c,) = extract_citations("Vous avez 27 jours ouvrés [1].", [p], "Combien de jours de congés payés ?")
    assert c.quote == "Les salariés à temps plein ont droit à 27 jours ouvrés de congés payés."
    assert c.to_dict()["quote"] == c.quote  # what the API sends


def test_a_csv_row_whose_first_column_starts_with_a_hash_is_a_quote_not_a_heading():
    from assistant.sentences import supporting_sentence

    table = "#: 1; item: projector; code: E-205\n#: 2; item: lamp; code: E-101"
    assert supporting_sentence(table, "What is E-205 on the projector?") == "#: 1; item: projector; code: E-205"
    assert supporting_sentence("## Projector codes\nE-205 means the filter wheel.", "projector E-205") == (
        "E-205 means the filter wheel."
    )


def test_search_hits_carry_their_cosine_and_whether_they_hold_a_question_term(indexed):
    """The store's fused hits say what fusion drew on: the cosine of a dense candidate (None for a BM25-only one)
    and whether it was a BM25 candidate, as the separate candidate lists give them."""
    q = "How many days of annual leave do full-time staff receive?"
    dense_q, sparse_q = indexed.dense.embed_query(q).tolist(), indexed.sparse.embed_query(q)
    res = indexed.store.search("hr", dense_q, sparse_q, limit=8, prefetch=24, rrf_k=60)
    lists = indexed.store.ranked_lists("hr", dense_q, sparse_q, limit=24)
    cos = {h.id: h.score for h in lists.dense}
    lexical = {h.id for h in lists.sparse}
    assert res.hits and lexical and any(h.id not in lexical for h in res.hits)
    for h in res.hits:
        assert h.dense == pytest.approx(cos.get(h.id), abs=1e-5) if h.id in cos else h.dense is None
        assert h.lexical == (h.id in lexical)


@pytest.mark.parametrize("domain", ["hr", None], ids=["one-domain", "all-domains"])
def test_top_k_leaves_out_passages_that_share_nothing_with_the_question(indexed, corpus, domain):
    """A domain too small to hold k related passages: fusion fills top-k with chunks that hold no term of the
    question and whose cosine to it is under retrieval.min_relevance; those are left out (the sources the
    answer and its citations see), related ones ranked under k take their places (twice k are fetched), and the
    rest keep their order. When no passage is relevant, or with retrieval.drop_unrelated off, none is left out."""
    from assistant.retrieval import Retriever, unrelated

    if domain is None:  # a second domain: the cross-domain fusion
        assert indexed.ingestor().run([corpus], "ops").ok
    s = indexed.settings.retrieval.model_copy(update={"top_k": 8})
    q = "How many days of annual leave do full-time staff receive?"
    everything = Retriever(indexed.store, indexed.dense, indexed.sparse, s.model_copy(update={"drop_unrelated": False}))
    kept = Retriever(indexed.store, indexed.dense, indexed.sparse, s)
    full, got = everything.retrieve(q, domain, top_k=16), kept.retrieve(q, domain)  # 16: what the cut sees
    assert got.relevant and len(full.passages) > 8
    dense_q, sparse_q = indexed.dense.embed_query(q).tolist(), indexed.sparse.embed_query(q)
    is_unrelated = {}
    for d in got.domains:
        lists = indexed.store.ranked_lists(d, dense_q, sparse_q, limit=50)
        cos, lexical = {h.id: h.score for h in lists.dense}, {h.id for h in lists.sparse}
        for p in full.passages:
            if p.domain == d:
                marks = Hit(p.chunk_id, 0.0, {}, cos.get(p.chunk_id), p.chunk_id in lexical)
                is_unrelated[p.chunk_id] = unrelated(marks, s.min_relevance)
    assert any(is_unrelated[p.chunk_id] for p in full.passages[:8])  # the plain top 8 holds unrelated ones
    want = [p.chunk_id for p in full.passages if not is_unrelated[p.chunk_id]][:8]
    assert [p.chunk_id for p in got.passages] == want and "leave.md" in {p.source for p in got.passages}
    nothing = Retriever(indexed.store, indexed.dense, indexed.sparse, s.model_copy(update={"min_relevance": 0.99}))
    none_relevant = nothing.retrieve(q, domain)
    assert not none_relevant.relevant and len(none_relevant.passages) == 8  # as before: nothing left out
    plain = everything.retrieve(q, domain)
    assert [p.chunk_id for p in plain.passages] == [p.chunk_id for p in full.passages[:8]]  # the switch off


@pytest.mark.parametrize(
    "passage,most,shown",
    [
        # the limit falls on the space after a word: that word is whole and stays
        ("Clean the lens weekly with a soft dry cloth.", 14, "Clean the lens…"),
        # the limit falls inside a word: it goes, and the words before it stay
        ("Clean the lens weekly with a soft dry cloth.", 17, "Clean the lens…"),
        # a title line set off from the next by " — ": no dangling dash when the next line's first word goes
        ("Dust\nThoroughly cleaning the lens keeps pictures sharp.", 12, "Dust…"),
        ("Dust\nThoroughly cleaning the lens keeps pictures sharp.", 22, "Dust — Thoroughly…"),
        ("Lens care: weekly, with a soft dry cloth.", 18, "Lens care: weekly…"),  # no dangling comma
        ("Supercalifragilisticexpialidocious is long.", 10, "Supercalif…"),
        ("Short enough.", 160, "Short enough."),
    ],
)
def test_a_passage_opening_is_cut_after_its_last_whole_word(passage, most, shown):
    from assistant.sentences import passage_opening

    assert passage_opening(passage, most) == shown


def test_a_citation_whose_passage_has_no_matching_sentence_quotes_how_the_passage_begins(monkeypatch):
    """An inferred citation (words compared as lemmas: "plots ... charges" meets "plot ... charge") whose passage
    holds no sentence with the answer's or the question's words as written quotes the passage's opening, never ''."""
    import assistant.citations as citations

    text = "Plot charge\n\x7f\nEach plot costs 40 euros a year.\n\x7f\nThe gardener keeps the keys."
    p = Passage(2, text, "expenses-and-travel.pdf", "page 3", 3, 0.9, "handbook", "/d/e.pdf", "c2")
    (c,) = extract_citations("Plots charges yearly.", [p], question="Who pays?")
    assert c.how == "overlap" and c.n == 2
    assert c.quote == "Plot charge — Each plot costs 40 euros a year. The gardener keeps the keys."
    # a supporting sentence that comes back blank falls back the same way
    monkeypatch.setattr(citations, "supporting_sentence", lambda passage, words: "  \n")
    (c,) = extract_citations("Plots charges yearly [2].", [p])
    assert c.quote == "Plot charge — Each plot costs 40 euros a year. The gardener keeps the keys."


def test_a_quote_starts_with_the_items_words_not_its_bullet_or_dash():
    from assistant.sentences import passage_opening, supporting_sentence

    text = "Expenses that are not reimbursed\n \x7f\nHotel minibar items.\n• Traffic fines.\n — Seat upgrades."
    assert passage_opening(text) == (
        "Expenses that are not reimbursed — Hotel minibar items. Traffic fines. Seat upgrades."
    )
    assert supporting_sentence(text, "traffic fines") == "Traffic fines."
    assert supporting_sentence(text, "seat upgrades") == "Seat upgrades."


def test_a_quote_of_code_keeps_its_backticks_and_marks():
    """Code reads as written in quotes (JavaScript's template literals, a shell's *): markdown's marks come off
    prose only; a code block's fence lines are no sentences."""
    from assistant.sentences import plain_sentences, supporting_sentence

    passage = (
        "Read a file line by line with **readline**:\n\n```js\nfor await (const line of rl) {\n"
        "  console.log(`Line from file: ${line}`);\n}\n```\n\nThen close `rl`.\n\n    rm *.tmp\n"
    )
    assert (
        supporting_sentence(passage, "console.log prints Line from file") == "console.log(`Line from file: ${line}`);"
    )
    assert list(plain_sentences(passage)) == [
        "Read a file line by line with readline:",
        "for await (const line of rl) {",
        "console.log(`Line from file: ${line}`);",
        "}",
        "Then close rl.",
        "rm *.tmp",
    ]


def test_passages_of_the_same_text_are_one_and_name_where_else_it_is(indexed, corpus):
    """Docs that hold a page twice (a print or all-in-one copy): the same text from two files is one passage, the
    next distinct one takes the freed place, and the kept passage names the other's ref (API, --json, the Chat)."""
    import shutil

    from assistant.retrieval import Retriever

    (corpus / "print").mkdir()
    shutil.copy(corpus / "leave.md", corpus / "print" / "leave.md")
    assert indexed.ingestor().run([corpus], "dup").ok
    s = indexed.settings.retrieval.model_copy(update={"top_k": 4, "drop_unrelated": False})  # 4 places to fill
    got = Retriever(indexed.store, indexed.dense, indexed.sparse, s).retrieve("How many days of annual leave?", "dup")
    texts = [" ".join(p.text.split()) for p in got.passages]
    assert len(got.passages) == 4 and len(set(texts)) == 4
    (annual,) = [p for p in got.passages if "27 days" in p.text]
    other = "print/leave.md" if annual.source == "leave.md" else "leave.md"
    assert [r.split("#")[0] for r in annual.same_text] == [other]
    assert annual.to_dict()["same_text"] == annual.same_text
    assert all("same_text" not in p.to_dict() for p in got.passages if p is not annual and not p.same_text)


def test_a_quote_keeps_an_inline_code_spans_text_as_written():
    """An inline code span's text stays as written in a quote, backticks inside a ``...`` span (a JavaScript
    template literal), stars and underscores too; the prose around it loses its marks as before, and a span at an
    item's start keeps its dashes."""
    from assistant.sentences import plain_sentences, supporting_sentence

    passage = (
        "Each line is printed with ``console.log(`Line from file: ${line}`)`` inside the **loop**.\n\n"
        "- `--max-old-space-size` raises the heap.\n- Use `a*b*c` or `__dirname` as *written*.\n"
    )
    assert supporting_sentence(passage, "console.log prints each line from the file") == (
        "Each line is printed with console.log(`Line from file: ${line}`) inside the loop."
    )
    assert list(plain_sentences(passage))[1:] == [
        "--max-old-space-size raises the heap.",
        "Use a*b*c or __dirname as written.",
    ]
