"""The web app: Gradio Blocks (chat, side by side, documents, adapters, evaluation) mounted on a
FastAPI app that also serves the OpenAI-compatible API (`ui/api.py`) — one server, one port.

    app, blocks, core = build_app(components)      # tests: components with fake backends
    serve(components)                              # `lorag ui`

Only `lorag ui` imports this module (gradio is heavy). Generation is limited to
`ui.generation_concurrency` requests at a time across the UI and the API (the model in this process),
or to `models.endpoint.max_concurrency` when an engine answers (it batches requests for any mix of
adapters itself); at most `ui.generation_queue` more wait (each at most `ui.generation_timeout_s`),
the rest are refused (`ui/gate.py`).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from assistant.answer import AskService
from assistant.citations import warm_lemmas
from assistant.errors import EngineError, LoragError
from assistant.names import ALL_DOMAINS
from assistant.routing import AUTO, BASE_CHOICE
from ui.gate import GenerationGate
from ui.jobs import JobRunner

log = logging.getLogger(__name__)
GRACEFUL_SHUTDOWN_S = 5

CSS = """
.cite { margin: 2px 0; font-size: 0.92em; }
.cite summary { cursor: pointer; font-weight: 600; }
.cite-quote { margin: 4px 0 4px 8px; }
.cite-body { margin: 4px 0 6px 8px; padding-left: 8px; border-left: 3px solid #9ca3af; }
.cite-body h1, .cite-body h2, .cite-body h3, .cite-body h4 { font-size: 1em; margin: 4px 0; }
.cite-body p, .cite-body ul, .cite-body ol, .cite-body table { margin: 2px 0; }
.cite mark { background: #fde68a; color: inherit; padding: 0 2px; border-radius: 2px; }
.cite-meta, .cite-note { color: #6b7280; font-size: 0.9em; font-weight: normal; }
.cite-ref { color: #2563eb; font-weight: 600; text-decoration: none; cursor: pointer; }
.cite-rows { margin: 2px 0; padding-left: 1.2em; }
.cite-rows li { margin: 0; }
.cite.cite-target > summary { background: #dbeafe; border-radius: 2px; }
.cut { color: #b45309; font-size: 0.9em; }
.route { color: #6b7280; font-size: 0.9em; }
#left-answer, #right-answer { min-height: 120px; }
/* a table's header (gr.Dataframe, wrap=True) wraps between its words only, never inside one ("promot/ed"): its
   column is then at least as wide as the header's longest word, and the cells take the rest */
.gradio-container .header-cell .header-content span { word-break: normal !important; overflow-wrap: normal !important; }
/* the Adapters tab's registry (ui/tab_adapters.py) fits the page without scrolling sideways: below 1280 px (gradio's
   page is then 1024 px wide) its "created" column is left out, below 1024 px (768 px) its "last report" too; the
   table is then as wide as the columns it shows (gradio sets its width to the sum of all of them) */
@media (max-width: 1279px) {
  #ad-registry .header-cell[data-heading="7"], #ad-registry .body-cell[data-col="7"],
  #ad-registry .sizing-body td:nth-child(8) { display: none; }
  #ad-registry .header-table { width: max-content !important; }
  #ad-registry .virtual-body { width: auto !important; }
}
@media (max-width: 1023px) {
  #ad-registry .header-cell[data-heading="8"], #ad-registry .body-cell[data-col="8"],
  #ad-registry .sizing-body td:nth-child(9) { display: none; }
}
"""

# A click on an answer's [n] marker (<a class="cite-ref" href="#cite-KEY-n">) opens source n under that answer
# and scrolls it into view. One listener on the document: answers arrive after the page loads, and Gradio's HTML
# sanitizer keeps a link's href and a <details>' id (it only drops scripts and event attributes from messages).
CITE_JS = """<script>
document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a.cite-ref") : null;
  const id = link ? (link.getAttribute("href") || "").replace(/^#/, "") : "";
  const source = id ? document.getElementById(id) : null;
  if (!source) return;
  event.preventDefault();
  source.open = true;
  source.classList.add("cite-target");
  setTimeout(() => source.classList.remove("cite-target"), 1500);
  source.scrollIntoView({ block: "nearest", behavior: "smooth" });
}, true);
</script>"""


class AppCore:
    """What the tabs and the API share: the components, the job runner, locks and choices."""

    def __init__(self, components: Any, *, train_fn: Callable[..., Any] | None = None):
        self.comps = components
        self.settings = components.settings
        self.data_dir = Path(self.settings.paths.data_dir)
        self.jobs = JobRunner(self.data_dir / "jobs")
        u = self.settings.ui
        self.gate = GenerationGate(
            self.generation_slots, max_waiting=u.generation_queue, timeout_s=u.generation_timeout_s
        )
        self.write_lock = threading.Lock()  # one writer (ingest, delete, promote) at a time
        self.train_fn = train_fn  # tests replace training; default finetune.jobs.train_domain
        self.count_tokens: Callable[[list[dict[str, str]]], int] | None = None  # default: the trained model's tokenizer
        self._attach_lock = threading.Lock()

    @property
    def generation_slots(self) -> int:
        """Answers generated at once: an engine takes models.endpoint.max_concurrency; the model in this
        process ui.generation_concurrency."""
        if self.comps.uses_engine:
            return self.settings.models.endpoint.max_concurrency
        return self.settings.ui.generation_concurrency

    # -- choices ------------------------------------------------------------------------------
    def domains(self) -> list[str]:
        return self.comps.store.domains()

    def domain_choices(self) -> list[str]:
        return [ALL_DOMAINS, *self.domains()]

    @staticmethod
    def domain_arg(domain: str | None) -> str | None:
        return None if domain in (None, "", ALL_DOMAINS) else domain

    def loaded_adapters(self) -> list[str]:
        try:
            return list(self.comps.generator.adapters())
        except EngineError as e:  # an engine that is down must not take the pickers or /v1/models down
            log.warning("cannot list the engine's adapters: %s", e)
            return []

    def registry_cards(self) -> list[Any]:
        try:
            return self.comps.registry.all()
        except Exception as e:  # noqa: BLE001 - a broken card must not take the app down
            log.warning("cannot read the adapter registry: %s", e)
            return []

    def chat_adapters(self) -> list[str]:
        """auto, base, and every adapter the generator serves (promoted ones are attached at start)."""
        promoted = {c.name for c in self.registry_cards() if c.promoted}
        return [AUTO, BASE_CHOICE, *sorted(set(self.loaded_adapters()) | promoted)]

    def compare_adapters(self) -> list[str]:
        """base and every adapter: loaded ones and every registry version (attached on first use)."""
        return [BASE_CHOICE, *sorted(set(self.loaded_adapters()) | {c.name for c in self.registry_cards()})]

    def resolve_model(self, name: str | None) -> str:
        """The served name that a request's model or adapter means: auto (also for none) and base as they are, an
        adapter the generator serves as it is, else the registry's name rule (`lorag eval`'s arms, `lorag ask`):
        a version as it is, a domain's name its promoted version. A LoragError otherwise: NoPromotedAdapterError
        for a domain that has none (naming its versions), UnknownAdapterError for a name the registry lacks."""
        if name in (None, "", AUTO):
            return AUTO
        if name == BASE_CHOICE or name in self.loaded_adapters():
            return name
        return self.comps.registry.get(name).name

    # -- serving ------------------------------------------------------------------------------
    def attach(self, names: list[str]) -> None:
        """Attach adapters while no generation runs (it changes the served model): take every slot. An engine
        serves its adapters itself: only check that it does."""
        if self.comps.uses_engine:
            self.comps.attach(names)
            return
        with self._attach_lock, self.gate.exclusive():
            self.comps.attach(names)

    def refresh_routing(self) -> None:
        """After an ingest, a delete or a promotion: rebuild the router (centroids, promoted adapters)."""
        from assistant.generation import HFGenerator

        gen = self.comps.generator
        if isinstance(gen, HFGenerator):
            names = [c.name for c in self.comps.registry.promoted().values() if c.name not in gen.adapters()]
            if names:
                try:
                    self.attach(names)
                except LoragError as e:
                    log.warning("cannot attach promoted adapters: %s", e)
        for name in ("router", "ask_service"):  # cached_property values
            self.comps.__dict__.pop(name, None)

    def service_for(self, adapter: str | None) -> AskService:
        """auto/base: the routed service. An adapter name (`resolve_model`: a domain's name is its promoted version):
        that adapter (attached if it is a registry version not yet loaded), without the router, so unpromoted
        versions can be tried too."""
        adapter = self.resolve_model(adapter)
        if adapter in (AUTO, BASE_CHOICE):
            return self.comps.ask_service
        if adapter not in self.loaded_adapters():
            self.attach([adapter])
        return AskService(self.comps.retriever, self.comps.generator, None)

    def stream(
        self,
        question: str,
        domain: str | None,
        *,
        adapter: str | None = AUTO,
        history: list[tuple[str, str]] | tuple = (),
        retrieval: Any = None,
        max_new_tokens: int | None = None,
        **kw: Any,
    ) -> Iterator[Any]:
        """AskService.stream under the generation limit (waits in this thread for a free slot); `adapter` as
        `resolve_model` reads it."""
        adapter = self.resolve_model(adapter)
        service = self.service_for(adapter)
        with self.gate.slot():
            yield from self.answer_stream(
                service,
                question,
                domain,
                adapter=adapter,
                history=history,
                retrieval=retrieval,
                max_new_tokens=max_new_tokens,
                **kw,
            )

    def answer_stream(
        self,
        service: AskService,
        question: str,
        domain: str | None,
        *,
        adapter: str | None = AUTO,
        history: list[tuple[str, str]] | tuple = (),
        retrieval: Any = None,
        max_new_tokens: int | None = None,
        **kw: Any,
    ) -> Iterator[Any]:
        """The answer's stream for a caller that already holds a generation slot (`kw`: top_k, on_route)."""
        yield from service.stream(
            question,
            self.domain_arg(domain),
            history=list(history),
            adapter=adapter or AUTO,
            retrieval=retrieval,
            max_new_tokens=max_new_tokens,
            **kw,
        )

    def ask(self, question: str, domain: str | None, **kw: Any) -> Any:
        from assistant.answer import Answer

        final = None
        for item in self.stream(question, domain, **kw):
            if isinstance(item, Answer):
                final = item
        return final


def _auth(settings: Any) -> tuple[str, str] | None:
    u = settings.ui
    pw = u.password.get_secret_value() if u.password is not None else None
    if bool(u.username) != bool(pw):
        raise LoragError("ui.username and ui.password must be set together (or neither, for no login)")
    return (u.username, pw) if u.username and pw else None


def build_blocks(core: AppCore) -> Any:
    import gradio as gr

    from ui import tab_adapters, tab_chat, tab_compare, tab_docs, tab_eval

    with gr.Blocks(title="lorag") as blocks:
        gr.Markdown("## lorag — ask your documents, compare and train domain adapters")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                tab_chat.build(core)
            with gr.Tab("Side by side", id="compare") as compare_tab:
                tab_compare.build(core, shown=(blocks.load, compare_tab.select))
            with gr.Tab("Documents", id="docs") as docs_tab:
                tab_docs.build(core, shown=(blocks.load, docs_tab.select))
            with gr.Tab("Adapters", id="adapters") as adapters_tab:
                tab_adapters.build(core, shown=(blocks.load, adapters_tab.select))
            with gr.Tab("Evaluation", id="eval") as eval_tab:
                tab_eval.build(core, shown=(blocks.load, eval_tab.select))
        tab_chat.register_api(core)
    wrapped: dict[Callable[..., Any], Callable[..., Any]] = {}  # a function of several events: one wrapper
    for block_fn in blocks.fns.values():
        if block_fn.fn is not None and not api_only(block_fn):  # gradio_client callers get the message raw
            block_fn.fn = wrapped.setdefault(block_fn.fn, errors_as_text(block_fn.fn))
    blocks.queue(default_concurrency_limit=max(core.generation_slots, 4), max_size=None)
    return blocks


def api_only(block_fn: Any) -> bool:
    """Whether a Blocks function was registered with `gr.api` (no event triggers it; its inputs and outputs are
    gr.api's placeholder components, not ones on the page): its errors reach a gradio_client caller, no toast."""
    from gradio.components.api_component import Api

    return not block_fn.targets and all(isinstance(c, Api) for c in (*block_fn.inputs, *block_fn.outputs))


def errors_as_text(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An event's function whose uncaught exception (shown in a toast that renders HTML: show_error) is raised as a
    gr.Error with its message escaped, so a `model:<spec>` in it shows as written. A generator stays one (Gradio
    streams it); async functions, which the tabs do not use, are left as they are."""
    import functools
    import html
    import inspect

    import gradio as gr

    def shown(e: Exception) -> gr.Error:
        return gr.Error(html.escape(str(e) or type(e).__name__))

    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return fn
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streamed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as e:  # noqa: BLE001 - every one is shown
                raise shown(e) from e

        return streamed

    @functools.wraps(fn)
    def called(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001 - every one is shown
            raise shown(e) from e

    return called


def build_app(components: Any, *, train_fn: Callable[..., Any] | None = None) -> tuple[Any, Any, AppCore]:
    """(FastAPI app with the API and the UI mounted at /, the Blocks, the shared core)."""
    import gradio as gr

    from ui.api import api_router, health_router, new_api_app, not_served_router

    core = AppCore(components, train_fn=train_fn)
    auth = _auth(core.settings)
    app = new_api_app()
    app.include_router(health_router(core))
    api = api_router(core, auth)
    app.include_router(api)
    app.include_router(not_served_router(auth, api))  # before the web app at /, which would answer any other /v1/ path
    blocks = build_blocks(core)
    max_bytes = int(core.settings.ui.max_upload_mb * 2**20)
    app = gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=auth,
        auth_message="lorag: sign in" if auth else None,
        max_file_size=max_bytes,
        ssr_mode=False,
        css=CSS,
        head=CITE_JS,
        show_error=True,
        footer_links=["api", "gradio"],
        allowed_paths=[str(core.settings.reports_dir)],
    )
    # Gradio checks that a file path sent to an event was uploaded by this client only once the
    # Blocks have "launched", which mount_gradio_app never marks: without this, /gradio_api/call/upload
    # with {"path": "/etc/passwd"} copies any server file in (checked with gradio 6.31).
    blocks.has_launched = True
    return app, blocks, core


def serve(components: Any, host: str | None = None, port: int | None = None) -> None:
    """Warm the models, then run the app (blocks until interrupted)."""
    import uvicorn

    s = components.settings.ui
    host, port = host or s.host, port or s.port
    components.serve_store()  # domains warm into the page cache as they open (qdrant.preload)
    gen = components.generator  # load the model (and promoted adapters) before the first request
    components.retriever  # noqa: B018
    warm_lemmas()  # citation matching's lemmatizer: not in the first answer
    app, _, core = build_app(components)
    import secrets

    from ui.remote import remove_note, write_note

    core.local_token = secrets.token_urlsafe(32)  # the CLI of this user reads it from the note: local paths

    # uvicorn re-raises SIGTERM/SIGINT once it has shut down, so a `finally` may never run: the note goes at shutdown
    app.router.on_shutdown.append(lambda: remove_note(components.settings))
    auth = "on" if _auth(components.settings) else "off"
    print(f"lorag ui: http://{host}:{port}  (API: http://{host}:{port}/v1/chat/completions, login {auth})", flush=True)
    # the `lorag` CLI finds the app through this note while the app holds the embedded store
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    write_note(components.settings, url, core.local_token)
    if components.uses_engine:
        try:
            h = gen.health()  # type: ignore[attr-defined]
            print(f"answers from the engine {gen.name} (adapters: {', '.join(h.adapters) or 'none'})", flush=True)
        except EngineError as e:  # the app still starts: the engine may come up later
            print(f"warning: {e}", flush=True)
    # in-flight streams get a few seconds on Ctrl-C / SIGTERM, then the server stops regardless
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    finally:
        remove_note(components.settings)
