"""The A/B evaluation and its judge: plan a run (cheap checks), pick the judge, run it, write the report and
attach its summary to every adapter arm's card. `lorag eval`, the Evaluation tab and the API's eval job
all go through here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from assistant.errors import LoragError
from services.recipes import domain_gate_metric


def model_arms_in_app_error() -> LoragError:
    """A model:NAME arm asked of the running app (the Evaluation tab, the API, or `lorag eval` handing its run to the
    app): the app serves its one base model, so such an arm loads its model only in `lorag eval` run alone."""
    return LoragError(
        "model: arms (model:NAME, a second base model) run only in `lorag eval` without the app running: "
        "the app serves its one base model",
        hint="stop `lorag ui` first, then run `lorag eval`; or run `lorag eval` from a data dir the app does not "
        "hold (paths.data_dir); base and adapter arms run in the app",
    )


@dataclass
class EvalPlan:
    """What a run evaluates: the domain, the arms (the first is the baseline), the questions, and the test set's
    description."""

    domain: str
    arms: list[Any]
    items: list[Any]
    testset: dict[str, Any]


def plan_eval(
    comps: Any,
    domain: str,
    ab: str,
    testset: Path | None = None,
    limit: int | None = None,
    *,
    testset_name: str | None = None,
) -> EvalPlan:
    """Check everything a run needs before any model loads: the domain is indexed, the arms exist, the test set
    (default: the domain's held-out split) reads. `testset_name`: what messages and the report call the test set
    (an uploaded copy's original name; default its path)."""
    from assistant.retrieval import resolve_domains
    from eval.arms import parse_arms
    from eval.testset import default_testset, describe_testset, load_testset

    resolve_domains(comps.store, domain)
    # base and adapter arms run on the engine when models.endpoint is set; a model:<spec> arm stays local
    arms = parse_arms(ab, registry=comps.registry, base_model=comps.base_model_id)
    path = Path(testset) if testset else default_testset(comps.settings.datasets_dir, domain)
    items = load_testset(path, name=testset_name)
    info = describe_testset(path, items, name=testset_name)
    if limit:
        items, info["limit"] = items[: int(limit)], int(limit)
    return EvalPlan(domain, arms, items, info)


def suggested_arms(cards: list[Any], domain: str | None) -> str:
    """The arms an evaluation of the domain starts from: base and the domain's newest adapter, with the served
    version between them when it is another one (promoting the newest needs a report against it)."""
    cards = [c for c in cards if c.domain == domain]
    if not cards:
        return "base"
    newest = max(cards, key=lambda c: c.version)
    promoted = next((c.name for c in cards if c.promoted and c.name != newest.name), None)
    return ",".join(["base", *([promoted] if promoted else []), newest.name])


def make_judge(
    settings: Any,
    *,
    model: str | None = None,
    url: str | None = None,
    load_model: Callable[[str], Any | None],
    note: Callable[[str], None] = lambda _m: None,
) -> Any:
    """The judge for the judge metrics, or None: an OpenAI-compatible endpoint (`url`, judge.base_url, or the engine
    of models.endpoint) serving `model` (default judge.model), else that model loaded locally by `load_model`
    (None: it cannot be loaded here, `note` says so)."""
    from eval.judge import check_judge, judge_endpoint, local_judge, openai_judge

    cfg = settings.judge
    model = model or cfg.model
    if not model:
        if url or cfg.base_url:
            raise LoragError(
                "a judge endpoint needs the served model's name", hint="set judge.model or pass --judge-model NAME"
            )
        note("no judge configured: judge metrics (faithfulness, answer relevancy) are skipped")
        return None
    target = judge_endpoint(settings, url)
    if target:
        base_url, key = target
        judge = openai_judge(
            base_url,
            model,
            key,
            max_tokens=cfg.max_new_tokens,
            concurrency=cfg.concurrency,
            limits=settings.models.endpoint,
        )
        check_judge(judge)
        return judge
    generator = load_model(model)
    if generator is None:
        note(f"judge model {model} is not the served model: run `lorag eval` for judge metrics; skipped here")
        return None
    return local_judge(generator, name=model, max_new_tokens=cfg.max_new_tokens)


def generation_settings(settings: Any) -> dict[str, Any]:
    """The served generation settings every arm answers with."""
    m = settings.models
    return {
        "max_new_tokens": m.max_new_tokens,
        "temperature": m.temperature,
        "repetition_penalty": m.repetition_penalty,
    }


def arm_generators(
    comps: Any,
    arms: list[Any],
    load_model: Callable[[str], Any] | None = None,
    attach: Callable[[list[str]], Any] | None = None,
) -> Callable[[Any], Any]:
    """arm -> the generator that answers for it: a model:<spec> arm's own model (`load_model`), else the served
    generator, with the adapter arms attached to it on first use (`attach`, default Components.attach)."""
    names = [a.adapter for a in arms if a.kind == "adapter"]
    attached: list[bool] = []

    def generator_for(arm: Any) -> Any:
        if arm.kind == "model":
            if load_model is None:
                raise model_arms_in_app_error()
            return load_model(arm.spec)
        if names and not attached:
            (attach or comps.attach)(names)
            attached.append(True)
        return comps.generator

    return generator_for


def run_eval(
    comps: Any,
    plan: EvalPlan,
    *,
    judge: Any = None,
    load_model: Callable[[str], Any] | None = None,
    attach: Callable[[list[str]], Any] | None = None,
    top_k: int | None = None,
    batch_size: int = 8,
    use_cache: bool = True,
    use_ragas: bool = True,
    out: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    slot: Callable[[], Any] = contextlib.nullcontext,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the A/B: every arm answers from identical passages; score, write report.json/.html (to `out`, default
    <reports>/<run-id>), attach the summary to each adapter arm's card. Returns the report, with "attached_to".
    `load_model(spec)`: the generator of a model:<spec> arm; `attach(names)`: loads adapter arms into the served
    generator (default Components.attach); `slot()`: held while generating (the app's generation gate)."""
    from eval.cache import EvalCache
    from eval.metrics import MetricSuite
    from eval.report_build import build_report, new_run_id
    from eval.report_summary import card_summary
    from eval.report_write import write_report
    from eval.runner import run_ab

    settings = comps.settings
    generator_for = arm_generators(comps, plan.arms, load_model, attach)
    adapter_arm = next((a for a in plan.arms if a.kind == "adapter"), None)
    if adapter_arm is not None:  # attach before taking the slot: attaching takes every slot of the app's gate
        generator_for(adapter_arm)
    suite = MetricSuite(embedder=comps.dense, judge=judge, use_ragas=use_ragas)
    cache = EvalCache(settings.reports_dir / "cache" / "results.jsonl" if use_cache else None)
    with slot():
        result = run_ab(
            plan.items,
            plan.arms,
            retriever=comps.retriever,
            domain=plan.domain,
            generator_for=generator_for,
            suite=suite,
            cache=cache,
            top_k=top_k or settings.retrieval.top_k,
            batch_size=batch_size,
            progress=progress,
            generation=generation_settings(settings),
        )
    if progress:  # its own phase: the plots take a while, after the last score
        progress("report", 0, 1)
    run_id = new_run_id(plan.domain)
    report = build_report(
        result,
        testset=plan.testset,
        run_id=run_id,
        gate_metric=domain_gate_metric(settings, plan.domain, warn),
        min_questions=settings.eval.min_questions,
        judge={**judge.identity(), "calls": judge.calls, "parse_failures": dict(judge.parse_failures)}
        if judge
        else None,
    )
    write_report(report, out or settings.reports_dir / run_id)
    if progress:
        progress("report", 1, 1)
    report["attached_to"] = []
    for arm in plan.arms:
        if arm.kind == "adapter":
            comps.registry.attach_report(arm.adapter, card_summary(report, arm.label))
            report["attached_to"].append(arm.label)
    return report
