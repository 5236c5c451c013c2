"""Inline markup to plain words, shared by the loaders (ingest/), the training-text cleaner (finetune/) and the
citations' quotes (assistant/citations.py)."""

from __future__ import annotations

import re


def rst_inline_text(text: str) -> str:
    """Inline reStructuredText markup to its words: :func:`len` -> len, ``x`` -> x, `a <url>`_ -> a;
    whitespace collapsed."""
    text = re.sub(
        r":[\w:.-]+:`~?([^`<]*?)(?:\s*<[^`>]*>)?`|``([^`]*)``|`([^`<]*?)\s*(?:<[^`>]*>)?`_*",
        lambda m: m.group(1) or m.group(2) or m.group(3) or "",
        text,
    )
    return re.sub(r"\s+", " ", text).strip()


_PUNCT = r"[!-/:-@\[-`{-~]"  # ASCII punctuation: what markdown lets a backslash escape
# a code span, as CommonMark reads one: a run of backticks to the next run as long (``a ` b``: the code a ` b), no
# escaped backtick opening it
_CODE = re.compile(r"(?<![`\\])(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_INLINE = re.compile(
    r"([\U00100000-\U0010fffd])"  # a code span kept apart (_CODE): its text as is
    rf"|\\({_PUNCT})"  # a backslash escape of ASCII punctuation: \* -> *
    r"|!?\[((?:[^\[\]\\]|\\.)*)\]\((?:[^()]|\([^()]*\))*\)"  # [text](url), ![alt](url "title") -> text, alt
    r"|\*\*(.+?)(?<!\\)\*\*|__(.+?)__|(?<![\w*])\*(?!\s)(.+?)(?<![\s\\])\*(?![\w*])"  # **b**, __b__, *em*
)


_ESCAPED = 0xF0000  # an escaped character is kept apart as this plus its code (plane 15, private use) until the end


def _inline_text(m: re.Match[str]) -> str:
    code, escaped, *marked = m.groups()
    if code is not None:
        return code  # read back at the end (markdown_emphasis_text)
    if escaped is not None:
        return chr(_ESCAPED + ord(escaped))
    return _INLINE.sub(_inline_text, next(g for g in marked if g is not None))  # what a link or mark holds


_CODE_MARK = 0x100000  # a code span is kept apart as this plus its number (plane 16, private use) until the end


def _code_text(m: re.Match[str]) -> str:
    """A code span's text as it shows: line breaks as spaces, one space off both ends when both have one."""
    code = m[2].replace("\n", " ")
    return code[1:-1] if len(code) > 2 and code[0] == code[-1] == " " and code.strip() else code


def markdown_emphasis_text(text: str, strip: str = "", lead: re.Pattern[str] | None = None) -> str:
    """Markdown's inline marks taken off a sentence, as the rendered page reads: **bold**, __bold__, *em*, `code`,
    [text](url) and ![alt](url) -> their words, \\* -> * (snake_case and a lone * stay). A code span's text stays as
    written, backticks, stars and backslashes in it too (``console.log(`x`)`` -> console.log(`x`)): code spans are
    read first, as CommonMark reads them before emphasis. `strip`: characters taken off both ends after that (list
    markers, say), an escaped one or a code span's aside; `lead`: what then comes off the start (a bullet, a dash),
    never a code span's text."""
    codes: list[str] = []

    def kept(m: re.Match[str]) -> str:
        codes.append(_code_text(m))
        return chr(_CODE_MARK + len(codes) - 1)

    out = _INLINE.sub(_inline_text, _CODE.sub(kept, text)).strip(strip)  # a code span's edge is no mark to strip
    if lead is not None:
        out = lead.sub("", out)
    out = re.sub("[\U000f0021-\U000f007e]", lambda m: chr(ord(m[0]) - _ESCAPED), out)
    return re.sub("[\U00100000-\U0010fffd]", lambda m: codes[ord(m[0]) - _CODE_MARK], out)


def markdown_escaped(text: str) -> str:
    """Text that markdown shows as is: each ASCII punctuation character backslash-escaped (no image, link or
    emphasis renders from it); the inverse of markdown_emphasis_text's unescaping."""
    return re.sub(f"({_PUNCT})", r"\\\1", text)


_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_INLINE_MARK = re.compile(r"([\\`*_\[\]<>&~|])")  # HTML tags and entities, emphasis, links, code, tables
_BLOCK_MARK = re.compile(r"^([ \t]*)(?:([#+=-])|(\d+)([.)]))", re.M)  # a heading, a list item, a rule at line start


def markdown_literal(text: str) -> str:
    """Text (a message, a name the user gave) that a Markdown view shows as written: no HTML tag, entity, emphasis,
    link, heading or list is made of it (`model:<spec>` stays that, `<b>x</b>` is no bold); its `code` spans stay
    code, which markdown shows as written."""
    out, at = [], 0
    for m in [*_CODE_SPAN.finditer(text), None]:
        plain = text[at : m.start() if m else len(text)]
        plain = _INLINE_MARK.sub(r"\\\1", plain)
        out.append(_BLOCK_MARK.sub(lambda b: b[1] + (f"\\{b[2]}" if b[2] else f"{b[3]}\\{b[4]}"), plain))
        if m:
            out.append(m[0])
            at = m.end()
    return "".join(out)
