"""Reports: report.json (everything), report.html (self-contained, plots embedded), plots/*.png.

Means per arm with bootstrap CIs, paired differences with 95% bootstrap CIs for every pair of arms,
the questions where the arms disagree most, failure counts per metric, every answer side by side.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from assistant.names import check_domain
from eval.metrics import ERROR, FAILED, LOWER_IS_BETTER, METRICS, NA
from eval.runner import RunResult
from eval.stats import mean_ci, paired_diff, significant

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


METRIC_WORDS = {
    "answer_f1": "F1",
    "exact_match": "exact match",
    "rouge_l": "ROUGE-L",
    "semantic_similarity": "semantic similarity",
}


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


# -- plots -----------------------------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(n: int) -> list[str]:
    base = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
    return [base[i % len(base)] for i in range(n)]


def plot_means(report: dict[str, Any], path: Path) -> None:
    plt = _plt()
    labels = [a["label"] for a in report["arms"]]
    metrics = report["metrics"]["answer"]
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(metrics) + 2), 4))
    width = 0.8 / len(labels)
    for i, (lab, color) in enumerate(zip(labels, _colors(len(labels)))):
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
    plt = _plt()
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
    plt = _plt()
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
        for i, (d, lab, color) in enumerate(zip(data, labels, _colors(len(labels)))):
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


# -- HTML ------------------------------------------------------------------------------------------
_CSS = (
    "\n"
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;"
    "max-width:1280px;color:#222;padding:0 16px}\n"
    "h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;"
    "padding-bottom:4px}\n"
    "table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;"
    "padding:4px 8px;vertical-align:top;text-align:left}\n"
    "th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    ".meta{color:#555;font-size:13px}.pos{color:#1b5e20;font-weight:600}.neg{color:#b71c1c;"
    "font-weight:600}.flat{color:#666}\n"
    ".ans{white-space:pre-wrap;max-width:480px}.small{font-size:12px;color:#555}img{max-width:100%;"
    "border:1px solid #eee;margin:6px 0}\n"
    "details{margin:2px 0}summary{cursor:pointer;color:#335}.warn{background:#fff4e5;"
    "border:1px solid #ffcc80;padding:6px 10px}\n"
    ".pt td{font-size:12px}\n"
)


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _n(v: Any, nd: int = 3) -> str:
    return "–" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else _e(v)


def _ci(v: dict[str, Any]) -> str:
    if v.get("ci_low") is None:
        return "–"
    return f"[{v['ci_low']:+.3f}, {v['ci_high']:+.3f}]"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{_e(path.stem)}" src="data:image/png;base64,{data}">'


def render_html(report: dict[str, Any], plots: dict[str, Path]) -> str:
    labels = [a["label"] for a in report["arms"]]
    base = report["baseline"]
    am, rm = report["metrics"]["answer"], report["metrics"]["retrieval"]
    c = report["counts"]
    t = report["timings_s"]
    out: list[str] = []
    w = out.append
    w(
        "<!doctype html><html><head><meta charset='utf-8'><title>lorag eval "
        f"{_e(report['run_id'])}</title><style>{_CSS}</style></head><body>"
    )
    w(f"<h1>A/B evaluation: {' vs '.join(_e(x) for x in labels)} on domain <code>{_e(report['domain'])}</code></h1>")
    ts = report["testset"]
    w(
        f"<p class='meta'>run <code>{_e(report['run_id'])}</code> · {_e(report['created_at'])} · test set "
        f"<code>{_e(ts.get('path'))}</code> "
        f"({ts.get('n')} rows, sha256 {_e(str(ts.get('sha256', ''))[:12])}) · top-k {report['top_k']} · "
        f"{c['questions']} question(s): {c['generated']} answers generated, {c['cached']} from cache, "
        f"{c['not_relevant']} without a relevant passage (fixed reply for every arm) · "
        f"time: retrieve {t.get('retrieve', 0):.1f}s, generate {t.get('generate', 0):.1f}s, score "
        f"{t.get('score', 0):.1f}s</p>"
    )
    w(
        "<p class='meta'>Every arm answered from the identical retrieved passages and prompt, so the "
        "differences isolate the "
        "generator. Arms: "
        + "; ".join(
            f"<b>{_e(a['label'])}</b> ({_e(a['kind'])}{', ' + _e(a['spec']) if a.get('spec') else ''})"
            for a in report["arms"]
        )
        + f". Judge: {_judge_line(report.get('judge'))}.</p>"
    )

    # summary
    w("<h2>Summary: mean per arm (95% bootstrap CI)</h2>")
    for line in verdict(report):
        w(f"<p class='verdict'><b>{_e(line)}</b></p>")
    w("<table><tr><th>metric</th>")
    for lab in labels:
        w(f"<th>{_e(lab)}</th>")
    for lab in labels[1:]:
        w(f"<th>{_e(lab)} − {_e(base)}</th><th>95% CI</th>")
    w("<th>n</th></tr>")
    for m in am:
        star = " ★" if m == report["gate_metric"] else ""
        w(f"<tr><td title='{_e(report['metric_help'].get(m))}'>{_e(m)}{star}</td>")
        for lab in labels:
            v = report["means"][lab][m]
            w(f"<td class='num'>{_n(v['mean'])} <span class='small'>{_ci_abs(v)}</span></td>")
        n = 0
        for lab in labels[1:]:
            v = (comparison(report, base, lab) or {}).get(m, {})
            cls = {1: "pos", -1: "neg", 0: "flat"}[direction(report, v, m)]
            d = "–" if v.get("diff") is None else f"{v['diff']:+.3f}"
            w(f"<td class='num {cls}'>{d}</td><td class='num {cls}'>{_ci(v)}</td>")
            n = v.get("n", 0)
        w(f"<td class='num'>{n}</td></tr>")
    w(
        "</table><p class='small'>★ the domain's gate metric. Green: the CI of the difference lies above zero; "
        "red: below; grey: it straddles zero (no evidence of a difference), or fewer than "
        f"{min_questions(report)} questions compared the arms (eval.min_questions); for abstained and unsupported, "
        "lower is better, so green is a drop. Hover a metric for its definition.</p>"
    )
    if len(labels) > 2:
        w("<h3>All pairs</h3><table><tr><th>pair (b − a)</th>" + "".join(f"<th>{_e(m)}</th>" for m in am) + "</tr>")
        for cmp in report["comparisons"]:
            w(f"<tr><td>{_e(cmp['b'])} − {_e(cmp['a'])}</td>")
            for m in am:
                v = cmp["metrics"][m]
                cls = {1: "pos", -1: "neg", 0: "flat"}[direction(report, v, m)]
                d = "–" if v["diff"] is None else f"{v['diff']:+.3f}"
                w(f"<td class='num {cls}'>{d} {_ci(v)}</td>")
            w("</tr>")
        w("</table>")

    # plots
    w("<h2>Plots</h2>")
    for name in ("diffs", "means", "distributions"):
        if name in plots:
            w(_img(plots[name]))

    # retrieval
    if rm:
        w(
            "<h2>Retrieval (shared by every arm)</h2><table><tr><th>metric</th><th>mean</th><th>95% "
            "CI</th><th>n</th><th>n/a</th>"
            "<th>failed</th></tr>"
        )
        for m in rm:
            v = report["retrieval"][m]
            f = report["failures"]["retrieval"][m]
            w(
                f"<tr><td title='{_e(report['metric_help'].get(m))}'>{_e(m)}</td><td class='num'>{_n(v['mean'])}</td>"
                f"<td class='num'>{_ci_abs(v)}</td><td class='num'>{v['n']}</td><td class='num'>{f[NA]}</td>"
                f"<td class='num'>{f[FAILED] + f[ERROR] or ''}</td></tr>"
            )
        w(
            "</table><p class='small'>context_precision/recall need reference contexts in the test set, "
            "source_precision/recall "
            "need source file names; n/a counts rows without them.</p>"
        )

    _html_failures(report, labels, am, rm, w)
    _html_disagreements(report, w)

    # per question
    key_metrics = [m for m in (report["gate_metric"], "semantic_similarity", "rouge_l", "faithfulness") if m in am]
    key_metrics = list(dict.fromkeys(key_metrics))
    w("<h2>Every question, answers side by side</h2><table class='pt'><tr><th>question / reference</th>")
    for lab in labels:
        w(f"<th>{_e(lab)}</th>")
    w("</tr>")
    for q in report["questions"]:
        rel = "" if q["relevant"] else " <span class='neg'>(no relevant passage)</span>"
        passages = "".join(
            f"<li><b>[{p['n']}]</b> {_e(p['ref'])} <span class='small'>({p['score']})</span></li>"
            for p in q["passages"]
        )
        w(
            f"<tr><td><span class='small'>{_e(q['id'])}</span>{rel}<br><b>{_e(q['question'])}</b><br>"
            f"<span class='small'>reference:</span> {_e(q['reference'])}"
            f"<details><summary>{len(q['passages'])} passages</summary><ol class='small' "
            f"style='padding-left:16px;list-style:none'>{passages}</ol></details></td>"
        )
        for lab in labels:
            a = q["answers"][lab]
            scores = " · ".join(f"{_e(m)} {_n(a['scores'].get(m))}" for m in key_metrics)
            flag = (
                " <span class='neg'>⚠ " + ", ".join(_e(m) for m, i in a["issues"].items() if i != NA) + "</span>"
                if any(i != NA for i in a["issues"].values())
                else ""
            )
            w(f"<td class='ans'>{_e(a['answer'])}<br><span class='small'>{scores}{flag}</span></td>")
        w("</tr>")
    w("</table>")
    w(
        f"<p class='small'>Generation: {_e(json.dumps(report['generation']))}. Metrics: "
        f"{_e(json.dumps(report['suite'], default=str))}.</p>"
    )
    w("</body></html>")
    return "".join(out)


def _html_failures(
    report: dict[str, Any], labels: list[str], am: list[str], rm: list[str], w: Callable[[str], None]
) -> None:
    """The scores that could not be computed, per metric and arm, with examples."""
    w("<h2>Failed scores</h2>")
    total_failed = sum(v[FAILED] + v[ERROR] for lab in labels for v in report["failures"]["answer"][lab].values())
    total_failed += sum(v[FAILED] + v[ERROR] for v in report["failures"]["retrieval"].values())
    if total_failed:
        w(f"<p class='warn'>{total_failed} score(s) could not be computed; they are left out of the means above.</p>")
    w(
        "<table><tr><th>metric</th>"
        + "".join(f"<th>{_e(lab)}: failed parse</th><th>{_e(lab)}: errors</th>" for lab in labels)
        + "</tr>"
    )
    for m in am:
        w(f"<tr><td>{_e(m)}</td>")
        for lab in labels:
            v = report["failures"]["answer"][lab][m]
            w(f"<td class='num'>{v[FAILED]}</td><td class='num'>{v[ERROR]}</td>")
        w("</tr>")
    for m in rm:
        v = report["failures"]["retrieval"][m]
        w(
            f"<tr><td>{_e(m)} (retrieval)</td><td class='num' colspan='{2 * len(labels)}'>failed parse "
            f"{v[FAILED]}, errors {v[ERROR]}</td></tr>"
        )
    w("</table>")
    if report["failures"]["examples"]:
        w(
            "<details><summary>examples</summary><table><tr><th>question</th><th>arm</th><th>metric</th><th>issue</th></tr>"
        )
        for x in report["failures"]["examples"]:
            w(
                f"<tr><td>{_e(x['id'])}</td><td>{_e(x['arm'])}</td><td>{_e(x['metric'])}</td><td "
                f"class='small'>{_e(x['issue'])}</td></tr>"
            )
        w("</table></details>")


def _html_disagreements(report: dict[str, Any], w: Callable[[str], None]) -> None:
    """Per pair of arms, the questions where they disagree most."""
    for d in report["disagreements"]:
        w(
            f"<h2>Where {_e(d['b'])} and {_e(d['a'])} disagree most (by {_e(d['metric'])}, then "
            f"{_e(d['secondary'])})</h2>"
        )
        if not d["items"]:
            w("<p>The two arms gave the same answer to every question.</p>")
            continue
        w(
            f"<table><tr><th>question</th><th>reference</th><th>{_e(d['a'])}</th><th>{_e(d['b'])}</th><th>Δ "
            f"{_e(d['metric'])}</th></tr>"
        )
        for x in d["items"]:
            cls = "pos" if x["delta"] > 0 else "neg" if x["delta"] < 0 else "flat"
            w(
                f"<tr><td><span class='small'>{_e(x['id'])}</span><br>{_e(x['question'])}</td><td "
                f"class='ans'>{_e(x['reference'])}</td>"
                f"<td class='ans'>{_e(x['a_answer'])}<br><span class='small'>{_n(x['a_score'])}</span></td>"
                f"<td class='ans'>{_e(x['b_answer'])}<br><span class='small'>{_n(x['b_score'])}</span></td>"
                f"<td class='num {cls}'>{x['delta']:+.3f}</td></tr>"
            )
        w("</table>")


def _judge_line(j: dict[str, Any] | None) -> str:
    if not j:
        return "none configured (judge metrics skipped)"
    pf = j.get("parse_failures") or {}
    fails = f", {sum(pf.values())} unparseable ({', '.join(f'{_e(k)} {v}' for k, v in pf.items())})" if pf else ""
    return f"{_e(j.get('name'))} ({_e(j.get('kind'))}; {j.get('calls', 0)} calls{fails})"


def _ci_abs(v: dict[str, Any]) -> str:
    if v.get("ci_low") is None:
        return ""
    return f"[{v['ci_low']:.3f}, {v['ci_high']:.3f}]"


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write plots/*.png, report.json and report.html under out_dir; return their paths."""
    out_dir = Path(out_dir)
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    plots = {
        "means": plots_dir / "means.png",
        "diffs": plots_dir / "diffs.png",
        "distributions": plots_dir / "distributions.png",
    }
    plot_means(report, plots["means"])
    if len(report["arms"]) > 1:
        plot_diffs(report, plots["diffs"])
    else:
        plots.pop("diffs")
    plot_distributions(report, plots["distributions"])
    files = {
        "json": str(out_dir / "report.json"),
        "html": str(out_dir / "report.html"),
        "plots": {k: str(v) for k, v in plots.items()},
    }
    report["files"] = files
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report, plots), encoding="utf-8")
    return files
