"""Sentences of a text and how a passage begins, light enough for the warm CLI to import (no model, no retrieval
code): the splitter the citations (assistant/answer.py) and the CLI's snippets share."""

from __future__ import annotations

import re
from typing import Iterator

from assistant.markup import markdown_emphasis_text

_HEADING = re.compile(r"\s{0,3}#{1,6}(\s|$)")  # a markdown heading line (a CSV row "#id: 1; ..." is none)
# where a sentence may end: its closing punctuation (and any closing quote or bracket) before a space or the end,
# or a line break. A point inside a word is no end: 7.35, 3.11.2, 1,000.5, config.yaml, https://example.com/a.html
# (a run of points is matched from its first only: no backtracking over it from each of its points)
_CJK_END = r"[\u3002\uff01\uff1f]+[\u300d\u300f\u3011\u300b\u201d\u2019\uff09]*"  # 。！？ and closing brackets
_END = re.compile(r"(?<![.!?])[.!?]+[\"'\u201d\u2019)\]]*(?=\s|$)|" + _CJK_END + r"|\n")
# words whose point is not a sentence's end (lowercase, point included); "etc." ends one before a capital
ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "incl.", "resp.", "mr.", "mrs.", "ms.", "dr."}
_ABBREVIATIONS_ENDING = {"etc."}
_NUMBER_SIGNS = {"no."}  # "No. 5": no end before a digit; "The answer is no." ends a sentence
_NEXT = re.compile(r"\s*(\S?)")  # the first character after the spaces
_WORD_BACK = 32  # how far back an end's word is looked for (longer than any abbreviation)
_OPENING_END = re.compile(r"[\s,;:—]+$")  # what a cut opening does not end on before its "…"
SNIPPET_CHARS = 160  # the most of a passage's opening the CLI shows when no sentence of it supports the answer


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each sentence of `text`, its closing punctuation included and surrounding spaces not:
    one splitter for the citations the API returns and the markers the chat shows. A sentence ends at . ! or ?
    before a space (or the text's end), at a full-width 。！？ (Chinese, Japanese: no space follows), or at a
    line break; not at a point inside a number, a version, a file
    name or a URL (no space follows it), nor after e.g. / i.e. / vs. (nor after etc. unless a capital follows,
    nor after No. before a digit)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        if m.group() != "\n":
            # the word the point closes, from a bounded look back (a slice of all the text before: quadratic)
            word = text[max(0, m.start() - _WORD_BACK) : m.start() + 1].rsplit(None, 1)[-1].lstrip("(\"'").lower()
            if word in ABBREVIATIONS or word in _NUMBER_SIGNS:
                after = _NEXT.match(text, m.end()).group(1)  # type: ignore[union-attr]  # it always matches
                if word in _NUMBER_SIGNS:
                    if after.isdigit():
                        continue
                elif word not in _ABBREVIATIONS_ENDING or not after.isupper():
                    continue
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        piece = text[a:b]
        if piece.strip():
            a += len(piece) - len(piece.lstrip())
            b -= len(piece) - len(piece.rstrip())
            out.append((a, b))
    return out


def sentences(text: str) -> list[str]:
    """The sentences of `text` (sentence_spans)."""
    return [text[a:b] for a, b in sentence_spans(text)]


def passage_opening(passage: str, most: int = SNIPPET_CHARS) -> str:
    """The passage's first sentences as plain text (headings aside, as supporting_sentence reads them), cut at a
    word's end with an ellipsis past `most` characters: what the CLI shows of a passage none of whose sentences
    shares a word with the answer or the question."""
    text = ""
    for sent in plain_sentences(passage):
        # a line that ends no sentence (a title, a table row) is set off from the next
        text = f"{text}{' ' if text[-1:] in '.!?:;…。！？' else ' — '}{sent}" if text else sent
        if len(text) >= most // 2:
            break
    if len(text) > most:
        head = text[: most + 1]  # one past the limit: a space there ends the last word whole
        cut = head.rstrip() if head[-1].isspace() else head.rsplit(None, 1)[0]
        cut = cut[:most]  # one word longer than the limit: cut inside it
        text = _OPENING_END.sub("", cut) + "…"  # no dangling "," or " —" (a line's set-off) before the ellipsis
    return text


def plain_sentences(passage: str) -> Iterator[str]:
    """The passage's sentences (and table rows, list items) in order, as plain text; headings left out."""
    for line in passage.splitlines():
        if _HEADING.match(line):
            continue
        for sent in sentences(line):
            sent = markdown_emphasis_text(sent, " \t-*>|")  # marks first: "**27 days** ..." loses both
            if sent:
                yield sent
