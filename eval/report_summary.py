"""A built report in short: what an adapter's card keeps of it and what `lorag eval` prints."""

from __future__ import annotations

from typing import Any

from eval.report_compare import comparison
from eval.report_verdict import verdict


def card_summary(report: dict[str, Any], label: str) -> dict[str, Any]:
    """What `lorag eval` attaches to an adapter's card: paths, its means, and per other arm the diff
    (this arm minus the other) with its CI for every metric. The promotion gate reads this."""
    vs = {}
    for arm in report["arms"]:
        other = arm["label"]
        if other != label:
            cmp = comparison(report, other, label) or {}
            vs[other] = {m: {k: v.get(k) for k in ("diff", "ci_low", "ci_high", "n")} for m, v in cmp.items()}
    return {
        "run_id": report["run_id"],
        "kind": "ab",
        "domain": report["domain"],
        "report": report["files"].get("html"),
        "report_json": report["files"].get("json"),
        "report_html": report["files"].get("html"),
        "testset": report["testset"],
        "top_k": report["top_k"],
        "arms": [a["label"] for a in report["arms"]],
        "means": {m: v["mean"] for m, v in report["means"][label].items()},
        "vs": vs,
        "min_questions": report.get("min_questions"),  # below it the report's verdict said "inconclusive"
    }


SUMMARY_KEYS = (
    "run_id",
    "domain",
    "arms",
    "baseline",
    "gate_metric",
    "min_questions",
    "top_k",
    "metrics",
    "means",
    "retrieval",
    "comparisons",
    "counts",
    "timings_s",
    "files",
)


def report_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What `lorag eval` prints, run alone or as the app's job (`--json` prints it as it is): the report without its
    questions, with the verdict's lines and the adapter cards it was attached to."""
    out = {k: report.get(k) for k in SUMMARY_KEYS}
    out["failures"] = {k: report["failures"][k] for k in ("answer", "retrieval")}
    out["verdict"] = verdict(report)
    out["attached_to"] = list(report.get("attached_to", []))
    return out
