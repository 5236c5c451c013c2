"""Loaders of marked-up text: Markdown, plain text, reStructuredText and HTML, split into sections at headings."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.load_types import NO_LIMITS, Limits, LoadNotes, Section
from ingest.text_decoding import read_text

_MD_HEADING_LINE = re.compile(r"^[ \t]*#{1,6}(?:[ \t]|$)", re.M)


def markdown_sections(text: str) -> list[Section]:
    """Markdown split at its h1-h4 headings, each section with its heading path; sections of headings alone are
    dropped."""
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    levels = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
    splitter = MarkdownHeaderTextSplitter(headers_to_split_on=levels, strip_headers=False)
    # The splitter drops every character str.isprintable() rejects: tabs, no-break and thin spaces would glue
    # their words together ("IS&nbsp;NOT" -> "ISNOT"), so they become plain spaces first.
    text = re.sub(r"[^\S\n\r]", " ", text)
    out = []
    for doc in splitter.split_text(text):
        heading = " > ".join(doc.metadata[k] for _, k in levels if k in doc.metadata)
        if any(ln.strip() and not _MD_HEADING_LINE.match(ln) for ln in doc.page_content.splitlines()):
            out.append(Section(doc.page_content, heading))  # a section of headings alone is no passage (a page banner)
    return out


def load_markdown(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    return markdown_sections(read_text(path, notes, limits.text_encoding))


def load_text(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    return [Section(read_text(path, notes, limits.text_encoding))]


_RST_ADORN = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")


def _rst_sections(text: str) -> list[Section]:
    """reStructuredText split at its section titles (a line underlined, optionally overlined, with
    one punctuation character); levels follow the order the adornment styles first appear, as in docutils."""
    lines = text.splitlines()
    styles: list[tuple[str, bool]] = []  # (char, overlined) in order of first use -> level
    path: list[str] = []
    out: list[Section] = []
    buf: list[str] = []

    def flush() -> None:
        body = "\n".join(buf).strip()
        if body:
            out.append(Section(body, " > ".join(p for p in path if p)))
        buf.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        title, style, step = None, None, 1
        over = _RST_ADORN.match(line)
        if (
            over
            and i + 2 < len(lines)
            and lines[i + 1].strip()
            and _RST_ADORN.match(lines[i + 2])
            and lines[i + 2].strip() == line.strip()
        ):
            title, style, step = lines[i + 1].strip(), (line.strip()[0], True), 3
        elif (
            line.strip()
            and not over
            and i + 1 < len(lines)
            and _RST_ADORN.match(lines[i + 1])
            and len(lines[i + 1].strip()) >= len(line.strip())
            and not line.startswith((" ", "\t", ".."))
        ):
            title, style, step = line.strip(), (lines[i + 1].strip()[0], False), 2
        if title is None:
            buf.append(line)
            i += 1
            continue
        flush()
        if style not in styles:
            styles.append(style)
        level = styles.index(style)
        path[:] = path[:level] + [""] * (level - len(path)) + [title]  # a skipped level stays blank
        buf.append(title)  # the title stays in the text, like markdown headings do
        i += step
    flush()
    return out


def load_rst(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    return _rst_sections(read_text(path, notes, limits.text_encoding))


def load_html(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(read_text(path, notes, limits.text_encoding), "lxml")
    for tag in soup(["script", "style", "nav", "noscript", "button"]):
        tag.decompose()
    for tag in soup.select('[role="navigation"], div.menu, ul.menu'):  # site menus that are not <nav>
        tag.decompose()
    body = soup.body or soup
    # Rewrite the page as markdown-ish text so headings drive the sections, like markdown files.
    lines: list[str] = []
    for el in body.find_all(["h1", "h2", "h3", "h4", "p", "li", "pre", "td", "th", "dt", "dd", "blockquote"]):
        if el.find_parent(["p", "li", "td", "th", "dd", "blockquote"]) is not None and el.name not in (
            "h1",
            "h2",
            "h3",
            "h4",
        ):
            continue  # nested block: its text is in the parent's
        text = el.get_text(" ", strip=True)
        if not text:
            continue
        if el.name[0] == "h" and el.name[1].isdigit():
            lines.append("\n" + "#" * int(el.name[1]) + " " + text + "\n")
        else:
            block = f"- {text}" if el.name == "li" else text + "\n"
            if _MD_HEADING_LINE.search(block):  # a "# comment" line of a code example is not a heading
                block = f"```\n{block.rstrip()}\n```\n"
            lines.append(block)
    if not lines:  # no block elements: fall back to all visible text
        lines = [body.get_text("\n", strip=True)]
    title = soup.title.get_text(strip=True) if soup.title else ""
    sections = markdown_sections("\n".join(lines))
    if title:
        for s in sections:
            s.heading = s.heading or title
    return sections
