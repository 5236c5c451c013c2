"""Sentences of a text, a passage's sentence that supports an answer and how a passage begins, light enough for the
warm CLI to import (no model, no retrieval code): the splitter and the word overlap the citations
(assistant/citations.py) and the CLI's snippets share."""

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
# what a quote does not start with: a list item's bullet or dash, a line's set-off, a control character (the bullet
# of a PDF read before ingest mapped it, ingest/pdf_docx_loaders.py)
_QUOTE_START = re.compile(r"^[\s\-\u2010-\u2015\u2022\u2023\u2043\u25aa\u25cf\u00b7*\x00-\x1f\x7f-\x9f]+")
_OPENING_END = re.compile(r"[\s,;:—]+$")  # what a cut opening does not end on before its "…"
SNIPPET_CHARS = 160  # the most of a passage's opening the CLI shows when no sentence of it supports the answer
CITE = re.compile(r"\[(\d{1,2})\]")  # a citation marker in an answer: [n]
WORD = re.compile(r"[^\W_]+")  # letters and digits of any script
# Han, hiragana, katakana: written without spaces, so their content "words" are character pairs
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_KANA_ONLY = re.compile(r"[\u3040-\u309f]+")  # hiragana pairs: mostly particles and endings
STOP_WORDS = set(
    "the a an of to in on for and or is are was were be by with as at it this that from what how which who".split()
) | set(  # the commonest function words of French, German, Spanish, Italian, Portuguese and Dutch: shared by any two
    # passages of one language, they say nothing of what an answer draws on
    "le la les un une des du de et est sont au aux en dans pour par sur avec ce cette qui que il elle pas plus ou "
    "der das dem des ein eine einen und ist sind im zu mit von auf für nicht als auch oder "
    "el los las del y es son con por para una unos se lo al como más pero "
    "il lo gli di da che è sono nel della per con non una "
    "os as do da dos das um uma em no na com não por para "
    "het een van en is zijn op te met voor niet aan bij".split()
)


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
            sent = _QUOTE_START.sub("", sent)  # "• Hotel minibar ...", " — ...": the item's words
            if sent:
                yield sent


def content_words(text: str) -> set[str]:
    """Words of two letters or more, stop words aside; in Chinese and Japanese runs, each pair of adjacent
    characters (a pair of hiragana aside), the usual unit of overlap where no space separates words."""
    text = text.lower()
    pairs = set()
    for run in _CJK.findall(text):
        pairs.update(p for p in (run[i : i + 2] for i in range(len(run) - 1)) if not _KANA_ONLY.fullmatch(p))
    words = {w for w in WORD.findall(_CJK.sub(" ", text)) if w not in STOP_WORDS and len(w) > 1}
    return words | pairs


def supporting_sentence(passage: str, answer: str) -> str:
    """The sentence (or table row, list item) of the passage that shares most content words with the answer, as
    plain text (markdown's **bold**, *em*, `code` and link marks taken off, \\* escapes read: the API's quote and
    the CLI show it as is);
    '' when none shares any. Headings are not sentences (the passage's label names its section)."""
    words = content_words(CITE.sub("", answer))
    best, score = "", 0
    for sent in plain_sentences(passage):
        got = len(words & content_words(sent))
        if got > score:
            best, score = sent, got
    return best
