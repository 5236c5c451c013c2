#!/usr/bin/env python3
"""Build the binary (.pdf / .docx) documents of the lorag sample corpus.

The text of every binary document lives in the modules next to this script
(binary_docs_handbook.py, binary_docs_manual.py, binary_docs_itsupport.py),
written by binary_docs_pdf.py and binary_docs_docx.py, so the corpus can be
rebuilt at any time:

    .venv/bin/python samples/tools/build_binary_docs.py

Requires ``reportlab`` (PDF, real text layer) and ``python-docx`` (DOCX with
heading styles). Output goes to ``samples/corpus/<domain>/``.

Content model: a document is a list of *pages*; a page is a list of blocks:

    ("h1", text)       title / top-level heading
    ("h2", text)       section heading
    ("p", text)        paragraph
    ("bullets", [...]) bulleted list
    ("steps", [...])   numbered list
    ("table", [[header...], [row...], ...])   (DOCX only)

For PDFs each page of the list becomes exactly one PDF page (one
``showPage`` per page); for DOCX the page split is ignored.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__:  # python -m samples.tools.build_binary_docs, or imported as samples.tools.build_binary_docs
    from .binary_docs_docx import build_docx
    from .binary_docs_handbook import EXPENSES_AND_TRAVEL, REMOTE_WORK
    from .binary_docs_itsupport import BACKUP, LAPTOPS
    from .binary_docs_manual import CALIBRATION, MAINTENANCE
    from .binary_docs_pdf import build_pdf
else:  # python samples/tools/build_binary_docs.py: this folder is the first entry of sys.path
    from binary_docs_docx import build_docx
    from binary_docs_handbook import EXPENSES_AND_TRAVEL, REMOTE_WORK
    from binary_docs_itsupport import BACKUP, LAPTOPS
    from binary_docs_manual import CALIBRATION, MAINTENANCE
    from binary_docs_pdf import build_pdf

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

DOCUMENTS = [
    ("handbook", "expenses-and-travel.pdf", EXPENSES_AND_TRAVEL),
    ("handbook", "remote-work-policy.docx", REMOTE_WORK),
    ("manual", "calibration-procedure.pdf", CALIBRATION),
    ("manual", "maintenance-and-cleaning.docx", MAINTENANCE),
    ("itsupport", "backup-and-recovery.pdf", BACKUP),
    ("itsupport", "laptop-standards.docx", LAPTOPS),
]


def main() -> int:
    for domain, name, pages in DOCUMENTS:
        out_dir = CORPUS / domain
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / name
        title = next(text for kind, text in pages[0] if kind == "h1")
        if name.endswith(".pdf"):
            build_pdf(path, pages, title)
        elif name.endswith(".docx"):
            build_docx(path, pages, title)
        else:
            raise ValueError(name)
        print(f"wrote {path.relative_to(CORPUS.parent.parent)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
