"""`lorag synth` and `lorag train`: a domain's training set, then a versioned adapter trained on it (here, or
through a running app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ui.cli_state import app_client, domain_option, new_console, run_in_app, state, upload_text


def synth_cmd(
    domain: str = typer.Option(
        ..., "--domain", "-d", help="Domain whose chunks the questions come from.", callback=domain_option
    ),
    qa: Optional[Path] = typer.Option(None, "--qa", help="Curated Q&A JSONL (question, answer, sources) to include."),
    config: Optional[Path] = typer.Option(
        None,
        "--config",
        help="Recipe YAML (default: <domain>.yaml in <data_dir>/recipes/, else in finetune/configs/).",
    ),
    max_chunks: Optional[int] = typer.Option(None, "--max-chunks", min=1, help="Override synth.max_chunks."),
    writer: Optional[str] = typer.Option(
        None,
        "--writer",
        help="Override synth.writer: auto, or section, sentence, teacher, answer_first, cloze joined by + (e.g. "
        "teacher+section).",
    ),
    teacher: Optional[str] = typer.Option(
        None,
        "--teacher",
        help="Override synth.teacher: the model that writes questions (built-in name, HF id, folder, or the "
        "name an endpoint serves).",
    ),
    teacher_url: Optional[str] = typer.Option(
        None,
        "--teacher-url",
        help="Override synth.teacher_url: an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.",
    ),
    preview: int = typer.Option(
        0, "--preview", min=0, help="Print this many random kept pairs with their source, to read before training."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the build summary (with the data report) as JSON."),
) -> None:
    """Build the domain's training set: synthetic RAFT-style Q&A from the index + curated Q&A, fixed held-out split."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from finetune.data_report import preview as pick_preview
    from finetune.data_report import report_lines
    from services.adapters import synth_recipe, synthesize

    remote = app_client(through_worker=False)  # a long job: in the foreground unless a `lorag ui` app holds the store
    if remote is not None:  # the app makes the data, as its Adapters tab does
        job = run_in_app(
            remote,
            "synth",
            {
                "--config": config,
                "--teacher": teacher,
                "--teacher-url": teacher_url,
                "--preview": preview,
                "--json": as_json,
            },
            domain=domain,
            writer=writer,
            max_chunks=max_chunks,
            qa_jsonl=upload_text(qa, "Q&A file"),
            qa_name=str(qa) if qa else None,
        )
        folder = (job.get("result") or {}).get("folder")
        if folder:  # where the app wrote the files, as a run here says
            typer.echo(f"written to {folder}")
        return
    comps = state.components
    cfg = synth_recipe(
        comps.settings,
        domain,
        config=config,
        max_chunks=max_chunks,
        writer=writer,
        teacher=teacher,
        teacher_url=teacher_url,
    )
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), transient=True, disable=as_json
    ) as progress:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        summary = synthesize(comps, cfg, qa=qa, progress=on_progress)
    out = Path(summary.pop("folder"))
    summary.pop("domain")
    picked = pick_preview(_read_pairs(out / "synthetic.jsonl"), preview, seed=cfg.synth.seed) if preview else []
    if as_json:
        typer.echo(json.dumps({**summary, "preview": picked}, indent=2, default=str))
        return
    c = new_console()
    s = summary["synthetic"]
    c.print(
        f"[bold]{domain}[/]: {summary['train_examples']} training examples "
        f"({summary['with_oracle']} with the oracle passage, {summary['without_oracle']} without"
        + (f", {summary['general_rows']} general" if summary.get("general_rows") else "")
        + f"), {summary['heldout']} held-out questions ({summary['heldout_from']})"
    )
    if not summary["heldout"]:
        c.print(
            "[yellow]warning[/]: no held-out questions (the pairs come from one document, and there is no curated "
            f"--qa): `lorag eval --domain {domain}` will need --testset FILE.jsonl; add documents or curated Q&A"
        )
    if summary.get("excluded_chunks"):
        c.print(f"excluded: {summary['excluded_chunks']} chunks of documents matching synth.exclude_sources")
    for pat in summary.get("exclude_patterns_matching_nothing", []):
        c.print(
            f"[yellow]warning[/]: synth.exclude_sources pattern {pat!r} matches no document "
            "(patterns match paths as `lorag docs list` shows them)"
        )
    c.print(
        f"synthetic: {s['kept']} pairs kept from {s['chunks']} chunks ({s['candidates']} candidates)"
        + (f", teacher {s['teacher']}" if s.get("teacher") else "")
    )
    for line in report_lines(summary["report"]):
        c.print("  " + line, markup=False)
    c.print("dropped (a candidate may be dropped by one filter; a chunk may try several writers):")
    for reason, n in sorted({**s["dropped"], **summary["dropped"]}.items(), key=lambda x: -x[1]):
        c.print(f"  {n:5d}  {reason}", markup=False)
    for note in s.get("notes", []):
        c.print(f"  note: {note}", markup=False)
    for p in picked:
        c.print(
            f"\n[bold]Q[/] {p['question']}\n[bold]A[/] {p['answer']}\n  [dim]{p['source']} · {p['writer']} · "
            f"{p['type']}[/]"
        )
    c.print(f"written to {out}")


def _read_pairs(path: Path) -> list[Any]:
    from types import SimpleNamespace

    if not path.is_file():
        return []
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [SimpleNamespace(**{"qtype": "other", **r}) for r in rows]


def _print_recipe_keys(value: bool) -> None:
    """--keys: every recipe key with its default and help text, then exit (no --domain needed)."""
    if not value:
        return
    import yaml

    from finetune.config import recipe_keys

    for key, default, help_text in recipe_keys():  # defaults as a recipe YAML spells them (null, true), not Python
        spelled = yaml.safe_dump(default, default_flow_style=True, width=10**6).removesuffix("\n...\n").strip()
        typer.echo(f"{key}: {spelled}\n    {help_text}")
    typer.echo(
        "\nset them in a recipe YAML (`lorag train --domain D --config FILE.yaml`), a key with a dot under its "
        "section (synth:\n  max_chunks: 100); a domain's own recipe is <data_dir>/recipes/<domain>.yaml, read "
        "before the "
        "shipped ones in finetune/configs/<domain>.yaml"
    )
    raise typer.Exit()


def train_cmd(
    domain: str = typer.Option(
        ...,
        "--domain",
        "-d",
        help="Domain to train for (its training set comes from `lorag synth`).",
        callback=domain_option,
    ),
    config: Optional[Path] = typer.Option(
        None,
        "--config",
        help="Recipe YAML (default: <domain>.yaml in <data_dir>/recipes/, else in finetune/configs/, else the "
        "defaults; `--keys` lists every key).",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the last interrupted run from its checkpoint."),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", min=1, help="Stop after N optimizer steps (quick runs)."
    ),
    epochs: Optional[float] = typer.Option(
        None, "--epochs", min=0.01, help="Passes over the training set (recipe's by default)."
    ),
    gpus: Optional[int] = typer.Option(
        None,
        "--gpus",
        min=1,
        help="Train on N GPUs of this host (N processes through "
        "accelerate launch, DDP; the recipe's `gpus` by default, 1). batch_size is the "
        "global batch, split evenly over them.",
    ),
    keys: bool = typer.Option(
        False,
        "--keys",
        is_eager=True,
        callback=_print_recipe_keys,
        help="List every recipe key with its default and help text, then exit.",
    ),
) -> None:
    """Train a LoRA (CPU) / QLoRA (CUDA) adapter on the domain's training set and register it as a new version."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from finetune.runtime import describe_runtime
    from services.adapters import train, train_recipe

    remote = app_client(through_worker=False)  # a long job: in the foreground unless a `lorag ui` app holds the store
    if remote is not None:  # the app trains, as its Adapters tab does; the loss is in its log
        run_in_app(
            remote,
            "train",
            {"--config": config, "--epochs": epochs, "--gpus": gpus},
            domain=domain,
            max_steps=max_steps,
            resume=resume,
        )
        return
    comps = state.components
    cfg = train_recipe(
        comps.settings, domain, config=config, max_steps=max_steps, epochs=epochs, resume=resume, gpus=gpus
    )
    from rich.progress import TimeRemainingColumn

    with Progress(
        TextColumn("[bold]train[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=new_console(stderr=True),
    ) as progress:
        task = progress.add_task("starting", total=None)
        seen: dict[str, Any] = {}

        def on_log(entry: dict[str, Any]) -> None:
            import time

            if "step" not in entry:  # a stage before the first step: loading the base model, tokenizing the rows
                progress.update(task, description=str(entry.get("stage", "")))
                return
            now, tokens = time.perf_counter(), entry.get("num_input_tokens_seen")
            if "loss" in entry:
                seen["loss"] = entry["loss"]
            if "eval_loss" in entry:
                seen["eval_loss"] = entry["eval_loss"]
            parts = [f"{k.replace('_', ' ')} {seen[k]:.4f}" for k in ("loss", "eval_loss") if k in seen]
            if isinstance(tokens, (int, float)):
                if "t0" in seen and now > seen["t0"]:
                    parts.append(f"{(tokens - seen['tokens0']) / (now - seen['t0']):,.0f} tokens/s")
                else:
                    seen.update(t0=now, tokens0=tokens)
            progress.update(task, completed=entry["step"], total=entry["max_steps"], description=" · ".join(parts))

        try:
            card = train(comps, cfg, resume=resume, on_log=on_log)
        except KeyboardInterrupt:
            progress.stop()
            typer.echo(
                f"interrupted: `lorag train --domain {domain} --resume` continues it from its last checkpoint "
                f"(saved every {cfg.save_steps} steps; from the start if none was saved yet)",
                err=True,
            )
            raise
    m = card.metrics
    new_console().print(
        f"[green]registered {card.name}[/]  train loss {m['train_loss']:.4f}"
        + (f"  held-out loss {m['eval_loss']:.4f}" if m.get("eval_loss") is not None else "")
        + f"  {m['steps']} step{'s' if m['steps'] != 1 else ''} in {m['train_seconds']:.0f}s"
    )
    typer.echo("  " + describe_runtime(m, card.hyperparameters))
    typer.echo(f'try it:    lorag ask "..." --domain {card.domain} --adapter {card.name}')
    from assistant.registry import eval_command

    typer.echo(f"evaluate:  {eval_command(card.domain, card.name, bool(m.get('eval_rows')))}")
    typer.echo(
        f"then:      lorag adapters promote {card.name}   (served by default once its report beats the current one)"
    )
