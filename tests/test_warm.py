"""The keep-warm worker (ui/warm.py, ui/worker.py): `lorag ask` starts one when no lorag app answers, later asks
go through it, it exits when idle or on `lorag stop`, stale notes are cleaned, a command that needs the store
stops it, and concurrent asks start one. The worker is a real process with the fake backends of
tests/helpers/worker_fakes.py over the real embedded store; every worker a test started is gone after it."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.answer import Answer
from assistant.settings import Settings
from tests.helpers import worker_fakes
from ui import cli, warm

REPO = Path(__file__).resolve().parents[1]
Q = "How many days of annual leave do full-time staff receive?"
runner = CliRunner()


class Project:
    """A data folder, the CLI on it (in this process, with the fakes), and the workers it started."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.settings = Settings(paths={"data_dir": self.data, "model_cache": root / "cache"})

    def __call__(self, *args: str):
        try:
            return runner.invoke(cli.app, list(args))
        finally:
            if cli.state._components is not None:  # a real `lorag` process would have exited, releasing the store
                cli.state._components.close()
                cli.state._components = None

    def note(self) -> dict | None:
        return warm.read_note(self.settings)

    def log(self) -> str:
        path = self.data / "logs" / "worker.log"
        return path.read_text() if path.exists() else ""

    def started_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"lorag worker starting \(pid (\d+)", self.log())]

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items()}


def gone(pid: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while warm.alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def project(tmp_path, monkeypatch, corpus):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LORAG_PATHS__MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LORAG_RETRIEVAL__MIN_RELEVANCE", "0.2")
    monkeypatch.setenv("LORAG_CLI__KEEP_WARM_S", "120")
    monkeypatch.setattr(cli.state, "factory", worker_fakes.components)
    p = Project(tmp_path)
    r = p("ingest", str(corpus), "--domain", "hr")
    assert r.exit_code == 0, r.output
    yield p
    warm.stop_worker(p.settings)
    for pid in p.started_pids():  # nothing a test started outlives it
        if warm.alive(pid):
            os.kill(pid, signal.SIGKILL)
        assert gone(pid, 10), f"worker {pid} still runs"


def test_ask_starts_a_worker_and_the_next_ask_goes_through_it(project):
    r = project("ask", Q, "--domain", "hr", "--json")
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert "27 days [1]" in first["answer"] and first["citations"][0]["source"] == "leave.md"
    assert "started a lorag worker (stays warm 2 min; `lorag stop` ends it)" in r.stderr
    here = Answer(Q, "", [], [], [], True).to_dict()  # every field an answer in this process has, similarity too
    assert set(here) <= set(first) and first["similarity"] >= 0.2  # its cosine reached retrieval.min_relevance
    note = project.note()
    assert note is not None and first["answered_by_app"] == note["url"] and note["url"].startswith("http://127.0.0.1:")
    assert stat.S_IMODE((project.data / "worker.json").stat().st_mode) == 0o600  # it holds the token
    assert warm.is_worker_process(note["pid"]) and project.started_pids() == [note["pid"]]
    assert "serving http://127.0.0.1:" in project.log()

    r = project("ask", Q, "--domain", "hr")  # streamed text and sources, as in this process
    assert r.exit_code == 0, r.output
    assert "started a lorag worker" not in r.stderr
    assert "27 days [1]" in r.stdout and "Sources:\n  [1] leave.md › Annual leave" in r.stdout
    assert project.note()["pid"] == note["pid"] and project.started_pids() == [note["pid"]]
    r = project("docs", "list", "--json")  # the store's other readers go through it too
    assert r.exit_code == 0 and {d["domain"] for d in json.loads(r.stdout)} == {"hr"}


def test_the_api_refuses_a_request_without_the_token(project):
    import httpx

    assert project("ask", Q, "--domain", "hr").exit_code == 0
    note = project.note()
    assert httpx.get(note["url"] + "/v1/models").status_code == 401
    assert httpx.get(note["url"] + "/v1/worker", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = httpx.get(note["url"] + "/v1/worker", headers={"Authorization": f"Bearer {note['token']}"})
    assert ok.status_code == 200 and ok.json()["pid"] == note["pid"]


def test_a_typo_starts_no_worker(project):
    r = project("ask", Q, "--domain", "hrr")
    assert r.exit_code == 1 and "unknown domain 'hrr'" in str(r.exception)
    assert project.note() is None and project.started_pids() == []


def test_idle_worker_exits_and_removes_its_note(project, monkeypatch):
    monkeypatch.setenv("LORAG_CLI__KEEP_WARM_S", "1")
    r = project("ask", Q, "--domain", "hr")
    assert r.exit_code == 0, r.output
    assert "stays warm 1 s" in r.stderr
    pid = project.started_pids()[0]
    assert gone(pid), "the idle worker did not exit"
    assert project.note() is None and "idle for 1 s: exiting" in project.log()


def test_lorag_stop_ends_the_worker(project):
    assert project("ask", Q, "--domain", "hr").exit_code == 0
    pid = project.note()["pid"]
    r = project("stop")
    assert r.exit_code == 0 and f"stopped the lorag worker (pid {pid}" in r.stdout
    assert not warm.alive(pid) and project.note() is None and "asked to stop: exiting" in project.log()
    r = project("stop")
    assert r.exit_code == 0 and "no lorag worker runs for" in r.stdout


def test_a_killed_workers_note_is_cleaned_and_a_new_worker_starts(project):
    assert project("ask", Q, "--domain", "hr").exit_code == 0
    killed = project.note()["pid"]
    os.kill(killed, signal.SIGKILL)
    assert gone(killed)
    assert project.note()["pid"] == killed  # kill -9: the note stays behind
    r = project("docs", "list", "--json")  # the note is stale: the store is opened here
    assert r.exit_code == 0 and project.note() is None
    r = project("ask", Q, "--domain", "hr")
    assert r.exit_code == 0 and "started a lorag worker" in r.stderr
    assert project.note()["pid"] != killed


def test_a_note_naming_another_process_is_stale(project):
    """A killed worker's pid taken by an unrelated process: not a worker, so the note is removed."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        warm.write_note(project.settings, {"url": "http://127.0.0.1:9", "pid": other.pid, "token": "t"})
        assert project.note() is not None
        r = project("ask", Q, "--domain", "hr", "--json")
        assert r.exit_code == 0, r.output
        assert project.note()["pid"] != other.pid and other.poll() is None  # the other process is left alone
    finally:
        other.kill()
        other.wait()


def test_a_command_that_needs_the_store_stops_the_worker(project, corpus):
    assert project("ask", Q, "--domain", "hr").exit_code == 0
    pid = project.note()["pid"]
    r = project("ingest", str(corpus), "--domain", "hr2")  # runs here: the documents keep their own paths
    assert r.exit_code == 0, r.output
    assert "stopped the lorag worker (this command runs in this process)" in r.stderr and "added 7" in r.stdout
    assert not warm.alive(pid) and project.note() is None

    assert project("ask", Q, "--domain", "hr2").exit_code == 0
    pid = project.note()["pid"]
    r = project("ask", Q, "--domain", "hr2", "--no-warm", "--json")
    assert r.exit_code == 0, r.output
    assert "stopped the lorag worker (this command runs in this process)" in r.stderr
    assert "answered_by_app" not in json.loads(r.stdout) and not warm.alive(pid) and project.note() is None


def test_eval_checks_its_arms_before_stopping_the_worker(project):
    """`lorag eval` with an unknown adapter or a repeated arm fails on its arms and leaves the worker running: the
    arms are read from the registry's cards, before the worker is stopped or the store opens."""
    assert project("ask", Q, "--domain", "hr").exit_code == 0
    pid = project.note()["pid"]
    for cmd, said in (
        (("eval", "--domain", "hr", "--ab", "base,nope"), "no adapter named 'nope'"),
        (("eval", "--domain", "hr", "--ab", "base,base"), "arm base appears twice"),
        (("eval", "robustness", "--domain", "hr", "--ab", "base,nope"), "no adapter named 'nope'"),
    ):
        r = project(*cmd)
        assert r.exit_code == 1 and said in str(r.exception), (cmd, r.output, r.exception)
        assert "stopped the lorag worker" not in r.stderr, cmd
        assert warm.alive(pid) and project.note()["pid"] == pid, cmd


def test_a_command_that_works_here_looks_for_what_it_needs_once(project, corpus, monkeypatch):
    """What a command that works in this process needs (ask's models, ingest's embedding model, eval's arms) is looked
    for once: before it stops a running worker of its settings or of others, or with none running."""
    import ui.cli_eval

    checks = []
    check_models, check_arms = cli.state.check_models, ui.cli_eval.check_arms

    def counted_models(*, generator: bool = True) -> None:
        checks.append("models" if generator else "embedder")
        check_models(generator=generator)

    def counted_arms(ab: str) -> None:
        checks.append("arms")
        check_arms(ab)

    monkeypatch.setattr(cli.state, "check_models", counted_models)
    monkeypatch.setattr(ui.cli_eval, "check_arms", counted_arms)

    def worker() -> int:  # a worker of the current settings runs
        assert project("ask", Q, "--domain", "hr").exit_code == 0
        checks.clear()
        return project.note()["pid"]

    for cmd, checked in (
        (("ask", Q, "--domain", "hr", "--no-warm", "--json"), ["models"]),
        (("ingest", str(corpus), "--domain", "hr"), ["embedder"]),
        (("eval", "--domain", "hr", "--ab", "base,model:other"), ["arms"]),  # then: no held-out split to default to
    ):
        pid = worker()
        r = project(*cmd)
        assert r.exit_code == (1 if cmd[0] == "eval" else 0), (cmd, r.output, r.exception)
        assert "stopped the lorag worker (this command runs in this process)" in r.stderr, (cmd, r.output)
        assert checks == checked and not warm.alive(pid), (cmd, checks)
        checks.clear()
        r = project(*cmd)  # none runs
        assert "stopped the lorag worker" not in r.stderr and checks == checked, (cmd, checks)
    pid = worker()
    monkeypatch.setenv("LORAG_RETRIEVAL__TOP_K", "2")
    r = project("ask", Q, "--domain", "hr", "--json")
    assert r.exit_code == 0 and "the settings changed: stopped the lorag worker" in r.stderr, r.output
    assert checks == ["models"] and not warm.alive(pid) and project.note()["pid"] != pid


def test_opening_the_store_held_by_the_worker_stops_it(project, capsys):
    """Any CLI command that opens the store itself (no API path) stops the worker first, instead of exit 3."""
    assert project("ask", Q, "--domain", "hr").exit_code == 0
    pid = project.note()["pid"]
    cli.state._settings = None
    try:
        store = cli.state.components.store
        assert store.domains() == ["hr"]
    finally:
        cli.state._components.close()
        cli.state._components = None
    assert "stopped the lorag worker (this command needs the store itself)" in capsys.readouterr().err
    assert not warm.alive(pid) and project.note() is None


def test_changed_settings_restart_the_worker(project, monkeypatch):
    assert project("ask", Q, "--domain", "hr").exit_code == 0
    pid = project.note()["pid"]
    monkeypatch.setenv("LORAG_RETRIEVAL__TOP_K", "2")
    r = project("ask", Q, "--domain", "hr", "--json")
    assert r.exit_code == 0, r.output
    assert "the settings changed: stopped the lorag worker" in r.stderr and "started a lorag worker" in r.stderr
    assert not warm.alive(pid) and project.note()["pid"] != pid
    assert len(json.loads(r.stdout)["passages"]) == 2  # the new worker has the new top_k


def test_an_ask_whose_model_cannot_be_found_fails_at_once_and_leaves_the_worker(project, monkeypatch):
    """A generator that is neither in the Hugging Face cache nor on a hub that answers (this machine: no network) is
    refused in about a second, with what to use instead, before the worker serving the old settings is stopped, a new
    one started or the store opened; with --no-warm too. That worker then answers the old settings' asks as before."""
    from assistant.models import cache as cache_mod

    assert project("ask", Q, "--domain", "hr").exit_code == 0
    pid = project.note()["pid"]
    looked_up = []

    def offline(repo_id):
        looked_up.append(repo_id)
        raise OSError("Name or service not known")

    monkeypatch.setattr(cache_mod, "_hub_probe", offline)
    monkeypatch.setattr(cli.state, "factory", worker_fakes.components_loading_the_generator)
    monkeypatch.setenv("LORAG_MODELS__GENERATOR", "lorag-tests/no-such-model")
    for extra in ([], ["--no-warm"], ["--json"]):
        t0 = time.perf_counter()
        r = project("ask", Q, "--domain", "hr", *extra)
        took = time.perf_counter() - t0
        assert r.exit_code == 1 and took < 2.0, (took, r.output)
        e = r.exception
        assert (
            str(e.args[0]).startswith(
                "model 'lorag-tests/no-such-model' is not in the Hugging Face cache and the hub cannot be reached"
            )
            and "lorag models pull" in e.hint
        ), r.output
        assert "stopped the lorag worker" not in r.stderr and "started a lorag worker" not in r.stderr, r.stderr
        assert warm.alive(pid) and project.note()["pid"] == pid and project.started_pids() == [pid]
    assert looked_up == ["lorag-tests/no-such-model"] * 3  # one look-up per ask, no retries
    monkeypatch.delenv("LORAG_MODELS__GENERATOR")
    monkeypatch.setattr(cli.state, "factory", worker_fakes.components)
    r = project("ask", Q, "--domain", "hr", "--json")  # the old settings: the same worker answers
    assert r.exit_code == 0 and json.loads(r.stdout)["answered_by_app"] == project.note()["url"], r.output
    assert project.note()["pid"] == pid


def test_keep_warm_0_and_no_warm_answer_in_this_process(project, monkeypatch):
    r = project("ask", Q, "--domain", "hr", "--no-warm", "--json")
    assert r.exit_code == 0 and "answered_by_app" not in json.loads(r.stdout)
    monkeypatch.setenv("LORAG_CLI__KEEP_WARM_S", "0")
    r = project("ask", Q, "--domain", "hr", "--json")
    assert r.exit_code == 0 and "answered_by_app" not in json.loads(r.stdout)
    assert project.note() is None and project.started_pids() == []


def test_two_concurrent_asks_start_one_worker(project):
    """Two `lorag ask` processes at once: one starts the worker, the other waits for it and asks it."""
    argv = [sys.executable, "-m", "tests.helpers.cli_with_fakes", "ask", Q, "--domain", "hr", "--json"]
    env = {**project.env(), "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    answers = [json.loads(out) for out, _ in outs]
    assert len(project.started_pids()) == 1
    url = project.note()["url"]
    assert [a["answered_by_app"] for a in answers] == [url, url]
    assert sum("started a lorag worker" in err for _, err in outs) == 1


def test_the_worker_never_imports_gradio(tmp_path):
    """The worker's app answers an ask and the CLI's calls with gradio absent from the process."""
    script = """
import sys
from fastapi.testclient import TestClient
from assistant.answer import Answer
from assistant.settings import Settings
from tests.helpers.worker_fakes import components
from ui.app import AppCore
from ui.worker import build_worker_app
s = Settings(paths={"data_dir": sys.argv[1]}, retrieval={"min_relevance": 0.2})
comps = components(s)
comps.ingestor().run([__import__("pathlib").Path(sys.argv[2])], "hr")
app = build_worker_app(AppCore(comps), "tok", lambda: {"pid": 1}, lambda: None)
c = TestClient(app, headers={"Authorization": "Bearer tok"})
r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "annual leave days?"}]})
assert r.status_code == 200, r.text
assert c.get("/v1/documents").status_code == 200 and c.get("/v1/adapters").status_code == 200
print("gradio" in sys.modules, "27 days" in r.json()["choices"][0]["message"]["content"])
comps.close()
"""
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "leave.md").write_text("# Leave\n\n## Annual leave\nFull-time staff receive 27 days of annual leave.\n")
    r = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "data"), str(corpus)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]


def test_lorag_stop_leaves_a_lorag_ui_app_alone(project):
    """`lorag ui`'s note (app.json) is not the worker's: `lorag stop` says the app still runs and leaves it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from ui.remote import note_path, write_note

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        write_note(project.settings, url)  # what `lorag ui` leaves (its pid: this process)
        r = project("stop")
        assert r.exit_code == 0, r.output
        assert "no lorag worker runs for" in r.stdout and f"the lorag app at {url} (`lorag ui`) still runs" in r.stdout
        assert note_path(project.settings).exists()
    finally:
        server.shutdown()
        server.server_close()


def test_the_worker_loads_the_lemmatizer_with_the_models(tmp_path, monkeypatch):
    """Citation matching's lemmatizer loads its dictionary (a quarter of a second) where the worker loads the
    models, before it serves, not in its first answer."""
    import uvicorn

    from assistant import citations
    from ui import worker

    calls = []
    monkeypatch.setattr(citations, "warm_lemmas", lambda: calls.append("lemmas"))

    class Server:  # serves nothing: returns at once
        def __init__(self, config):
            self.started, self.should_exit = False, False

        def run(self, sockets):
            calls.append("serve")
            self.should_exit = True
            for s in sockets:
                s.close()

    monkeypatch.setattr(uvicorn, "Server", Server)
    settings = Settings(paths={"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache"})
    worker.serve_worker(settings, "test", worker_fakes.components)
    assert calls == ["lemmas", "serve"]
