"""Sections at headings, each line kept as written (code keeps its indentation): Markdown parsed by markdown-it,
and the headings and blocks that the HTML and DOCX loaders read, made into sections by one rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

from ingest.load_types import Section

SPLIT_LEVELS = 4  # h1-h4 start sections; h5 and h6 stay in their section's text
_LEADING_BLANK_LINES = re.compile(r"\A(?:[^\S\n]*\n)+")
# Whitespace but line breaks and tabs: no-break, thin, ideographic spaces, form feeds... (a break splitting a line
# would shift markdown-it's line numbers; a tab is kept: it is a Makefile's or Go's indentation)
_ODD_SPACE = re.compile(r"[^\S\n\t]")
_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$")


def trim_blank_lines(text: str) -> str:
    """`text` without its leading blank lines and its trailing whitespace; the first line keeps its indentation."""
    return _LEADING_BLANK_LINES.sub("", text).rstrip()


@dataclass
class Part:
    """A run of a document's lines: a heading (`level` 1-6, `title` its text) or body text (`level` 0)."""

    text: str
    level: int = 0
    title: str = ""


def heading_sections(parts: Iterable[Part]) -> list[Section]:
    """Sections of `parts`, their texts joined with line breaks: each h1-h4 heading starts one, its heading path
    ("A > B") the titles above it. A section with no body text (headings alone: a page banner) is left out, unless
    a deeper section follows: then its headings open that one's text."""
    runs: list[tuple[tuple[str, ...], list[Part]]] = [((), [])]
    titles: dict[int, str] = {}
    for part in parts:
        if 1 <= part.level <= SPLIT_LEVELS:
            titles = {lv: t for lv, t in titles.items() if lv < part.level}
            if title := _clean_line(part.title).strip():
                titles[part.level] = title
            runs.append((tuple(titles[lv] for lv in sorted(titles)), [part]))
        else:
            runs[-1][1].append(part)
    out: list[Section] = []
    carried: list[Part] = []
    for i, (path, run) in enumerate(runs):
        run, carried = carried + run, []
        if any(p.level == 0 and p.text.strip() for p in run):
            text = "\n".join(_clean_line(line) for p in run for line in p.text.split("\n"))
            out.append(Section(trim_blank_lines(text), " > ".join(path)))
        elif i + 1 < len(runs) and len(runs[i + 1][0]) > len(path):
            carried = run
    return out


@lru_cache(maxsize=1)
def block_parser() -> Any:
    """CommonMark blocks alone (headings, code blocks): their inline text is read as written (no inline parse)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").disable(["inline", "text_join"])


@lru_cache(maxsize=1)
def _inline_parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def _plain_title(markdown: str) -> str:
    """A heading's inline markdown as the reader sees it: code spans' and links' text without their backticks,
    brackets and targets, emphasis and inline HTML without their marks (the heading path and source labels show it)."""
    tokens = _inline_parser().parseInline(markdown)
    kids = tokens[0].children if tokens and tokens[0].children else []
    spaced = ("softbreak", "hardbreak")
    text = "".join(t.content if t.type in ("text", "code_inline") else " " if t.type in spaced else "" for t in kids)
    return " ".join(text.split())


def _clean_line(line: str) -> str:
    """A line with its odd spaces plain spaces, so that a no-break or thin space never glues two words; other
    characters str.isprintable() rejects (zero-width and control characters, soft hyphens) dropped, tabs kept."""
    line = _ODD_SPACE.sub(" ", line)
    if line.isprintable():
        return line
    return "".join(ch for ch in line if ch == "\t" or ch.isprintable())


def _front_matter_lines(lines: list[str]) -> int:
    """How many lines a YAML front matter ("---" ... "---") at the start takes (0 without one): CommonMark would read
    its closing "---" as the underline of a heading."""
    if lines and lines[0].rstrip() == "---":
        for i in range(1, len(lines)):
            if _FRONT_MATTER_END.match(lines[i]):
                return i + 1
    return 0


def markdown_sections(text: str) -> list[Section]:
    """Markdown split at its h1-h4 headings (ATX "# A" and setext "A" over "==="), as CommonMark reads them: a
    "# comment" in a fenced or indented code block, an HTML block or a quote starts none. Every line stays as
    written (see _clean_line); sections follow heading_sections."""
    lines = [_clean_line(ln) for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    skip = _front_matter_lines(lines)
    # the front matter as blank lines: the same line numbers
    tokens = block_parser().parse("\n" * skip + "\n".join(lines[skip:]))
    parts: list[Part] = []
    at = 0
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open" or tok.level != 0 or tok.map is None:
            continue
        start, end = tok.map
        if start > at:
            parts.append(Part("\n".join(lines[at:start])))
        title = _plain_title(tokens[i + 1].content) if i + 1 < len(tokens) else ""
        parts.append(Part("\n".join(lines[start:end]), int(tok.tag[1]), title))
        at = end
    if at < len(lines):
        parts.append(Part("\n".join(lines[at:])))
    return heading_sections(parts)
