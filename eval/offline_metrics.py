"""Answer metrics in plain Python, without ragas or a judge: SQuAD-style token F1 and exact match against the
reference answer, and grounding (right_source, abstained, unsupported) from the answer's citations and passages."""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

# -- SQuAD-style normalisation, F1 and exact match ---------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower case, drop punctuation and articles, collapse whitespace (the SQuAD v1.1 script)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def grounding(row: dict[str, Any]) -> dict[str, float | None]:
    """right_source, abstained and unsupported for one answer row ({answer, passages: [{n, source,
    text, ...}], reference_ids}); None where a metric does not apply."""
    from assistant.abstention import is_abstention
    from assistant.citations import extract_citations, support
    from assistant.retrieval import Passage

    passages = [
        Passage(
            p["n"],
            p.get("text", ""),
            p.get("source", ""),
            p.get("section", ""),
            p.get("page"),
            0.0,
            p.get("domain", ""),
            p.get("doc_id", ""),
            p.get("chunk_id", ""),
        )
        for p in row.get("passages") or []
    ]
    refs = set(row.get("reference_ids") or [])
    answer = row.get("answer") or ""
    abstained = is_abstention(answer)
    question = row.get("question") or ""
    cited = {c.source for c in extract_citations(answer, passages, question)} if answer.strip() else set()
    retrieved = bool(refs) and any(p.source in refs for p in passages)
    return {
        "right_source": (1.0 if cited & refs else 0.0) if refs else None,
        "abstained": (1.0 if abstained else 0.0) if retrieved else None,
        "unsupported": None
        if abstained or not answer.strip() or not passages
        else (1.0 if support(answer, [p.text for p in passages]) < 0.5 else 0.0),
    }
