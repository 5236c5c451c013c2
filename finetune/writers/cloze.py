"""The cloze writer: a fact of a sentence blanked (a test of recall, not a user's question)."""

from __future__ import annotations

import random
import re

from finetune.text import blocks, is_sentence, split_sentences
from finetune.writers.candidate import Candidate

_FACT = re.compile(  # a code (HR-12) or a number with an optional unit; the space belongs to the unit
    r"\b(?:[A-Z]{1,4}-?\d[\w-]*|\d+(?:[.,]\d+)?(?:\s?(?:%|percent|days?|hours?|minutes?|seconds?|weeks?|months?|years?|"
    r"euros?|EUR|USD|dollars?|nm|mm|cm|kg|g|°C|V|W|GB|MB|KB|bytes?|characters?|times?|bits?)\b)?)(?!\w)"
)


def _blank_ok(sentence: str, m: re.Match) -> bool:
    """Not part of a longer token or of something that is no fact: a phone number, a time, a date, a
    path, a man-page section `mount(8)`, a footnote or citation `[1]`, a URL, a list index, a version."""
    before, after = sentence[: m.start()], sentence[m.end() :]
    if before[-1:] in ("+", ":", "/", ".", "-", "(", "[", "#", "v", "V") or re.search(r"\d\s?$", before):
        return False
    if re.match(r"\s?\d|[:/.,-]\d|[)\]]", after):
        return False
    token = re.search(r"\S*$", before).group(0) + m.group(0) + re.match(r"\S*", after).group(0)
    if re.search(r"://|www\.|\.(com|org|net|html?)\b|@", token):
        return False
    return not re.match(r"^\s*$", before)  # a number opening the sentence is a list index


def cloze_candidates(text: str, rng: random.Random) -> list[Candidate]:
    sents = [
        s
        for b in blocks(text)
        if b.kind == "prose"
        for s in split_sentences(b.text)
        if is_sentence(s, min_words=6, max_words=35)
    ]
    cands = [(s, m) for s in sents for m in _FACT.finditer(s) if m.group(0).strip() and _blank_ok(s, m)]
    if not cands:
        return []
    s, m = rng.choice(cands)
    blanked = (s[: m.start()] + "____" + s[m.end() :]).rstrip(" .")
    q = f"Fill in the blank: {blanked}. What goes in the blank?"
    return [Candidate(q, s, "cloze", "other")]
