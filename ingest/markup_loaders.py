"""Loaders of marked-up text: Markdown, plain text, reStructuredText and HTML, split into sections at headings."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.load_types import NO_LIMITS, Limits, LoadNotes, Section
from ingest.sections import Part, heading_sections, markdown_sections, trim_blank_lines
from ingest.text_decoding import read_text


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
        body = trim_blank_lines("\n".join(buf))
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


# Elements that start a new line of text; every other element (a, code, em, span, var, samp, kbd, b, i, tt, small,
# sup...) is inline: its text joins its neighbours' with no space added, so "<code>csh</code>-like" reads "csh-like".
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption center dd details dialog dir div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html legend li main menu nav ol p pre section summary "
    "table tbody td tfoot th thead tr ul".split()
)
_PRE_TAGS = frozenset(["pre", "listing", "plaintext", "xmp", "textarea"])
# The text of a heading's or a term's permalink (Sphinx's a.headerlink, texinfo's a.copiable-link/-anchor...)
_PERMALINK_MARKS = frozenset("¶§🔗")


def _is_permalink(a) -> bool:
    """A link whose only text is a pilcrow or section sign, or "#" pointing into the page: the permalink that HTML
    generators put after headings and definition terms, no text of the document."""
    text = a.get_text(strip=True)
    return text in _PERMALINK_MARKS or (text == "#" and str(a.get("href") or "").startswith("#"))


# A heading's link whose whole text is a short word in brackets: "[src]" (Node.js), "[edit]", "[source]" -- page
# furniture beside the title, no part of it
_BRACKETED_LINK = re.compile(r"\[[\w ]{1,12}\]")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def _is_heading_furniture(a) -> bool:
    return bool(_BRACKETED_LINK.fullmatch(a.get_text(strip=True))) and a.find_parent(_HEADINGS) is not None


def _fence(text: str) -> str:
    """A code fence that no line of `text` closes: longer than any run of backticks starting one."""
    runs = re.findall(r"^[ \t]*(`{3,})", text, re.M)
    return "`" * max([3] + [len(r) + 1 for r in runs])


def _flow_text(el) -> str:
    """The text of an element as a reader sees it: inline elements joined with no space added, block elements
    (and <br>) on lines of their own, runs of whitespace one space outside <pre>, whose lines stay as they are
    (indentation included) inside a markdown code fence. Walked with a stack, not recursion: a page nested
    thousands deep reads like any other."""
    from bs4 import CData, NavigableString

    parts: list[str] = []
    end_of_block = None  # on the stack after a block's children: its end starts a new line

    def newline() -> None:
        if parts and not parts[-1].endswith("\n"):
            parts.append("\n")

    in_pre = el.name in _PRE_TAGS
    stack: list = [(child, in_pre) for child in reversed(el.contents)]
    while stack:
        item = stack.pop()
        if item is end_of_block:
            newline()
            continue
        if isinstance(item, str):  # the end of a <pre>: its closing fence
            newline()
            parts.append(item + "\n")
            continue
        node, pre = item
        if isinstance(node, NavigableString):
            if type(node) is NavigableString or isinstance(node, CData):  # no comment, doctype, ...
                text = str(node) if pre else re.sub(r"\s+", " ", node)
                if not pre and (not parts or parts[-1].endswith("\n")):
                    text = text.lstrip(" ")
                if text:
                    parts.append(text)
        elif node.name == "br":
            parts.append("\n")
        else:
            if node.name in _BLOCK_TAGS or node.name in _PRE_TAGS:
                newline()
                stack.append(end_of_block)
            if not pre and node.name in _PRE_TAGS and node.get_text().strip():
                fence = _fence(node.get_text())
                parts.append(fence + "\n")
                stack.append(fence)
            inner = pre or node.name in _PRE_TAGS
            stack.extend((child, inner) for child in reversed(node.contents))
    text = "\n".join(line.rstrip() for line in "".join(parts).split("\n")).strip("\n")
    if in_pre and text.strip():
        fence = _fence(text)
        text = f"{fence}\n{text}\n{fence}"
    return text


# Blocks of the page read as passages; one inside a p, li, td, th, dd or blockquote is read with it (headings
# excepted: they still start sections).
_PASSAGE_TAGS = frozenset("h1 h2 h3 h4 p li pre td th dt dd blockquote".split())
_HOLDER_TAGS = frozenset("p li td th dd blockquote".split())
# Page chrome and embedded objects: text loose in them is no passage (their passage blocks still are, as before).
# Chrome is also an element with a landmark role or with one of _CHROME_NAMES as its id or one of its classes:
# Sphinx's div.footer, asciidoc's div#footer ("Last updated ..."), SQLite's div.tagline and div.fancy_toc.
_CHROME_TAGS = frozenset(
    "header footer aside form template select textarea iframe object canvas video audio svg title".split()
)
_CHROME_ROLES = frozenset("banner contentinfo complementary search".split())
_CHROME_NAMES = frozenset("header footer sidebar tagline toc fancy_toc".split())


def _is_chrome(el) -> bool:
    names = el.get("class") or []
    return (
        el.name in _CHROME_TAGS
        or el.get("role") in _CHROME_ROLES
        or el.get("id") in _CHROME_NAMES
        or any(name in _CHROME_NAMES for name in names)
    )


def _page_blocks(body) -> list:
    """The page's passages in reading order: each passage element (see _PASSAGE_TAGS), and as a string each run of
    loose text, the text outside them that sits directly in <body>, a <div>, a <section>... (man2html's pages hold
    most of theirs so): a run ends where a block element starts or ends, its <br> are line breaks. Loose text in
    page chrome (_is_chrome) is left out. Walked with a stack, like _flow_text."""
    from bs4 import CData, Doctype, NavigableString

    out: list = []
    run: list[str] = []

    def flush() -> None:
        lines = (" ".join(line.split()) for line in "".join(run).split("\n"))
        text = "\n".join(line for line in lines if line)
        if text:
            out.append(text)
        run.clear()

    end_of_block = None
    # (node, inside a passage, inside a holder, inside chrome)
    stack: list = [(child, False, False, False) for child in reversed(body.contents)]
    while stack:
        item = stack.pop()
        if item is end_of_block:
            flush()
            continue
        node, covered, held, chrome = item
        loose = not covered and not chrome
        if isinstance(node, Doctype):
            run.clear()  # text before the doctype is no part of the page (man2html's "Content-type: text/html")
            continue
        if isinstance(node, NavigableString):
            if loose and (type(node) is NavigableString or isinstance(node, CData)):  # no comment, doctype, ...
                run.append(re.sub(r"\s+", " ", node))
            continue
        if node.name == "br":
            if loose:
                run.append("\n")
            continue
        if node.name in _PASSAGE_TAGS:
            flush()
            if node.name[0] == "h" or not held:
                out.append(node)
            covered, held = True, held or node.name in _HOLDER_TAGS
        elif node.name in _BLOCK_TAGS or node.name in _PRE_TAGS:
            flush()
            stack.append(end_of_block)
        chrome = chrome or _is_chrome(node)
        stack.extend((child, covered, held, chrome) for child in reversed(node.contents))
    flush()
    return out


def load_html(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(read_text(path, notes, limits.text_encoding), "lxml")
    for tag in soup(["script", "style", "nav", "noscript", "button"]):
        tag.decompose()
    for tag in soup.select('[role="navigation"], div.menu, ul.menu'):  # site menus that are not <nav>
        tag.decompose()
    for tag in soup.find_all("a"):
        if _is_permalink(tag) or _is_heading_furniture(tag):
            tag.decompose()
    body = soup.body or soup
    # The page's headings and blocks as markdown-ish text: "# Title", paragraphs apart, list items one a line
    parts: list[Part] = []
    for el in _page_blocks(body):
        text = el if isinstance(el, str) else _flow_text(el)
        if not text.strip():
            continue
        if not isinstance(el, str) and el.name[0] == "h":
            title = " ".join(text.split())
            parts.append(Part("\n" + "#" * int(el.name[1]) + " " + title + "\n", int(el.name[1]), title))
        else:
            parts.append(Part(f"- {text}" if getattr(el, "name", None) == "li" else text + "\n"))
    if not parts:  # no block elements: fall back to all visible text
        parts = [Part(_flow_text(body))]
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    sections = heading_sections(parts)
    if title:
        for s in sections:
            s.heading = s.heading or title
    return sections
