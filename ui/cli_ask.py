"""`lorag ask`: a question answered from the indexed documents, streamed, by the keep-warm worker or the running app
(else by the models in this process), then what answered and the cited sources. Registered in ui/cli.py with
`app.command("ask")(ask_cmd)`."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Iterator, Optional

import typer

from assistant.errors import EMPTY_QUESTION, LoragError
from ui.cli_state import app_client, log_time, search_domain_option, stage, state


def _streamed(first_words: Any, whole: str, t0: float, items: Iterator[Any], *, text: bool) -> Iterator[Any]:
    """A streamed answer's items: the wait for the first one under a spinner (logged as `first_words`: the spinner
    stops once text shows), then the rest; once the stream ends, the time from `t0` logged as `whole`. `text`: the
    answer is printed as it streams, so its line is ended before that log line (which `--verbose` prints)."""
    with first_words:
        first = next(items)
    yield first
    yield from items
    if text:
        sys.stdout.write("\n")
        sys.stdout.flush()
    log_time(whole, t0)


def ask_cmd(
    question: str = typer.Argument(..., metavar="QUESTION", help="Your question."),
    domain: Optional[str] = typer.Option(
        None, "--domain", "-d", help="Search one domain (default: all).", callback=search_domain_option
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Answer, citations, passages with scores, timings; adapter: what answered "
        "(base, an adapter, or null when nothing relevant was found and no model ran), route: why.",
    ),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, max=50, help="Passages given to the model."),
    adapter: str = typer.Option(
        "auto", "--adapter", "-a", help="auto (route), base, an adapter version, or a domain for its promoted one."
    ),
    no_warm: bool = typer.Option(
        False,
        "--no-warm",
        help="Load the models in this process instead of asking the keep-warm worker (a running one is stopped).",
    ),
) -> None:
    """Answer a question from the indexed documents, streamed, with cited sources.

    The models stay loaded for the next ask in a background worker (cli.keep_warm_s; `lorag stop` ends it)."""
    if not question.strip():
        raise LoragError(EMPTY_QUESTION)
    warm = not no_warm and state.settings.cli.keep_warm_s > 0
    # the models are looked for (about a second, nothing loaded) before a worker with other settings is stopped
    # or anything heavy starts: one that cannot be found fails now, and the running worker is left alone
    remote = app_client(through_worker=warm, check=state.check_models)
    if remote is None and warm:
        remote = _warm_worker(domain, adapter, show=not as_json)
    if remote is not None:
        _ask_through_app(remote, question, domain, adapter, top_k, as_json)
        return
    _ask_here(question, domain, as_json, top_k, adapter)


def _warm_worker(domain: Optional[str], adapter: str, show: bool) -> Any:
    """Start the keep-warm worker (ui/warm.py) for this ask; None: answer in this process (the worker did not
    start, or the components come from a factory a worker process cannot import)."""
    import logging

    from ui.warm import WorkerStartError, available, duration, say, start_worker

    factory = state.factory_name()
    if state.factory is not None and factory is None:
        logging.getLogger("ui.cli").info("the components factory cannot be imported by a worker: answering here")
        return None
    if not available():
        logging.getLogger("ui.cli").info("no keep-warm worker: fastapi and uvicorn (the ui extra) are not installed")
        return None

    def check() -> None:  # the arguments first, so that a typo starts no worker; the store is closed again
        from assistant.retrieval import resolve_domains

        comps = state.components
        try:
            with stage("opening the index", show):
                resolve_domains(comps.store, domain)
            if adapter not in ("auto", "base") and not comps.uses_engine:
                comps.registry.get(adapter)
        finally:
            comps.close()

    try:
        with stage("starting a lorag worker (loading the models)", show):
            client, started = start_worker(state.settings, config=state.config, factory=factory, check=check)
    except WorkerStartError as e:
        say(f"warning: {e.args[0]} ({e.hint}); answering in this process")
        return None
    if started:
        say(f"started a lorag worker (stays warm {duration(state.settings.cli.keep_warm_s)}; `lorag stop` ends it)")
    return client


def _ask_here(question: str, domain: Optional[str], as_json: bool, top_k: Optional[int], adapter: str) -> None:
    """`lorag ask` with the store and the models in this process."""
    from assistant.answer import Answer, AskService
    from assistant.conversation import retrieve_for
    from assistant.retrieval import resolve_domains

    comps = state.components
    show = not as_json
    with stage("opening the index", show):
        resolve_domains(comps.store, domain)  # clear errors before any model loads
    if adapter not in ("auto", "base") and not comps.uses_engine:
        comps.registry.get(adapter)  # an unknown name fails here, before the models load
    if top_k:
        comps.settings.retrieval.top_k = top_k
    with stage("loading the embedding model", show):
        retriever = comps.retriever
    with stage("searching", show):
        found = retrieve_for(retriever, question, domain)
    if found.relevant:
        with stage("loading the language model", show):
            if adapter not in ("auto", "base"):
                # any registered version of this base, promoted or not (checked against the base); with an engine, any
                # adapter it serves (checked against its list)
                adapter = comps.attach([adapter])[0]
            service = comps.ask_service
    else:
        service = AskService(retriever, comps._generator)  # nothing relevant: no model is needed to say so
    t0 = time.perf_counter()
    items = service.stream(question, domain, adapter=adapter, retrieval=found)
    final: Answer | None = None
    wait = stage("generating", show, logged="generating, until the first words")
    for item in _streamed(wait, "generating the whole answer", t0, items, text=not as_json):
        if isinstance(item, Answer):
            final = item
        elif not as_json:
            sys.stdout.write(item)
            sys.stdout.flush()
    assert final is not None
    if as_json:
        typer.echo(json.dumps(final.to_dict(), indent=2))
        return
    _print_answer_end(final.to_dict(), has_adapters=lambda: bool(comps.registry.all()))


def _print_answer_end(ans: dict[str, Any], has_adapters: Any = lambda: False) -> None:
    """After the streamed text (its line ended): cut at the limit?, what answered, and the sources, each with its
    supporting sentence (or how it begins)."""
    if ans.get("finish_reason") == "length":
        typer.echo(f"[cut: the answer reached the token limit ({ans.get('tokens')} tokens; models.max_new_tokens)]")
    route = ans.get("route") or {}
    if not ans.get("relevant"):
        pass  # no passage was relevant: no model answered, so no adapter to name
    elif route and route.get("adapter") != "base":
        typer.echo(f"\n(adapter {route['adapter']}: {route['reason']})")
    elif route and has_adapters():  # adapters exist, so say why none answered
        typer.echo(f"\n(base model: {route['reason'].removesuffix(': base model')})")
    texts = {p.get("n"): p.get("text", "") for p in ans.get("passages", [])}
    if ans.get("citations"):
        typer.echo("\nSources:")
        for c in ans["citations"]:
            numbers = "".join(f"[{n}]" for n in sorted([c["n"], *c.get("also", [])]))  # [1][3]: one source, two markers
            typer.echo(f"  {numbers} {c.get('label') or c['ref']}" + ("  (inferred)" if c["how"] == "overlap" else ""))
            # the supporting sentence (plain text: supporting_sentence takes markdown's marks off)
            _print_snippet(c.get("quote", ""), texts.get(c["n"], ""))
    elif ans.get("relevant"):
        from types import SimpleNamespace

        from assistant.passage_label import passage_label  # light: not assistant.answer (half a second)
        from assistant.sentences import supporting_sentence

        typer.echo("\nPassages used (none cited):")
        for p in ans.get("passages", []):
            typer.echo(f"  [{p['n']}] {passage_label(SimpleNamespace(**p))}")
            text = p.get("text", "")  # what the passage says on the question, to check the answer against
            _print_snippet(supporting_sentence(text, ans.get("question", "")), text)


def _print_snippet(quote: str, passage: str) -> None:
    """A passage's line under its label: `quote`, else how the passage begins (when none of its sentences shares a
    word with the answer or the question)."""
    if not quote:
        from assistant.sentences import passage_opening  # light: not assistant.answer (half a second)

        quote = passage_opening(passage)
    if quote:
        typer.echo(f"      “{quote}”")


def _ask_through_app(
    remote: Any, question: str, domain: Optional[str], adapter: str, top_k: Optional[int], as_json: bool
) -> None:
    final: dict[str, Any] = {}
    if adapter not in ("auto", "base"):
        served = [m["id"] for m in remote.get("/v1/models")["data"] if m["id"] not in ("auto", "base")]
        if adapter not in served:  # the app's registry reads the name as without the app: a domain's name is its
            # promoted version; an unknown one, or a domain without one, is the registry's error, said as an adapter
            from assistant.names import parse_adapter

            parse_adapter(adapter)  # a malformed name is refused here, as without the app (it is no URL path)
            adapter = remote.adapter(adapter)["name"]
    t0 = time.perf_counter()
    items = remote.ask(question, domain, adapter, top_k)
    who = "the lorag worker" if remote.worker_pid else "the app"
    doing = f"{who} is searching and generating"
    wait = stage(doing, not as_json, logged=f"{who}: searching and generating, until the first words")
    for item in _streamed(wait, f"{who}: searching and generating the whole answer", t0, items, text=not as_json):
        if isinstance(item, dict):
            final = item
        elif not as_json:
            sys.stdout.write(item)
            sys.stdout.flush()
    if as_json:
        typer.echo(json.dumps(final, indent=2))
        return
    _print_answer_end(final, has_adapters=lambda: bool(remote.adapters()))
