"""DOCX writer: python-docx with Word heading and list styles, fixed core properties, and the zip rewritten
with fixed timestamps, so rebuilds are byte-identical."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

FIXED_DATE = _dt.datetime(2025, 3, 1, 9, 0, 0)


def build_docx(path: Path, pages: list, title: str) -> None:
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = title
    props.author = "Quillon Instruments (fictional sample corpus)"
    props.created = FIXED_DATE
    props.modified = FIXED_DATE
    props.last_modified_by = "build_binary_docs.py"
    props.revision = 1

    for blocks in pages:
        for kind, content in blocks:
            if kind == "h1":
                document.add_heading(content, level=1)
            elif kind == "h2":
                document.add_heading(content, level=2)
            elif kind == "p":
                document.add_paragraph(content)
            elif kind == "bullets":
                for item in content:
                    document.add_paragraph(item, style="List Bullet")
            elif kind == "steps":
                for item in content:
                    document.add_paragraph(item, style="List Number")
            elif kind == "table":
                header, *rows = content
                table = document.add_table(rows=1, cols=len(header))
                table.style = "Table Grid"
                for cell, text in zip(table.rows[0].cells, header):
                    cell.text = text
                    for run in cell.paragraphs[0].runs:
                        run.bold = True
                for row in rows:
                    cells = table.add_row().cells
                    for cell, text in zip(cells, row):
                        cell.text = text
                document.add_paragraph()
            else:
                raise ValueError(f"unknown block kind {kind!r}")
    document.save(str(path))
    _normalise_zip(path)


def _normalise_zip(path: Path) -> None:
    """Rewrite a .docx (zip) with fixed timestamps so rebuilds are byte-identical."""
    import zipfile

    with zipfile.ZipFile(path) as src:
        entries = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
