"""Plain prose out of a chunk's text, whatever markup it was written in: paragraphs without headings,
code, tables, directives or markup; sentences; titles cleaned for a question.

A chunk arrives as the ingest loaders left it: markdown-ish lines for markdown, HTML and DOCX
(`# Title` headings, `- ` list items, one paragraph per block element), reStructuredText with its
title adornments, directives and inline roles, or plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.markup import rst_inline_text

_ADORN = re.compile(r"^\s*([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")
_TABLE = re.compile(r"^\s*[+|].*[|+]\s*$|^\s*(=+\s+)+=+\s*$")
_CODE_START = re.compile(r"^\s*(>>>|\.\.\.\s|\$ |% |# [a-z]+ |\$\s*$|C:\\>)")
_LIST = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)]|[a-z][.)]|\(\d{1,3}\))\s+")
_ABBREV = (
    "e.g.",
    "i.e.",
    "etc.",
    "vs.",
    "cf.",
    "approx.",
    "Dr.",
    "Mr.",
    "Mrs.",
    "Ms.",
    "St.",
    "No.",
    "Fig.",
    "Sec.",
    "resp.",
)
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[`])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")


META = re.compile(
    r"^(?:In this (?:section|chapter|document|tutorial|page|guide|article)|This (?:section|chapter|document|"
    r"page|tutorial|guide|article)|The (?:following|next|previous|above|below)\b|Here (?:is|are)\b|Below\b|"
    r"Above\b|As (?:shown|described|mentioned|noted)\b|See\b|For (?:example|instance)\b|Note that\b)"
)


@dataclass
class Block:
    """A paragraph of the chunk: its plain text, its kind and its indentation."""

    text: str
    kind: str  # "prose" | "heading" | "code" | "table" | "directive" | "item" | "term"
    indent: int = 0


# A markdown reference link, collapsed ([text][]) or full ([text][label]); not a signature's optional arguments
# ("spawn(command[, args][, options])": the bracket follows a word, the label starts with a comma)
_REF_LINK = re.compile(r"(?<![\w)\]])\[([^\]\[]+)\]\[(?:[^\],\s][^\]]*)?\]")


def plain(text: str) -> str:
    """Inline markup to words: reStructuredText roles and literals, markdown emphasis and code, the
    permalink signs of generated HTML; whitespace collapsed."""
    text = re.sub(r"(:[\w:.-]+:`)[!~]", r"\1", text)  # :keyword:`!nonlocal`: the mark is no part of the word
    text = rst_inline_text(text)
    text = re.sub(
        r"\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|__([^_]+)__", lambda m: m.group(1) or m.group(2) or m.group(3), text
    )
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # markdown links
    text = _REF_LINK.sub(r"\1", text)  # reference links: [child_process][], [the docs][api]
    text = text.replace("¶", "").replace("\u00a0", " ")
    text = re.sub(r"\s+([,.;:!?)])(?=\s|$)", r"\1", re.sub(r"\s+", " ", text))  # not ".pyc" or ":ref:"
    return text.strip()


def _kind(lines: list[str], after_literal: bool) -> str:
    first = lines[0]
    s = first.strip()
    if s.startswith("#") and re.match(r"^#{1,6}\s", s):
        return "heading"
    if after_literal and first[:1] in (" ", "\t"):
        return "code"
    if _CODE_START.match(first) or s.startswith("```"):
        return "code"
    if s.startswith(".. ") or re.match(r"^:[\w -]+:(\s|$)", s):
        return "directive"
    if all(_TABLE.match(ln) or ln.count("|") >= 2 for ln in lines):
        return "table"
    if _LIST.match(first):
        return "item"
    symbols = sum(not (c.isalnum() or c.isspace()) for c in s)
    if s and symbols / len(s) > 0.3:
        return "code"
    return "prose"


def _paragraphs(text: str) -> list[str]:
    """Paragraphs: split at blank lines and at markdown hard breaks (two spaces before a newline: the
    ingest's markdown splitter joins a section's lines with them, so HTML blocks arrive that way), a
    piece that continues the previous one's sentence (no end punctuation, a lower-case start) joined back."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        pieces = re.split(r" {2,}\n", para)
        merged: list[str] = []
        for piece in pieces:
            if merged and piece[:1].islower() and not re.search(r"[.!?:;]\s*$", merged[-1]):
                merged[-1] = merged[-1].rstrip() + "\n" + piece
            else:
                merged.append(piece)
        out += merged
    return out


def blocks(text: str) -> list[Block]:
    """The chunk's paragraphs in order, each classified. A reStructuredText title (a line over an
    adornment line) and a markdown `#` line are headings; a block after a paragraph ending in '::'
    is code."""
    out: list[Block] = []
    after_literal = False
    for para in _paragraphs(text.replace("\r\n", "\n")):
        lines = [ln.rstrip() for ln in para.split("\n") if ln.strip()]
        while lines and re.match(r"^\s*#{1,6}\s", lines[0]):  # markdown heading lines open the paragraph
            out.append(Block(plain(lines.pop(0).strip().lstrip("#")), "heading"))
        if len(lines) >= 2 and _ADORN.match(lines[1]) and not _ADORN.match(lines[0]):
            out.append(Block(plain(lines[0]), "heading"))
            lines = lines[2:]
        lines = [ln for ln in lines if not _ADORN.match(ln)]
        if not lines:
            continue
        kind = _kind(lines, after_literal)
        after_literal = para.rstrip().endswith("::")
        indent = len(lines[0]) - len(lines[0].lstrip())
        if kind in ("code", "table"):
            body = "\n".join(lines)
        else:
            body = plain(" ".join(ln.strip() for ln in lines))
            if kind == "item":
                body = _LIST.sub("", body, count=1)
            elif kind == "directive":
                body = re.sub(r"^\.\.\s+[\w:-]+::\s*", "", body)
            elif body.endswith("::"):
                body = body[:-1]
        if body.strip():
            out.append(Block(body, kind, indent))
    return _terms(out)


_TERM_CODE = re.compile(
    r"^(?:-{1,2}[\w-]+(?:[ =]?[<\[][^>\]]*[>\]])?(?:,\s*-{1,2}[\w-]+(?:[ =]?[<\[][^>\]]*[>\]])?)*"
    r"|[\w.]+\([^()]*\)|[A-Za-z_][\w-]*(?:\.[\w-]+)+|[A-Z][A-Z0-9_]{2,}|<[\w-]+>(?:…|\.\.\.)?)$"
)  # option, call, dotted key, CONSTANT, <arg>
_TERM_WORDS = re.compile(r"^[A-Za-z][A-Za-z0-9'’/ -]*$")


def is_term(text: str) -> bool:
    """A definition-list term: an option, a call signature, a dotted setting, a constant, or a short
    phrase of words."""
    t = text.strip()
    if not t or len(t) > 80 or re.search(r"[.!?:;,]$", t):
        return False
    return bool(_TERM_CODE.match(t)) or (bool(_TERM_WORDS.match(t)) and len(t.split()) <= 6)


def _terms(out: list[Block]) -> list[Block]:
    """A term line directly followed by more-indented prose (an rst definition list) or by prose in a
    block of its own (HTML <dt>/<dd>) is a term."""
    for i, b in enumerate(out[:-1]):
        nxt = out[i + 1]
        if b.kind in ("prose", "code") and nxt.kind == "prose" and nxt.indent >= b.indent and is_term(b.text):
            b.kind = "term"
    return out


def split_sentences(text: str) -> list[str]:
    """Sentences of one plain paragraph (common abbreviations do not end one)."""
    protected = text
    for i, a in enumerate(_ABBREV):
        protected = protected.replace(a, f"\x00{i}\x00")
    parts = _SENT_END.split(protected)
    out = []
    for p in parts:
        for i, a in enumerate(_ABBREV):
            p = p.replace(f"\x00{i}\x00", a)
        if p.strip():
            out.append(p.strip())
    return out


def words(text: str) -> int:
    return len(text.split())


def is_sentence(s: str, *, min_words: int = 5, max_words: int = 60) -> bool:
    """A complete prose sentence: a capital (or digit/quote) first, end punctuation, mostly words,
    balanced brackets."""
    n = words(s)
    if (
        not min_words <= n <= max_words
        or not re.match(r"^[\"'(\[]?[A-Z0-9]", s)
        or not re.search(r"[.!?][\"')\]]*$", s)
    ):
        return False
    if s.count("(") != s.count(")") or s.count("[") != s.count("]") or s.count('"') % 2:
        return False
    alpha = len(_WORD.findall(s))
    return alpha / n >= 0.6


def opening(paragraphs: list[str], *, min_words: int = 15, max_words: int = 60, floor: int = 8) -> str | None:
    """The first sentences of the given prose paragraphs, in order, until there are at least
    min_words (never more than max_words, whole sentences only). When the prose ends first, what
    there is if it has `floor` words; else None."""
    answer: list[str] = []
    for para in paragraphs:
        for sent in split_sentences(para):
            if not answer and META.match(sent):  # "In this section we ...": says nothing about the subject
                continue
            if not is_sentence(sent, min_words=2, max_words=max_words) or words(" ".join([*answer, sent])) > max_words:
                return _enough(answer, min_words)
            answer.append(sent)
            if words(" ".join(answer)) >= min_words:
                return " ".join(answer)
    return _enough(answer, floor)


def _enough(answer: list[str], n: int) -> str | None:
    text = " ".join(answer)
    return text if answer and words(text) >= n else None
