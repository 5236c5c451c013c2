"""`lorag adapters ...`: list, show, promote, import, remove and export adapter versions; print the engine command
line that serves them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ui.cli_state import app_client, domain_option, new_console, release_worker, state

adapters_app = typer.Typer(no_args_is_help=True, help="List, inspect, promote and remove adapters.")


@adapters_app.command("list")
def adapters_list(as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON.")) -> None:
    """Every adapter version with its base, metrics, promotion and staleness."""
    from rich.table import Table

    from services.adapters import adapter_rows

    remote = app_client()
    rows = remote.adapters() if remote is not None else adapter_rows(state.components)
    rows = [{k: v for k, v in r.items() if k != "promotion"} for r in rows]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no adapters yet: lorag synth --domain D && lorag train --domain D")
        return
    # short cells so the table fits 80 columns (a name up to 15 characters on one line, a longer one folds);
    # `adapters show NAME` has the base model, the paths, and each evaluation's run id and report
    t = Table("name", "state", "train\nloss", "held-out\nloss", "created", "last eval")
    t.columns[0].overflow = "fold"
    for column in t.columns[1:5]:
        column.no_wrap = True
    t.columns[5].overflow, t.columns[5].min_width = "fold", 16  # when it ran; a run id of another form folds
    for r in rows:
        t.add_row(
            r["name"],
            "\n".join(w for w, on in (("served", r["promoted"]), ("forced", r["forced"]), ("STALE", r["stale"])) if on),
            _fmt(r["train_loss"]),
            _fmt(r["eval_loss"]),
            (r["created_at"] or "")[:10],
            run_time(r["last_run"]),
        )
    new_console().print(t)


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "-"


def run_time(run_id: Optional[str]) -> str:
    """When an evaluation ran, from its run id (`20261207-162338-handbook`: '2026-12-07 16:23'); another id as it
    is; '-' for none."""
    import re

    m = re.match(r"(\d{4})(\d{2})(\d{2})[-T](\d{2})(\d{2})\d{2}(?:\D|$)", run_id or "")
    if m is None:
        return str(run_id or "-")
    year, month, day, hour, minute = m.groups()
    return f"{year}-{month}-{day} {hour}:{minute}"


@adapters_app.command("show")
def adapters_show(
    name: str = typer.Argument(
        ..., metavar="NAME", help="An adapter version (handbook-v2), or a domain for its promoted one."
    ),
    as_json: bool = typer.Option(False, "--json", help="The whole card as JSON."),
) -> None:
    """The adapter's card: lineage, hyperparameters, metrics, reports."""
    from assistant.registry import AdapterCard, card_json, is_stale
    from assistant.store.base import corpus_fingerprint
    from services.adapters import card_view

    remote = app_client()
    if remote is not None:
        card = AdapterCard(**remote.adapter(name))
        stale = next((r["stale"] for r in remote.adapters() if r["name"] == card.name), None)
        typer.echo(card_json(card) if as_json else card_view(state.settings, card, stale))
        return
    comps = state.components
    card = comps.registry.get(name)
    if as_json:
        typer.echo(card_json(card))
        return
    fp = corpus_fingerprint(comps.store, card.domain) if comps.store.has_domain(card.domain) else None
    typer.echo(card_view(comps.settings, card, is_stale(card, fp)))
    typer.echo(f"  folder         {comps.registry.folder(card)}  (lorag adapters show {name} --json: the whole card)")


@adapters_app.command("promote")
def adapters_promote(
    name: str = typer.Argument(..., metavar="NAME", help="The adapter version to serve for its domain."),
    force: bool = typer.Option(False, "--force", help="Promote even if the gate refuses (recorded on the card)."),
) -> None:
    """Make this version the one served for its domain — only if its latest A/B report beats the current one, over at
    least eval.min_questions questions."""
    from services.adapters import promote_with_line

    remote = app_client()
    if remote is not None:  # the app promotes, and serves it at once
        typer.echo(remote.promote(name, force))
        return
    typer.echo(promote_with_line(state.components, name, force=force)[1])


@adapters_app.command("import")
def adapters_import(
    folder: Path = typer.Argument(
        ..., metavar="FOLDER", help="A PEFT LoRA folder trained elsewhere (e.g. `lorag train` on a GPU box)."
    ),
    domain: str = typer.Option(..., "--domain", "-d", help="Domain it serves.", callback=domain_option),
    data: Optional[Path] = typer.Option(
        None, "--data", help="The training JSONL it was trained on (default: the domain's train.jsonl)."
    ),
    as_json: bool = typer.Option(False, "--json", help="The registered card as JSON."),
) -> None:
    """Register an adapter trained elsewhere: checked against the base model, then versioned like a local one."""
    from services.adapters import has_heldout, import_adapter

    settings = state.settings
    release_worker("it would not serve the new adapter")
    card = import_adapter(state.components, folder, domain, data=data)
    if as_json:
        from assistant.registry import card_json

        typer.echo(card_json(card))
        return
    loss = card.metrics.get("eval_loss")
    typer.echo(
        f"registered {card.name} from {folder}"
        + (f" (held-out loss {loss:.4f})" if isinstance(loss, (int, float)) else "")
    )
    if not card.data_hash or not card.corpus_fingerprint:
        typer.echo(
            "note: its training data is not this domain's current training set, so its lineage is partial (shown STALE)"
        )
    from assistant.registry import eval_command

    typer.echo(
        f"next: `{eval_command(domain, card.name, has_heldout(settings, domain))}` compares it with the base "
        f"model; `lorag adapters promote {card.name}` serves it"
    )


@adapters_app.command("rm")
def adapters_rm(
    name: str = typer.Argument(..., metavar="NAME", help="The adapter version to delete."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Remove it even if it is the promoted version."),
) -> None:
    """Delete an adapter version."""
    from services.adapters import remove

    release_worker("it may serve this adapter")
    card, run = remove(state.components, name, even_promoted=yes)
    typer.echo(f"removed {card.name}" + (f" and its training run folder {run}" if run is not None else ""))


@adapters_app.command("export")
def adapters_export(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The adapter: <domain>-v<N>, or <domain> for its promoted version."
    ),
    fmt: str = typer.Option(
        ...,
        "--format",
        "-f",
        help="peft (the PEFT folder as is), merged (base + adapter in one "
        "model, served without LoRA support) or gguf (a GGUF LoRA for llama.cpp and Ollama).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="A new or empty folder to write to."),
    gguf_type: str = typer.Option("f32", "--gguf-type", help="GGUF tensor type: f32 (exact) or f16 (half the size)."),
    as_json: bool = typer.Option(False, "--json", help="The export record (also written to the card) as JSON."),
) -> None:
    """Export an adapter for an engine, check it loaded back against the unmerged adapter, record it on the card."""
    from assistant.registry import export_check_text
    from services.adapters import export

    say = (lambda _m: None) if as_json else (lambda m: typer.echo(m, err=True))
    card, record = export(state.components, name, fmt, out, gguf_type=gguf_type, progress=say)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        return
    typer.echo(f"exported {card.name} as {fmt} to {record.get('file') or record['path']} in {record['seconds']:.0f} s")
    typer.echo(f"  {export_check_text(record)}")
    lc = record.get("check_llama_cpp")
    if lc and lc.get("skipped"):
        typer.echo(f"  not checked in llama.cpp: {lc['skipped']}")
    hints = {
        "peft": f"vLLM: --enable-lora --lora-modules {card.name}={record['path']}",
        "merged": f"any engine: vllm serve {record['path']}  (or transformers, TGI, SGLang: a plain model folder)",
        "gguf": f"llama.cpp: llama-server -m BASE.gguf --lora {record.get('file')}   "
        f"(`lorag adapters serve-config --engine llamacpp` prints the whole command)",
    }
    typer.echo(f"serve it: {hints[fmt]}")


@adapters_app.command("serve-config")
def adapters_serve_config(
    engine: str = typer.Option(..., "--engine", "-e", help="vllm, llamacpp or ollama."),
    adapter: Optional[list[str]] = typer.Option(
        None,
        "--adapter",
        "-a",
        help="Also serve this version (repeatable; e.g. the arms of an A/B test). Default: every promoted adapter.",
    ),
    base_gguf: Optional[Path] = typer.Option(
        None,
        "--base-gguf",
        help="The base model's GGUF file for llamacpp/ollama "
        "(default: the built-in model's, or models.generator when it is a .gguf).",
    ),
    port: Optional[int] = typer.Option(
        None, "--port", help="The engine's port (default: 8000 vLLM, 8080 llama.cpp, 11434 Ollama)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Commands, files and settings as JSON."),
) -> None:
    """Print the command line (or Modelfiles) serving the base model with each promoted adapter, and lorag settings."""
    from finetune.serve_config import build

    comps = state.components
    cfg = build(
        engine,
        settings=comps.settings,
        registry=comps.registry,
        model_cache=comps.model_cache,
        names=adapter,
        base_gguf=base_gguf,
        port=port,
    )
    typer.echo(json.dumps(cfg.to_dict(), indent=2) if as_json else cfg.text())
