"""Loaders of binary documents: PDF (pypdf, one section per page) and DOCX (python-docx, sections at headings)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

from ingest.load_types import NO_LIMITS, BadFileError, Limits, LoadNotes, Section
from ingest.sections import Part, heading_sections
from ingest.text_decoding import binary_kind, read_text


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
    found = binary_kind(path, head, kind)
    if found is not None:
        return found
    try:
        read_text(path)
    except BadFileError:
        return None
    return f"this looks like plain text, not {kind}: rename it to {path.stem}.txt (or .md if it is Markdown)"


# C0 and C1 control characters but tab and line breaks: a PDF's list bullet whose glyph maps to no character comes
# out of pypdf as one of these (DEL, \x7f, most often), on a line of its own before the item or at the item's start
_CONTROL = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
_BULLET_LINE = re.compile(rf"^[ \t]*{_CONTROL}+[ \t]*(?:\n[ \t]*|(?=\S))(?!{_CONTROL})(?=[^\n])", re.M)
_CONTROL_RUN = re.compile(rf"[ \t]*{_CONTROL}+[ \t]*")


# The Latin ligatures of Unicode's Alphabetic Presentation Forms (ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ), which PDFs typeset by groff or
# TeX give for "ff", "fi"...: "ﬁle" is no match for "file". Only these are expanded (NFKC, letter by letter): NFKC of
# the whole text would also read "10²" as "102" and "½" as "1⁄2".
_LIGATURE = re.compile("[\ufb00-\ufb06]")
# A word broken across lines by a hyphen (ASCII, U+2010, or a soft hyphen) with its rest starting the next line
_LINE_END_HYPHEN = re.compile(r"(\w(?:[\w-]*\w)?)([-\u2010\u00ad])[ \t]*\n[ \t]*(\w[\w-]*)")
_WORD = re.compile(r"\w+(?:-\w+)*")
_LONE_LETTER = re.compile(r"(?<!\S)[^\W\d_](?= [^\W\d_])")  # "e xecutes", "v ariable": a word split by kerning


def pdf_text(text: str) -> str:
    """A page's extracted text with its control characters read: one that starts a line (alone on it, the item on
    the next, or before the item's text) is a list bullet, "• " joined to the item; one elsewhere is a space (one
    at a line's end, or on an otherwise empty line, goes). Ligatures (ﬁ, ﬂ, ﬀ...) are their letters."""
    text = _LIGATURE.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    text = _BULLET_LINE.sub("• ", text)
    return "\n".join(
        _CONTROL_RUN.sub(" ", line).strip(" ") if re.search(_CONTROL, line) else line for line in text.split("\n")
    )


def join_hyphenated(pages: list[str]) -> list[str]:
    """Pages with the words broken at a line's end by a hyphen ("tradi-\\ntional", "EVALUA-\\nTION") joined, the
    next line's text following on the same line. The document is the dictionary: "tradi" + "tional" is one word
    unless the document writes it hyphenated ("non-zero", "forward-search-history") more often than whole. A pair
    it writes neither way is one word ("accord-\\ningly": typesetters break words far more often than compounds at
    their hyphen) unless a digit ends the first part ("512-byte") or the second is a compound itself
    ("most-\\nrecently-killed"): those keep their hyphen. A soft hyphen always joins; a next line that does not go
    on in the same case (a lowercase letter, or capitals after a capital) is no continuation, and the break stays."""
    words = Counter(w.lower() for page in pages for w in _WORD.findall(_LINE_END_HYPHEN.sub(" ", page)))

    def join(m: re.Match) -> str:
        left, hyphen, right = m.groups()
        if not (right[0].islower() or (left[-1].isupper() and right.isupper())):
            return m.group(0)
        whole, hyphenated = left + right, f"{left}-{right}"
        if hyphen == "\u00ad":
            return whole
        n_whole, n_hyphenated = words[whole.lower()], words[hyphenated.lower()]
        if n_whole != n_hyphenated:
            return whole if n_whole > n_hyphenated else hyphenated
        return whole if left[-1].isalpha() and "-" not in right else hyphenated

    return [_LINE_END_HYPHEN.sub(join, page) for page in pages]


def _page_text(page) -> str:
    """A page's text as pypdf reads it, its layout mode preferred where that mode reads the same characters in the
    same order (one column: no interleaved columns, nothing left out) with fewer words split into a lone letter
    and the rest: groff's PDFs (man pages) justify lines by spacing letters, which the default mode reads as
    "e xecutes", "v ariable"; layout mode places the letters by their width. Its padding spaces go."""
    plain = page.extract_text() or ""
    try:
        layout = page.extract_text(extraction_mode="layout", layout_mode_space_vertically=False) or ""
    except Exception:  # the mode pypdf calls experimental: the default reading stands
        return plain
    layout = "\n".join(re.sub(" {2,}", " ", line).strip(" ") for line in layout.split("\n"))
    if re.sub(r"\s+", "", layout) != re.sub(r"\s+", "", plain):
        return plain
    return layout if len(_LONE_LETTER.findall(layout)) < len(_LONE_LETTER.findall(plain)) else plain


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
        texts = join_hyphenated([pdf_text(_page_text(page)) for page in reader.pages])
    except BadFileError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as e:
        raise BadFileError(_misnamed(path, "a PDF file") or f"corrupt or unreadable PDF ({e})") from None
    sections = [Section(t, f"page {n}", n) for n, t in enumerate(texts, 1) if t.strip()]
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
    parts: list[Part] = []  # markdown-ish: "# Title" headings, paragraphs apart, a table's rows one a line
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name or "").lower() if para.style is not None else ""
        m = re.match(r"heading (\d)", style)
        level = 1 if style == "title" else min(int(m.group(1)), 4) if m else 0
        if level:
            title = " ".join(text.split())
            parts.append(Part(f"\n{'#' * level} {title}\n", level, title))
        else:
            parts.append(Part(text + "\n"))
    for table in document.tables:
        rows = [" | ".join(c.text.strip() for c in row.cells) for row in table.rows]
        parts.append(Part("\n".join(rows) + "\n"))
    return heading_sections(parts)
