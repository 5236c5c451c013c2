"""Build the SQLite-FAQ benchmark: a corpus from the SQLite documentation and a test set from its FAQ page.

    .venv/bin/python benchmarks/sqlite_faq/build.py [--out benchmarks/data/sqlite_faq]

Writes (under benchmarks/data/, gitignored):
  corpus/...html   the HTML documentation of sqlite3-doc (faq.html included: a user indexes the whole
                   documentation), less the pages listed in LEFT_OUT / LEFT_OUT_FOLDERS below;
  testset.jsonl    one row per FAQ question: the question, its answer's opening paragraph(s) as the reference,
                   the whole answer's prose as the reference context, and faq.html as the source id;
  build.json       counts, the doc package and its version, and every page left out with the reason.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common (a script folder, not a package)
from _common import (  # noqa: E402
    DATA,
    doc_package,
    doc_package_field,
    doc_package_version,
    faq_reference,
    html_prose_paragraphs,
)

PACKAGE = "sqlite3-doc"
FAQ_PAGE = "faq.html"
NAV = "a navigation/index page: lists of links"
RELEASES = "release history"
LEFT_OUT_FOLDERS = {
    "releaselog/": "release history: one page per release (225 pages of change lists)",
    "syntax/": "one railroad diagram per page (an SVG image): the text is the diagram's name only",
}
LEFT_OUT = {
    "index.html": NAV,
    "docs.html": NAV,
    "doclist.html": NAV,
    "sitemap.html": NAV,
    "keyword_index.html": NAV,
    "syntax.html": NAV,
    "c3ref/objlist.html": NAV,
    "c3ref/funclist.html": NAV,
    "c3ref/constlist.html": NAV,
    "changes.html": RELEASES,
    "chronology.html": RELEASES,
    "news.html": RELEASES,
    "oldnews.html": RELEASES,
    "doc_backlink_crossref.html": "generated cross-reference of links between pages (1 MB)",
    "doc_keyword_crossref.html": "generated cross-reference of keywords (350 KB)",
    "doc_pagelink_crossref.html": "generated cross-reference of links between pages (325 KB)",
    "doc_target_crossref.html": "generated cross-reference of link targets (240 KB)",
    "requirements.html": "generated: 1.8 MB of one-sentence requirements excerpted from the other pages",
    "capi3ref.html": "generated: every c3ref/ page again on one page (630 KB)",
    "session.html": "generated: every session/ page again on one page",
    "syntaxdiagrams.html": "generated: every syntax/ diagram again on one page",
    "fileformat.html": "an exact copy of fileformat2.html (the name the pages link to)",
    "sqlite.html": "a redirect to cli.html",
    "hp1.html": "no content: a note for the download page",
}


def corpus_pages(doc: Path) -> tuple[list[Path], dict[str, str]]:
    keep, left_out = [], {}
    for f in sorted(doc.rglob("*.html")):
        rel = f.relative_to(doc).as_posix()
        why = LEFT_OUT.get(rel) or next((w for d, w in LEFT_OUT_FOLDERS.items() if rel.startswith(d)), None)
        if why:
            left_out[rel] = why
        else:
            keep.append(f)
    return keep, left_out


def faq_items(page: Path) -> list[dict]:
    """One row per question: each `<p><b>(N) question</b></p>` with the `<blockquote>` answer that follows it."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "lxml")
    items = []
    for b in soup.find_all("b"):
        m = re.match(r"\((\d+)\)\s*(.+)", " ".join(b.get_text("").split()))
        p = b.find_parent("p")
        answer = p.find_next_sibling() if p is not None else None
        if not m or answer is None or answer.name != "blockquote":
            continue
        paras = html_prose_paragraphs(answer)
        if not paras:
            continue
        items.append(
            {
                "id": f"faq-{int(m.group(1)):03d}",  # SQLite's own question number (faq.html#qN)
                "question": m.group(2),
                "answer": faq_reference(paras),
                "sources": [FAQ_PAGE],
                "tags": ["faq"],
                "contexts": ["\n\n".join(paras)],
            }
        )
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DATA / "sqlite_faq")
    args = ap.parse_args()
    doc = doc_package(PACKAGE, "usr/share/doc/sqlite3")
    if doc is None:
        sys.exit(f"could not fetch {PACKAGE} (apt-get download {PACKAGE}); see benchmarks/README.md")
    pages, left_out = corpus_pages(doc)
    corpus = args.out / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    for f in pages:
        dest = corpus / f.relative_to(doc)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    items = faq_items(doc / FAQ_PAGE)
    random.Random(0).shuffle(items)  # `lorag eval --limit N` then takes a spread of the page
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "testset.jsonl").write_text(
        "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8"
    )
    summary = {
        "package": doc_package_version(PACKAGE),
        "version": doc_package_field(PACKAGE),
        "corpus_files": len(pages),
        "corpus_bytes": sum(f.stat().st_size for f in corpus.rglob("*") if f.is_file()),
        "faq_page": FAQ_PAGE,
        "faq_questions": len(items),
        "left_out_files": len(left_out),
        "left_out": left_out,
    }
    (args.out / "build.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "left_out"}, indent=2))


if __name__ == "__main__":
    main()
