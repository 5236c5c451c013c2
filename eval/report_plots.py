"""The report's plots (means, paired differences, score distributions) and the pyplot and arm colours they share
with other eval plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from eval.report_compare import comparison, direction


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def arm_colors(n: int) -> list[str]:
    """One colour per arm, in arm order."""
    base = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
    return [base[i % len(base)] for i in range(n)]


def plot_means(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    labels = [a["label"] for a in report["arms"]]
    metrics = report["metrics"]["answer"]
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(metrics) + 2), 4))
    width = 0.8 / len(labels)
    for i, (lab, color) in enumerate(zip(labels, arm_colors(len(labels)))):
        xs, ys, lo, hi = [], [], [], []
        for j, m in enumerate(metrics):
            v = report["means"][lab][m]
            if v["mean"] is None:
                continue
            xs.append(j + (i - (len(labels) - 1) / 2) * width)
            ys.append(v["mean"])
            lo.append(v["mean"] - v["ci_low"])
            hi.append(v["ci_high"] - v["mean"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=lab, color=color)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics, rotation=20, ha="right")
    ax.set_ylabel("mean (95% bootstrap CI)")
    ax.set_title(f"{report['domain']}: mean score per arm (n={report['counts']['questions']})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_diffs(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    base = report["baseline"]
    others = [a["label"] for a in report["arms"] if a["label"] != base]
    metrics = report["metrics"]["answer"]
    fig, axes = plt.subplots(1, len(others), figsize=(6 * len(others), 0.45 * len(metrics) + 1.6), squeeze=False)
    for ax, other in zip(axes[0], others):
        cmp = comparison(report, base, other) or {}
        for y, m in enumerate(metrics):
            v = cmp.get(m, {})
            if v.get("diff") is None:
                continue
            sig = direction(report, v, m)
            color = {1: "#2E7D32", -1: "#C62828", 0: "#757575"}[sig]
            ax.errorbar(
                v["diff"],
                y,
                xerr=[[v["diff"] - v["ci_low"]], [v["ci_high"] - v["diff"]]],
                fmt="o",
                color=color,
                capsize=4,
            )
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(metrics)))
        ax.set_yticklabels(metrics)
        ax.invert_yaxis()
        ax.set_xlabel(f"{other} − {base}\n(mean difference, 95% paired bootstrap CI)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title("green: CI above 0 · red: below 0 · grey: includes 0", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_distributions(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    labels = [a["label"] for a in report["arms"]]
    metrics = report["metrics"]["answer"]
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        data = [[q["answers"][lab]["scores"].get(m) for q in report["questions"]] for lab in labels]
        data = [[v for v in d if v is not None] for d in data]
        lo = min([0.0] + [min(d) for d in data if d])
        bins = [lo + (1.0 - lo) * i / 10 for i in range(11)]
        styles = ["-", "--", ":", "-."]
        for i, (d, lab, color) in enumerate(zip(data, labels, arm_colors(len(labels)))):
            if d:  # distinct line styles keep identical distributions visible on top of each other
                ax.hist(d, bins=bins, histtype="step", lw=2, label=lab, color=color, linestyle=styles[i % len(styles)])
        if not any(data):
            ax.text(
                0.5,
                0.5,
                "no scores (see failed scores)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="#b71c1c",
            )
        ax.set_title(m, fontsize=10)
        ax.set_ylabel("questions", fontsize=8)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("score distributions per arm", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
