"""PDF writer: a reportlab canvas with a real text layer, one PDF page per page of blocks, a page footer;
invariant mode, so rebuilds are byte-identical."""

from __future__ import annotations

from pathlib import Path


def build_pdf(path: Path, pages: list, title: str) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas

    width, height = A4
    left, right, top, bottom = 20 * mm, 20 * mm, 22 * mm, 20 * mm
    text_width = width - left - right
    styles = {
        "h1": ("Helvetica-Bold", 15, 19, 10),
        "h2": ("Helvetica-Bold", 12, 15, 5),
        "p": ("Helvetica", 10, 13, 6),
    }

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle(title)
    c.setAuthor("Quillon Instruments (fictional sample corpus)")
    total = len(pages)

    for page_no, blocks in enumerate(pages, start=1):
        y = height - top

        def write_lines(lines, font, size, leading, indent=0.0):
            nonlocal y
            c.setFont(font, size)
            for line in lines:
                if y < bottom + leading:
                    raise ValueError(f"{path.name}: page {page_no} overflows; move content to next page")  # noqa: B023 - called within this iteration only
                c.drawString(left + indent, y, line)
                y -= leading

        for kind, content in blocks:
            if kind in ("h1", "h2", "p"):
                font, size, leading, after = styles[kind]
                if kind == "h2":
                    y -= 4
                write_lines(simpleSplit(content, font, size, text_width), font, size, leading)
                y -= after
            elif kind in ("bullets", "steps"):
                font, size, leading, after = styles["p"]
                for i, item in enumerate(content, start=1):
                    marker = "\u2022" if kind == "bullets" else f"{i}."
                    lines = simpleSplit(item, font, size, text_width - 8 * mm)
                    c.setFont(font, size)
                    c.drawString(left + 2 * mm, y, marker)
                    write_lines(lines, font, size, leading, indent=8 * mm)
                    y -= 2
                y -= after
            elif kind == "table":
                raise ValueError("tables are supported in DOCX output only")
            else:
                raise ValueError(f"unknown block kind {kind!r}")

        c.setFont("Helvetica", 8)
        c.drawString(left, 12 * mm, "Quillon Instruments - fictional sample document for lorag")
        c.drawRightString(width - right, 12 * mm, f"Page {page_no} of {total}")
        c.showPage()
    c.save()
