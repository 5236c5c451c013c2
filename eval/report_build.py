"""report.json's content from an A/B run: means per arm with bootstrap CIs, paired differences with 95% bootstrap CIs
for every pair of arms, the questions where the arms disagree most, failure counts per metric, every answer."""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

from assistant.names import check_domain
from eval.metric_catalog import ERROR, FAILED, METRICS, NA
from eval.runner import RunResult
from eval.stats import mean_ci, paired_diff

SCHEMA = "lorag-eval-report/1"
SECONDARY = ("semantic_similarity", "rouge_l", "answer_f1")


def new_run_id(domain: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{check_domain(domain)}"


def _r(v: Any, nd: int = 4) -> Any:
    return round(v, nd) if isinstance(v, float) and math.isfinite(v) else v


def _issue_counts(scored: Sequence[Any], names: Sequence[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name in names:
        c = {FAILED: 0, ERROR: 0, NA: 0}
        for s in scored:
            issue = s.issues.get(name, "")
            for k in c:
                if issue.startswith(k):
                    c[k] += 1
        out[name] = c
    return out


def build_report(
    result: RunResult,
    *,
    testset: dict[str, Any],
    run_id: str,
    gate_metric: str = "answer_f1",
    min_questions: int = 1,
    judge: dict[str, Any] | None = None,
    top_n: int = 10,
) -> dict[str, Any]:
    """Everything report.json holds. `min_questions`: the paired questions a comparison needs before its CI decides
    anything (eval.min_questions); the verdict and the colours say "inconclusive" below it."""
    labels = [a.label for a in result.arms]
    qs = result.questions
    am, rm = result.answer_metrics, result.retrieval_metrics
    col = {lab: {m: [q.answer_scores[lab].scores.get(m) for q in qs] for m in am} for lab in labels}

    means = {lab: {m: {k: _r(v) for k, v in mean_ci(col[lab][m]).items()} for m in am} for lab in labels}
    retrieval = {m: {k: _r(v) for k, v in mean_ci([q.retrieval_scores.scores.get(m) for q in qs]).items()} for m in rm}
    comparisons = []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            comparisons.append(
                {
                    "a": a,
                    "b": b,
                    "note": "diff = b - a, paired over questions, 95% bootstrap CI",
                    "metrics": {m: {k: _r(v) for k, v in paired_diff(col[a][m], col[b][m]).items()} for m in am},
                }
            )

    failures = {
        "answer": {lab: _issue_counts([q.answer_scores[lab] for q in qs], am) for lab in labels},
        "retrieval": _issue_counts([q.retrieval_scores for q in qs], rm),
        "examples": [],
    }
    for q in qs:
        for lab in labels:
            for m, issue in q.answer_scores[lab].issues.items():
                if issue != NA and len(failures["examples"]) < 20:
                    failures["examples"].append({"id": q.item.key(), "arm": lab, "metric": m, "issue": issue})
        for m, issue in q.retrieval_scores.issues.items():
            if issue != NA and len(failures["examples"]) < 20:
                failures["examples"].append({"id": q.item.key(), "arm": "(retrieval)", "metric": m, "issue": issue})

    primary = gate_metric if gate_metric in am else am[0]
    secondary = next((m for m in SECONDARY if m in am and m != primary), primary)
    disagreements = []
    for other in labels[1:]:
        base = labels[0]
        items = []
        for q in qs:
            sa, sb = q.answer_scores[base].scores, q.answer_scores[other].scores
            pa, pb = sa.get(primary), sb.get(primary)
            xa, xb = sa.get(secondary), sb.get(secondary)
            d1 = (pb - pa) if pa is not None and pb is not None else 0.0
            d2 = (xb - xa) if xa is not None and xb is not None else 0.0
            if d1 == 0 and d2 == 0 and q.answers[base] == q.answers[other]:
                continue
            items.append(
                {
                    "id": q.item.key(),
                    "question": q.item.question,
                    "reference": q.item.answer,
                    "delta": _r(d1),
                    "delta_secondary": _r(d2),
                    "a_answer": q.answers[base],
                    "b_answer": q.answers[other],
                    "a_score": _r(pa),
                    "b_score": _r(pb),
                }
            )
        items.sort(key=lambda x: (-abs(x["delta"]), -abs(x["delta_secondary"])))
        disagreements.append({"a": base, "b": other, "metric": primary, "secondary": secondary, "items": items[:top_n]})

    questions = []
    for q in qs:
        questions.append(
            {
                "id": q.item.key(),
                "question": q.item.question,
                "reference": q.item.answer,
                "tags": q.item.tags,
                "sources": q.item.sources,
                "relevant": q.relevant,
                "passages": [
                    {"n": p.n, "ref": p.ref, "source": p.source, "score": _r(p.score), "text": p.text}
                    for p in q.passages
                ],
                "retrieval": {
                    "scores": {k: _r(v) for k, v in q.retrieval_scores.scores.items()},
                    "issues": q.retrieval_scores.issues,
                },
                "answers": {
                    lab: {
                        "answer": q.answers[lab],
                        "from": q.source.get(lab, ""),
                        "scores": {k: _r(v) for k, v in q.answer_scores[lab].scores.items()},
                        "issues": q.answer_scores[lab].issues,
                    }
                    for lab in labels
                },
            }
        )

    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "domain": result.domain,
        "testset": testset,
        "top_k": result.top_k,
        "arms": [a.to_dict() for a in result.arms],
        "baseline": labels[0],
        "gate_metric": gate_metric,
        "min_questions": min_questions,
        "generation": result.generation,
        "suite": result.suite,
        "judge": judge,
        "counts": result.counts,
        "timings_s": {k: _r(v, 2) for k, v in result.timings_s.items()},
        "metrics": {"answer": am, "retrieval": rm},
        "metric_help": {m: METRICS[m][2] for m in [*am, *rm]},
        "means": means,
        "retrieval": retrieval,
        "comparisons": comparisons,
        "failures": failures,
        "disagreements": disagreements,
        "questions": questions,
        "files": {},
    }
