"""The web app's adapter and evaluation actions, shared by its tabs and its API: each checks what it can at once,
then runs one service (services/) as a background job, or calls it under the app's write lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.names import domain_name

NAME_MOST = 300  # characters of a file name the sender gives (a display name, never a path that is opened)


def display_name(name: Any) -> str | None:
    """The name a sender gives its uploaded file (the CLI's original path), kept for display only: control and
    format characters and line breaks become spaces, whitespace is collapsed, a longer one keeps its last
    NAME_MOST characters (the file's own name); None when nothing is left."""
    if not isinstance(name, str):
        return None
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())
    if len(text) > NAME_MOST:
        text = "…" + text[-(NAME_MOST - 1) :]
    return text or None


def jobs_of_domain(core: Any, domain: str | None, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """The jobs of these kinds for the domain picked (as typed: 'HR' is 'hr'), newest first, whichever tab or API
    call started them; none while no domain is picked (every job names its domain) or the name typed is no domain's."""
    try:
        want = domain_name(domain) if domain else None
    except LoragError:  # a name being typed that is no domain's: no job is its
        return []
    return [j for j in core.jobs.all() if j["kind"] in kinds and (j.get("params") or {}).get("domain") == want]


def start_synth(
    core: Any,
    domain: str,
    qa: Path | None = None,
    writer: str | None = None,
    max_chunks: int | None = None,
    qa_name: str | None = None,
) -> str:
    """Make the domain's training set from its chunks and the uploaded Q&A `qa` (only that file: nothing from the
    working directory). `qa_name`: the file's name where the user has it (the CLI's upload, the web tab's file
    name), in messages (as display_name keeps it)."""
    from assistant.retrieval import resolve_domains
    from finetune.data import load_qa
    from finetune.data_report import report_lines
    from services.adapters import synth_recipe, synthesize

    domain = domain_name(domain)  # as typed in the tab or the API: 'HR' is the domain 'hr'
    c = core.comps
    cfg = synth_recipe(c.settings, domain, writer=writer or None, max_chunks=int(max_chunks) if max_chunks else None)
    resolve_domains(c.store, domain)
    shown = display_name(qa_name) or (str(qa) if qa else None)
    if qa:
        load_qa(qa, name=shown)  # every bad row now, named in the user's file, before the job starts

    def run(job: Any) -> dict[str, Any]:
        if qa:
            job.log(f"curated Q&A: {shown}")
        summary = synthesize(c, cfg, qa=qa, progress=job.progress, count_tokens=core.count_tokens)
        s = summary["synthetic"]
        job.log(
            f"{summary['train_examples']} training examples, {summary['heldout']} held-out questions "
            f"({summary['heldout_from']}); synthetic: {s['kept']} pairs from {s['chunks']} chunks"
        )
        for line in report_lines(summary["report"]):
            job.log(line)
        drops = sorted({**s["dropped"], **summary["dropped"]}.items(), key=lambda x: -x[1])[:8]
        job.log("dropped: " + "; ".join(f"{n} {why}" for why, n in drops) if drops else "dropped: none")
        return summary

    return core.jobs.start("synth", f"training data for {domain}", run, {"domain": domain, "qa": shown})


def start_train(core: Any, domain: str, max_steps: int | None = None, resume: bool = False) -> str:
    from assistant.retrieval import resolve_domains
    from finetune.jobs import dataset_dir
    from finetune.runtime import describe_runtime
    from services.adapters import train, train_recipe

    domain = domain_name(domain)  # as typed in the tab or the API: 'HR' is the domain 'hr'
    if not (dataset_dir(core.settings, domain) / "train.jsonl").is_file():  # no training set: is it indexed?
        resolve_domains(core.comps.store, domain)  # an unknown domain is refused now, as synth refuses it
    if core.jobs.running("train"):
        raise LoragError("a training job is already running; wait for it to finish")
    cfg = train_recipe(core.settings, domain, max_steps=max_steps)

    def run(job: Any) -> dict[str, Any]:
        card = train(core.comps, cfg, resume=resume, on_log=job.point, train_fn=core.train_fn)
        job.log(f"registered {card.name}; promote it after an evaluation")
        job.log(describe_runtime(card.metrics, card.hyperparameters))
        return {"adapter": card.name, "metrics": card.metrics}

    return core.jobs.start(
        "train",
        f"train {domain}" + (f" ({max_steps} step{'' if max_steps == 1 else 's'})" if max_steps else ""),
        run,
        {"domain": domain, "max_steps": max_steps, "resume": resume},
    )


def eval_available() -> str | None:
    """None when the evaluation package can run, else why not."""
    try:
        import eval.arms  # noqa: F401
        import eval.cache  # noqa: F401
        import eval.metrics  # noqa: F401
        import eval.report_build  # noqa: F401
        import eval.report_summary  # noqa: F401
        import eval.report_write  # noqa: F401
        import eval.runner  # noqa: F401
        import eval.testset  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import problem means: not available
        return f"the evaluation package is not available ({type(e).__name__}: {e})"
    return None


def start_eval(
    core: Any,
    domain: str,
    ab: str,
    testset: Path | None = None,
    limit: int | None = None,
    testset_name: str | None = None,
) -> str:
    """An A/B evaluation as a job: the served model answers for every arm (one slot of the generation gate); the
    judge is an endpoint or the served model itself. `testset_name`: the test set's name where the user has it (the
    CLI's upload, the web tab's file name), in messages and the report (as display_name keeps it). The job's
    result: the report's summary (what `lorag eval` prints)."""
    why = eval_available()
    if why:
        raise LoragError(why)
    from eval.report_summary import report_summary
    from eval.report_verdict import n_questions
    from services.evaluation import make_judge, model_arms_in_app_error, plan_eval, run_eval

    domain = domain_name(domain)  # as typed in the tab or the API: 'HR' is the domain 'hr'
    plan = plan_eval(core.comps, domain, ab, testset, limit, testset_name=display_name(testset_name))
    if any(a.kind == "model" for a in plan.arms):
        raise model_arms_in_app_error()
    served = core.settings.models.generator

    def run(job: Any) -> dict[str, Any]:
        judge = make_judge(
            core.settings, load_model=lambda spec: core.comps.generator if spec == served else None, note=job.log
        )
        report = run_eval(
            core.comps,
            plan,
            judge=judge,
            attach=lambda names: _attach_missing(core, names),
            use_ragas=getattr(core, "eval_use_ragas", True),
            progress=job.phase,  # each phase ended stays on the job's line: generate n/n, then score, then report
            slot=lambda: core.gate.slot(timeout=3600),  # an evaluation takes one slot; chat keeps the others
        )
        job.log(f"report {report['run_id']}: {report['files']['html']}")
        return report_summary(report)

    return core.jobs.start(
        "eval", f"A/B {ab} on {domain} ({n_questions(len(plan.items))})", run, {"domain": domain, "ab": ab}
    )


def _attach_missing(core: Any, names: list[str]) -> None:
    missing = [n for n in names if n not in core.loaded_adapters()]
    if missing:
        core.attach(missing)  # registry versions that are not loaded yet


def promote(core: Any, name: str, force: bool = False, face: str = "app") -> str:
    """Promote through the A/B gate and serve it at once; returns the line the tab and the API show."""
    from services.adapters import promote_with_line

    with core.write_lock:
        _, line, changed = promote_with_line(core.comps, name, force=force, face=face)
    if changed:
        core.refresh_routing()
    return line


def eval_arms(core: Any, domain: str | None) -> str:
    from services.evaluation import suggested_arms

    return suggested_arms(core.registry_cards(), domain)
