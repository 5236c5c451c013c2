"""Background jobs for the app (ingest, synth, train, eval): one thread each, state on disk.

Each job's state is a JSON file `<data_dir>/jobs/<id>.json` (kind, status, progress, log lines,
loss curve, result), rewritten as the job advances, so a page reload — or a restarted server —
shows it. A job still marked running when the server starts was cut off: it is marked
`interrupted` (training can be continued with resume).
"""

from __future__ import annotations

import json
import math
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable

from assistant.errors import LoragError
from assistant.markup import markdown_literal
from assistant.names import check_id

RUNNING, DONE, FAILED, INTERRUPTED = "running", "done", "failed", "interrupted"
KEEP = 200  # finished jobs kept on disk (older ones are removed when the server starts)
THROTTLE_S = 0.2  # progress is written at most this often; the latest is written once the window passes


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Job:
    """A handle the job function reports through: `progress`, `log`, `point` (loss), `result`."""

    def __init__(self, runner: "JobRunner", state: dict[str, Any]):
        self.runner = runner
        self.state = state
        self._last_save = float("-inf")  # never written: the first update is written at once
        self._t0 = time.time()
        self._trailing: threading.Timer | None = None  # writes a throttled update once the window passes
        # held while the state changes and while the trailing writer reads it (the job's thread changes it)
        self.lock = threading.RLock()

    def _elapsed(self) -> float:
        return round(time.time() - self._t0, 2)

    @property
    def id(self) -> str:
        return self.state["id"]

    def progress(self, stage: str, done: int, total: int, *, rate: str | None = None) -> None:
        """Where the job is: a stage, and how far through it (done of total; total 0 when unknown). The times
        (seconds since the job started, and the clock's time of this update) give the stage's elapsed time and an
        ETA that go on between two updates; `rate`: the job's own throughput and ETA in words (an ingest's
        chunks/s), shown instead."""
        self._progress(stage, done, total, rate=rate)

    def phase(self, stage: str, done: int, total: int) -> None:
        """Where a run of named phases is (an evaluation: retrieve, generate, score, report), as `progress`; a phase
        the run has left is kept with its last count and time (progress's "ended"), so the job's line shows how it
        ended (generate 4/4) however soon the next phase began, and whenever it is polled."""
        self._progress(stage, done, total, phases=True)

    def _progress(self, stage: str, done: int, total: int, *, rate: str | None = None, phases: bool = False) -> None:
        with self.lock:
            old = self.state.get("progress") or {}
            t = self._elapsed()
            same = old.get("stage") == stage
            now: dict[str, Any] = {
                "stage": stage,
                "done": done,
                "total": total,
                "stage_t": old.get("stage_t", 0.0) if same else t,
                "t": t,
                "at": round(time.time(), 2),
            }
            if rate:
                now["rate"] = rate
            if phases:
                ended = list(old.get("ended") or [])
                if old.get("stage") and not same:
                    left = {k: old.get(k) or 0 for k in ("done", "total")}
                    ended.append({"stage": old["stage"], **left, "s": round(t - (old.get("stage_t") or 0.0), 2)})
                if ended:
                    now["ended"] = ended
            self.state["progress"] = now
        self.save(throttle=True)

    def log(self, line: str) -> None:
        with self.lock:
            self.state["log"].append(f"{time.strftime('%H:%M:%S')} {line}")
            del self.state["log"][:-200]
        self.save()

    def point(self, entry: dict[str, Any]) -> None:
        """A training log entry: {"step", "max_steps", "loss"?, "eval_loss"?, "num_input_tokens_seen"?}, or a stage
        the run has reached before its first step ({"stage": "loading the base model"})."""
        if "step" not in entry:
            if entry.get("stage"):
                self.progress(str(entry["stage"]), 0, 0)
                self.log(str(entry["stage"]))
            return
        point = {k: entry[k] for k in ("step", "loss", "eval_loss", "max_steps", "epoch") if k in entry}
        if isinstance(entry.get("num_input_tokens_seen"), (int, float)):
            point["tokens"] = int(entry["num_input_tokens_seen"])
        point["t"] = self._elapsed()
        with self.lock:
            self.state["curve"].append(point)
        if "max_steps" in entry:
            self.progress("training", entry["step"], entry["max_steps"])
        self.save()

    def save(self, throttle: bool = False) -> None:
        """Write the state; `throttle`: at most once per THROTTLE_S, an update inside the window is written
        when it passes (so the latest progress is never lost, e.g. "loading the embedding model")."""
        with self.lock:
            wait = self._last_save + THROTTLE_S - time.monotonic()
            if throttle and wait > 0:
                if self._trailing is None:
                    self._trailing = threading.Timer(wait, self._write_trailing)
                    self._trailing.daemon = True
                    self._trailing.start()
                return
            self._last_save = time.monotonic()
            if self._trailing is not None:  # this write carries the held update: no later write of an older state
                self._trailing.cancel()
                self._trailing = None
        self.runner._write(self.state)

    def _write_trailing(self) -> None:
        with self.lock:  # the state as it is: the job's thread waits to change it
            self._trailing = None
            self._last_save = time.monotonic()
            try:
                self.runner._write(self.state)
            except OSError:  # the jobs folder is gone (a data folder removed): nothing to show progress in
                pass


class JobRunner:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        for n, state in enumerate(self.all()):  # jobs left "running" by a previous server were cut off
            if n >= KEEP and state.get("status") != RUNNING:
                (self.folder / f"{state['id']}.json").unlink(missing_ok=True)
            elif state.get("status") == RUNNING:
                state["status"] = INTERRUPTED
                state["error"] = "the server stopped while this job ran"
                state["finished_at"] = _now()
                self._write(state)

    def _write(self, state: dict[str, Any]) -> None:
        with self._lock:
            path = self.folder / f"{state['id']}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1, default=str), encoding="utf-8")
            tmp.replace(path)

    def get(self, job_id: str) -> dict[str, Any] | None:
        try:
            path = self.folder / f"{check_id(job_id, 'job id')}.json"
        except LoragError:
            return None
        if not path.is_file():
            return None
        with self._lock:
            return json.loads(path.read_text(encoding="utf-8"))

    def all(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every job, newest first."""
        out = []
        for p in self.folder.glob("*.json"):
            try:
                with self._lock:
                    s = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if kind is None or s.get("kind") == kind:
                out.append(s)
        return sorted(out, key=lambda s: (s.get("started_at", ""), s.get("seq", 0)), reverse=True)

    def latest(self, kind: str) -> dict[str, Any] | None:
        jobs = self.all(kind)
        return jobs[0] if jobs else None

    def running(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [s for s in self.all(kind) if s.get("status") == RUNNING]

    def start(self, kind: str, title: str, fn: Callable[[Job], Any], params: dict[str, Any] | None = None) -> str:
        """Run `fn(job)` in a daemon thread; its return value (JSON-able) becomes the job's result."""
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{uuid.uuid4().hex[:6]}"
        state = {
            "id": job_id,
            "kind": kind,
            "title": title,
            "params": params or {},
            "status": RUNNING,
            "started_at": _now(),
            "finished_at": None,
            "seq": time.monotonic(),
            "progress": None,
            "log": [],
            "curve": [],
            "result": None,
            "error": None,
        }
        job = Job(self, state)
        job.save()

        def run() -> None:
            t0 = time.perf_counter()
            try:
                job.log(f"started: {title}")
                result = fn(job)
                with job.lock:
                    state["result"], state["status"] = result, DONE
                job.log(f"done in {time.perf_counter() - t0:.1f}s")
            except BaseException as e:  # noqa: BLE001 - a job reports every failure
                hint = getattr(e, "hint", None)
                with job.lock:
                    state["status"] = FAILED
                    state["error"] = (str(e.args[0]) if e.args else type(e).__name__) + (f" — {hint}" if hint else "")
                    state["hint"] = hint  # also on its own: the CLI prints it on its own line, as without the app
                    if not hasattr(e, "exit_code"):  # not a LoragError: keep the traceback for debugging
                        state["traceback"] = traceback.format_exc()[-4000:]
                job.log("failed: " + state["error"])
            finally:
                with job.lock:
                    state["finished_at"] = _now()
                job.save()

        t = threading.Thread(target=run, name=f"lorag-job-{job_id}", daemon=True)
        self._threads[job_id] = t
        t.start()
        return job_id

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        t = self._threads.get(job_id)
        if t is not None:
            t.join(timeout)
        return self.get(job_id)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def progress_line(job: dict[str, Any] | None, now: float | None = None) -> str:
    """A running job in words (Markdown; its title, stage and error shown as written): the phases it has ended (an
    evaluation's), its stage, step or count, the loss so far, tokens/s, the stage's elapsed time and an ETA, both as
    of `now` (the clock's time; default: this moment), so they go on between two updates; a finished one, how it
    ended."""
    if not job:
        return ""
    head = f"**{markdown_literal(job['title'])}** — {job['status']}"
    if job["status"] != RUNNING:
        return head + (f" · ⚠ {markdown_literal(job['error'])}" if job.get("error") else "")
    p = job.get("progress") or {}
    parts = [_ended(e) for e in p.get("ended") or [] if isinstance(e, dict)]
    parts.append(markdown_literal(p.get("stage") or "starting"))
    done, total = p.get("done") or 0, p.get("total") or 0
    curve = job.get("curve") or []
    if p.get("stage") == "training":
        if total:
            parts.append(f"step {done}/{total}")
        losses = [c["loss"] for c in curve if isinstance(c.get("loss"), (int, float))]
        if losses:
            parts.append(f"loss {losses[-1]:.3f}")
        timed = [c for c in curve if isinstance(c.get("tokens"), int) and "t" in c]
        if len(timed) >= 2 and timed[-1]["t"] > timed[0]["t"]:
            rate = (timed[-1]["tokens"] - timed[0]["tokens"]) / (timed[-1]["t"] - timed[0]["t"])
            parts.append(f"{rate:,.0f} tokens/s")
        stepped = [c for c in curve if "t" in c]
        if total and len(stepped) >= 2 and stepped[-1]["step"] > stepped[0]["step"]:
            per_step = (stepped[-1]["t"] - stepped[0]["t"]) / (stepped[-1]["step"] - stepped[0]["step"])
            parts.append(f"ETA {_clock(per_step * (total - done))}")
        else:  # no ETA before two steps are logged (minutes on a CPU): the time training has run goes on instead
            parts.append(f"{_clock(sum(_stage_time(p, now)))} elapsed")
    elif total:
        parts.append(f"{done}/{total}")
        if p.get("rate"):
            parts.append(p["rate"])
        else:
            ran, since = _stage_time(p, now)
            parts.append(f"{_clock(ran + since)} elapsed")
            eta = eta_words(ran, done, total, ran + since)
            if eta:
                parts.append(eta)
    return head + " · " + " · ".join(parts)


def _stage_time(p: dict[str, Any], now: float | None) -> tuple[float, float]:
    """(the stage's time at its last update, the time since that update as of `now`: default this moment)."""
    ran = max((p.get("t") or 0) - (p.get("stage_t") or 0), 0.0)
    at = p.get("at")
    since = max((time.time() if now is None else now) - at, 0.0) if isinstance(at, (int, float)) else 0.0
    return ran, since


def eta_words(ran: float, done: int, total: int, elapsed: float) -> str | None:
    """A count's ETA: the time per item so far (`ran` seconds of the stage when `done` of `total` were done) times
    the items left, less the time since (`elapsed`: the stage's time now), so it counts down between two counts
    rather than standing still; "longer than estimated" once that runs out; None before the first item is done or
    after the last."""
    if not done or done >= total or ran <= 0:
        return None
    left = ran / done * total - elapsed
    return f"ETA {_clock(math.ceil(left))}" if left > 0 else "longer than estimated"


def _ended(phase: dict[str, Any]) -> str:
    """A phase a job has ended, as its line shows it: 'generate 4/4 done (1:30)'."""
    count = f" {phase.get('done') or 0}/{phase['total']}" if phase.get("total") else ""
    return f"{markdown_literal(str(phase.get('stage') or ''))}{count} done ({_clock(phase.get('s') or 0)})"


def read_loss_log(run_dir: Path) -> list[dict[str, Any]]:
    """The training run's `log.jsonl` (what a job of a previous server wrote), as curve points."""
    f = Path(run_dir) / "log.jsonl"
    if not f.is_file():
        return []
    out = []
    for line in f.read_text(encoding="utf-8").splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "step" in e and ("loss" in e or "eval_loss" in e):
            out.append({k: e[k] for k in ("step", "loss", "eval_loss") if k in e})
    return out
