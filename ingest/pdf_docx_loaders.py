"""Loaders of binary documents: PDF (pypdf, one section per page) and DOCX (python-docx, sections at headings)."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.load_types import NO_LIMITS, BadFileError, Limits, LoadNotes, Section
from ingest.markup_loaders import markdown_sections
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


def pdf_text(text: str) -> str:
    """A page's extracted text with its control characters read: one that starts a line (alone on it, the item on
    the next, or before the item's text) is a list bullet, "• " joined to the item; one elsewhere is a space (one
    at a line's end, or on an otherwise empty line, goes)."""
    text = _BULLET_LINE.sub("• ", text)
    return "\n".join(
        _CONTROL_RUN.sub(" ", line).strip(" ") if re.search(_CONTROL, line) else line for line in text.split("\n")
    )


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
        pages = [(i + 1, pdf_text(page.extract_text() or "")) for i, page in enumerate(reader.pages)]
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
    return markdown_sections("\n".join(lines))
