"""What a training set holds, for a user to read before training: the writer mix, question types,
answer lengths (against the references' when curated Q&A exist), the round trip's pass rate, rows
trimmed or left out to fit, and random kept pairs to look at."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from typing import Any, Sequence


def length_stats(lengths: Sequence[int]) -> dict[str, float] | None:
    if not lengths:
        return None
    xs = sorted(lengths)

    def q(p: float) -> float:
        return float(xs[min(len(xs) - 1, int(p * (len(xs) - 1) + 0.5))])

    return {"n": len(xs), "mean": round(statistics.fmean(xs), 1), "p10": q(0.1), "median": q(0.5), "p90": q(0.9)}


def build_report(
    pairs: Sequence[Any], *, references: Sequence[str], round_trip: dict[str, int], fit: dict[str, int]
) -> dict[str, Any]:
    """pairs: the kept synthetic pairs (question, answer, writer, qtype, source)."""
    answer_words = length_stats([len(p.answer.split()) for p in pairs])
    ref_words = length_stats([len(r.split()) for r in references])
    checked = round_trip.get("checked", 0)
    return {
        "writers": dict(Counter(p.writer for p in pairs).most_common()),
        "question_types": dict(Counter(p.qtype for p in pairs).most_common()),
        "answer_words": answer_words,
        "reference_answer_words": ref_words,
        "answer_to_reference_length": round(answer_words["median"] / ref_words["median"], 2)
        if answer_words and ref_words and ref_words["median"]
        else None,
        "question_words": length_stats([len(p.question.split()) for p in pairs]),
        "documents": len({p.source for p in pairs}),
        "round_trip": {**round_trip, "pass_rate": round(round_trip.get("passed", 0) / checked, 3) if checked else None},
        "fit": fit,
    }


def preview(pairs: Sequence[Any], n: int, seed: int = 0) -> list[dict[str, str]]:
    """n random kept pairs with their source, writer and question type."""
    picked = random.Random(seed).sample(list(pairs), min(n, len(pairs)))
    return [
        {"question": p.question, "answer": p.answer, "source": p.source, "writer": p.writer, "type": p.qtype}
        for p in picked
    ]


def report_lines(r: dict[str, Any]) -> list[str]:
    """The report as a few lines of plain text (CLI and the Adapters tab)."""
    out = [f"writers: {_mix(r['writers'])}; question types: {_mix(r['question_types'])}"]
    a, ref = r.get("answer_words"), r.get("reference_answer_words")
    if a:
        line = f"answer length (words): median {a['median']:g}, p10 {a['p10']:g}, p90 {a['p90']:g}"
        if ref:
            line += f"; curated references: median {ref['median']:g} (ratio {r['answer_to_reference_length']})"
        out.append(line)
    rt = r.get("round_trip") or {}
    if rt.get("checked"):
        bar = f" and reach retrieval.min_relevance ({rt['min_relevance']:g})" if "min_relevance" in rt else ""
        out.append(
            f"round trip: {rt['passed']} of {rt['checked']} questions retrieve their own chunk in the top "
            f"{rt.get('k')}{bar} ({100 * rt['pass_rate']:.0f}%)"
        )
    f = r.get("fit") or {}
    if f.get("max_seq_length"):
        out.append(
            f"fit to {f['max_seq_length']} tokens: {f.get('trimmed', 0)} row(s) lost distractors to fit, "
            f"{f.get('left_out', 0)} left out"
        )
    return out


def _mix(c: dict[str, int]) -> str:
    total = sum(c.values()) or 1
    return ", ".join(f"{k} {v} ({100 * v / total:.0f}%)" for k, v in c.items()) or "none"
