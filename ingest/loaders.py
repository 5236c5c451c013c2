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
from dataclasses import dataclass, field
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
    """Per-file limits checked while loading (None: no limit), and the legacy text encoding to read; the pipeline
    passes ingest.max_rows / max_pages / text_encoding."""

    max_rows: int | None = None  # csv rows, json records
    max_pages: int | None = None  # pdf pages
    text_encoding: str = "auto"  # of text that is not UTF-8 and has no byte order mark: 'auto' detects it

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


@dataclass
class LoadNotes:
    """What loading a file noticed without failing it: warnings shown with its result, and the text encoding read."""

    warnings: list[str] = field(default_factory=list)
    encoding: str = ""  # the codec the text was decoded with ("utf-8", "utf-16-le", "cp1252"...); "" for pdf/docx


# Byte order marks, longest first (UTF-32 LE starts with the UTF-16 LE mark): (mark, codec, name).
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
]
# Leading bytes of binary formats a text file is sometimes renamed from: (signature, what it is, what to do).
_SIGNATURES = [
    (b"%PDF-", "a PDF file", "rename it to {stem}.pdf"),
    (b"PK\x03\x04", "a ZIP archive", "extract it first"),  # docx/xlsx told apart in _binary_kind
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "lorag reads text, not images (an image needs OCR first)"),
    (b"\xff\xd8\xff", "a JPEG image", "lorag reads text, not images (an image needs OCR first)"),
    (b"GIF87a", "a GIF image", "lorag reads text, not images (an image needs OCR first)"),
    (b"GIF89a", "a GIF image", "lorag reads text, not images (an image needs OCR first)"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first"),
]
_TEXT_KINDS = {"md": "Markdown text", "markdown": "Markdown text", "rst": "reStructuredText", "csv": "CSV text"}
_TEXT_KINDS |= {"tsv": "tab-separated text", "json": "JSON text", "html": "HTML", "htm": "HTML", "txt": "plain text"}
# Controls other than whitespace (tab, newlines, vertical tab, form feed): a decoding that yields them is not text.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def _binary_kind(path: Path, raw: bytes, kind: str | None = None) -> str | None:
    """'this looks like a PDF file, not Markdown text: rename it to x.pdf' when `raw` starts with a known binary
    format's signature other than `kind`'s (default: the text kind of the file's suffix), else None."""
    for sig, what, todo in _SIGNATURES:
        if raw.startswith(sig):
            if sig == b"PK\x03\x04":  # Office documents are zip archives: say which one it is
                import zipfile

                try:
                    names = set(zipfile.ZipFile(io.BytesIO(raw)).namelist())
                except (zipfile.BadZipFile, ValueError, OSError):
                    names = set()
                if "word/document.xml" in names:
                    what, todo = "a DOCX document", "rename it to {stem}.docx"
                elif "xl/workbook.xml" in names:
                    what, todo = "an XLSX spreadsheet", "save it as CSV (lorag does not read .xlsx)"
            kind = kind or _TEXT_KINDS.get(file_format(path), "text")
            return None if what == kind else f"this looks like {what}, not {kind}: {todo.format(stem=path.stem)}"
    return None


def _misnamed(path: Path, kind: str) -> str | None:
    """'this looks like plain text, not a DOCX document: rename it to x.txt' for a file of a binary `kind` that
    another known format's signature starts, or that reads as text (read_text); else None (a damaged document of
    its kind, a zip among them)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04") or not head.strip():
        return None
    found = _binary_kind(path, head, kind)
    if found is not None:
        return found
    try:
        read_text(path)
    except BadFileError:
        return None
    return f"this looks like plain text, not {kind}: rename it to {path.stem}.txt (or .md if it is Markdown)"


# The legacy encodings text is still saved in: Windows and ISO 8859 codepages, KOI8, Thai and the CJK ones (DOS and
# old Mac codepages read short Western text with no more mess than cp1252 does, and would win its ties).
_LEGACY = [f"cp{n}" for n in range(1250, 1259)] + [f"iso8859_{n}" for n in (*range(1, 12), 13, 14, 15, 16)]
_LEGACY += ["koi8_r", "koi8_u", "cp874", "cp932", "shift_jis", "euc_jp", "iso2022_jp", "gb18030", "gbk", "gb2312"]
_LEGACY += ["big5", "cp950", "euc_kr", "cp949"]


def _legacy_text(raw: bytes) -> tuple[str, str] | None:
    """(text, codec) of bytes that are not UTF-8, when charset-normalizer finds one reading clearly best; else None.

    Its best readings (least mess, then best language coherence) often tie on short texts: French in cp1252 reads
    the same in cp1250 but not in cp775 or mac_latin2. A tie whose readings agree is no doubt; otherwise the
    Windows Western codepage (cp1252, which is also latin-1's printable range) wins when it is among them and its
    reading is Latin-script text (at most half of its letters outside ASCII: Cyrillic or Greek misread as cp1252 is
    nearly all accented letters). Any other tie, or a reading with control characters, is no answer."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(raw, cp_isolation=_LEGACY))
    if not matches:
        return None
    chaos = min(m.chaos for m in matches)
    top = [m for m in matches if m.chaos == chaos]
    coherence = max(m.coherence for m in top)
    top = [m for m in top if m.coherence >= coherence - 0.01]
    if len({str(m) for m in top}) == 1:
        best = top[0]
        codec = "cp1252" if "cp1252" in best.could_be_from_charset else best.encoding
    else:
        western = [m for m in top if "cp1252" in m.could_be_from_charset]
        if not western or not _latin_script(str(western[0])):
            return None
        best, codec = western[0], "cp1252"
    text = str(best)
    return None if _CONTROLS.search(text) else (text, codec)


def _latin_script(text: str) -> bool:
    sample = text[: 1 << 20]
    letters = sum(c.isalpha() for c in sample)
    ascii_letters = len(re.findall(r"[A-Za-z]", sample))
    return letters > 0 and letters - ascii_letters <= letters / 2


def read_text(path: Path, notes: LoadNotes | None = None, encoding: str = "auto") -> str:
    """The file's text: decoded as its byte order mark says, else as UTF-8, else in `encoding` (ingest.text_encoding)
    or, with 'auto', the legacy encoding charset-normalizer detects with confidence (e.g. cp1252: `notes` gets a
    warning naming it). A known binary signature (PDF, ZIP/DOCX, images, gzip) or NUL bytes mean binary;
    `notes.encoding` gets the codec used."""
    notes = notes if notes is not None else LoadNotes()
    raw = path.read_bytes()
    binary = _binary_kind(path, raw)
    if binary:
        raise BadFileError(binary)
    for bom, codec, name in _BOMS:
        if raw.startswith(bom):
            try:
                text = raw[len(bom) :].decode(codec.removesuffix("-sig"))
            except UnicodeDecodeError as e:
                where = f"{e.reason} at byte {e.start + len(bom)}"
                raise BadFileError(f"text is not valid {name} (its byte order mark says {name}; {where})") from None
            if "\x00" in text[:8192]:
                raise BadFileError(f"binary content in a text file (NUL characters after a {name} byte order mark)")
            notes.encoding = codec
            return text
    if b"\x00" in raw[:8192]:
        raise BadFileError("binary content in a text file (NUL bytes)")
    try:
        text = raw.decode("utf-8")
        notes.encoding = "utf-8"
        return text
    except UnicodeDecodeError:
        pass
    if encoding != "auto":
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as e:
            raise BadFileError(
                f"text is neither UTF-8 nor {encoding} (ingest.text_encoding): {e.reason} at byte {e.start}"
            ) from None
        notes.encoding = encoding
        return text
    found = _legacy_text(raw)
    if found is None:
        raise BadFileError(
            "text is not valid UTF-8, and its encoding could not be told with confidence (re-save it as UTF-8, or "
            "name its encoding in ingest.text_encoding)"
        )
    text, notes.encoding = found
    notes.warnings.append(
        f"not UTF-8: read as {notes.encoding} (detected; if the text looks wrong, re-save it as UTF-8 or name its "
        "encoding in ingest.text_encoding)"
    )
    return text


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


def load_markdown(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    return _markdown_sections(read_text(path, notes, limits.text_encoding))


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
    sections = _markdown_sections("\n".join(lines))
    if title:
        for s in sections:
            s.heading = s.heading or title
    return sections


def load_pdf(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
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
        raise BadFileError(_misnamed(path, "a PDF file") or f"corrupt or unreadable PDF ({e})") from None
    sections = [Section(t, f"page {n}", n) for n, t in pages if t.strip()]
    if not sections:
        raise BadFileError("the PDF has no text layer (scanned images need OCR first)")
    return sections


def load_docx(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as e:
        raise BadFileError(_misnamed(path, "a DOCX document") or f"corrupt or unreadable DOCX ({e})") from None
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


_CSV_DELIMITERS = ",;\t|"  # the comma first: it wins every tie
_CSV_SAMPLE_LINES = 50


def csv_delimiter(lines: list[str]) -> str:
    """The file's field delimiter among , ; tab and |: the one whose split of the first lines gives a header of
    two fields or more that the most rows after it repeat (the comma on a tie, or where none splits the header:
    a semicolon file, as spreadsheets in many locales write, would otherwise be one column)."""
    best, best_score = ",", -1.0
    for d in _CSV_DELIMITERS:
        plain = _plain_runs(d)  # runs read as one character: no field reaches csv's size limit, counts stay
        sample = (plain.sub("x", line) for line in lines[:_CSV_SAMPLE_LINES])
        try:
            rows = [r for r in csv.reader(sample, delimiter=d) if any(c.strip() for c in r)]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        score = sum(len(r) == len(rows[0]) for r in rows[1:]) / max(1, len(rows) - 1)
        if score > best_score:
            best, best_score = d, score
    return best


def _csv_records(text: str) -> tuple[list[tuple[int, list[str]]], int | None]:
    """(line the record starts on, its fields) per record, and the line of an unclosed quote (else None).

    An unclosed quote would swallow the rest of the file into one field: its record and the lines after it are
    read again with quote characters as plain text, so every line stays a record of its own."""
    lines = io.StringIO(text).readlines()  # what csv.reader's line_num counts
    delimiter = csv_delimiter(lines)
    reader = csv.reader(lines, delimiter=delimiter)
    records, start = [], 1
    try:
        for row in reader:
            records.append((start, row))
            start = reader.line_num + 1
    except csv.Error as e:  # an unclosed quote with more than the field limit after it fails before the end
        if "field larger than field limit" not in str(e) or not _unclosed_quote(lines[start - 1 :], delimiter):
            raise
        line = start
    else:
        if not records or not _unclosed_quote(lines[records[-1][0] - 1 :], delimiter):
            return records, None
        line = records.pop()[0]
    rest = csv.reader(lines[line - 1 :], delimiter=delimiter, quoting=csv.QUOTE_NONE)
    return records + [(line + i, row) for i, row in enumerate(rest)], line


def _plain_runs(delimiter: str) -> re.Pattern[str]:
    """Runs of characters that are not the delimiter, a quote or a line end: the parser treats a run like one
    character."""
    return re.compile(f'[^{re.escape(delimiter)}"\\r\\n\\x00]+')


def _unclosed_quote(lines: list[str], delimiter: str = ",") -> bool:
    """Whether these lines (a record and the ones after it) end inside a quoted field: the lenient reader takes them
    as one field.

    Each run of plain characters is read as one, which keeps the quoting and the record ends as they are while no
    field reaches csv's field size limit."""
    plain = _plain_runs(delimiter)
    try:
        for _ in csv.reader((plain.sub("x", line) for line in lines), delimiter=delimiter, strict=True):
            pass
    except csv.Error as e:
        return "unexpected end of data" in str(e)  # CPython's message for end of input inside quotes
    return False


_CSV_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def _line_list(lines: list[int], most: int = 10) -> str:
    shown = ", ".join(map(str, lines[:most])) + (f" and {len(lines) - most} more" if len(lines) > most else "")
    return ("line " if len(lines) == 1 else "lines ") + shown


def load_csv(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    """One line per row of "column: value" pairs (each row stays readable on its own inside a chunk; the lines of a
    multi-line value are joined with a space); fields split by csv_delimiter's choice. Nothing is
    dropped: fields past the header's are named "column N", and `notes` warns of rows with more or fewer fields than
    the header and of an unclosed quote, with their line numbers."""
    notes = notes if notes is not None else LoadNotes()
    text = read_text(path, notes, limits.text_encoding)
    try:
        records, unclosed = _csv_records(text)
    except csv.Error as e:
        raise BadFileError(f"malformed CSV ({e})") from None
    records = [(n, row) for n, row in records if any(c.strip() for c in row)]
    if not records:
        return [Section(text)]
    (_, first), rows = records[0], records[1:]
    limits.check(len(rows), "rows", "max_rows")
    if not rows:
        return [Section(text)]
    header = [h.strip() or f"column {i + 1}" for i, h in enumerate(first)]
    longer, shorter, lines = [], [], []
    for n, row in rows:
        if len(row) != len(header):
            (longer if len(row) > len(header) else shorter).append(n)
        names = header + [f"column {i + 1}" for i in range(len(header), len(row))]
        values = (_CSV_LINE_BREAKS.sub(" ", v.strip()) for v in row)  # a multi-line cell stays on its row's line
        lines.append("; ".join(f"{h}: {v}" for h, v in zip(names, values) if v))
    if unclosed is not None:
        notes.warnings.append(
            f"unclosed quote at line {unclosed}: "
            + (f"lines {unclosed}-{rows[-1][0]} were" if rows[-1][0] > unclosed else "the line was")
            + " read with quote characters as text"
        )
    if longer:
        extra = f'"column {len(header) + 1}"' + (", ..." if len(header) + 1 < max(len(r) for _, r in rows) else "")
        notes.warnings.append(
            f"rows with more fields than the header's {len(header)} (the extra ones kept as {extra}): "
            + _line_list(longer)
        )
    if shorter:
        notes.warnings.append(f"rows with fewer fields than the header's {len(header)}: " + _line_list(shorter))
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


def load_json(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    text = read_text(path, notes, limits.text_encoding)
    try:
        data = json.loads(text)
        limits.check(_count_records(data), "records", "max_rows")
        return [Section("\n".join(_flatten_json(data)))]
    except json.JSONDecodeError as e:
        raise BadFileError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise BadFileError(f"JSON nested too deeply (over about {sys.getrecursionlimit()} levels)") from None


LOADERS: dict[str, Callable[[Path, Limits, LoadNotes | None], list[Section]]] = {
    "md": load_markdown,
    "rst": load_rst,
    "markdown": load_markdown,
    "txt": load_text,
    "html": load_html,
    "htm": load_html,
    "pdf": load_pdf,
    "docx": load_docx,
    "csv": load_csv,
    "tsv": load_csv,  # its delimiter found as a CSV's is (csv_delimiter)
    "json": load_json,
}


def file_format(path: Path) -> str:
    """The loader key: the suffix, except Sphinx's `_sources/*.rst.txt` copies, which are reStructuredText."""
    name = path.name.lower()
    if name.endswith(".rst.txt"):
        return "rst"
    return path.suffix.lower().lstrip(".")


def load_document(path: Path, limits: Limits = NO_LIMITS, notes: LoadNotes | None = None) -> list[Section]:
    """Sections of a file; raises BadFileError (binary, undecodable, corrupt, encrypted...), EmptyFileError when
    it has no text (0 bytes, or none once parsed), or OverLimitError when it is over one of `limits`. `notes` hears
    what was read but is worth a warning (a detected encoding, CSV rows that do not fit the header...)."""
    loader = LOADERS.get(file_format(path))
    if loader is None:
        raise BadFileError(f"unsupported format '.{file_format(path)}' (supported: {', '.join(sorted(LOADERS))})")
    if path.stat().st_size == 0:
        raise EmptyFileError("empty file")
    sections = [s for s in loader(path, limits, notes) if s.text.strip()]
    if not sections:
        raise EmptyFileError("empty file (no text found in it)")
    return sections
