"""The sentence writer: definition, procedure, condition and reason sentences, asked about."""

from __future__ import annotations

import random
import re

from finetune.text import blocks, is_sentence, split_sentences, words
from finetune.writers.candidate import Candidate, qtype
from finetune.writers.wording import OBJECT_START, lemmas, lower_first, you_to_me

_PRONOUN_START = {
    "it",
    "this",
    "that",
    "these",
    "those",
    "there",
    "here",
    "he",
    "she",
    "they",
    "we",
    "you",
    "i",
    "which",
    "what",
    "each",
    "every",
    "some",
    "such",
    "all",
    "any",
    "both",
    "most",
    "one",
    "another",
    "other",
    "its",
    "their",
    "his",
    "her",
    "our",
    "your",
    "my",
    "now",
    "then",
    "also",
    "however",
    "note",
    "if",
    "when",
    "so",
    "thus",
    "hence",
    "but",
    "and",
    "or",
    "in",
    "on",
    "at",
    "for",
    "as",
    "by",
    "with",
    "from",
    "to",
    "of",
    "after",
    "before",
    "since",
    "while",
    "because",
    "although",
    "only",
    "many",
    "several",
    "few",
    "no",
    "none",
    "not",
    "more",
    "less",
    "first",
    "second",
    "next",
    "last",
    "same",
}
_CLAUSE_WORDS = {
    "if",
    "when",
    "that",
    "this",
    "which",
    "where",
    "whether",
    "than",
    "because",
    "but",
    "or",
    "not",
    "to",
    "by",
    "with",
    "in",
    "on",
    "at",
    "from",
    "as",
    "is",
    "are",
    "was",
    "be",
    "it",
    "can",
    "will",
    "may",
}
_DEF = re.compile(
    r"^(?P<art>(?:An?|The)\s+)?(?P<term>[A-Za-z0-9][\w'’/+-]*(?:\.\w+)*(?:\s+[\w'’/+-]+(?:\.\w+)*){0,4}?)\s+(?P<verb>is|are)\s+"
    r"(?P<rest>(?:an?|the|one|used|called|defined|responsible|designed|similar|equivalent|a set|a list|"
    r"a way|a kind|a type|a special|any)\b.+)$"
)
_MEANS = re.compile(
    r"^(?P<art>(?:An?|The)\s+)?(?P<term>[A-Za-z0-9][\w.'’/+-]*(?:\s+[\w.'’/+-]+){0,4}?)\s+"
    r"(?P<verb>means|refers to|denotes|stands for|represents)\s+(?P<rest>.+)$"
)
_TO = re.compile(r"^To (?P<goal>[a-z][^,;:]{3,90}),\s+(?P<rest>.+)$")
_IF_WANT = re.compile(r"^(?:If|When) you (?:want|need|wish|would like) to (?P<goal>[^,;:]{3,90}),\s+(?P<rest>.+)$")
_USE_TO = re.compile(r"^Use (?P<tool>[^.;:]{2,50}?) to (?P<goal>[a-z][^.;:]{3,80})[.,]")
_YOU_CAN = re.compile(r"^You can (?P<goal>[a-z][^.;:]{3,70}?) (?:by|with|using) (?P<rest>.+)$")
_LETS = re.compile(
    r"^(?P<subj>(?:The |An? )?[\w.()'’-]+(?: [\w.()'’-]+){0,4}) (?:lets|allows|enables) (?:you|users|the user) "
    r"(?:to )?(?P<goal>[a-z][^.;:]{3,80})[.;]"
)
_COND = re.compile(r"^(?P<word>If|When|Unless) (?P<cond>[^,;:]{8,90}), (?P<rest>.{8,})$")
_RETURNS = re.compile(
    r"^(?P<subj>(?:The |An? )?[\w.]+(?:\(\))?(?: (?:function|method|call|command|option|statement))?) "
    r"returns (?P<rest>.{4,})$"
)
_CAN = re.compile(
    r"^(?P<subj>(?:The |An? )?[\w.()'’-]+(?: [\w.()'’-]+){0,3}) (?P<neg>can|cannot|can't|can not) "
    r"(?P<verb>[a-z]+)(?P<rest>[^.;:]{0,60})[.;]"
)
_BECAUSE = re.compile(r"^(?P<clause>[A-Z][^,;:]{10,90}?),? because (?P<reason>.{6,})$")
_NO_SUBJECT = {
    "set",
    "given",
    "used",
    "specified",
    "called",
    "enabled",
    "disabled",
    "omitted",
    "present",
    "absent",
    "true",
    "false",
    "possible",
    "needed",
    "necessary",
    "unset",
    "empty",
    "run",
    "invoked",
    "configured",
    "passed",
    "supplied",
    "provided",
    "requested",
    "successful",
    "unsuccessful",
    "available",
    "applicable",
}
_AUX = {
    "is",
    "are",
    "was",
    "were",
    "can",
    "cannot",
    "will",
    "would",
    "should",
    "must",
    "may",
    "does",
    "do",
    "did",
    "has",
    "have",
}


def _goal_ok(goal: str) -> bool:
    first = goal.split()[0] if goal.split() else ""
    lem = lemmas(first)
    return "VERB" in lem and lem["VERB"][0] == first.lower() and 2 <= words(goal) <= 14


def _subject_ok(subj: str) -> bool:
    ws = subj.split()
    return (
        bool(ws)
        and ws[0].lower() not in _PRONOUN_START - {"the", "a", "an"}
        and not set(w.lower() for w in ws[1:]) & _CLAUSE_WORDS
    )


def _why(clause: str) -> str | None:
    """'Python uses indentation' -> 'Why does Python use indentation?'; 'X is slow' -> 'Why is X slow?'."""
    ws = clause.rstrip(".").split()
    for i, w in enumerate(ws[1:6], 1):
        lw = w.lower()
        subj = " ".join(ws[:i])
        if not _subject_ok(subj):
            return None
        if lw in _AUX:
            rest = " ".join(ws[i + 1 :])
            if lw == "cannot":
                return f"Why can't {lower_first(subj, clause)} {rest}?"
            return f"Why {lw} {lower_first(subj, clause)} {rest}?" if rest else None
        lem = lemmas(lw)
        if "VERB" in lem and lem["VERB"][0] != lw and lw.endswith("s"):
            return f"Why does {lower_first(subj, clause)} {lem['VERB'][0]} {' '.join(ws[i + 1 :])}?".replace(" ?", "?")
    return None


def sentence_question(sentence: str) -> str | None:
    """The question a definition, procedure, condition or reason sentence answers, or None."""
    s = sentence.strip()
    for rx in (_TO, _IF_WANT):
        m = rx.match(s)
        if m and _goal_ok(m.group("goal")):
            return f"How do I {you_to_me(m.group('goal').strip())}?"
    m = _USE_TO.match(s)
    if m and _goal_ok(m.group("goal")):
        return f"How do I {you_to_me(m.group('goal').strip())}?"
    m = _YOU_CAN.match(s)
    if m and _goal_ok(m.group("goal")):
        return f"How can I {you_to_me(m.group('goal').strip())}?"
    m = _LETS.match(s)
    if m and _goal_ok(m.group("goal")) and _subject_ok(m.group("subj")):
        return f"How can I {you_to_me(m.group('goal').strip())}?"
    m = _COND.match(s)
    if (
        m
        and m.group("word") != "Unless"
        and not m.group("cond").lower().startswith(("you want", "you need", "you wish"))
        and m.group("cond").split()[0].lower()
        not in (_PRONOUN_START | _NO_SUBJECT) - {"the", "a", "an", "you", "your", "any", "no"}
    ):
        cond = you_to_me(m.group("cond").strip())
        return f"What happens {m.group('word').lower()} {cond}?"
    m = _RETURNS.match(s)
    if m and _subject_ok(m.group("subj")):
        return f"What does {lower_first(m.group('subj'), s)} return?"
    m = _CAN.match(s)
    if m and _subject_ok(m.group("subj")) and "VERB" in lemmas(m.group("verb")):
        return f"Can {you_to_me(lower_first(m.group('subj'), s))} {m.group('verb')}{you_to_me(m.group('rest'))}?"
    m = _BECAUSE.match(s)
    if m:
        q = _why(m.group("clause"))
        if q:
            return q
    for rx in (_DEF, _MEANS):
        m = rx.match(s)
        if not m:
            continue
        term = m.group("term").strip()
        if set(term.lower().split()[1:]) & _CLAUSE_WORDS:
            continue
        if term.split()[0].lower() in _PRONOUN_START or (
            m.group("art") is None and term.split()[0].lower() in OBJECT_START
        ):
            continue
        art = (m.group("art") or "").strip()
        phrase = f"{art.lower()} {term}".strip() if art else term
        phrase = phrase if art else lower_first(phrase, s[len(term) :])
        if rx is _MEANS:
            return f"What does {phrase} mean?"
        return f"What {m.group('verb')} {phrase}?"
    return None


def sentence_candidates(text: str, rng: random.Random, *, limit: int = 2) -> list[Candidate]:
    out: list[Candidate] = []
    for b in blocks(text):
        if b.kind != "prose":
            continue
        sents = split_sentences(b.text)
        for i, s in enumerate(sents):
            if not is_sentence(s, min_words=6, max_words=45):
                continue
            q = sentence_question(s)
            if not q:
                continue
            answer = s
            if (
                i + 1 < len(sents)
                and is_sentence(sents[i + 1], min_words=3, max_words=40)
                and words(s + " " + sents[i + 1]) <= 60
                and not re.match(r"^(To|If|When|Use|You can)\b", sents[i + 1])
            ):
                answer = f"{s} {sents[i + 1]}"
            out.append(Candidate(q, answer, "sentence", qtype(q)))
    rng.shuffle(out)
    return out[:limit]
