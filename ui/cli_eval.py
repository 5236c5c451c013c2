"""`lorag eval`: A/B evaluation of generators on identical retrieved passages, test-set import,
robustness sweeps. Registered in ui/cli.py with `app.add_typer(eval_app, name="eval")`.

    lorag eval --domain handbook --ab base,handbook-v2 [--testset F.jsonl] [--out DIR] [--top-k K] [--limit N]
    lorag eval import qa.csv --out qa.jsonl
    lorag eval robustness --domain handbook --ab base,handbook-v2 [--testset F.jsonl]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from assistant.errors import LoragError
from ui.cli_progress import StageBars as _Bars
from ui.cli_progress import job_phase_bars
from ui.cli_state import app_client, domain_option, run_in_app, state, upload_text

eval_app = typer.Typer(
    invoke_without_command=True,
    add_completion=False,
    help="A/B evaluation: every arm answers from identical passages; Ragas + F1/EM; HTML/JSON report; gate data.",
)

# Tests replace this: spec -> Generator for `model:<spec>` arms and a local judge.
model_loader: Optional[Callable[[str], Any]] = None


_REPORT_LINE = re.compile(r"report \S+: ")  # the app's eval job's log line naming its report (ui/web_jobs.py)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)  # no hard line breaks in messages


class _Models:
    """Generators of model:<spec> arms and of a local judge, loaded once each (`model_loader` in tests)."""

    def __init__(self, comps: Any):
        self.comps = comps
        self._models: dict[str, Any] = {}

    def __call__(self, spec: str) -> Any:
        if spec not in self._models:
            if model_loader is not None:
                self._models[spec] = model_loader(spec)
            else:
                from assistant.generation import HFGenerator
                from assistant.models.loading import load_causal_lm

                m = self.comps.settings.models
                model, tok = load_causal_lm(spec, self.comps.model_cache, device=m.device, dtype=m.dtype)
                self._models[spec] = HFGenerator(model, tok, m, name=spec)
        return self._models[spec]


def check_arms(ab: str) -> None:
    """The arms are well formed and their adapters are registered (no duplicate, no unknown name): read from the
    registry's card files, so it runs before the keep-warm worker is stopped or the store opens."""
    from assistant.registry import Registry
    from eval.arms import parse_arms

    settings = state.settings
    parse_arms(ab, registry=Registry(settings.adapters_dir), base_model=settings.models.generator)


def _warn(message: str) -> None:
    _console(stderr=True).print(f"[yellow]warning:[/] {message}", markup=True)


def _fmt(v: Any, signed: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def print_summary(report: dict[str, Any]) -> None:
    """The verdict, the table of means and differences, the retrieval line, the report's files: from a report or its
    summary (eval.report_summary.report_summary, what the app's eval job returns)."""
    from rich.table import Table

    from eval.report_compare import comparison, direction, min_questions
    from eval.report_verdict import n_questions, verdict

    labels = [a["label"] for a in report["arms"]]
    base = report["baseline"]
    letter = {lab: chr(ord("A") + i) for i, lab in enumerate(labels)}  # short column names; the legend says which
    legend = ", ".join(f"{letter[lab]} = {lab}" for lab in labels)
    t = Table(
        title=f"{report['domain']}: {legend} · {n_questions(report['counts']['questions'])}, top-k {report['top_k']}"
    )
    t.add_column("metric")
    for lab in labels:
        t.add_column(letter[lab], justify="right")
    for lab in labels[1:]:
        t.add_column(f"{letter[lab]} − {letter[base]}", justify="right")
        t.add_column("95% CI", justify="right", no_wrap=True)
    t.add_column("n", justify="right")
    t.add_column("failed", justify="right")
    for m in report["metrics"]["answer"]:
        row = [m + (" *" if m == report["gate_metric"] else "")]
        row += [_fmt(report["means"][lab][m]["mean"]) for lab in labels]
        n = 0
        for lab in labels[1:]:
            v = (comparison(report, base, lab) or {}).get(m, {})
            style = {1: "green", -1: "red", 0: "dim"}[direction(report, v)]
            ci = "–" if v.get("ci_low") is None else f"[{v['ci_low']:+.3f}, {v['ci_high']:+.3f}]"
            row += [f"[{style}]{_fmt(v.get('diff'), True)}[/]", f"[{style}]{ci}[/]"]
            n = v.get("n", 0)
        failed = sum(
            report["failures"]["answer"][lab][m]["failed"] + report["failures"]["answer"][lab][m]["error"]
            for lab in labels
        )
        row += [str(n), str(failed) if failed else ""]
        t.add_row(*row)
    console = _console()
    for line in verdict(report):
        console.print(f"[bold]{line}[/]")
    console.print(t)
    rm = report["metrics"]["retrieval"]
    if rm:
        parts = [f"{m} {_fmt(report['retrieval'][m]['mean'])} (n={report['retrieval'][m]['n']})" for m in rm]
        console.print("retrieval (same for every arm): " + ", ".join(parts))
    c = report["counts"]
    console.print(
        f"answers: {c['generated']} generated, {c['cached']} from cache; {c['not_relevant']} question(s) had no "
        "relevant passage. "
        f"* gate metric; green/red: 95% CI of the difference above/below zero, over at least "
        f"{min_questions(report)} questions."
    )
    console.print(f"report: {report['files']['html']}\n        {report['files']['json']}")
    if report.get("attached_to"):
        console.print(f"attached to the card of: {', '.join(report['attached_to'])}")


@eval_app.callback()
def eval_cmd(
    ctx: typer.Context,
    domain: Optional[str] = typer.Option(
        None, "--domain", "-d", help="Domain whose passages the questions are answered from.", callback=domain_option
    ),
    testset: Optional[Path] = typer.Option(
        None, "--testset", "-t", help="Test set JSONL (default: the domain's held-out split)."
    ),
    ab: Optional[str] = typer.Option(
        None,
        "--ab",
        help="Arms, comma-separated: base, an adapter (handbook-v2), model:<spec>. The first is the baseline.",
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Report folder (default: <data_dir>/reports/<run-id>)."
    ),
    top_k: Optional[int] = typer.Option(
        None, "--top-k", min=1, max=50, help="Passages per question (default: retrieval.top_k)."
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N questions."),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, help="Prompts per generation batch (all arms of a question together)."
    ),
    judge_model: Optional[str] = typer.Option(
        None, "--judge-model", help="Judge model: a local model spec, or the served name with --judge-url."
    ),
    judge_url: Optional[str] = typer.Option(
        None, "--judge-url", help="OpenAI-compatible endpoint for the judge (e.g. http://localhost:8000/v1)."
    ),
    no_judge: bool = typer.Option(False, "--no-judge", help="Skip judge metrics even when a judge is configured."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute every answer and score."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary (means, comparisons, files) as JSON."),
) -> None:
    """Run an A/B evaluation (when no sub-command is given)."""
    if ctx.invoked_subcommand is not None:
        return
    if domain is None and ab is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    if not domain or not ab:
        raise LoragError("lorag eval needs --domain D and --ab ARM,ARM (e.g. --ab base,handbook-v2)")
    # a long job: in the foreground unless a `lorag ui` app holds the store; arms that cannot run leave the worker be
    remote = app_client(through_worker=False, check=lambda: check_arms(ab))  # before the store opens
    if remote is not None:  # the app evaluates, as its Evaluation tab does; the report is in its reports folder
        job = run_in_app(
            remote,
            "eval",
            {
                "--out": out,
                "--top-k": top_k,
                "--judge-model": judge_model,
                "--judge-url": judge_url,
                "--no-judge": no_judge,
                "--no-cache": no_cache,
            },
            log_to_stderr=as_json,
            hide=None if as_json else _REPORT_LINE.match,  # the summary below names the report's files
            domain=domain,
            arms=ab,
            limit=limit,
            testset_jsonl=upload_text(testset, "test set"),
            testset_name=str(testset) if testset else None,
        )
        if as_json:  # the job's result: the report's summary, as report_summary gives it without the app
            typer.echo(json.dumps(job["result"], indent=2))
        else:  # the phases' bars and the summary, as the command run here ends
            job_phase_bars(job.get("progress"), enabled=sys.stderr.isatty())
            print_summary(job["result"])
        return
    from services.evaluation import make_judge, plan_eval, run_eval

    comps = state.components
    plan = plan_eval(comps, domain, ab, testset, limit)
    models = _Models(comps)
    judge = None if no_judge else make_judge(comps.settings, model=judge_model, url=judge_url, load_model=models)
    with _Bars(enabled=not as_json and sys.stderr.isatty()) as bars:
        report = run_eval(
            comps,
            plan,
            judge=judge,
            load_model=models,
            top_k=top_k,
            batch_size=batch_size,
            use_cache=not no_cache,
            out=out,
            progress=bars,
            warn=_warn,
        )
    if as_json:
        from eval.report_summary import report_summary

        typer.echo(json.dumps(report_summary(report), indent=2))
    else:
        print_summary(report)


@eval_app.command("import")
def import_cmd(
    csv_path: Path = typer.Argument(
        ...,
        metavar="CSV",
        help="CSV with a header: question,answer[,sources][,tags][,id][,contexts]; lists separated by ';'.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Test set JSONL to write."),
    id_prefix: Optional[str] = typer.Option(
        None, "--id-prefix", help="Ids for rows without one: <prefix>-NNN (default: the output file's name)."
    ),
) -> None:
    """Convert a CSV of question/answer pairs into a test set; bad rows are listed with line numbers."""
    from eval.testset import import_csv

    info = import_csv(csv_path, out, id_prefix=id_prefix)
    typer.echo(f"wrote {info['rows']} rows to {info['path']}")


@eval_app.command("robustness")
def robustness_cmd(
    domain: str = typer.Option(
        ..., "--domain", "-d", help="Domain whose passages the questions are answered from.", callback=domain_option
    ),
    ab: str = typer.Option(..., "--ab", help="Arms, comma-separated (see `lorag eval --help`)."),
    testset: Optional[Path] = typer.Option(
        None, "--testset", "-t", help="Test set JSONL (default: the domain's held-out split)."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Folder (default: <data_dir>/reports/<run-id>-robustness)."
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N questions."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Metric to plot (default: the domain's gate metric)."),
    max_k: int = typer.Option(8, "--max-k", min=1, max=50, help="Top-k sweep: 1..max-k."),
    max_distractors: int = typer.Option(
        6, "--max-distractors", min=0, max=50, help="Distractor sweep: 0..N added to the default top-k."
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Prompts per generation batch."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute every answer and score."),
) -> None:
    """Answer quality vs number of passages (top-k) and of random distractors, every arm on one plot."""
    from eval.cache import EvalCache
    from eval.metrics import MetricSuite
    from eval.report_build import new_run_id
    from eval.robustness import run_robustness, write_robustness
    from services.evaluation import arm_generators, generation_settings, plan_eval
    from services.recipes import domain_gate_metric

    check_arms(ab)  # before the store opens (which stops the keep-warm worker)
    comps = state.components
    settings = comps.settings
    plan = plan_eval(comps, domain, ab, testset, limit)
    suite = MetricSuite(embedder=comps.dense, judge=None)
    metric = metric or domain_gate_metric(settings, domain, _warn)
    if metric not in suite.answer_metrics:
        raise LoragError(
            f"--metric {metric!r}: not an answer metric here (choose from {', '.join(suite.answer_metrics)})"
        )
    with _Bars(enabled=sys.stderr.isatty()) as bars:
        result = run_robustness(
            plan.items,
            plan.arms,
            retriever=comps.retriever,
            store=comps.store,
            domain=domain,
            generator_for=arm_generators(comps, plan.arms, _Models(comps)),
            suite=suite,
            cache=EvalCache(None if no_cache else settings.reports_dir / "cache" / "results.jsonl"),
            generation=generation_settings(settings),
            ks=range(1, max_k + 1),
            distractors=range(0, max_distractors + 1),
            base_k=settings.retrieval.top_k,
            batch_size=batch_size,
            progress=bars,
        )
    result["run_id"] = new_run_id(domain) + "-robustness"
    result["testset"] = plan.testset
    files = write_robustness(result, out or settings.reports_dir / result["run_id"], metric)
    from rich.table import Table

    t = Table(title=f"{domain}: mean {metric}")
    t.add_column("sweep")
    t.add_column("x", justify="right")
    for a in result["arms"]:
        t.add_column(a["label"], justify="right")
    for sweep in ("top_k", "distractors"):
        for i, x in enumerate(result[sweep]["x"]):
            t.add_row(
                sweep, str(x), *[_fmt(result[sweep]["arms"][a["label"]][metric][i]["mean"]) for a in result["arms"]]
            )
    console = _console()
    console.print(t)
    c = result["counts"]
    console.print(
        f"answers: {c['generated']} generated, {c['cached']} from cache\nplot: {files['png']}\nreport: {files['html']}"
    )
