"""Turn one file into sections (text + heading path + page), keeping the document's structure.

Each loader raises `BadFileError` with the reason; the pipeline reports it with the path.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


class BadFileError(Exception):
    """This file cannot be ingested; the message is the reason (shown with the path)."""


class OverLimitError(BadFileError):
    """The file is over a per-file limit of the settings; the message says which (the file is skipped)."""


class EmptyFileError(BadFileError):
    """The file has nothing to index: 0 bytes, or no text once parsed (the file is skipped, not failed)."""


@dataclass(frozen=True)
class Limits:
    """Per-file limits checked while loading (None: no limit); the pipeline passes ingest.max_rows / max_pages."""

    max_rows: int | None = None  # csv rows, json records
    max_pages: int | None = None  # pdf pages

    def check(self, n: int, what: str, setting: str) -> None:
        limit = getattr(self, setting)
        if limit is not None and n > limit:
            raise OverLimitError(f"{n} {what} > ingest.{setting} {limit}")


NO_LIMITS = Limits()


@dataclass
class Section:
    text: str
    heading: str = ""  # "Top > Sub" path of the headings above this text
    page: int | None = None


# Byte order marks, longest first (UTF-32 LE starts with the UTF-16 LE mark): (mark, codec, name).
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
]


def read_text(path: Path) -> str:
    """The file's text: decoded as its byte order mark says, else as UTF-8 (NUL bytes there mean binary)."""
    raw = path.read_bytes()
    for bom, codec, name in _BOMS:
        if raw.startswith(bom):
            try:
                text = raw[len(bom) :].decode(codec)
            except UnicodeDecodeError as e:
                where = f"{e.reason} at byte {e.start + len(bom)}"
                raise BadFileError(f"text is not valid {name} (its byte order mark says {name}; {where})") from None
            if "\x00" in text[:8192]:
                raise BadFileError(f"binary content in a text file (NUL characters after a {name} byte order mark)")
            return text
    if b"\x00" in raw[:8192]:
        raise BadFileError("binary content in a text file (NUL bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadFileError("text is not valid UTF-8 (re-save it as UTF-8)") from None


_MD_HEADING_LINE = re.compile(r"^[ \t]*#{1,6}(?:[ \t]|$)", re.M)


def _markdown_sections(text: str) -> list[Section]:
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


def load_markdown(path: Path, limits: Limits = NO_LIMITS) -> list[Section]:
    return _markdown_sections(read_text(path))


def load_text(path: Path, limits: Limits = NO_LIMITS) -> list[Section]:
    return [Section(read_text(path))]


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


def load_rst(path: Path, limits: Limits = NO_LIMITS) -> list[Section]:
    return _rst_sections(read_text(path))


def load_html(path: Path, limits: Limits = NO_LIMITS) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(read_text(path), "lxml")
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
    sections = _markdown_sections("\n".join(lines))
    if title:
        for s in sections:
            s.heading = s.heading or title
    return sections


def load_pdf(path: Path, limits: Limits = NO_LIMITS) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise BadFileError("the PDF is encrypted (password protected)")
            except (NotImplementedError, Exception) as e:
                if isinstance(e, BadFileError):
                    raise
                raise BadFileError("the PDF is encrypted (password protected)") from None
        limits.check(len(reader.pages), "pages", "max_pages")
        pages = [(i + 1, page.extract_text() or "") for i, page in enumerate(reader.pages)]
    except BadFileError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as e:
        raise BadFileError(f"corrupt or unreadable PDF ({e})") from None
    sections = [Section(t, f"page {n}", n) for n, t in pages if t.strip()]
    if not sections:
        raise BadFileError("the PDF has no text layer (scanned images need OCR first)")
    return sections


def load_docx(path: Path, limits: Limits = NO_LIMITS) -> list[Section]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as e:
        raise BadFileError(f"corrupt or unreadable DOCX ({e})") from None
    lines: list[str] = []
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name or "").lower() if para.style is not None else ""
        m = re.match(r"heading (\d)", style)
        if style == "title":
            lines.append(f"\n# {text}\n")
        elif m:
            lines.append("\n" + "#" * min(int(m.group(1)), 4) + f" {text}\n")
        else:
            lines.append(text + "\n")
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(c.text.strip() for c in row.cells) + "\n")
    return _markdown_sections("\n".join(lines))


def load_csv(path: Path, limits: Limits = NO_LIMITS) -> list[Section]:
    text = read_text(path)
    header: list[str] | None = None
    lines: list[str] = []
    n = 0
    try:
        for row in csv.reader(io.StringIO(text)):
            if not any(c.strip() for c in row):
                continue
            if header is None:
                header = [h.strip() for h in row]
                continue
            n += 1
            if limits.max_rows is None or n <= limits.max_rows:  # past the limit only count (for the message)
                # One line per row, "column: value" pairs: each row stays readable on its own inside a chunk.
                lines.append("; ".join(f"{h}: {v.strip()}" for h, v in zip(header, row) if v.strip()))
    except csv.Error as e:
        raise BadFileError(f"malformed CSV ({e})") from None
    limits.check(n, "rows", "max_rows")
    if header is None or not n:
        return [Section(text)]
    return [Section("\n".join(lines), "table: " + ", ".join(header))]


def _flatten_json(value: object, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        out: list[str] = []
        for k, v in value.items():
            out += _flatten_json(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):  # records: one paragraph each
            return ["\n".join(_flatten_json(v, prefix)) + "\n" for v in value]
        return [f"{prefix}: " + ", ".join(json.dumps(v) if not isinstance(v, str) else v for v in value)]
    return [f"{prefix}: {value}" if prefix else str(value)]


def _count_records(value: object) -> int:
    """Objects inside lists of objects (what _flatten_json makes one paragraph each), at any depth."""
    n, stack = 0, [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            n += len(v) if v and all(isinstance(x, dict) for x in v) else 0
            stack.extend(v)
    return n


def load_json(path: Path, limits: Limits = NO_LIMITS) -> list[Section]:
    text = read_text(path)
    try:
        data = json.loads(text)
        limits.check(_count_records(data), "records", "max_rows")
        return [Section("\n".join(_flatten_json(data)))]
    except json.JSONDecodeError as e:
        raise BadFileError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise BadFileError(f"JSON nested too deeply (over about {sys.getrecursionlimit()} levels)") from None


LOADERS: dict[str, Callable[[Path, Limits], list[Section]]] = {
    "md": load_markdown,
    "rst": load_rst,
    "markdown": load_markdown,
    "txt": load_text,
    "html": load_html,
    "htm": load_html,
    "pdf": load_pdf,
    "docx": load_docx,
    "csv": load_csv,
    "json": load_json,
}


def file_format(path: Path) -> str:
    """The loader key: the suffix, except Sphinx's `_sources/*.rst.txt` copies, which are reStructuredText."""
    name = path.name.lower()
    if name.endswith(".rst.txt"):
        return "rst"
    return path.suffix.lower().lstrip(".")


def load_document(path: Path, limits: Limits = NO_LIMITS) -> list[Section]:
    """Sections of a file; raises BadFileError (binary, undecodable, corrupt, encrypted...), EmptyFileError when
    it has no text (0 bytes, or none once parsed), or OverLimitError when it is over one of `limits`."""
    loader = LOADERS.get(file_format(path))
    if loader is None:
        raise BadFileError(f"unsupported format '.{file_format(path)}' (supported: {', '.join(sorted(LOADERS))})")
    if path.stat().st_size == 0:
        raise EmptyFileError("empty file")
    sections = [s for s in loader(path, limits) if s.text.strip()]
    if not sections:
        raise EmptyFileError("empty file (no text found in it)")
    return sections
