"""Means and paired bootstrap confidence intervals (numpy, fixed seed, 2000 resamples by default)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

N_RESAMPLES = 2000
SEED = 0


def _clean(values: Sequence[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def mean_ci(
    values: Sequence[float | None], *, n_resamples: int = N_RESAMPLES, seed: int = SEED, level: float = 0.95
) -> dict[str, Any]:
    """Mean over the non-missing values with a percentile bootstrap CI."""
    x = _clean(values)
    if x.size == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    lo, hi = _bootstrap(x, n_resamples, seed, level)
    return {"mean": float(x.mean()), "ci_low": lo, "ci_high": hi, "n": int(x.size)}


def paired_diff(
    a: Sequence[float | None],
    b: Sequence[float | None],
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    level: float = 0.95,
) -> dict[str, Any]:
    """Mean of b - a over questions where both have a value, with a paired bootstrap CI.

    Resampling questions (not answers) keeps each question's pair together, so the CI reflects the
    question-to-question variation the two arms share.
    """
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    d = np.array(
        [y - x for x, y in zip(a, b) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)],
        dtype=float,
    )
    if d.size == 0:
        return {"diff": None, "ci_low": None, "ci_high": None, "n": 0, "wins": 0, "losses": 0, "ties": 0}
    lo, hi = _bootstrap(d, n_resamples, seed, level)
    return {
        "diff": float(d.mean()),
        "ci_low": lo,
        "ci_high": hi,
        "n": int(d.size),
        "wins": int((d > 0).sum()),
        "losses": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
    }


def _bootstrap(x: np.ndarray, n_resamples: int, seed: int, level: float) -> tuple[float, float]:
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // x.size)  # bounded memory for large test sets
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def significant(cmp: dict[str, Any]) -> int:
    """+1: CI above zero, -1: below zero, 0: straddles zero or no data."""
    if cmp.get("ci_low") is None:
        return 0
    if cmp["ci_low"] > 0:
        return 1
    if cmp["ci_high"] < 0:
        return -1
    return 0
