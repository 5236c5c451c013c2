"""The report's verdict in plain words: one line per arm against the baseline on the gate metric."""

from __future__ import annotations

from typing import Any

from eval.report_compare import comparison, direction, min_questions, too_few

METRIC_WORDS = {
    "answer_f1": "F1",
    "exact_match": "exact match",
    "rouge_l": "ROUGE-L",
    "semantic_similarity": "semantic similarity",
}


def n_questions(n: Any) -> str:
    """The count in words: 1 question, 40 questions."""
    return f"{n} question" + ("" if n == 1 else "s")


def verdict(report: dict[str, Any]) -> list[str]:
    """One line per arm against the baseline, in plain words, on the gate metric: which answers better, by how
    much, with the 95% CI and the number of questions ("handbook-v2 answers better than base: +0.12 F1, ..."), or
    that it is inconclusive with fewer questions than the report's min_questions."""
    metric = report.get("gate_metric") or "answer_f1"
    words = METRIC_WORDS.get(metric, metric)
    base = report.get("baseline") or (report["arms"][0]["label"] if report.get("arms") else "base")
    lines = []
    for arm in report.get("arms", []):
        label = arm["label"]
        if label == base:
            continue
        v = (comparison(report, base, label) or {}).get(metric) or {}
        if v.get("diff") is None:
            lines.append(f"{label} vs {base}: no {words} difference could be computed.")
            continue
        vals = [x for x in (v["diff"], v.get("ci_low"), v.get("ci_high")) if isinstance(x, (int, float))]
        digits = 2 if all(abs(x) >= 0.01 or x == 0 for x in vals) else 3  # never a "-0.00"
        ci = "" if v.get("ci_low") is None else f", 95% CI [{v['ci_low']:+.{digits}f}, {v['ci_high']:+.{digits}f}]"
        measured = f"{v['diff']:+.{digits}f} {words}{ci}"
        figures = f"{measured}, {n_questions(v.get('n', '?'))}"
        sign = direction(report, v, metric)
        if too_few(report, v):
            lines.append(
                f"{label} vs {base}: inconclusive, too few questions: n={v.get('n')}, the gate needs at least "
                f"{min_questions(report)} (eval.min_questions); measured {measured}."
            )
        elif sign > 0:
            lines.append(f"{label} answers better than {base}: {figures}.")
        elif sign < 0:
            lines.append(f"{label} answers worse than {base}: {figures}.")
        else:
            lines.append(
                f"No clear difference between {label} and {base}: {figures} (the interval includes zero; "
                "more questions would tell)."
            )
    return lines
