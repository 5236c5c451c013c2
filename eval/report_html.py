"""report.html: one self-contained page, plots embedded, every answer side by side."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Callable

from eval.metric_catalog import ERROR, FAILED, NA
from eval.report_compare import comparison, direction, min_questions
from eval.report_verdict import verdict

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
