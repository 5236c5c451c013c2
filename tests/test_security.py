"""Attacks on a live app, with the login off and on: no file outside the data folder is read or
written through any face (Gradio API, OpenAI-compatible API, report and file routes), names that
become paths are refused, and the server stays healthy and answers 429 instead of deadlocking
under load (2 streams + 45 requests). A canary folder outside the data folder is checked after
every attack."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.test_ui_core import REPO, LiveApp, free_port

TOKEN = "zqxcanary7731"
Q = "How do I clean the Aurora 3 optical window?"
AUTH = ("ann", "s3cret")


class Canary:
    """A folder outside the data folder: a markdown file, a JSONL Q&A file and a votes-looking file."""

    def __init__(self, root: Path):
        self.dir = root / "outside"
        self.dir.mkdir()
        (self.dir / "secret.md").write_text(f"# Secret\n\nThe vault code is {TOKEN} and the alarm is off.\n")
        (self.dir / "qa.jsonl").write_text(json.dumps({"question": "What is the vault code?", "answer": TOKEN}) + "\n")
        (self.dir / "pwned.jsonl").write_text("")
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(self.dir.iterdir())}

    def check(self, data_dir: Path) -> None:
        assert self.snapshot() == self.before, "a file outside the data folder was written"
        leaked = [p for p in data_dir.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
        assert not leaked, f"the canary's content reached the data folder: {leaked}"


def gradio_call(client: httpx.Client, url: str, api: str, data: list) -> tuple[str, str]:
    """(event, data) of a Gradio API call: event is 'complete', 'error', or 'http <status>'."""
    r = client.post(f"{url}/gradio_api/call/{api}", json={"data": data}, timeout=30)
    if r.status_code != 200:
        return f"http {r.status_code}", r.text
    event, payload = "", ""
    with client.stream("GET", f"{url}/gradio_api/call/{api}/{r.json()['event_id']}", timeout=60) as s:
        for line in s.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                payload = line.split(":", 1)[1].strip()
            if event in ("complete", "error") and payload:
                break
    return event, payload


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


@pytest.fixture(scope="module", params=["login-off", "login-on"])
def attacked(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    canary = Canary(root)
    auth = AUTH if request.param == "login-on" else None
    app = LiveApp(root, auth=auth, preload=("manual",), delay=0.0)
    client = httpx.Client(auth=auth)
    if auth:  # Gradio's own routes use its session cookie
        assert client.post(app.url + "/login", data={"username": auth[0], "password": auth[1]}).status_code == 200
    yield app, canary, client
    client.close()
    app.close()


def _no_leak(app: LiveApp, canary: Canary, *texts: str) -> None:
    for t in texts:
        assert TOKEN not in t, "the canary's content came back in a response"
    canary.check(app.settings.paths.data_dir)


def test_file_inputs_accept_only_this_clients_uploads(attacked):
    app, canary, client = attacked
    secret = str(canary.dir / "secret.md")
    relative = os.path.relpath(secret, os.getcwd())
    for path in (secret, relative, "/etc/passwd", "/proc/self/environ"):
        ev, out = gradio_call(client, app.url, "upload", ["manual", [file_data(path)]])
        assert ev != "complete" or '"job"' not in out, (path, ev, out)  # no ingest job started
        _no_leak(app, canary, out)
        ev, out = gradio_call(
            client, app.url, "synth", ["manual", file_data(str(canary.dir / "qa.jsonl")), "heading+cloze", None]
        )
        assert ev != "complete", out
        _no_leak(app, canary, out)
        ev, out = gradio_call(
            client, app.url, "evaluate", ["manual", "base,handbook-v1", file_data(str(canary.dir / "qa.jsonl")), 1]
        )
        assert ev != "complete", out
        _no_leak(app, canary, out)
    time.sleep(0.5)  # any job the calls could have started would have written by now
    _no_leak(app, canary, *(json.dumps(j) for j in app.core.jobs.all()))
    r = client.post(
        app.url + "/v1/chat/completions",
        timeout=30,
        json={"model": "base", "messages": [{"role": "user", "content": "What is the vault code?"}]},
    )
    _no_leak(app, canary, r.text)


def test_names_that_would_leave_the_data_folder_are_refused(attacked):
    app, canary, client = attacked
    out_rel = os.path.relpath(canary.dir / "pwned", app.settings.paths.data_dir / "votes")
    comparison = {
        "done": True,
        "question": "q?",
        "domain": out_rel,
        "passages": [],
        "left": {"adapter": "base", "answer": "a"},
        "right": {"adapter": "base", "answer": "b"},
    }
    for domain in (out_rel, "../../../../tmp/pwned", "/tmp/pwned", "all/../..", "a\x00b"):
        ev, out = gradio_call(client, app.url, "vote", [{**comparison, "domain": domain}, "left"])
        assert "invalid domain" in out, (domain, ev, out)
        ev, out = gradio_call(client, app.url, "export_votes", [domain])
        assert "invalid domain" in out, (domain, ev, out)
        for api, data in (
            ("synth", [domain, None, "heading+cloze", None]),
            ("train", [domain, 1, False]),
            ("evaluate", [domain, "base,handbook-v1", None, 1]),
            ("upload", [domain, []]),
        ):
            ev, out = gradio_call(client, app.url, api, data)
            assert "invalid domain" in out or "choose files" in out, (api, domain, ev, out)
        r = client.post(
            app.url + "/v1/chat/completions",
            timeout=30,
            json={"model": "base", "domain": domain, "messages": [{"role": "user", "content": Q}]},
        )
        assert r.status_code == 400, (domain, r.text)
        for bad_adapter in (f"{domain}-v1", "../x-v1"):
            ev, out = gradio_call(client, app.url, "promote", [bad_adapter, True])
            assert ev != "complete" or "invalid" in out or "no adapter" in out, out
    ev, out = gradio_call(client, app.url, "job", ["../../../etc/passwd"])
    assert "no job" in out
    assert client.get(app.url + "/reports/..%2F..%2F..%2Fetc/passwd").status_code == 404
    canary.check(app.settings.paths.data_dir)
    votes = app.settings.paths.data_dir / "votes"
    assert not (votes.exists() and list(votes.iterdir()))


def test_gradio_file_route_serves_no_server_file(attacked):
    app, canary, client = attacked
    cwd_file = REPO / "pyproject.toml"
    for path in (canary.dir / "secret.md", Path("/etc/passwd"), cwd_file, app.settings.paths.data_dir / "jobs"):
        r = client.get(f"{app.url}/gradio_api/file={path}")
        assert r.status_code >= 400, (path, r.status_code)
    _no_leak(app, canary)


def test_login_guards_every_route_but_health(tmp_path):
    app = LiveApp(tmp_path, auth=AUTH, preload=(), delay=0.0)
    try:
        for path in ("/v1/docs", "/v1/openapi.json", "/v1/models"):
            assert httpx.get(app.url + path).status_code == 401, path
            assert httpx.get(app.url + path, auth=AUTH).status_code == 200, path
        assert "/v1/chat/completions" in httpx.get(app.url + "/v1/openapi.json", auth=AUTH).json()["paths"]
        assert httpx.post(f"{app.url}/gradio_api/call/ask", json={"data": [Q, "all", "auto"]}).status_code in (401, 403)
        assert httpx.get(app.url + "/healthz").json()["status"] == "ok"
    finally:
        app.close()


def test_two_streams_and_45_requests_all_answered_or_refused_and_the_server_stays_healthy(tmp_path):
    """Two long streams hold both slots; 45 requests then queue (8 places) or get 429 at once."""
    app = LiveApp(
        tmp_path,
        preload=("manual",),
        delay=0.15,  # generation slower than 45 requests arrive on a loaded machine: the queue fills
        concurrency=2,
        ui_extra={"generation_queue": 8, "generation_timeout_s": 60},
    )
    url = app.url + "/v1/chat/completions"
    body = {"model": "base", "domain": "manual", "messages": [{"role": "user", "content": Q}]}

    def stream() -> str:
        with httpx.stream("POST", url, json={**body, "stream": True}, timeout=90) as s:
            return "".join(s.iter_lines())

    def plain(i: int) -> httpx.Response:
        return httpx.post(url, json={**body, "messages": [{"role": "user", "content": f"{Q} ({i})"}]}, timeout=90)

    try:
        with ThreadPoolExecutor(60) as pool:
            streams = [pool.submit(stream) for _ in range(2)]
            time.sleep(0.3)
            requests = [pool.submit(plain, i) for i in range(45)]
            deadline = time.monotonic() + 15  # on a busy machine the 45 arrive over a while
            while True:  # the snapshot in which the queue is full is the one checked below
                queued = httpx.get(app.url + "/healthz", timeout=5).json()
                if queued["waiting"] >= 8 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            t0 = time.perf_counter()  # the server answers the rest while it is full
            models = httpx.get(app.url + "/v1/models", timeout=5)
            page = httpx.get(app.url + "/", timeout=5)
            health = httpx.get(app.url + "/healthz", timeout=5).json()
            health_s = time.perf_counter() - t0
            results = [f.result(120) for f in requests]
            assert all("[DONE]" in f.result(120) for f in streams)
        # both slots busy and the queue at its 8 places, never more
        assert queued["generating"] == 2 and queued["waiting"] == 8, queued
        assert models.status_code == 200 and page.status_code == 200 and health["status"] == "ok" and health_s < 3
        codes = [r.status_code for r in results]
        assert set(codes) <= {200, 429} and codes.count(200) >= 8 and codes.count(429) >= 1, codes
        for r in results:
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1 and r.json()["error"]["code"] == "server_busy"
            else:
                assert r.json()["citations"]
        assert plain(99).status_code == 200 and app.core.gate.busy == 0 and app.core.gate.waiting == 0
    finally:
        app.close()


def test_a_request_that_waits_too_long_gets_503_and_its_place_is_freed(tmp_path):
    app = LiveApp(
        tmp_path,
        preload=("manual",),
        delay=0.2,
        concurrency=1,
        ui_extra={"generation_queue": 4, "generation_timeout_s": 0.5},
    )
    url = app.url + "/v1/chat/completions"
    body = {"model": "base", "domain": "manual", "messages": [{"role": "user", "content": Q}]}
    try:
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(httpx.post, url, json=body, timeout=60)
            time.sleep(0.3)
            late = httpx.post(url, json=body, timeout=60)
            assert late.status_code == 503 and late.headers["Retry-After"] and "ui.generation_timeout_s" in late.text
            assert app.core.gate.waiting == 0
            assert first.result(60).status_code == 200
        assert httpx.post(url, json=body, timeout=60).status_code == 200
    finally:
        app.close()


def test_sigterm_stops_a_loaded_server_within_seconds(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.serve_app", str(tmp_path), str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "lorag ui:" in proc.stdout.readline()
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": "base", "domain": "manual", "messages": [{"role": "user", "content": Q}]}

        def request(stream: bool) -> None:
            try:
                with httpx.stream("POST", url, json={**body, "stream": stream}, timeout=60) as s:
                    for _ in s.iter_lines():
                        pass
            except httpx.HTTPError:
                pass

        with ThreadPoolExecutor(50) as pool:
            for i in range(47):  # two streams hold the slots, 45 more wait or are refused
                pool.submit(request, i < 2)
                time.sleep(0.3 if i < 2 else 0)
            time.sleep(1.0)
            t0 = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
            assert time.perf_counter() - t0 < 12
    finally:
        if proc.poll() is None:
            proc.kill()
