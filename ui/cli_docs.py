"""`lorag ingest` and `lorag docs`: index documents into a domain (here, or through a running app), list and
remove them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from assistant.errors import LoragError
from ui.cli_state import app_client, domain_option, list_domain_option, new_console, plural, stage, state

docs_app = typer.Typer(no_args_is_help=True, help="List and remove indexed documents.")


def ingest_cmd(
    paths: list[Path] = typer.Argument(..., metavar="PATH", help="Files and folders (folders are read recursively)."),
    domain: str = typer.Option(
        ..., "--domain", "-d", help="Domain (collection) to index into.", callback=domain_option
    ),
    sync: bool = typer.Option(False, "--sync", help="Remove documents whose files are gone from the given folders."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Index documents (pdf, docx, html, md, rst, txt, csv, tsv, json) into a domain; unchanged files are skipped."""
    from assistant.names import check_domain
    from services.documents import check_ingest_paths

    check_domain(domain)
    check_ingest_paths(paths)  # a typo fails now, before any model loads
    from functools import partial

    check_embedder = partial(state.check_models, generator=False)  # found before the worker is stopped for ingest
    remote = app_client(through_worker=False, check=check_embedder)  # the worker would index uploaded copies
    if remote is not None:
        ingest_through_app(remote, paths, domain, sync, as_json)
        return
    from ui.cli_progress import IngestProgress

    comps = state.components
    with stage("loading the embedding model", not as_json):
        ingestor = comps.ingestor()
    with IngestProgress() as shown:  # on stderr: stdout keeps the report alone
        report = ingestor.run(
            paths, domain, sync=sync, progress=shown.file, chunk_progress=shown.chunks, throughput=shown.throughput
        )
    comps.close()
    results = [r.__dict__ for r in report.results]
    print_ingest(
        domain,
        report.counts(),
        results,
        report.skipped,
        report.chunks_written,
        report.seconds,
        as_json,
        report.backend or None,
    )
    if not report.ok:
        raise typer.Exit(1)


def print_ingest(
    domain: str,
    counts: dict[str, int],
    results: list[dict[str, Any]],
    skipped: list[str],
    chunks: int | None,
    seconds: float,
    as_json: bool,
    backend: str | None = None,
) -> None:
    """The report: `--json` as an object (`not_read`: the files of formats lorag does not read, which `counts` leaves
    out; `counts.skipped` counts the files left out on purpose, each in `results` with its reason), else a line per
    failed or skipped file, the counts, the documents --sync removed (named) and the files not read. `backend`: the
    label of what embedded the chunks (None: not known, e.g. an app that does not say)."""
    from services.documents import skipped_note

    if as_json:
        typer.echo(
            json.dumps(
                {
                    "domain": domain,
                    "counts": counts,
                    "seconds": round(seconds, 2),
                    "chunks_written": chunks,
                    "embedder_backend": backend,
                    "results": results,
                    "not_read": skipped,
                },
                indent=2,
            )
        )
        return
    console = new_console()
    for r in results:
        if r["status"] in ("failed", "skipped"):  # skipped: on purpose (over a limit, an empty file...)
            colour = "red" if r["status"] == "failed" else "yellow"
            console.print(f"[{colour}]{r['status']}[/] {r['path']}: ", end="")
            console.print(r["reason"], markup=False)
        for warning in r.get("warnings") or []:  # indexed, with something to check (a guessed encoding, CSV lines)
            console.print(f"[yellow]warning[/] {r['path']}: ", end="")
            console.print(warning, markup=False)
    c = counts
    console.print(
        f"domain [bold]{domain}[/]: added {c.get('added', 0)}, updated {c.get('updated', 0)}, unchanged "
        f"{c.get('unchanged', 0)}, "
        f"removed {c.get('removed', 0)}, failed {c.get('failed', 0)}, skipped {c.get('skipped', 0)}"
        + (f" — {plural(chunks, 'chunk')}" if chunks is not None else "")
        + f" in {seconds:.1f}s"
        + (f", embedded by {embedded_by(backend)}" if backend and chunks else "")
    )
    removed = [r.get("display") or r["path"] for r in results if r["status"] == "removed"]
    if removed:  # --sync: the documents whose files are gone from the folders given
        gone = "whose file is gone" if len(removed) == 1 else "whose files are gone"
        console.print(f"removed {plural(len(removed), 'document')} {gone}: {few(removed)}", markup=False)
    if skipped:
        console.print(skipped_note(skipped, state.settings.ingest.formats), markup=False)


def few(names: list[str], shown: int = 5) -> str:
    """'a.md, b.md, c.md': up to `shown` names, then 'and N more'."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def embedded_by(label: str) -> str:
    """A backend label in words: 'openvino-bf16 (openvino:cpu:bfloat16)', the setting that reproduces it first."""
    from assistant.models.backends import setting_of

    setting = setting_of(label)
    return label if setting == label else f"{setting} ({label})"


def ingest_through_app(remote: Any, paths: list[Path], domain: str, sync: bool, as_json: bool) -> None:
    """Have the running app ingest the files: where they are, when the app is this user's (its note's token: the
    same document ids and --sync as an ingest without the app), else uploaded (its Documents tab's ingest); then
    wait for its job."""
    import time

    from services.documents import files_to_send

    t0 = time.perf_counter()
    skipped: list[str] = []
    if remote.token:
        job = remote.ingest_paths(domain, paths, sync)
    else:
        if sync:
            raise LoragError(
                f"--sync needs the store itself, and the lorag app at {remote.url} holds it",
                hint="stop the app, or remove gone documents in its Documents tab",
            )
        files, skipped = files_to_send(paths, state.settings.ingest.formats)
        if not files:  # as the app's ingest (or one without the app) would say
            from ingest.discovery import no_supported_files

            raise no_supported_files(skipped, state.settings.ingest.formats)
        with stage(f"uploading {len(files)} file(s) to the app", not as_json):
            job = remote.upload(domain, files)
    from ui.cli_progress import IngestProgress

    with IngestProgress() as shown:  # the app's job progress on stderr, as a direct ingest shows its own
        state_ = remote.wait(job, on_progress=shown.job)
    if state_["status"] != "done":
        from ui.remote import job_error

        raise job_error("ingest", job, state_)
    result = state_["result"]
    results = [r for r in result["results"] if r["status"] != "left out"]
    counts = {k: v for k, v in result["counts"].items() if k != "left out"}
    skipped = skipped or list(result.get("not_read") or [])
    seconds = time.perf_counter() - t0
    backend = result.get("embedder_backend")  # an app that reports it
    print_ingest(domain, counts, results, skipped, result.get("chunks"), seconds, as_json, backend)
    if counts.get("failed"):
        raise typer.Exit(1)


@docs_app.command("list")
def docs_list(
    domain: Optional[str] = typer.Option(
        None, "--domain", "-d", help="One domain (default: all).", callback=list_domain_option
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the documents as JSON."),
) -> None:
    """Documents per domain, with chunk counts and content hashes."""
    from rich.table import Table

    from services.documents import list_documents

    remote = app_client()
    docs = remote.documents(domain) if remote is not None else list_documents(state.components.store, domain)
    if as_json:
        typer.echo(json.dumps(docs, indent=2))
        return
    if not docs:
        typer.echo("no documents indexed" + (f" in '{domain}'" if domain else "") + ": lorag ingest PATH --domain NAME")
        return
    t = Table("domain", "format", "chunks", "hash", "ingested")
    t.add_column("document", overflow="fold")  # on a narrow terminal long names wrap instead of being cut
    for d in docs:
        t.add_row(d["domain"], d["format"], str(d["n_chunks"]), d["content_hash"][:10], d["ingested_at"], d["display"])
    new_console(wide=True).print(t)


@docs_app.command("rm")
def docs_rm(
    paths: list[str] = typer.Argument(
        None, metavar="NAME", help="Documents to remove (their path, or the name shown by `docs list`)."
    ),
    domain: str = typer.Option(..., "--domain", "-d", help="The domain they are indexed in.", callback=domain_option),
    all_docs: bool = typer.Option(False, "--all", help="Remove the whole domain."),
) -> None:
    """Remove documents from a domain, or the whole domain with --all."""
    from services.documents import drop_domain, remove_documents

    if not paths and not all_docs:
        raise LoragError("name the documents to remove, or pass --all")
    remote = app_client()
    if remote is not None:
        names = [str(Path(p).expanduser().resolve()) if Path(p).expanduser().exists() else p for p in paths or []]
        removed = remote.remove_documents(domain, names, all_docs)
    elif all_docs:
        removed = drop_domain(state.components.store, domain)
    else:
        removed = remove_documents(state.components.store, domain, list(paths))
    if all_docs:
        chunks = sum(d["chunks"] for d in removed)
        typer.echo(f"removed domain '{domain}' ({plural(len(removed), 'document')}, {plural(chunks, 'chunk')})")
        return
    for d in removed:
        typer.echo(f"removed {d['display']} ({plural(d['chunks'], 'chunk')})")
