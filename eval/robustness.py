"""Robustness: answer quality as the number of retrieved passages (top-k) and of distractors grows.

Each question is retrieved once (top max(k)); the top-k sweep gives the first k of those passages,
the distractor sweep adds d random chunks of the domain that are neither retrieved nor from the
question's source documents to the default top-k, at random positions (nested: the passages for d+1
are those for d plus one more, so the curve is not noise from re-drawing). Every arm sees the same
passages. The generator always answers here (no relevance cut-off): this measures the generator.
"""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from assistant.prompt import build_messages
from assistant.retrieval import Passage
from eval.arms import Arm
from eval.cache import EvalCache
from eval.metrics import MetricSuite
from eval.runner import Job, Progress, answer_row, generate_all, retrieve_all, scores_cached, stable_passages
from eval.stats import mean_ci
from eval.testset import TestItem

SCHEMA = "lorag-eval-robustness/1"


def _renumber(passages: Sequence[Passage]) -> list[Passage]:
    return [dataclasses.replace(p, n=i + 1) for i, p in enumerate(passages)]


def _keeping_unrelated(retriever: Any) -> Any:
    """The retriever with retrieval.drop_unrelated off (one that is no Retriever, as tests pass, as it is)."""
    from assistant.retrieval import Retriever

    if not isinstance(retriever, Retriever) or not retriever.settings.drop_unrelated:
        return retriever
    settings = retriever.settings.model_copy(update={"drop_unrelated": False})
    return Retriever(retriever.store, retriever.dense, retriever.sparse, settings, reranker=retriever.reranker)


def _as_passage(hit: Any, domain: str) -> Passage:
    p = hit.payload
    return Passage(
        n=0,
        text=p.get("text", ""),
        source=p.get("display", p.get("doc_id", "?")),
        section=p.get("section") or "",
        page=p.get("page"),
        score=0.0,
        domain=p.get("domain", domain),
        doc_id=p.get("doc_id", ""),
        chunk_id=str(hit.id),
    )


def run_robustness(
    items: Sequence[TestItem],
    arms: Sequence[Arm],
    *,
    retriever: Any,
    store: Any,
    domain: str,
    generator_for: Callable[[Arm], Any],
    suite: MetricSuite,
    cache: EvalCache,
    generation: dict[str, Any],
    ks: Sequence[int] = tuple(range(1, 9)),
    distractors: Sequence[int] = tuple(range(0, 7)),
    base_k: int = 4,
    batch_size: int = 8,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    pool = [_as_passage(h, domain) for h in store.scroll_chunks(domain, limit=5000)]
    max_k = max([*ks, base_k])
    conditions: list[tuple[str, int, int, list[Passage]]] = []  # (sweep, x, question index, passages)
    if progress:
        progress("retrieve", 0, len(items))
    # every retrieved passage up to max_k, unrelated ones too: the top-k sweep gives k passages wherever k exist
    retriever = _keeping_unrelated(retriever)
    retrieved = retrieve_all(retriever, [i.question for i in items], domain, max_k)
    for qi, (item, r) in enumerate(zip(items, retrieved)):
        got = stable_passages(r.passages)
        for k in ks:
            conditions.append(("top_k", k, qi, _renumber(got[:k])))
        taken = {p.chunk_id for p in got}
        own = set(item.sources)
        candidates = [p for p in pool if p.chunk_id not in taken and p.source not in own]
        rng = random.Random(f"{seed}|{item.key()}")
        picks = rng.sample(candidates, min(len(candidates), max(distractors, default=0)))
        positions = [rng.random() for _ in picks]
        for d in distractors:
            order = list(got[:base_k])
            for p, u in zip(picks[:d], positions[:d]):
                order.insert(int(u * (len(order) + 1)), p)
            conditions.append(("distractors", d, qi, _renumber(order)))
        if progress:
            progress("retrieve", qi + 1, len(items))

    jobs = [Job(build_messages(items[qi].question, ps), arm) for _, _, qi, ps in conditions for arm in arms]
    answers, sources, gstats = generate_all(
        jobs, generator_for, cache, generation, batch_size=batch_size, progress=progress
    )
    rows = []
    i = 0
    for _, _, qi, ps in conditions:
        for _arm in arms:
            rows.append(answer_row(items[qi], answers[i], ps))
            i += 1
    scored = scores_cached("answer-scores", rows, suite, cache, progress)

    metrics = suite.answer_metrics
    out: dict[str, Any] = {}
    for sweep, xs in (("top_k", list(ks)), ("distractors", list(distractors))):
        per_arm: dict[str, dict[str, list[dict[str, Any]]]] = {a.label: {m: [] for m in metrics} for a in arms}
        for x in xs:
            idx = [ci for ci, c in enumerate(conditions) if c[0] == sweep and c[1] == x]
            for ai, arm in enumerate(arms):
                rows_s = [scored[ci * len(arms) + ai] for ci in idx]
                for m in metrics:
                    per_arm[arm.label][m].append(mean_ci([s.scores.get(m) for s in rows_s]))
        out[sweep] = {"x": xs, "arms": per_arm}
    return {
        "schema": SCHEMA,
        "domain": domain,
        "arms": [a.to_dict() for a in arms],
        "metrics": metrics,
        "base_k": base_k,
        "seed": seed,
        "questions": len(items),
        "generation": generation,
        **out,
        "counts": {
            "answers": len(jobs),
            "generated": sources.count("generated"),
            "cached": sources.count("cache"),
            "duplicates": sources.count("duplicate"),
            "distractor_pool": len(pool),
        },
        "timings_s": {"total": round(time.perf_counter() - t0, 2), "generate_model_s": round(gstats["generate_s"], 2)},
    }


def plot_robustness(result: dict[str, Any], metric: str, path: Path) -> None:
    from eval.report_plots import arm_colors, pyplot

    plt = pyplot()
    labels = [a["label"] for a in result["arms"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, sweep, xlabel in (
        (axes[0], "top_k", "retrieved passages given (top-k)"),
        (axes[1], "distractors", f"random distractors added to the top-{result['base_k']}"),
    ):
        xs = result[sweep]["x"]
        for i, (lab, color) in enumerate(zip(labels, arm_colors(len(labels)))):
            pts = result[sweep]["arms"][lab][metric]
            ys = [p["mean"] if p["mean"] is not None else float("nan") for p in pts]
            lo = [p["ci_low"] if p["ci_low"] is not None else float("nan") for p in pts]
            hi = [p["ci_high"] if p["ci_high"] is not None else float("nan") for p in pts]
            # distinct styles keep arms with identical scores visible on top of each other
            ax.plot(
                xs,
                ys,
                marker="os^D"[i % 4],
                linestyle=["-", "--", ":", "-."][i % 4],
                label=lab,
                color=color,
                markersize=7 - 1.5 * (i % 3),
                lw=2,
            )
            ax.fill_between(xs, lo, hi, color=color, alpha=0.15)
        ax.set_xlabel(xlabel)
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"mean {metric} (95% bootstrap CI)")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"{result['domain']}: {metric} as passages and distractors grow (n={result['questions']} questions)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_robustness(result: dict[str, Any], out_dir: Path, metric: str) -> dict[str, str]:
    import base64
    import html
    import json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "robustness.png"
    plot_robustness(result, metric, png)
    files = {"json": str(out_dir / "robustness.json"), "png": str(png), "html": str(out_dir / "robustness.html")}
    result["files"] = files
    result["plot_metric"] = metric
    (out_dir / "robustness.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    rows = []
    for sweep in ("top_k", "distractors"):
        for i, x in enumerate(result[sweep]["x"]):
            cells = "".join(
                f"<td style='text-align:right'>{_fmt(result[sweep]['arms'][a['label']][metric][i]['mean'])}</td>"
                for a in result["arms"]
            )
            rows.append(f"<tr><td>{sweep}</td><td>{x}</td>{cells}</tr>")
    head = "".join(f"<th>{html.escape(a['label'])}</th>" for a in result["arms"])
    img = base64.b64encode(png.read_bytes()).decode()
    (out_dir / "robustness.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>lorag robustness</title></head>"
        f"<body style='font-family:system-ui,sans-serif;max-width:1100px;margin:24px auto'>"
        f"<h1>Robustness on domain {html.escape(result['domain'])}</h1>"
        f"<img style='max-width:100%' src='data:image/png;base64,{img}'>"
        "<table border='1' cellpadding='4' "
        f"style='border-collapse:collapse'><tr><th>sweep</th><th>x</th>{head}</tr>{''.join(rows)}</table>"
        f"<p>mean {html.escape(metric)} per condition; {result['questions']} questions.</p></body></html>",
        encoding="utf-8",
    )
    return files


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}"
