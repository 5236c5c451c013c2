"""Build the Python-FAQ benchmark: a corpus from the Python 3.11 docs and a test set from its FAQ pages.

    .venv/bin/python benchmarks/python_faq/build.py [--subset core|all] [--out benchmarks/data/python_faq]

Writes (under benchmarks/data/, gitignored):
  corpus/<section>/...rst.txt  the reStructuredText sources of the chosen doc sections (FAQ pages included:
                               a user indexes the whole documentation);
  testset.jsonl                one row per FAQ question: the question, its answer's opening paragraph(s)
                               as the reference, the whole answer as the reference context, and the FAQ
                               page as the source id;
  build.json                   counts, the doc package and the subset.
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
from _common import DATA, doc_package_version, faq_reference, python_doc_sources  # noqa: E402

from ingest.loaders import load_document  # noqa: E402

SUBSETS = {
    # what fits a CPU ingest in minutes: the FAQ, the tutorial, the language reference, the HOWTOs,
    # the glossary, and the library pages FAQ answers point at most
    "core": [
        "faq",
        "tutorial",
        "reference",
        "howto",
        "glossary.rst.txt",
        "library/functions.rst.txt",
        "library/stdtypes.rst.txt",
        "library/exceptions.rst.txt",
        "library/sys.rst.txt",
        "library/os.rst.txt",
        "library/os.path.rst.txt",
        "library/re.rst.txt",
        "library/threading.rst.txt",
        "library/pickle.rst.txt",
        "library/copy.rst.txt",
        "library/random.rst.txt",
        "library/datetime.rst.txt",
        "library/subprocess.rst.txt",
        "library/math.rst.txt",
        "library/string.rst.txt",
    ],
    "all": ["."],
}


def rst_plain(text: str) -> str:
    """Inline reStructuredText markup to plain words: :func:`len` -> len, `x <url>`_ -> x, ``a`` -> a.
    (Kept apart from assistant.markup.rst_inline_text: it spaces text differently, and the measured
    test set must stay byte-identical.)"""
    text = re.sub(r":[\w:.-]+:`~?([^`<]*?)(?:\s*<[^`>]*>)?`", r"\1", text)
    text = re.sub(r"`([^`<]+?)\s*<[^`>]*>`_+", r"\1", text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"`([^`]*)`_*", r"\1", text)
    text = re.sub(r"\*\*([^*]+)\*\*|\*([^*]+)\*", lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r"::$", ":", text.strip())
    return re.sub(r"[ \t]+", " ", text).strip()


def answer_paragraphs(body: str) -> list[str]:
    """Prose paragraphs of an answer: directives, code blocks and tables left out."""
    out = []
    for para in re.split(r"\n\s*\n", body):
        first = para.lstrip("\n")
        if not first.strip() or first.startswith((" ", "\t", "..", "::", "+", "=", ">>>")):
            continue
        out.append(rst_plain(" ".join(line.strip() for line in para.splitlines())))
    return [p for p in out if p]


def faq_items(faq_dir: Path) -> list[dict]:
    items = []
    for page in sorted(faq_dir.glob("*.rst.txt")):
        for sec in load_document(page):
            title = sec.heading.split(" > ")[-1] if sec.heading else ""
            if not title.endswith("?"):
                continue
            body = sec.text.split("\n", 1)[1] if "\n" in sec.text else ""
            paras = answer_paragraphs(body)
            if not paras:
                continue
            items.append(
                {
                    "id": f"{page.name.split('.')[0]}-{len(items) + 1:03d}",
                    "question": rst_plain(title),
                    "answer": faq_reference(paras),
                    "sources": [f"faq/{page.name}"],
                    "tags": [f"faq:{page.name.split('.')[0]}"],
                    "contexts": ["\n\n".join(paras)],
                }
            )
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subset", choices=sorted(SUBSETS), default="core")
    ap.add_argument("--out", type=Path, default=DATA / "python_faq")
    args = ap.parse_args()
    src = python_doc_sources()
    if src is None:
        sys.exit("could not fetch python3.11-doc (apt-get download python3.11-doc); see benchmarks/README.md")
    corpus = args.out / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    files = 0
    for part in SUBSETS[args.subset]:
        p = src / part
        for f in [p] if p.is_file() else sorted(p.rglob("*.rst.txt")):
            dest = corpus / f.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
            files += 1
    items = faq_items(src / "faq")
    random.Random(0).shuffle(items)  # `lorag eval --limit N` then takes a spread of pages, not the first page
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "testset.jsonl").write_text(
        "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8"
    )
    summary = {
        "package": doc_package_version(),
        "subset": args.subset,
        "corpus_files": files,
        "corpus_bytes": sum(f.stat().st_size for f in corpus.rglob("*") if f.is_file()),
        "faq_questions": len(items),
        "by_page": {},
    }
    for i in items:
        summary["by_page"][i["tags"][0]] = summary["by_page"].get(i["tags"][0], 0) + 1
    (args.out / "build.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
