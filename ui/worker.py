"""The keep-warm worker: the app's API (ui/api.py on ui/app.py's AppCore) without the web UI, for the CLI.

    python -m ui.worker --settings-id ID [--config FILE] [--factory MODULE:CALLABLE]

Started by `lorag ask` (ui/warm.py), detached, with its output in `<data_dir>/logs/worker.log`. It loads the
store and the models, listens on 127.0.0.1 on a free port, and writes `<data_dir>/worker.json` (0600: URL,
process id, a random token that is the API's password). It exits after `cli.keep_warm_s` seconds without a
request (none in flight, no job running), on POST /v1/worker/stop (`lorag stop`) or on SIGTERM, and removes
its note. `--factory` builds the components from the settings (default ui.components:Components; the tests
name one with fake backends). Gradio is never imported here.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from fastapi import APIRouter, Depends, Request

from assistant.errors import LoragError

GRACEFUL_SHUTDOWN_S = 5


def say(text: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}", flush=True)


class Activity:
    """ASGI middleware: how long no HTTP request has been in flight (a stream counts until it ends)."""

    def __init__(self, app: Any):
        self.app = app
        self.in_flight = 0
        self.last = time.monotonic()
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self._lock:
            self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.last = time.monotonic()

    def idle_s(self) -> float:
        with self._lock:
            return 0.0 if self.in_flight else time.monotonic() - self.last


def build_worker_app(core: Any, token: str, info: Callable[[], dict[str, Any]], stop: Callable[[], None]) -> Any:
    """The API app (health, the OpenAI-compatible and the CLI's endpoints, behind the token) plus
    GET /v1/worker (who it is) and POST /v1/worker/stop, wrapped in an Activity counter."""
    from ui.api import api_router, health_router, new_api_app, not_served_router
    from ui.api_auth import check_auth
    from ui.api_methods import refuse_other_methods
    from ui.warm import USER

    auth = (USER, token)
    app = new_api_app()
    app.include_router(health_router(core))
    api = api_router(core, auth)
    app.include_router(api)

    def authorized(request: Request) -> None:
        check_auth(request, auth)

    router = APIRouter(dependencies=[Depends(authorized)])

    @router.get("/v1/worker")
    async def worker_info() -> dict[str, Any]:
        return info()

    @router.post("/v1/worker/stop")
    async def worker_stop() -> dict[str, Any]:
        stop()
        return {"stopping": True}

    refuse_other_methods(router)  # HEAD where GET is, a 405 with Allow for another method
    app.include_router(router)
    app.include_router(not_served_router(auth, api, router))  # after every /v1/ route
    return Activity(app)


def load_factory(spec: str) -> Callable[[Any], Any]:
    import pkgutil

    try:
        return pkgutil.resolve_name(spec)
    except (ImportError, AttributeError, ValueError) as e:
        raise LoragError(f"--factory {spec}: {e}") from None


def _watch(server: Any, activity: Activity, core: Any, keep_s: float, ready: Callable[[], None]) -> None:
    """Write the note once the server listens; then stop it after keep_s seconds idle."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.02)
    ready()
    while not server.should_exit:
        time.sleep(min(1.0, max(keep_s / 10, 0.05)))
        if activity.idle_s() >= keep_s and not core.jobs.running():
            say(f"idle for {keep_s:g} s: exiting")
            server.should_exit = True


def serve_worker(settings: Any, settings_id: str, factory: Callable[[Any], Any]) -> None:
    import uvicorn

    from assistant.citations import warm_lemmas
    from ui import warm
    from ui.app import AppCore

    keep_s = settings.cli.keep_warm_s
    t0 = time.perf_counter()
    comps = factory(settings)
    comps.serve_store()  # the store first: one another process holds fails at once
    comps.retriever  # noqa: B018 - the embedder
    comps.generator  # noqa: B018 - the language model (and the promoted adapters)
    warm_lemmas()  # citation matching's lemmatizer: not in the first answer
    core = AppCore(comps)
    say(f"loaded the store and the models in {time.perf_counter() - t0:.1f} s")
    token = secrets.token_urlsafe(32)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    holder: dict[str, Any] = {}

    def info() -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "data_dir": str(Path(settings.paths.data_dir).resolve()),
            "settings_id": settings_id,
            "keep_warm_s": keep_s,
            "idle_s": round(app.idle_s(), 1),
            "started_at": started_at,
        }

    def stop() -> None:
        say("asked to stop: exiting")
        holder["server"].should_exit = True

    app = build_worker_app(core, token, info, stop)
    # uvicorn re-raises SIGTERM once it has shut down, so a `finally` may not run: the note goes at shutdown too
    app.app.router.on_shutdown.append(lambda: warm.remove_note(settings, os.getpid()))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            log_config=None,  # logging stays as ui/logs.py set it up (dictConfig would close its handlers)
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            lifespan="on",
        )
    )
    holder["server"] = server

    def ready() -> None:
        note = {"url": url, "pid": os.getpid(), "token": token, "settings_id": settings_id, "keep_warm_s": keep_s}
        warm.write_note(settings, {**note, "started_at": started_at})
        say(f"serving {url} (pid {os.getpid()}); exits after {keep_s:g} s without a request")

    threading.Thread(target=_watch, args=(server, app, core, keep_s, ready), daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        warm.remove_note(settings, os.getpid())
        comps.close()
        say("stopped")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ui.worker", description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings-id", required=True, help="The settings fingerprint the CLI started it for.")
    ap.add_argument("--config", type=Path, help="Settings file (as `lorag --config`).")
    ap.add_argument("--factory", default="ui.components:Components", help="MODULE:CALLABLE(settings) -> Components")
    a = ap.parse_args(argv)
    try:
        from assistant.settings import load_settings
        from ui import logs

        settings = load_settings(a.config)
        logs.setup(lambda: Path(settings.paths.data_dir) / "logs" / "lorag.log")
        say(f"lorag worker starting (pid {os.getpid()}, data folder {Path(settings.paths.data_dir).resolve()})")
        serve_worker(settings, a.settings_id, load_factory(a.factory))
    except LoragError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
