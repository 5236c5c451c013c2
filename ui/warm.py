"""The keep-warm worker, as the `lorag` CLI sees it: find it, start it, stop it.

A cold `lorag ask` spends most of its time importing torch and transformers and loading the models. When no
lorag app answers for the data folder, `lorag ask` starts a worker (`python -m ui.worker`: the app's API
without the web UI, on 127.0.0.1 and a free port) that keeps the models loaded, and asks it through
ui/remote.py as it would ask a running `lorag ui`. The worker exits after `cli.keep_warm_s` seconds without
a request, or on `lorag stop`.

Files under the data folder:
- `worker.json` (mode 0600): the worker's URL, process id, random token (the API's password) and the
  fingerprint of the settings it was started with; written once it listens, removed when it exits.
- `worker.lock`: held while a worker starts, so that concurrent asks start one worker, not two.
- `logs/worker.log`: what the worker prints (its start, its idle exit, errors).

A note whose process is gone (the worker was killed) is removed when found. A worker started with other
settings than the command's is stopped (the next ask starts one with the current settings). Commands that
need the store itself stop the worker first; a `lorag ui` app is never stopped from here.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from assistant.child_env import child_env
from assistant.errors import LoragError
from ui.remote import AppClient, write_private_json
from ui.settings_fingerprint import settings_id

NOTE, LOCK, LOG = "worker.json", "worker.lock", "worker.log"
USER = "lorag"  # the API's user name; the token is its password
START_TIMEOUT_S = 600.0  # loading the models on a busy 2-core machine takes tens of seconds
STOP_TIMEOUT_S = 30.0
LOG_MAX_BYTES = 2**20

log = logging.getLogger(__name__)


class WorkerStartError(LoragError):
    """The worker exited, or did not answer in time, before it served."""


def note_path(settings: Any) -> Path:
    return Path(settings.paths.data_dir) / NOTE


def lock_path(settings: Any) -> Path:
    return Path(settings.paths.data_dir) / LOCK


def log_path(settings: Any) -> Path:
    return Path(settings.paths.data_dir) / "logs" / LOG


def available() -> bool:
    """The worker's server (fastapi, uvicorn: the `ui` extra) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn"))


def duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


# -- the note -------------------------------------------------------------------------------------------
def write_note(settings: Any, note: dict[str, Any]) -> Path:
    """Written by the worker once it listens: readable by this user only (it holds the token)."""
    return write_private_json(note_path(settings), note)


def read_note(settings: Any) -> dict[str, Any] | None:
    try:
        note = json.loads(note_path(settings).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(note, dict) and isinstance(note.get("pid"), int) and note.get("url") and note.get("token")
    return note if ok else None


def remove_note(settings: Any, pid: int | None = None) -> None:
    """Remove the note (only if it is still `pid`'s, when given)."""
    path = note_path(settings)
    try:
        if pid is None or json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


# -- processes ------------------------------------------------------------------------------------------
def alive(pid: int) -> bool:
    """The process runs (a child of this process that exited is reaped, not counted as alive)."""
    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    except ChildProcessError:  # not our child: ask the system
        pass
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: not our worker
        return False
    return True


def is_worker_process(pid: int) -> bool:
    """The process is a lorag worker (its command line, where /proc shows it; elsewhere assumed)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return alive(pid) and not Path("/proc/self").exists()
    except OSError:
        return False
    return b"ui.worker" in cmdline


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- find, start, stop ----------------------------------------------------------------------------------
def client_for(note: dict[str, Any]) -> AppClient:
    client = AppClient(str(note["url"]), (USER, str(note["token"])))
    client.worker_pid = int(note["pid"])
    return client


def _answers(client: AppClient) -> bool:
    return client.healthy("/v1/worker", timeout=5.0)  # behind the token: it is this folder's worker


def current(settings: Any) -> AppClient | None:
    """The worker of this data folder that answers; a stale note (its process gone, or not a worker) is
    removed; a worker that runs but does not answer is an error to act on."""
    note = read_note(settings)
    if note is None:
        return None
    pid = note["pid"]
    if not alive(pid) or not is_worker_process(pid):
        remove_note(settings, pid)
        log.info("removed a stale worker note (process %s is gone)", pid)
        return None
    client = client_for(note)
    if _answers(client):
        return client
    if _wait_gone(pid, 5.0):  # it was exiting (idle, or stopped)
        remove_note(settings, pid)
        return None
    raise LoragError(
        f"the lorag worker (process {pid}) holds this data folder but does not answer at {note['url']}",
        hint="`lorag stop` ends it",
    )


def find_worker(settings: Any) -> AppClient | None:
    """The running worker of this data folder, whatever settings it was started with (started_with says whether
    these), or None. Waits while another command starts one."""
    client = current(settings)
    if client is None and lock_path(settings).exists():
        from filelock import FileLock, Timeout

        try:  # a worker is starting: wait for it rather than open the store it is taking
            with FileLock(lock_path(settings), timeout=0):
                pass
        except Timeout:
            say("a lorag worker is starting for this data folder: waiting for it")
            with FileLock(lock_path(settings), timeout=START_TIMEOUT_S):
                client = current(settings)
    return client


def started_with(settings: Any) -> bool:
    """The running worker (its note) was started with these settings."""
    return (read_note(settings) or {}).get("settings_id") == settings_id(settings)


def start_worker(
    settings: Any,
    *,
    config: Path | None = None,
    factory: str | None = None,
    check: Callable[[], None] | None = None,
) -> tuple[AppClient, bool]:
    """The worker for these settings, started if none runs: (its client, whether this call started it).
    Under the start lock, so that concurrent commands start one worker; `check` runs there before a worker
    is started (the command's arguments against the store: a typo starts nothing). Raises WorkerStartError."""
    from filelock import FileLock

    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path, timeout=START_TIMEOUT_S):
        client = current(settings)
        if client is not None and started_with(settings):
            return client, False
        if client is not None:
            stop_worker(settings)
        if check is not None:
            check()
        return _spawn(settings, config, factory), True


def _spawn(settings: Any, config: Path | None, factory: str | None) -> AppClient:
    data_dir = Path(settings.paths.data_dir).expanduser().resolve()
    logfile = log_path(settings)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    if logfile.exists() and logfile.stat().st_size > LOG_MAX_BYTES:  # the previous one is kept, as worker.log.1
        logfile.replace(logfile.with_name(LOG + ".1"))
    start = logfile.stat().st_size if logfile.exists() else 0
    argv = [sys.executable, "-m", "ui.worker", "--settings-id", settings_id(settings)]
    if config is not None:
        argv += ["--config", str(Path(config).resolve())]
    if factory:
        argv += ["--factory", factory]
    env = child_env(LORAG_PATHS__DATA_DIR=str(data_dir))  # the worker runs this same code
    with logfile.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C in this terminal does not reach it
            close_fds=True,
        )
    try:
        return _wait_ready(settings, proc, logfile, start)
    except BaseException:
        _end(proc.pid)
        raise


def _wait_ready(settings: Any, proc: subprocess.Popen, logfile: Path, start: int) -> AppClient:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        code = proc.poll()
        if code is not None:
            raise WorkerStartError(
                f"the lorag worker exited ({code}) before it served: {_last_error(logfile, start)}",
                hint=f"its log: {logfile}",
            )
        note = read_note(settings)
        if note is not None and note["pid"] == proc.pid:
            client = client_for(note)
            if _answers(client):
                return client
        if time.monotonic() > deadline:
            raise WorkerStartError(
                f"the lorag worker did not answer within {START_TIMEOUT_S:.0f} s", hint=f"its log: {logfile}"
            )
        time.sleep(0.1)


def _last_error(logfile: Path, start: int) -> str:
    try:
        with logfile.open("rb") as fh:
            fh.seek(start)
            lines = [ln.strip() for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    errors = [ln for ln in lines if ln.startswith("error:")]
    return (errors or lines or ["no output"])[-1].removeprefix("error:").strip()


def _end(pid: int) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_gone(pid, wait):
            return


def stop_worker(settings: Any) -> dict[str, Any] | None:
    """Stop this data folder's worker and wait until it has exited (its store released). Returns its note, or
    None when none ran (a stale note is removed)."""
    note = read_note(settings)
    if note is None:
        return None
    pid = note["pid"]
    if not alive(pid) or not is_worker_process(pid):
        remove_note(settings, pid)
        return None
    try:  # ask it to exit: it finishes the answers in flight
        client_for(note).post("/v1/worker/stop", timeout=5.0)
    except LoragError:
        pass
    if not _wait_gone(pid, STOP_TIMEOUT_S):
        _end(pid)
    remove_note(settings, pid)
    return note


def say(text: str) -> None:
    """One line for the user on stderr (stdout stays the command's output)."""
    print(text, file=sys.stderr, flush=True)
