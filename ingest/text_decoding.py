"""A text file's bytes to str: byte order marks, UTF-8, a configured or detected legacy encoding; binary content
(a known format's signature, NUL bytes) is refused with what the file looks like."""

from __future__ import annotations

import codecs
import io
import re
from pathlib import Path

from ingest.formats import TEXT_KINDS, file_format, is_gzipped_text
from ingest.load_types import BadFileError, LoadNotes

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
    (b"PK\x03\x04", "a ZIP archive", "extract it first"),  # docx/xlsx told apart in binary_kind
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "lorag reads text, not images (an image needs OCR first)"),
    (b"\xff\xd8\xff", "a JPEG image", "lorag reads text, not images (an image needs OCR first)"),
    (b"GIF87a", "a GIF image", "lorag reads text, not images (an image needs OCR first)"),
    (b"GIF89a", "a GIF image", "lorag reads text, not images (an image needs OCR first)"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first"),
]
# Controls other than whitespace (tab, newlines, vertical tab, form feed): a decoding that yields them is not text.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def binary_kind(path: Path, raw: bytes, kind: str | None = None) -> str | None:
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
            kind = kind or TEXT_KINDS.get(file_format(path), "text")
            return None if what == kind else f"this looks like {what}, not {kind}: {todo.format(stem=path.stem)}"
    return None


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


MAX_GUNZIPPED_BYTES = 1 << 30  # a compressed text file inflating past this is refused (a decompression bomb)


def _gunzipped(path: Path) -> bytes:
    """A gzip-compressed text file's bytes ("x.md.gz"), at most MAX_GUNZIPPED_BYTES."""
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(MAX_GUNZIPPED_BYTES + 1)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise BadFileError(f"not a readable gzip file ({e})") from None
    if len(raw) > MAX_GUNZIPPED_BYTES:
        raise BadFileError(f"inflates past {MAX_GUNZIPPED_BYTES >> 20} MiB")
    return raw


def read_text(path: Path, notes: LoadNotes | None = None, encoding: str = "auto") -> str:
    """The file's text: decoded as its byte order mark says, else as UTF-8, else in `encoding` (ingest.text_encoding)
    or, with 'auto', the legacy encoding charset-normalizer detects with confidence (e.g. cp1252: `notes` gets a
    warning naming it). A text format's gzip-compressed file ("x.md.gz") is inflated first. A known binary signature
    (PDF, ZIP/DOCX, images, gzip) or NUL bytes mean binary;
    `notes.encoding` gets the codec used."""
    notes = notes if notes is not None else LoadNotes()
    raw = _gunzipped(path) if is_gzipped_text(path) else path.read_bytes()
    binary = binary_kind(path, raw)
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
