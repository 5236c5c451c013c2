"""Whole jobs behind the CLI and UI: build a domain's training set; train and register an adapter."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from assistant.errors import LoragError
from assistant.models.cache import ModelCache
from assistant.names import check_domain
from assistant.qa import file_sha256
from assistant.registry import AdapterCard, Registry, now
from assistant.settings import Settings
from assistant.store import Store
from assistant.store.base import corpus_fingerprint
from finetune.config import TrainConfig


def dataset_dir(settings: Settings, domain: str) -> Path:
    return settings.datasets_dir / check_domain(domain)


def run_root(settings: Settings, domain: str) -> Path:
    return settings.paths.data_dir / "runs" / check_domain(domain)


def finished_run(settings: Settings, card: AdapterCard) -> Path | None:
    """The finished training run (checkpoints, logs) that produced this adapter version, if it is here."""
    if card.hyperparameters.get("imported_from"):
        return None
    run = run_root(settings, card.domain) / f"v{card.version}"
    return run if (run / "DONE").is_file() else None


def run_versions(settings: Settings, domain: str) -> list[int]:
    """Version numbers taken by training run folders (an interrupted run registers under its own later)."""
    return [int(p.name[1:]) for p in run_root(settings, domain).glob("v*") if p.name[1:].isdigit()]


def _pick_version(registry: Registry, runs: Path, domain: str, resume: bool) -> tuple[int, Path]:
    unfinished = sorted(
        (p for p in runs.glob("v*") if p.name[1:].isdigit() and not (p / "DONE").exists()),
        key=lambda p: int(p.name[1:]),
    )
    if resume:
        if not unfinished:
            raise LoragError(f"no interrupted training run of '{domain}' to resume", hint="start one without --resume")
        return int(unfinished[-1].name[1:]), unfinished[-1]
    used = [registry.next_folder(domain)[0] - 1] + [int(p.name[1:]) for p in runs.glob("v*") if p.name[1:].isdigit()]
    version = max(used + [0]) + 1
    return version, runs / f"v{version}"


def with_data_settings(hyperparameters: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """A card's hyperparameters with the synth settings that built the training data (from the
    dataset's build.json, so `lorag synth --writer X` shows as X), not the recipe's."""
    try:
        made_by = json.loads((data_dir / "build.json").read_text(encoding="utf-8")).get("synth_config")
    except (OSError, ValueError):
        made_by = None
    return {**hyperparameters, "synth": made_by} if isinstance(made_by, dict) else hyperparameters


def recorded_config(run_dir: Path) -> TrainConfig | None:
    """The settings an interrupted run started with (its job.json): --resume continues with them."""
    job = run_dir / "job.json"
    if not job.is_file():
        return None
    try:
        return TrainConfig(**json.loads(job.read_text(encoding="utf-8"))["config"])
    except (LoragError, ValueError, KeyError, TypeError) as e:  # a ConfigError (a LoragError) lists the bad values
        raise LoragError(
            f"{job}: the interrupted run's settings cannot be read ({e})", hint="start a new run without --resume"
        ) from e


def train_domain(
    cfg: TrainConfig,
    *,
    settings: Settings,
    store: Store,
    registry: Registry,
    model_cache: ModelCache,
    resume: bool = False,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    trainer_overrides: dict[str, Any] | None = None,
) -> AdapterCard:
    data = dataset_dir(settings, cfg.domain)  # checked before the heavy imports: a missing set fails at once
    train_file = data / "train.jsonl"
    if not train_file.is_file():
        domains = store.domains()
        if cfg.domain not in domains:  # synth would fail too: the domain has nothing indexed
            known = ", ".join(domains) or "none yet"
            raise LoragError(
                f"unknown domain '{cfg.domain}': nothing is indexed under it, so there is no training data",
                hint=f"known domains: {known}; `lorag ingest PATH --domain {cfg.domain}`, then `lorag synth`",
            )
        raise LoragError(
            f"no training data for '{cfg.domain}' ({train_file})", hint=f"run `lorag synth --domain {cfg.domain}` first"
        )
    from transformers import AutoConfig

    from assistant.adapters import base_fingerprint
    from assistant.models.loading import pick_device
    from finetune.launch import train_run

    runs = run_root(settings, cfg.domain)
    version, run_dir = _pick_version(registry, runs, cfg.domain, resume)
    recorded = recorded_config(run_dir) if resume else None
    cfg = recorded or cfg  # a resumed run keeps the recipe, steps and batch it started with
    base = cfg.base_model or settings.models.generator
    model_path = model_cache.resolve(base)
    fingerprint = base_fingerprint(AutoConfig.from_pretrained(model_path))
    run_dir.mkdir(parents=True, exist_ok=True)
    if recorded is None:
        (run_dir / "job.json").write_text(
            json.dumps(
                {"domain": cfg.domain, "version": version, "started_at": now(), "config": cfg.to_dict()}, indent=2
            )
        )
    device = pick_device(settings.models.device)
    try:
        result = train_run(  # cfg.gpus processes (finetune/launch.py); this process registers the adapter once
            cfg,
            model_path=model_path,
            train_file=train_file,
            eval_file=data / "heldout_examples.jsonl",
            run_dir=run_dir,
            device=device,
            resume=resume,
            on_log=on_log,
            trainer_overrides=trainer_overrides,
        )
    except Exception:  # (not Ctrl-C: that run may still be resumed, from the start)
        if not any(run_dir.glob("checkpoint-*")):  # a run that failed before any checkpoint: nothing to resume
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    card = AdapterCard(
        name=f"{cfg.domain}-v{version}",
        domain=cfg.domain,
        version=version,
        base_model=base,
        base_fingerprint=fingerprint,
        data_hash=file_sha256(train_file),
        corpus_fingerprint=corpus_fingerprint(store, cfg.domain) or "",
        hyperparameters=with_data_settings(result.hyperparameters, data),
        metrics=result.metrics,
        created_at=now(),
        train_seconds=result.metrics.get("train_seconds", 0.0),
    )
    registry.register(result.adapter_dir, card)
    (run_dir / "DONE").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return card


def token_counter(model_path: str) -> Callable[[list[dict[str, str]]], int]:
    """Tokens of a chat (prompt + completion) with the tokenizer of the model to be trained, as the
    trainer counts them."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)

    def count(messages: list[dict[str, str]]) -> int:
        ids = tok.apply_chat_template(messages, tokenize=True)
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids)

    return count


def build_training_set(
    cfg: TrainConfig,
    *,
    settings: Settings,
    store: Store,
    retriever: Any,
    served_generator: Callable[[], Any],
    model_cache: ModelCache,
    qa: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    count_tokens: Callable[[list[dict[str, str]]], int] | None = None,
) -> dict[str, Any]:
    """`lorag synth` and the app's "Make training data": the teacher (when a writer needs a model),
    the trained model's tokenizer (rows built to fit max_seq_length), then the training set."""
    from assistant.retrieval import resolve_domains
    from finetune.raft import TrainingSetBuilder
    from finetune.synth import uses_model
    from finetune.teacher import load_teacher

    s = cfg.synth
    resolve_domains(store, cfg.domain)
    teacher = None
    if uses_model(s.writer, teacher_configured=bool(s.teacher or s.teacher_url)):
        teacher = load_teacher(
            s.teacher,
            s.teacher_url,
            api_key=s.teacher_api_key,
            concurrency=s.teacher_concurrency,
            model_cache=model_cache,
            model_settings=settings.models,
            served=None if (s.teacher or s.teacher_url) else served_generator(),
        )
    if count_tokens is None:
        count_tokens = token_counter(model_cache.resolve(cfg.base_model or settings.models.generator))
    builder = TrainingSetBuilder(
        store, retriever, teacher, cfg, dataset_dir(settings, cfg.domain), count_tokens=count_tokens
    )
    return builder.build(qa, progress=progress)
