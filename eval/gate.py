"""The promotion gate: an adapter is promoted only when its latest A/B report shows it beats the
domain's current promoted version (or the base model when none is promoted) on the domain's gate
metric (the one its recipe names) with a 95% CI of the difference above zero, over at least `min_questions`
paired questions (eval.min_questions: a CI over fewer decides nothing).

Light on purpose (no numpy, no ragas): `lorag adapters promote` imports it.

    gate = lambda card: promotion_gate(card, registry, metric, min_questions=settings.eval.min_questions)
    registry.promote(name, force=force, gate=gate)
"""

from __future__ import annotations

from typing import Any


def run_command(domain: str, arms: str, *, testset: str | None = None) -> str:
    """The evaluation a refusal tells to run, as a `lorag eval` command (on `testset` when given)."""
    return f"run `lorag eval --domain {domain}{f' --testset {testset}' if testset else ''} --ab {arms}`"


def promotion_gate(card: Any, registry: Any, metric: str, *, min_questions: int) -> dict[str, Any]:
    """Decide whether `card` (assistant.registry.AdapterCard) may be promoted on `metric` (the gate metric of the
    recipe it was trained with: services.recipes.card_gate_metric), from a comparison over at least `min_questions`
    paired questions. Returns
    {"ok", "reason", "metric", "diff", "ci_low", "ci_high", "n", "min_questions", "needed", "run", "report",
    "run_id", "against"}: `needed` the questions the gate needs when it refused for too few (`n` those it had; else
    None), `run` the evaluation a refusal tells to run, {"domain", "arms"} (run_command words it; else None)."""
    promoted = [c for c in registry.versions(card.domain) if c.promoted and c.version != card.version]
    against = promoted[0].name if promoted else "base"
    what = f"the promoted version {against}" if promoted else "the base model (base)"
    decision: dict[str, Any] = {
        "ok": False,
        "reason": "",
        "metric": metric,
        "diff": None,
        "ci_low": None,
        "ci_high": None,
        "n": None,
        "min_questions": min_questions,
        "needed": None,
        "run": None,
        "report": None,
        "run_id": None,
        "against": against,
    }
    run = {"domain": card.domain, "arms": f"{against},{card.name}"}
    run_hint = run_command(**run)
    reports = [
        r
        for r in card.reports
        if r.get("kind", "ab") == "ab" and isinstance(r.get("vs"), dict) and r.get("domain", card.domain) == card.domain
    ]
    if not reports:
        decision["reason"] = f"{card.name} has no evaluation report on domain '{card.domain}'; {run_hint}"
        decision["run"] = run
        return decision
    matching = [r for r in reports if against in r["vs"]]
    if not matching:
        seen = sorted({k for r in reports for k in r["vs"]})
        decision["run"] = run
        decision["reason"] = (
            f"no report of {card.name} compares it with {what}; its reports compare it with "
            f"{', '.join(seen) or 'nothing'}; {run_hint}"
        )
        return decision
    rep = matching[-1]
    decision.update(report=rep.get("report_html") or rep.get("report_json"), run_id=rep.get("run_id"))
    cmp = rep["vs"][against].get(metric)
    if not cmp or cmp.get("diff") is None or cmp.get("ci_low") is None:
        have = ", ".join(sorted(rep["vs"][against])) or "none"
        decision["run"] = run
        decision["reason"] = (
            f"report {rep.get('run_id')} has no '{metric}' comparison with {against} (it has: {have}); {run_hint}"
        )
        return decision
    diff, lo, hi, n = cmp["diff"], cmp["ci_low"], cmp["ci_high"], cmp.get("n")
    # the report's own minimum too: a report that called itself inconclusive never passes the gate
    min_questions = max(min_questions, int(rep.get("min_questions") or 0))
    decision.update(diff=diff, ci_low=lo, ci_high=hi, n=n, min_questions=min_questions)
    numbers = (
        f"{card.name} − {against} on {metric}: {diff:+.4f}, 95% CI [{lo:+.4f}, {hi:+.4f}], n={n} (report "
        f"{rep.get('run_id')})"
    )
    if not isinstance(n, int) or n < min_questions:
        decision.update(needed=min_questions, run=run)
        decision["reason"] = (
            f"too few questions: n={n}, the gate needs at least {min_questions} (eval.min_questions): {numbers}; "
            f"{run_hint} on a test set of at least {min_questions} questions"
        )
    elif lo > 0:
        decision.update(ok=True, reason=f"beats {what}: {numbers}")
    elif hi < 0:
        decision["reason"] = f"worse than {what}: {numbers}"
    else:
        decision["reason"] = f"no evidence it beats {what}, the CI includes zero: {numbers}"
    return decision
