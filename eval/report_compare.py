"""A built report's paired comparisons: b minus a in either order, and whether one decides anything."""

from __future__ import annotations

from typing import Any

from eval.metric_catalog import LOWER_IS_BETTER
from eval.stats import significant


def comparison(report: dict[str, Any], a: str, b: str) -> dict[str, dict[str, Any]] | None:
    """Per-metric {diff, ci_low, ci_high, n} of b minus a (either order is stored once; flipped here)."""
    for c in report.get("comparisons", []):
        if (c["a"], c["b"]) == (a, b):
            return c["metrics"]
        if (c["a"], c["b"]) == (b, a):
            out = {}
            for m, v in c["metrics"].items():
                f = dict(v)
                if v.get("diff") is not None:
                    f.update(
                        diff=-v["diff"],
                        ci_low=-v["ci_high"],
                        ci_high=-v["ci_low"],
                        wins=v.get("losses"),
                        losses=v.get("wins"),
                    )
                out[m] = f
            return out
    return None


def min_questions(report: dict[str, Any]) -> int:
    """The paired questions a comparison of this report needs to decide anything (1 in reports written before
    eval.min_questions)."""
    return int(report.get("min_questions") or 1)


def too_few(report: dict[str, Any], v: dict[str, Any]) -> bool:
    """A comparison `v` over fewer paired questions than the report's min_questions: its CI decides nothing."""
    n = v.get("n")
    return not isinstance(n, int) or n < min_questions(report)


def direction(report: dict[str, Any], v: dict[str, Any], metric: str | None = None) -> int:
    """+1 / -1: the CI of a comparison `v` lies above / below zero over enough questions; 0: it straddles zero or
    has too few questions to tell. With `metric`: +1 means better (a lower-is-better metric flips the sign)."""
    if too_few(report, v):
        return 0
    return significant(v) * (-1 if metric in LOWER_IS_BETTER else 1)
