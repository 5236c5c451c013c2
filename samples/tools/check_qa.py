#!/usr/bin/env python3
"""Sanity checks for the lorag sample QA sets.

    .venv/bin/python samples/tools/check_qa.py

For every ``samples/qa/<domain>.jsonl`` this script checks that

* every line parses as JSON and has the fields id, question, answer,
  sources (non-empty list) and tags (list);
* ids are unique (across all domains) and start with ``<domain>-``;
* every source file exists under ``samples/corpus/<domain>/``;
* the key facts of each answer - numbers, codes and capitalised words -
  occur in the text extracted from at least one of its source files
  (pdf via pypdf, docx via python-docx, html with tags stripped);
* answers are short (at most 25 words) and questions are not duplicated or
  copied verbatim from the source (12+ consecutive identical words);
* every corpus document is used by at least 3 questions.

It prints per-domain counts followed by the problems found, and exits with
status 1 if there is any problem.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent
CORPUS = SAMPLES / "corpus"
QA_DIR = SAMPLES / "qa"
DOMAINS = ["handbook", "manual", "itsupport"]

MAX_ANSWER_WORDS = 25
MIN_QUESTIONS_PER_DOMAIN = 45
MIN_QUESTIONS_PER_DOC = 3
COPY_RUN_WORDS = 12

# Capitalised words that carry no fact (sentence starters and the like).
STOPWORDS = {
    "a",
    "an",
    "the",
    "yes",
    "no",
    "it",
    "its",
    "you",
    "your",
    "they",
    "he",
    "she",
    "we",
    "in",
    "on",
    "at",
    "by",
    "for",
    "from",
    "to",
    "of",
    "with",
    "within",
    "after",
    "before",
    "up",
    "only",
    "every",
    "each",
    "all",
    "any",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "twelve",
    "about",
    "at least",
    "until",
    "use",
    "using",
    "when",
    "if",
    "once",
    "both",
    "none",
    "not",
    "never",
    "always",
    "as",
    "and",
    "or",
    "but",
    "there",
    "this",
    "that",
    "these",
    "those",
    "over",
    "under",
    "less",
    "more",
    "first",
    "last",
    "per",
    "between",
    "during",
    "instead",
    "then",
    "is",
    "are",
    "be",
    "must",
    "may",
    "can",
    "should",
    "will",
    "through",
    "via",
    "into",
    "email",
}


# --------------------------------------------------------------------------
# text extraction
# --------------------------------------------------------------------------
def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)


def _docx_text(path: Path) -> str:
    import docx

    document = docx.Document(str(path))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(parts)


def _html_text(path: Path) -> str:
    raw = path.read_text(encoding="utf-8")
    raw = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", raw)
    # inline tags are removed without a gap (CO<sub>2</sub> -> CO2), others become spaces
    raw = re.sub(r"(?i)</?(sub|sup|strong|em|b|i|u|code|span|a|abbr)\b[^>]*>", "", raw)
    return html.unescape(re.sub(r"<[^>]+>", " ", raw))


def extract_text(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return _pdf_text(path)
    if suffix == ".docx":
        return _docx_text(path)
    if suffix in (".html", ".htm"):
        return _html_text(path)
    return path.read_text(encoding="utf-8")


def normalise(text: str) -> str:
    """Normalise whitespace, dashes, quotes and thousands separators."""
    table = {
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00a0": " ",
        "\u2022": " ",
    }
    text = text.translate(str.maketrans(table))
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 2,000 -> 2000
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=None)
def doc_text(domain: str, name: str) -> str:
    return normalise(extract_text(CORPUS / domain / name))


# --------------------------------------------------------------------------
# key facts
# --------------------------------------------------------------------------
CODE_RE = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+\b")  # E-214, AUR-LMP-D2, QI-TRV-4471
ALNUM_RE = re.compile(r"\b(?=[A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*\d)[A-Za-z0-9]+\b")  # CO2, FAT32, T20, G3
NUMBER_RE = re.compile(r"\d+(?:[.:/]\d+)*")  # 18.4, 10:00, 4.2.1, 24/7
WORD_RE = re.compile(r"\b[A-Z][A-Za-z'&]*[A-Za-z]\b|\b[A-Z]\b")


def key_facts(answer: str) -> list[str]:
    text = normalise(answer)
    facts: list[str] = []
    facts += CODE_RE.findall(text)
    facts += ALNUM_RE.findall(text)
    facts += NUMBER_RE.findall(text)
    for match in WORD_RE.finditer(text):
        word = match.group(0)
        if word.lower() in STOPWORDS:
            continue
        facts.append(word)
    seen, unique = set(), []
    for fact in facts:
        if fact not in seen:
            seen.add(fact)
            unique.append(fact)
    return unique


def fact_in_text(fact: str, text: str) -> bool:
    if re.fullmatch(r"[\d.:/]+", fact):
        pattern = r"(?<![\d.])" + re.escape(fact) + r"(?![\d]|\.\d)"
        return re.search(pattern, text) is not None
    pattern = r"(?<![A-Za-z0-9])" + re.escape(fact) + r"(?![A-Za-z0-9])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def longest_common_run(a: str, b: str) -> int:
    """Length of the longest run of identical consecutive words."""
    wa = re.findall(r"[a-z0-9]+", a.lower())
    text = " " + " ".join(re.findall(r"[a-z0-9]+", b.lower())) + " "
    best = 0
    for i in range(len(wa)):
        for j in range(i + best + 1, len(wa) + 1):
            if " " + " ".join(wa[i:j]) + " " in text:
                best = j - i
            else:
                break
    return best


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
def _check_item(
    domain: str,
    item: dict,
    where: str,
    all_ids: Counter[str],
    per_doc: Counter[str],
    questions: Counter[str],
    problems: list[str],
) -> None:
    """One QA row's checks: fields, id, answer length, sources, facts in the sources, no copied question."""
    doc_dir = CORPUS / domain
    for field, typ in (("id", str), ("question", str), ("answer", str), ("sources", list), ("tags", list)):
        if not isinstance(item.get(field), typ) or (typ is str and not item[field].strip()):
            problems.append(f"{where}: field {field!r} missing or not a {typ.__name__}")
    if not isinstance(item.get("sources"), list) or not item.get("sources"):
        return
    qid = item.get("id", "?")
    where = f"{where} [{qid}]"
    all_ids[qid] += 1
    if not str(qid).startswith(f"{domain}-"):
        problems.append(f"{where}: id does not start with '{domain}-'")
    question = item.get("question", "")
    answer = item.get("answer", "")
    questions[question.strip().lower()] += 1
    if len(answer.split()) > MAX_ANSWER_WORDS:
        problems.append(f"{where}: answer has {len(answer.split())} words (> {MAX_ANSWER_WORDS})")

    texts = []
    for source in item["sources"]:
        if not (doc_dir / source).is_file():
            problems.append(f"{where}: source {source!r} not found in corpus/{domain}/")
            continue
        per_doc[source] += 1
        texts.append(doc_text(domain, source))
    if not texts:
        return
    combined = " \n ".join(texts)
    missing = [f for f in key_facts(answer) if not fact_in_text(f, combined)]
    if missing:
        problems.append(f"{where}: answer facts not found in {item['sources']}: {missing}")
    run = max(longest_common_run(question, t) for t in texts)
    if run >= COPY_RUN_WORDS:
        problems.append(f"{where}: question copies {run} consecutive words from the source")


def main() -> int:
    problems: list[str] = []
    all_ids: Counter[str] = Counter()
    summary = []

    for domain in DOMAINS:
        qa_path = QA_DIR / f"{domain}.jsonl"
        doc_dir = CORPUS / domain
        docs = sorted(p.name for p in doc_dir.iterdir() if p.is_file()) if doc_dir.is_dir() else []
        per_doc: Counter[str] = Counter()
        questions: Counter[str] = Counter()
        n_pairs = 0
        if not qa_path.exists():
            problems.append(f"{qa_path.relative_to(SAMPLES)}: missing")
            continue
        for line_no, line in enumerate(qa_path.read_text(encoding="utf-8").splitlines(), start=1):
            where = f"{domain}.jsonl:{line_no}"
            if not line.strip():
                problems.append(f"{where}: empty line")
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{where}: invalid JSON ({exc})")
                continue
            n_pairs += 1
            _check_item(domain, item, where, all_ids, per_doc, questions, problems)

        for q, n in questions.items():
            if n > 1:
                problems.append(f"{domain}: question asked {n} times: {q!r}")
        if n_pairs < MIN_QUESTIONS_PER_DOMAIN:
            problems.append(f"{domain}: only {n_pairs} QA pairs (< {MIN_QUESTIONS_PER_DOMAIN})")
        for doc in docs:
            if per_doc[doc] < MIN_QUESTIONS_PER_DOC:
                problems.append(f"{domain}: document {doc} has {per_doc[doc]} questions (< {MIN_QUESTIONS_PER_DOC})")
        summary.append((domain, n_pairs, docs, per_doc))

    for qid, n in all_ids.items():
        if n > 1:
            problems.append(f"duplicate id {qid!r} ({n} times)")

    total = 0
    for domain, n_pairs, docs, per_doc in summary:
        total += n_pairs
        formats = Counter(Path(d).suffix.lstrip(".") for d in docs)
        print(
            f"{domain}: {n_pairs} QA pairs, {len(docs)} documents "
            f"({', '.join(f'{k}={v}' for k, v in sorted(formats.items()))})"
        )
        for doc in docs:
            print(f"    {per_doc[doc]:3d}  {doc}")
    print(f"total: {total} QA pairs")

    if problems:
        print(f"\n{len(problems)} problem(s):")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("\nOK: no problems found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
