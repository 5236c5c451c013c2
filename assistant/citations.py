"""Citations: the passages an answer cites with [n] markers, else the one it draws on by shared words (compared as
lemmas), each with the sentence that supports it; and how much of an answer the passages hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

from assistant.abstention import is_abstention
from assistant.passage_label import passage_label
from assistant.retrieval import Passage
from assistant.sentences import CITE, content_words, passage_opening, sentences, supporting_sentence

QUOTE_MIN_WORDS = 4  # an answer sentence whose content words a passage nearly all holds cites it (a quote)
QUOTE_SHARE = 0.8
# words (as lemmas) by which an answer points to what it read rather than says what that holds: "The document
# recommends ...", "According to the passage, ...", "The text states ...". Citation matching leaves them out of
# the answer's words when no passage it may cite holds them (then they only frame the sentence); one that a passage
# holds is content ("Each state must file ...", "a source package", "by text") and is compared like any other word.
# ("according" is the verb "accord" to the lemmatizer.)
_SOURCE_WORDS = set("document passage text source context excerpt accord state say mention recommend suggest".split())
_LEMMA_POS = ("VERB", "NOUN", "ADJ", "ADV")  # a verb's lemma first: "leaves" meets "leave", not "leaf"


@dataclass
class Citation:
    n: int
    ref: str
    source: str
    section: str
    page: int | None
    doc_id: str
    how: str  # "marker": the answer cites [n]; "overlap": inferred from shared words
    quote: str = ""  # the passage's sentence that supports the answer best (shown highlighted)
    label: str = (
        ""  # short, readable: "leave-policy.md › Carrying leave over", "codes.csv › row 3", "travel.pdf › p. 2"
    )
    # the answer's other markers that cite this source: passages that overlap its passage (the chunker's overlap)
    # and quote the same sentence of the same place of the file (_merged): [1] and [3] -> one source, [1][3]
    also: list[int] = field(default_factory=list)

    @property
    def markers(self) -> list[int]:
        """Every [n] of the answer that this source stands for, in order: its own and those merged into it."""
        return sorted([self.n, *self.also])

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@lru_cache(maxsize=1 << 16)
def _lemma(word: str) -> str:
    """One form for a word's inflections ('inspecting', 'inspects' -> 'inspect'; 'days' -> 'day'), by lemminflect's
    English dictionary; a word it does not know (a name, a number, another language's) stays as it is."""
    if not (word.isascii() and word.isalpha()):
        return word
    from lemminflect import getAllLemmas

    forms = getAllLemmas(word)
    for pos in _LEMMA_POS:
        if forms.get(pos):
            return forms[pos][0]
    return next((f[0] for f in forms.values() if f), word)


def cite_words(text: str) -> set[str]:
    """The words citation matching compares: content words as lemmas."""
    return set(map(_lemma, content_words(text)))


def _answer_words(text: str, held: set[str]) -> set[str]:
    """An answer's cite words less those that point to the source (_SOURCE_WORDS) and that no passage holds
    (`held`: the passages' cite words): "The document recommends ..." frames a sentence; "Each state must ..."
    names what a passage says."""
    return cite_words(text) - (_SOURCE_WORDS - held)


def warm_lemmas() -> None:
    """Load the lemmatizer's dictionary (a quarter of a second, else paid by the first answer that citation
    matching reads): where a long-running process (`lorag ui`, the keep-warm worker) loads its models."""
    _lemma("inspecting")


def support(answer: str, texts: Sequence[str]) -> float:
    """Share of the answer's content words (citation markers aside) found in the given texts."""
    words = content_words(CITE.sub("", answer))
    if not words:
        return 0.0
    have = set().union(*(content_words(t) for t in texts)) if texts else set()
    return len(words & have) / len(words)


def extract_citations(answer: str, passages: Sequence[Passage], question: str = "") -> list[Citation]:
    """Citations the answer makes with [n] markers (only numbers that exist), one per source shown (_merged);
    else the passage the answer overlaps most, if it shares enough words. An abstention cites nothing."""
    by_n = {p.n: p for p in passages}
    cited = [by_n[n] for n in dict.fromkeys(int(m) for m in CITE.findall(answer)) if n in by_n]
    how = "marker"
    if not cited and passages and not is_abstention(answer):
        best = _overlapped(CITE.sub("", answer), passages, question)
        if best is not None:
            cited, how = [best], "overlap"
    return _merged(
        [
            Citation(
                p.n,
                p.ref,
                p.source,
                p.section,
                p.page,
                p.doc_id,
                how,
                quote=_quote(p.text, _cited_part(answer, p.n), question),
                label=passage_label(p),
            )
            for p in cited
        ]
    )


def _merged(citations: list[Citation]) -> list[Citation]:
    """One citation per source shown: two passages cut from one place of a file (the same page or section) that
    overlap there (the chunker's overlap) and give the same quote are one source, the answer's markers of both
    kept ([1] and [3] -> [1][3]). The same quote is the same sentence, or a piece of it that one passage's edge
    cut off (its start or its end): the citation whose passage holds the whole sentence stands for both, in the
    place of the first."""
    out: list[Citation] = []
    for c in citations:
        at = next((i for i, k in enumerate(out) if _same_quote(k, c)), None)
        if at is None:
            out.append(c)
            continue
        kept = out[at]
        if len(c.quote) > len(kept.quote):  # the whole sentence, where the kept one has a cut piece of it
            c.also, out[at] = [kept.n, *kept.also], c
        else:
            kept.also.append(c.n)
    return out


_CUT_QUOTE_MIN = 20  # the shortest piece of a sentence that a passage's edge cut off which still names it


def _same_quote(a: Citation, b: Citation) -> bool:
    """Do the citations quote the same sentence of the same place (file, page, section): the same words, or one's
    a start or an end of the other's (cut off by its passage's edge)?"""
    if (a.doc_id or a.source, a.page, a.section) != (b.doc_id or b.source, b.page, b.section):
        return False
    short, long = sorted((" ".join(a.quote.split()), " ".join(b.quote.split())), key=len)
    if not short:
        return False
    return short == long or len(short) >= _CUT_QUOTE_MIN and (long.startswith(short) or long.endswith(short))


def _quote(passage: str, cited: str, question: str) -> str:
    """The passage's sentence that supports what cites it, else the one that the question's words meet, else how
    the passage begins (passage_opening): a citation always shows the reader something of its passage."""
    for words in (cited, question):
        quote = supporting_sentence(passage, words).strip()
        if quote:
            return quote
    return passage_opening(passage).strip()


def _overlapped(answer: str, passages: Sequence[Passage], question: str = "") -> Passage | None:
    """The passage an answer without markers draws on: the one sharing most of its content words, if it shares
    a third of them (at least 2); else one that holds nearly all the words of one of its sentences (a quote among
    sentences of the model's own, which dilute the answer's share). Either way the passage must also hold what
    the answer adds to the question (a third of its words not in the question, at least one): an answer that
    only rephrases the question shares the passage's words without drawing on it. Words are compared as lemmas,
    the answer's words that point to the source aside unless a passage holds them (_answer_words): "The document
    recommends inspecting ..." quotes "Inspect ..."; "Each state must file ..." cites the passage on states, not the
    same sentence on counties."""
    texts = {p.n: cite_words(p.text) for p in passages}
    held = set().union(*texts.values())
    asked = cite_words(question)

    def adds(words: set[str], p: Passage) -> bool:
        new = words - asked
        return len(new & texts[p.n]) >= max(1, len(new) // 3)

    words = _answer_words(answer, held)
    drawn_on = [p for p in passages if adds(words, p)]  # a passage that only echoes the question never wins
    if words and drawn_on:
        best = max(drawn_on, key=lambda p: len(words & texts[p.n]))
        if len(words & texts[best.n]) >= max(2, len(words) // 3):
            return best
    quoted: tuple[float, Passage] | None = None
    for sent in sentences(answer):
        sw = _answer_words(sent, held)
        if len(sw) < QUOTE_MIN_WORDS:
            continue
        fits = [p for p in passages if adds(sw, p)]
        if not fits:
            continue
        p = max(fits, key=lambda p: len(sw & texts[p.n]))
        share = len(sw & texts[p.n]) / len(sw)
        if share >= QUOTE_SHARE and (quoted is None or share > quoted[0]):
            quoted = (share, p)
    return quoted[1] if quoted else None


def _cited_part(answer: str, n: int) -> str:
    """The answer's sentences that carry the marker [n] (all of it when none does)."""
    parts = [s for s in sentences(answer) if f"[{n}]" in s]
    return " ".join(parts) or answer
