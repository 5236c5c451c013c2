"""Build the Git-FAQ benchmark: a corpus from the Git documentation and a test set from gitfaq(7).

    .venv/bin/python benchmarks/git_faq/build.py [--subset core|all] [--out benchmarks/data/git_faq]

Writes (under benchmarks/data/, gitignored):
  corpus/...html   the HTML pages of git-doc (gitfaq.html included: a user indexes the whole documentation);
  testset.jsonl    one row per gitfaq question: the question, its answer's opening paragraph(s) as the
                   reference, the whole answer's prose as the reference context, and gitfaq.html as the source id;
  build.json       counts, the doc package and its version, the subset and what was left out.

The corpus is the HTML, not the `.txt` AsciiDoc sources next to it: a `.txt` file goes through lorag's plain-text
loader as one section with its markup left in (`linkgit:git-config[1]`, `[[anchors]]`, `+` continuation lines,
`----` fences), and many man pages are assembled from `include::` fragments (config.txt, diff-options.txt, ...)
that only the rendered HTML has in place. The HTML gives the man pages' sections (NAME, OPTIONS, ...) as headings.
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

PACKAGE = "git-doc"
FAQ_PAGE = "gitfaq.html"
# Left out of every subset: pages that are not documentation in their own right.
NOT_PAGES = {
    "index.html": "a symlink to git.html",
    "everyday.html": "a stub: 'This document has been moved to giteveryday(7)'",
    "howto-index.html": "a list of links to the howto/ pages",
    "technical/api-index.html": "a list of links to the technical/api-* pages",
}
# Left out of `core`: documentation for people who work on Git's own source, not for Git's users.
FOR_GIT_DEVELOPERS = {
    "MyFirstContribution.html",
    "MyFirstObjectWalk.html",
    "ReviewingGuidelines.html",
    "SubmittingPatches.html",
    "ToolsForGit.html",
}


def corpus_pages(doc: Path, subset: str) -> tuple[list[Path], dict[str, str]]:
    """(pages to index, {left-out page: why}); `core` is the manual pages, the guides and the howtos,
    `all` adds technical/ (Git's internal formats and APIs) and the contributor guides."""
    keep, left_out = [], {}
    for f in sorted(doc.rglob("*.html")):
        rel = f.relative_to(doc).as_posix()
        if rel in NOT_PAGES or f.is_symlink():
            left_out[rel] = NOT_PAGES.get(rel, "a symlink")
        elif subset == "core" and rel.startswith("technical/"):
            left_out[rel] = "technical/: Git's internal formats and APIs, for Git's developers"
        elif subset == "core" and rel in FOR_GIT_DEVELOPERS:
            left_out[rel] = "a guide to contributing to Git's source"
        else:
            keep.append(f)
    return keep, left_out


def faq_items(page: Path) -> list[dict]:
    """One row per gitfaq entry: each <dt> of a section's definition lists (the question) with its <dd> (the answer)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "lxml")
    items = []
    for sect in soup.select("div.sect1"):
        h2 = sect.find("h2")
        section = " ".join(h2.get_text("").split()) if h2 else ""
        for dt in sect.find_all("dt"):
            question = " ".join(dt.get_text("").split())
            dd = dt.find_next_sibling("dd")
            paras = html_prose_paragraphs(dd) if dd is not None else []
            if not paras:  # every entry is a question, some of them worded as a problem ("... are detected as binary.")
                continue
            items.append(
                {
                    "id": f"gitfaq-{len(items) + 1:03d}",
                    "question": question,
                    "answer": faq_reference(paras),
                    "sources": [FAQ_PAGE],
                    "tags": [f"faq:{re.sub(r'[^a-z0-9]+', '-', section.lower()).strip('-')}"],
                    "contexts": ["\n\n".join(paras)],
                }
            )
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subset", choices=["core", "all"], default="core")
    ap.add_argument("--out", type=Path, default=DATA / "git_faq")
    args = ap.parse_args()
    doc = doc_package(PACKAGE, "usr/share/doc/git-doc")
    if doc is None:
        sys.exit(f"could not fetch {PACKAGE} (apt-get download {PACKAGE}); see benchmarks/README.md")
    pages, left_out = corpus_pages(doc, args.subset)
    corpus = args.out / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    for f in pages:
        dest = corpus / f.relative_to(doc)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    items = faq_items(doc / FAQ_PAGE)
    random.Random(0).shuffle(items)  # `lorag eval --limit N` then takes a spread of sections
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "testset.jsonl").write_text(
        "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8"
    )
    summary = {
        "package": doc_package_version(PACKAGE),
        "version": doc_package_field(PACKAGE),
        "subset": args.subset,
        "corpus_files": len(pages),
        "corpus_bytes": sum(f.stat().st_size for f in corpus.rglob("*") if f.is_file()),
        "faq_page": FAQ_PAGE,
        "faq_questions": len(items),
        "by_section": {},
        "left_out": left_out,
    }
    for i in items:
        summary["by_section"][i["tags"][0]] = summary["by_section"].get(i["tags"][0], 0) + 1
    (args.out / "build.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "left_out"} | {"left_out": len(left_out)}, indent=2))


if __name__ == "__main__":
    main()
