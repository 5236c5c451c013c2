"""Sentences of a text, a passage's sentence that supports an answer and how a passage begins, light enough for the
warm CLI to import (no model, no retrieval code): the splitter and the word overlap the citations
(assistant/citations.py) and the CLI's snippets share."""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Iterator

from assistant.markup import markdown_emphasis_text

_HEADING = re.compile(r"\s{0,3}#{1,6}(\s|$)")  # a markdown heading line (a CSV row "#id: 1; ..." is none)
# where a sentence may end: its closing punctuation (and any closing quote or bracket) before a space or the end.
# A point inside a word is no end: 7.35, 3.11.2, 1,000.5, config.yaml, https://example.com/a.html
# (a run of points is matched from its first only: no backtracking over it from each of its points). Which line
# breaks end one is _line_ends'.
_CJK_END = r"[\u3002\uff01\uff1f]+[\u300d\u300f\u3011\u300b\u201d\u2019\uff09]*"  # 。！？ and closing brackets
_END = re.compile(r"(?<![.!?])[.!?]+[\"'\u201d\u2019)\]]*(?=\s|$)|" + _CJK_END)
# the lines that stand apart from the next and the one before, whatever either holds
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")  # a code fence (CommonMark: at most 3 spaces before it)
_RULE = re.compile(r"\s*([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")  # an underline (a setext or rst title's), a rule
# a list item or a set-off line: a bullet, a dash, "1." "2)" "(3)" "a)" before a space; a control character (a
# PDF's bullet before ingest mapped it)
_ITEM = re.compile(
    r"\s*(?:[-+*\u2010-\u2015\u2022\u2023\u2043\u25aa\u25cf\u25e6\u00b7]|\(?\d{1,3}[.)]|\(?[a-z]\))(?:\s|$)"
    r"|\s*[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
_TABLE_ROW = re.compile(r"\s*\||.*? \| .*? \| ")  # a markdown or DOCX table's row: "| a | b", "a | b | c"
# a CSV row's or JSON field's "name: value" (the loaders write one a line, ingest/data_loaders.py; a name of at most
# four words): a row when another field follows on its line ("; name: ") or a line beside it is one too
_FIELD = r"[\w#][\w#.\-/()]*(?: [\w#.\-/()]+){0,3}: "
_FIELD_LINE = re.compile(rf"\s*{_FIELD}")
_FIELDS = re.compile(rf"\s*{_FIELD}.*?; {_FIELD}")
_SENTENCE_MARK = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*$")  # a line that ends a sentence
_RUNS_ON = re.compile(r"[,;(\u2013\u2014/&+=]$")  # a line whose sentence goes on: "... the tradi-" aside
_HYPHENATED = re.compile(r"[^\W\d_]-$")  # "tradi-" at a line's end: a word cut in two
# Chinese and Japanese characters and their punctuation: lines of them wrap with no space between
CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
_CJK_CHAR = re.compile(f"[{CJK_CHARS}]")
_UNWRAP = re.compile(r"([^\W\d_])-[ \t]*\n[ \t]*(?=[^\W\d_])|[ \t]*\n[ \t]*")  # a line break inside a sentence
_TITLE_SHARE = 0.6  # a line shorter than this share of the text's longest is a title when no lowercase word follows
# words that do not end a line of prose when they end a sentence's middle: a line ending on one runs on
_RUN_ON_WORDS = {"the", "a", "an", "of", "to", "in", "on", "for", "and", "or", "by", "with", "as", "at", "from"}
_RUN_ON_WORDS |= {"is", "are", "be", "that", "which", "if", "when", "than", "not", "no", "its", "their", "this"}
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
    line break that ends a line of its own (_line_ends: a blank line, a list item, a heading, a code line, a
    title; not a break where hard-wrapped text, a PDF page's, goes on); not at a point inside a number, a version,
    a file name or a URL (no space follows it), nor after e.g. / i.e. / vs. (nor after etc. unless a capital
    follows, nor after No. before a digit)."""
    ends = _line_ends(text)
    for m in _END.finditer(text):
        # the word the point closes, from a bounded look back (a slice of all the text before: quadratic)
        word = text[max(0, m.start() - _WORD_BACK) : m.start() + 1].rsplit(None, 1)[-1].lstrip("(\"'").lower()
        if word in ABBREVIATIONS or word in _NUMBER_SIGNS:
            after = _NEXT.match(text, m.end()).group(1)  # type: ignore[union-attr]  # it always matches
            if word in _NUMBER_SIGNS:
                if after.isdigit():
                    continue
            elif word not in _ABBREVIATIONS_ENDING or not after.isupper():
                continue
        ends.append(m.end())
    spans: list[tuple[int, int]] = []
    start = 0
    for end in sorted(ends):
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        piece = text[a:b]
        if piece.strip():
            a += len(piece) - len(piece.lstrip())
            b -= len(piece) - len(piece.rstrip())
            out.append((a, b))
    return out


def _line_kinds(lines: list[str]) -> list[str]:
    """Each line's kind, as markdown and the loaders write them: "blank" (nothing but spaces, a bullet or a
    control character), "code" (a fence and what it holds, CommonMark's way; an indented block after a blank
    line), "heading" (# Title), "rule" (an underline), "item" (a list item or a set-off line), "row" (a table's or
    CSV/JSON "name: value" line), "text"."""
    kinds: list[str] = []
    fence = ""
    for line in lines:
        m = _FENCE.match(line)
        if fence:
            kinds.append("code")
            if m and m[1][0] == fence[0] and len(m[1]) >= len(fence) and not line[m.end() :].strip():
                fence = ""
        elif m and not (m[1][0] == "`" and "`" in line[m.end() :]):
            kinds.append("code")
            fence = m[1]
        elif not _QUOTE_START.sub("", line).strip():
            kinds.append("blank")
        elif (line[:1] == "\t" or line[:4] == "    ") and kinds and kinds[-1] in ("blank", "code"):
            kinds.append("code")  # an indented block after a blank line (no paragraph goes on into it)
        elif _HEADING.match(line):
            kinds.append("heading")
        elif _RULE.match(line):
            kinds.append("rule")
        elif _ITEM.match(line):
            kinds.append("item")
        elif _TABLE_ROW.match(line) or _FIELDS.match(line):
            kinds.append("row")
        else:
            kinds.append("text")
    fields = [k in ("text", "row") and _FIELD_LINE.match(line) is not None for line, k in zip(lines, kinds)]
    for i, field in enumerate(fields):
        if field and ((i > 0 and fields[i - 1]) or (i + 1 < len(fields) and fields[i + 1])):
            kinds[i] = "row"
    return kinds


def _line_ends(text: str) -> list[int]:
    """Where the line breaks that end a sentence are (just past each): a break goes on with the sentence, as a
    space (hard-wrapped text: a PDF page's, a wrapped .txt's, an HTML source's), when the line after it is text
    that continues the line before: it starts with a lowercase letter, or the line before ends inside a sentence
    (a comma, a hyphen, "the", ...), or is about as long as the text's lines run (the wrap) and no title. Every
    other break ends one: a blank line, markdown's hard break (two spaces before it: the ingest's markdown
    sections join paragraphs so), a list item or bullet, a heading, an underline, a code block's line, a table or
    CSV row, a short line before a capital (a title: "Dust" over "Thoroughly clean ..."), a line ending on ":"
    before a capital."""
    lines = text.split("\n")
    if len(lines) == 1:
        return []
    kinds = _line_kinds(lines)
    width = max((len(ln.strip()) for ln, k in zip(lines, kinds) if k in ("text", "item")), default=0)
    ends, at = [], 0
    for i in range(len(lines) - 1):
        at += len(lines[i]) + 1
        if not _goes_on(lines[i], kinds[i], lines[i + 1], kinds[i + 1], width):
            ends.append(at)
    return ends


def _goes_on(line: str, kind: str, nxt: str, nxt_kind: str, width: int) -> bool:
    """Does the sentence of `line` go on over the break onto `nxt` (see _line_ends)?"""
    if kind not in ("text", "item", "row") or nxt_kind != "text" or line.endswith("  "):
        return False
    before, after = line.strip(), nxt.strip()
    if _CJK_CHAR.match(after) and _CJK_CHAR.match(before[-1]):  # Chinese, Japanese: wrapped with no space
        return True
    if _HYPHENATED.search(before) or _RUNS_ON.search(before):
        return True
    if _title(before):  # a page's running header stands apart even before a page that goes on with a sentence
        return False
    if after[0].islower() or _SENTENCE_MARK.search(before):
        return True  # a point ends the sentence anyway; one after an abbreviation ("e.g.") does not
    if before.endswith(":"):
        return False
    last = before.rsplit(None, 1)[-1].lower()
    return last in _RUN_ON_WORDS or len(before) >= _TITLE_SHARE * width


_SMALL_WORDS = {"a", "an", "the", "of", "and", "or", "in", "on", "for", "to", "with", "by", "at", "vs", "de", "la"}


def _title(line: str) -> bool:
    """A line of two or more words, each capitalised (small words aside): a title, a page's running header
    ("Chapter 3: Basic Shell Features 41")."""
    words = [w for w in WORD.findall(line) if not w.isdigit()]
    if len(words) < 2:
        return False
    return all(w[0].isupper() for w in words if w.lower() not in _SMALL_WORDS)


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
    """The passage's sentences (and table rows, list items) in order, as plain text; headings left out. A sentence
    that hard-wrapped text carries over a line break reads whole: the break is a space, and a word that a hyphen
    cut at it ("tradi-" "tional") one word again."""
    heading_lines, at = [], 0  # (start, end) of each heading line
    lines = passage.split("\n")
    line_starts = []
    for line in lines:
        if _HEADING.match(line):
            heading_lines.append((at, at + len(line)))
        line_starts.append(at)
        at += len(line) + 1
    kinds = _line_kinds(lines)
    starts = [a for a, _ in heading_lines]
    for a, b in sentence_spans(passage):
        i = bisect_right(starts, a) - 1
        if i >= 0 and a <= heading_lines[i][1]:  # a heading line stands apart: a sentence of it starts in it
            continue
        if kinds[bisect_right(line_starts, a) - 1] == "code":  # code reads as written: `...` is JavaScript's
            if not _FENCE.match(passage[a:b]):  # the fence lines are no sentences
                yield passage[a:b].strip()
            continue
        sent = _UNWRAP.sub(_unwrapped, passage[a:b])
        # marks first ("**27 days** ..." loses both), then a bullet or dash: "• Hotel minibar ...", " — ...": the
        # item's words (a code span's own dashes stay: "`--flag` sets ...")
        sent = markdown_emphasis_text(sent, " \t-*>|", _QUOTE_START)
        if sent:
            yield sent


def _unwrapped(m: re.Match[str]) -> str:
    """A line break inside a sentence, read: a space; none between a word that a hyphen cut and its lowercase rest
    (the hyphen goes: "tradi-" "tional") or its capitalised one (the hyphen stays: "Jean-" "Paul"), nor between
    two Chinese or Japanese characters."""
    if m[1] is not None:
        return m[1] if m.string[m.end()].islower() else f"{m[1]}-"
    before, after = m.string[m.start() - 1 : m.start()], m.string[m.end() : m.end() + 1]
    return "" if _CJK_CHAR.match(before or " ") and _CJK_CHAR.match(after or " ") else " "


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
