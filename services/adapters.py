"""Adapter actions: make training data, train, import, export, remove, list, show, promote through the gate.

Each takes the `Components` (settings and backends) and returns plain results; the faces print or show them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

from assistant.errors import LoragError
from services.recipes import card_gate_metric, load_recipe


# -- training data and training -------------------------------------------------------------------
def synth_recipe(settings: Any, domain: str, *, config: Path | None = None, **synth: Any) -> Any:
    """The recipe a synth run uses: the domain's (or `config`), with the given synth settings over it
    (a None: the recipe's)."""
    return load_recipe(settings, domain, config, {"synth": {k: v for k, v in synth.items() if v is not None}})


def synthesize(
    comps: Any,
    cfg: Any,
    *,
    qa: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    count_tokens: Callable[[list[dict[str, str]]], int] | None = None,
) -> dict[str, Any]:
    """Build the domain's training set (synthetic RAFT pairs from its chunks + the curated `qa`, a fixed held-out
    split). Only the Q&A file given is read: nothing is picked up from the working directory."""
    from finetune.jobs import build_training_set, dataset_dir

    summary = build_training_set(
        cfg,
        settings=comps.settings,
        store=comps.store,
        retriever=comps.retriever,
        served_generator=lambda: comps.generator,
        model_cache=comps.model_cache,
        qa=qa,
        progress=progress,
        count_tokens=count_tokens,
    )
    return {"domain": cfg.domain, "folder": str(dataset_dir(comps.settings, cfg.domain)), **summary}


def train_recipe(
    settings: Any,
    domain: str,
    *,
    config: Path | None = None,
    max_steps: int | None = None,
    epochs: float | None = None,
    resume: bool = False,
    gpus: int | None = None,
) -> Any:
    """The recipe a training run uses; a resumed run keeps the settings it started with, so it takes no others."""
    if resume and (config or max_steps or epochs or gpus):
        raise LoragError(
            "--resume continues the interrupted run with the settings it started with (its GPU count too)",
            hint="drop --config/--max-steps/--epochs/--gpus, or start a new run without --resume",
        )
    overrides: dict[str, Any] = {}
    if max_steps:
        overrides["max_steps"] = int(max_steps)
    if epochs:
        overrides["epochs"] = epochs
    if gpus:
        overrides["gpus"] = gpus
    return load_recipe(settings, domain, config, overrides)


def train(
    comps: Any,
    cfg: Any,
    *,
    resume: bool = False,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    train_fn: Callable[..., Any] | None = None,
) -> Any:
    """Train an adapter on the domain's training set and register it as a new version; returns its card.
    `train_fn` stands in for finetune.jobs.train_domain (tests)."""
    if train_fn is None:
        from finetune.jobs import train_domain as train_fn
    return train_fn(
        cfg,
        settings=comps.settings,
        store=comps.store,
        registry=comps.registry,
        model_cache=comps.model_cache,
        resume=resume,
        on_log=on_log,
    )


# -- the registry ---------------------------------------------------------------------------------
def import_adapter(comps: Any, folder: Path, domain: str, *, data: Path | None = None) -> Any:
    """Register an adapter trained elsewhere: checked against the base model, versioned like a local one."""
    from assistant.retrieval import resolve_domains
    from assistant.store.base import corpus_fingerprint
    from finetune.importing import import_adapter as register
    from finetune.jobs import run_versions

    settings = comps.settings
    resolve_domains(comps.store, domain)  # the domain must be indexed: an adapter serves a domain's questions
    base = settings.models.generator
    return register(
        folder,
        domain,
        registry=comps.registry,
        base_model=base,
        model_path=comps.model_cache.resolve(base),
        datasets_dir=settings.datasets_dir,
        data_file=data,
        corpus_fingerprint=corpus_fingerprint(comps.store, domain),
        taken_versions=run_versions(settings, domain),
    )


def export(
    comps: Any, name: str, fmt: str, out: Path, *, gguf_type: str = "f32", progress: Callable[[str], None] | None = None
) -> tuple[Any, dict[str, Any]]:
    """Export an adapter (peft, merged or gguf), checked by loading it back; the record goes on the card."""
    from assistant.models.loading import pick_device
    from finetune.export import export_adapter, llama_cpp_base

    card = comps.registry.get(name)
    base_gguf = llama_cpp_base(card, comps.model_cache) if fmt == "gguf" else None
    record = export_adapter(
        comps.registry,
        card.name,
        fmt,
        out,
        resolve=comps.model_cache.resolve,
        device=pick_device(comps.settings.models.device),
        gguf_dtype=gguf_type,
        base_gguf=base_gguf,
        progress=progress or (lambda _m: None),
    )
    return card, record


def remove(comps: Any, name: str, *, even_promoted: bool = False) -> tuple[Any, Path | None]:
    """Delete an adapter version and its finished training run's folder; returns (card, that folder or None)."""
    from finetune.jobs import finished_run

    card = comps.registry.get(name)
    if card.promoted and not even_promoted:
        raise LoragError(
            f"{card.name} is the promoted version of '{card.domain}'", hint="pass --yes to remove it anyway"
        )
    run = finished_run(comps.settings, card)
    comps.registry.remove(card.name)
    if run is not None:  # its checkpoints and logs: nothing resumes a finished run
        shutil.rmtree(run, ignore_errors=True)
    return card, run


def adapter_rows(comps: Any) -> list[dict[str, Any]]:
    """The registry as rows: name, domain, base, promoted (and forced: past the gate's refusal), stale, losses,
    created, last report, the promotion in words."""
    from assistant.registry import is_stale, promotion_text
    from assistant.store.base import corpus_fingerprint

    cards = comps.registry.all()
    store = comps.store
    fps = {d: corpus_fingerprint(store, d) if store.has_domain(d) else None for d in {c.domain for c in cards}}
    rows = []
    for c in cards:
        last = c.reports[-1] if c.reports else {}
        rows.append(
            {
                "name": c.name,
                "domain": c.domain,
                "base_model": c.base_model,
                "promoted": c.promoted,
                "forced": c.promoted and bool(c.promotion.get("forced")),
                "stale": is_stale(c, fps[c.domain]),
                "train_loss": c.metrics.get("train_loss"),
                "eval_loss": c.metrics.get("eval_loss"),
                "created_at": c.created_at,
                "last_report": last.get("report") or last.get("html"),
                "last_run": last.get("run_id"),
                "promotion": promotion_text(c.promotion) if c.promoted else "",
            }
        )
    return rows


def heldout_count(settings: Any, domain: str) -> int:
    """The questions of the domain's held-out split, which `lorag eval` defaults to (its non-empty lines; 0: none)."""
    from assistant.names import check_domain
    from eval.testset import HELDOUT_NAME

    path = Path(settings.datasets_dir) / check_domain(domain) / HELDOUT_NAME
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def has_heldout(settings: Any, domain: str) -> bool:
    """Whether the domain has a non-empty held-out split for `lorag eval` to default to."""
    return heldout_count(settings, domain) > 0


def card_view(settings: Any, card: Any, stale: bool | None) -> str:
    """The card for people, its evaluations shown on the metric its gate uses."""
    from assistant.registry import card_text

    return card_text(
        card, stale=stale, gate_metric=card_gate_metric(settings, card), heldout=has_heldout(settings, card.domain)
    )


# -- promotion ------------------------------------------------------------------------------------


def promote_with_line(comps: Any, name: str, *, force: bool = False, face: str = "cli") -> tuple[Any, str, bool]:
    """`promote`, and the line the CLI, the API and the Adapters tab show for it, and whether anything changed (an
    adapter that is already its domain's promoted one stays so, without the gate being asked again)."""
    card = comps.registry.get(name)
    if card.promoted:
        return card, f"{card.name} is already the promoted adapter for '{card.domain}': nothing changed", False
    card = promote(comps, name, force=force, face=face)
    note = " (forced; recorded on the card)" if card.promotion.get("forced") else ""
    return card, f"promoted {card.name}{note}: {card.promotion.get('reason', '')}", True


def promote(comps: Any, name: str, *, force: bool = False, face: str = "cli") -> Any:
    """Promote through the A/B gate, on the gate metric of the recipe the adapter was trained with (its card), over
    at least eval.min_questions questions; `force` promotes anyway, recorded on the card. A refusal says what to do
    in the face that asked: the CLI's commands, or the web app's tab and checkbox. An adapter that is already
    its domain's promoted one is returned as it is, without asking the gate again."""
    reg = comps.registry
    card = reg.get(name)
    if card.promoted:  # already served for its domain: nothing to decide, and the gate is not asked again
        return card
    try:
        from eval.gate import promotion_gate, run_command
    except ImportError:  # evaluation not installed: only force can promote
        promotion_gate = None  # type: ignore[assignment]

    decision: dict[str, Any] = {}  # the gate's, for a refusal to be told from

    def gate(card: Any) -> dict[str, Any]:
        if promotion_gate is None:
            return {"ok": False, "reason": "the evaluation package is not available to check this adapter"}
        settings = comps.settings
        decision.update(
            promotion_gate(card, reg, card_gate_metric(settings, card), min_questions=settings.eval.min_questions)
        )
        return decision

    try:
        return reg.promote(name, force=force, gate=gate)
    except LoragError as e:
        text = str(e.args[0])
        # the evaluation the refusal names ({"domain", "arms"}), and the questions the gate needs when it had too few
        run, needed = decision.get("run"), decision.get("needed")
        held = heldout_count(comps.settings, run["domain"]) if run else 0
        # the held-out split the evaluation defaults to does for the gate: it exists, and holds the questions needed
        heldout = run is None or (held > 0 and (needed is None or held >= needed))
        questions = f"{held} question{'' if held == 1 else 's'}, fewer than the gate needs"
        command = run_command(**run) if run else ""  # as the gate's reason words it
        if face == "cli":
            if heldout:
                raise
            text = text.replace(command, run_command(**run, testset="FILE.jsonl"))
            why = (
                f"the held-out split the command defaults to has {questions}"
                if held
                else "the domain has no held-out questions (synth held none out) for the command to default to"
            )
            raise LoragError(text, hint=why + (f"; {e.hint}" if e.hint else "")) from None
        why = f"the domain's held-out split has {questions}" if held else "the domain has no held-out questions"
        if run:
            text = text.replace(command, f"run an A/B evaluation with arms {run['arms']} in the Evaluation tab")
        text += "" if heldout else f" ({why}{'' if held else ' (synth held none out)'}: choose a test set there)"
        raise LoragError(text, hint="or tick Force to promote it anyway (recorded on the card)") from None
