"""Turn one file into sections (text + heading path + page), keeping the document's structure: the loader of
each format (markup_loaders, pdf_docx_loaders, data_loaders) chosen by file_format.

Each loader raises `BadFileError` with the reason; the pipeline reports it with the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ingest.data_loaders import load_csv, load_json
from ingest.formats import file_format
from ingest.load_types import NO_LIMITS, BadFileError, EmptyFileError, Limits, LoadNotes, Section
from ingest.markup_loaders import load_html, load_markdown, load_rst, load_text
from ingest.pdf_docx_loaders import load_docx, load_pdf

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

# A loader's version, raised when it reads the same file into other text (markdown_sections is shared: a change
# there raises every loader that uses it). The pipeline mixes it into each file's version, so the next ingest after
# an upgrade reads that loader's files again and leaves the others unchanged, not embedded again. A loader at
# version 1 adds nothing to a file's version: files ingested before loaders had versions stay unchanged.
LOADER_VERSIONS: dict[Callable[..., list[Section]], int] = {
    # 2: inline elements joined to their neighbours, permalinks (¶) dropped; 3: loose text read; 4: <pre> fenced,
    # blocks a blank line apart, headings no longer read back from the text; 5: headings' [src] links dropped, a chunk
    # cut inside a fenced block gets its fence lines (ingest/code_fences.py); 6: no chunk starts on a closing fence
    # line or ends on an opening one
    load_html: 6,
    load_pdf: 2,  # ligatures expanded, words hyphenated at line ends joined, groff's letter-spaced words whole
    # 2: lines kept as written (code's indentation), paragraphs a blank line apart, headings as CommonMark reads them;
    # 3: heading paths without inline marks, a chunk cut inside a fenced block gets its fence lines; 4: no chunk
    # starts on a closing fence line or ends on an opening one
    load_markdown: 4,
    load_docx: 2,  # 2: paragraphs a blank line apart, a table's rows together, a "# ..." paragraph no heading
    # 2: a chunk that starts in an indented line (a literal block, code) keeps its indentation (ingest/chunking.py)
    load_rst: 2,
    load_text: 2,
}


def loader_version(path: Path) -> int:
    """The version of the loader that reads `path` (1 for a loader never changed, or a format with none)."""
    loader = LOADERS.get(file_format(path))
    return LOADER_VERSIONS.get(loader, 1) if loader is not None else 1


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
