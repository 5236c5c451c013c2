"""The CLI's shared state and helpers: the settings and components loaded on first use, consoles, the running
app that holds the store. The command modules (ui/cli.py, cli_ask.py, cli_docs.py, cli_synth_train.py,
cli_adapters.py, cli_eval.py) import this one, never each other."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer

from assistant.errors import LoragError
from assistant.markup import markdown_emphasis_text


class _State:
    config: Optional[Path] = None
    verbose: bool = False
    _settings: Any = None
    _components = None
    factory = None  # tests set a callable(settings) -> Components with fake backends

    @property
    def settings(self) -> Any:
        """The Settings, loaded on first use (pydantic-settings is slow to import: a wrong path fails first)."""
        if self._settings is None:
            from assistant.settings import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    @property
    def components(self):  # noqa: ANN201
        if self._components is None:
            from ui.components import Components

            self._components = (self.factory or Components)(self.settings)
            if not self.settings.qdrant.url:  # the embedded store admits one process: the worker's goes first
                self._components.before_store = lambda: release_worker("this command needs the store itself")
        return self._components

    def check_models(self, *, generator: bool = True) -> None:
        """The models this command loads can be found (Components.check_models): cheap (no model loads), so it runs
        before the store opens or the keep-warm worker is stopped (app_client's check). Without a components factory
        (the `lorag` command) this needs no ui.components import (the warm path stays light)."""
        if self._components is not None or self.factory is not None:
            self.components.check_models(generator=generator)
        else:
            from assistant.models.cache import check_findable

            check_findable(self.settings, generator=generator, reranker=generator)

    def factory_name(self) -> str | None:
        """How a worker process imports the components factory: MODULE:NAME (None: the default one, or a
        factory only this process has, e.g. a test's lambda)."""
        f = self.factory
        if f is None:
            return None
        qual = getattr(f, "__qualname__", "")
        return None if "<" in qual else f"{f.__module__}:{qual}"


state = _State()


def new_console(stderr: bool = False, wide: bool = False):  # noqa: ANN202
    from rich.console import Console

    # no hard line breaks in messages; wide: piped or captured, a table at its full width (off a terminal
    # rich assumes 80 columns and would cut long document names)
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=250 if wide and not stream.isatty() else None)


def new_err_console():  # noqa: ANN202
    return new_console(stderr=True)


def app_client(through_worker: bool = True, check: Callable[[], None] | None = None):  # noqa: ANN202
    """The running app that holds the embedded store, or the keep-warm worker (ui/warm.py) when
    `through_worker` (None: none answers, the CLI opens the store itself). When none answers, `check` runs, once:
    what the command needs can be found (its models, its arguments; cheap, nothing loaded). A worker that the
    command must not go through (it needs the store itself, runs a long job in the foreground, or has other
    settings) is stopped after it: a check that raises (the command cannot succeed) leaves it running.
    Says so on stderr, so --json output stays clean."""
    import logging

    from ui.remote import find_app
    from ui.warm import find_worker, say, started_with, stop_worker

    client = find_app(state.settings)
    if client is not None:
        from ui.settings_fingerprint import settings_differing

        console = new_err_console()
        console.print(f"[dim]the lorag app at {client.url} holds the store: asking it[/]")
        differing = settings_differing(state.settings, client.settings_digests)
        if differing:
            shown = ", ".join(differing[:6]) + (f" and {len(differing) - 6} more" if len(differing) > 6 else "")
            console.print(
                f"[yellow]warning:[/] this command's settings differ from the app's in {shown}: the app works "
                "with its own; restart `lorag ui` with these settings to use them"
            )
        return client
    worker = find_worker(state.settings)
    same = worker is not None and started_with(state.settings)
    if same and through_worker:
        logging.getLogger("ui.cli").info("asking the lorag worker at %s (pid %s)", worker.url, worker.worker_pid)
        return worker
    if check is not None:
        check()
    if same:
        release_worker("this command runs in this process")
    elif worker is not None:
        stop_worker(state.settings)
        say("the settings changed: stopped the lorag worker (the next `lorag ask` starts one with them)")
    return None


def release_worker(reason: str) -> bool:
    """Stop the keep-warm worker of this data folder, if one runs (never a `lorag ui` app); True if it did."""
    from ui.warm import say, stop_worker

    note = stop_worker(state.settings)
    if note is not None:
        say(f"stopped the lorag worker ({reason})")
    return note is not None


def upload_text(path: Path | None, what: str) -> str | None:
    """A file the CLI sends to the running app, read here: its text, or a LoragError naming it when it is missing
    or not UTF-8 (the app would otherwise get nothing to read)."""
    if path is None:
        return None
    if not path.is_file():
        raise LoragError(f"{path}: {what} not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise LoragError(f"{path}: {what} is not UTF-8 text (byte {e.start})", hint="save it as UTF-8") from None


def run_in_app(
    remote: Any,
    kind: str,
    unsupported: dict[str, Any],
    *,
    log_to_stderr: bool = False,
    hide: Callable[[str], bool] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Start synth/train/eval as the running app's job and follow it: its log lines as they come (on stderr with
    `log_to_stderr`: stdout is kept for --json; none that `hide` says the command prints itself at the end), its
    stage and progress on a spinner under them (on a terminal); Ctrl-C stops following (the job goes on in the app).
    Returns the finished job."""
    from ui.cli_progress import JobSpinner
    from ui.jobs import progress_line

    given = [flag for flag, value in unsupported.items() if value]
    if given:  # options the app's job does not take: they need the command run here, on the store the app holds
        flags = " and ".join([", ".join(given[:-1]), given[-1]] if len(given) > 1 else given)
        raise LoragError(
            f"{flags} {'work' if len(given) > 1 else 'works'} only when {kind} runs in this process, and the "
            f"running lorag app at {remote.url} holds the store",
            hint=f"stop `lorag ui` first, or run {kind} without {'them' if len(given) > 1 else given[0]} "
            "(the app then runs it as a job)",
        )
    job_id = remote.start_job(kind, **params)
    console = new_err_console()
    console.print(f"[dim]started job {job_id} in the app (it goes on if you stop watching)[/]")
    printed = 0
    state: dict[str, Any] = {}
    spinner = JobSpinner() if sys.stderr.isatty() else None
    try:
        while True:
            state = remote.job(job_id)
            said = f"failed: {state.get('error')}"  # the job's last line: the error below says it once
            lines = [line.split(" ", 1)[-1] for line in state.get("log", [])[printed:]]
            lines = [t for t in lines if not (state.get("status") == "failed" and t == said) and not (hide and hide(t))]
            if lines and spinner:  # the spinner's line is cleared: each log line starts a line of its own
                spinner.clear()
            for text in lines:
                typer.echo(text, err=log_to_stderr)
            printed = len(state.get("log", []))
            if state.get("status") != "running":
                break  # its last lines are the last output: no spinner is drawn after them
            if spinner:
                from rich.text import Text

                spinner.show(Text(markdown_emphasis_text(progress_line(state))))  # as written: no rich markup
            time.sleep(1.0)
    finally:
        if spinner:
            spinner.clear()
    if state.get("status") != "done":
        from ui.remote import job_error

        raise job_error(kind, job_id, state)
    return state


def domain_option(value: Optional[str]) -> Optional[str]:
    """--domain's callback: the domain a typed name means (assistant.names.domain_name, the rule of the API and the
    web app too), with a one-line note on stderr when it was lowercased; 'all' is refused with a hint to pick another
    name (search_domain_option, list_domain_option: where leaving --domain out means every domain)."""
    return _domain(value, None)


def search_domain_option(value: Optional[str]) -> Optional[str]:
    """--domain's callback where leaving it out searches every domain (`lorag ask`)."""
    return _domain(value, "leave --domain out to search every domain")


def list_domain_option(value: Optional[str]) -> Optional[str]:
    """--domain's callback where leaving it out lists every domain (`lorag docs list`)."""
    return _domain(value, "leave --domain out to list every domain's documents")


def _domain(value: Optional[str], every_domain_hint: Optional[str]) -> Optional[str]:
    # typer calls a callback with the value as its one parameter that is not a context: the hint comes through these
    if value is None:
        return None
    from assistant.names import domain_name

    domain = domain_name(value, every_domain_hint=every_domain_hint)
    if domain != value.strip():
        typer.echo(f"domain '{value.strip()}' is '{domain}'", err=True)
    return domain


@contextmanager
def stage(text: str, enabled: bool = True, logged: str | None = None) -> Iterator[None]:
    """A spinner with what is happening (on a terminal only; scripts and --json see nothing); each stage's
    time goes to the log (`--verbose` prints it) as `logged` (default: the spinner's text)."""
    t0 = time.perf_counter()
    try:
        if not enabled or not sys.stderr.isatty():
            yield
        else:
            with new_err_console().status(f"{text} …", spinner="dots"):
                yield
    finally:
        log_time(logged or text, t0)


def log_time(what: str, t0: float) -> None:
    """`what` took from `t0` (time.perf_counter) until now: to the log, as `stage` writes it."""
    import logging

    logging.getLogger("ui.cli").info("%s: %.2fs", what, time.perf_counter() - t0)


def plural(n: int, word: str) -> str:
    """'1 chunk', '3 chunks'."""
    return f"{n} {word}{'' if n == 1 else 's'}"
