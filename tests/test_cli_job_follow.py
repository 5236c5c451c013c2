"""`lorag synth/train/eval` while `lorag ui` runs follow the app's job on a terminal: each log line on a line of its
own above the spinner, the spinner's line wrapping rather than cut at the terminal's width, and nothing of it left
once the job ends."""

from __future__ import annotations

import sys
import time

from tests.helpers.terminal import Tty, screen
from ui import cli_state

TITLE = "A/B base,handbook-v1 on handbook (4 questions)"


def _job(status: str, log: list[str], progress: dict | None = None) -> dict:
    return {"id": "j1", "title": TITLE, "status": status, "log": [f"20:08:12 {t}" for t in log], "progress": progress}


class _App:
    """An app whose eval job goes: started, generating (2 of 4 answers), done with its report."""

    url = "http://127.0.0.1:1"

    def __init__(self, tty: Tty, width: int):
        ended = [{"stage": "retrieve", "done": 4, "total": 4, "s": 0.2}]
        generating = {"stage": "generate", "done": 2, "total": 4, "t": 31.0, "stage_t": 0.5, "at": time.time()}
        self.states = [
            _job("running", ["started: " + TITLE], {"stage": "starting", "done": 0, "total": 0}),
            _job("running", ["started: " + TITLE], {**generating, "ended": ended}),
            _job("done", ["started: " + TITLE, "report r1: /data/reports/r1/report.html", "done in 32.1s"]),
        ]
        self.tty, self.width, self.seen = tty, width, []

    def start_job(self, kind: str, **params) -> str:
        return "j1"

    def job(self, job_id: str) -> dict:
        time.sleep(0.3)  # the spinner draws the state it was given last
        self.seen.append(screen(self.tty.getvalue(), self.width))
        return self.states[min(len(self.seen) - 1, len(self.states) - 1)]


def terminal(monkeypatch, width: int) -> "Tty":
    """stdout and stderr on one fake xterm of `width` columns and 25 lines (rich draws its spinner there); sleeps
    cut to 50 ms."""
    tty = Tty()
    monkeypatch.setattr(sys, "stdout", tty)
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("LINES", "25")
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(time, "sleep", lambda s, _sleep=time.sleep: _sleep(min(s, 0.05)))
    return tty


def test_the_apps_job_on_a_terminal_keeps_its_log_lines_whole_and_its_progress_in_sight(monkeypatch):
    width = 80
    tty = terminal(monkeypatch, width)
    app = _App(tty, width)

    job = cli_state.run_in_app(app, "eval", {}, domain="handbook")

    assert job["status"] == "done"
    # while it generated: the whole line, wrapped at 80 columns, with the phase ended, the count and the ETA
    during = " ".join(" ".join(app.seen[2]).split())
    assert "retrieve 4/4 done (0:00) · generate · 2/4 ·" in during and "ETA" in during, app.seen[2]
    assert all(len(line) <= width for line in app.seen[2])
    # at the end: each log line on its own line, in order, and no spinner left over
    shown = [line for line in screen(tty.getvalue(), width) if line]
    assert shown == [
        "started job j1 in the app (it goes on if you stop watching)",
        "started: " + TITLE,
        "report r1: /data/reports/r1/report.html",
        "done in 32.1s",
    ], shown


def test_lorag_eval_through_the_app_ends_with_the_phase_bars_it_leaves_when_run_here(monkeypatch):
    """The app's evaluation job's phases (each ended one at its count and time, then the last) are drawn as the bars
    `lorag eval` in this process leaves on the terminal: both ways end with the same lines."""
    from ui.cli_progress import StageBars, job_phase_bars

    phases = [("retrieve", 4, 4, 0.2), ("generate", 4, 4, 30.0), ("score", 4, 4, 5.0), ("report", 1, 1, 1.0)]
    width, shown = 80, []
    for through_app in (False, True):
        tty = Tty()
        monkeypatch.setattr(sys, "stderr", tty)
        monkeypatch.setenv("COLUMNS", str(width))
        monkeypatch.setenv("TERM", "xterm-256color")
        for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            monkeypatch.delenv(name, raising=False)
        if through_app:
            ended = [{"stage": s, "done": d, "total": t, "s": sec} for s, d, t, sec in phases[:-1]]
            job_phase_bars({"stage": "report", "done": 1, "total": 1, "t": 37.2, "stage_t": 36.2, "ended": ended}, True)
        else:  # what run_eval's progress does to the bars in this process, on a clock of the same times
            clock = [0.0]
            with StageBars(True, get_time=lambda clock=clock: clock[0]) as bars:
                for stage, done, total, sec in phases:
                    bars(stage, 0, total)
                    clock[0] += sec
                    bars(stage, done, total)
        shown.append([line.rstrip() for line in screen(tty.getvalue(), width) if line.strip()])
    assert shown[1] == shown[0], shown
    assert [line.split()[0] for line in shown[1]] == ["retrieve", "generate", "score", "report"]
    assert shown[1][1].endswith("4/4 0:00:30"), shown[1]
    job_phase_bars({"stage": "report", "done": 1, "total": 1}, False)  # not a terminal, or --json: nothing


class _TrainApp:
    """An app whose train job has logged its first line by the first poll, trains, then is done."""

    url = "http://127.0.0.1:1"
    title = "train bashdocs (1 step)"

    def __init__(self):
        started = "started: " + self.title
        training = {"stage": "training", "done": 0, "total": 1, "t": 3.0, "stage_t": 1.0, "at": time.time()}
        self.states = [
            {"status": "running", "log": [started], "progress": {"stage": "loading the base model"}},
            {"status": "running", "log": [started, "loss 2.1"], "progress": training},
            {"status": "running", "log": [started, "loss 2.1"], "progress": training},
            {"status": "done", "log": [started, "loss 2.1", "done in 209.0s"], "progress": training},
        ]
        self.polls = 0

    def start_job(self, kind: str, **params) -> str:
        return "j2"

    def job(self, job_id: str) -> dict:
        self.polls += 1
        time.sleep(0.1)  # the spinner draws a few frames between two polls
        s = self.states[min(self.polls - 1, len(self.states) - 1)]
        return {"id": job_id, "title": self.title, **s, "log": [f"20:08:12 {t}" for t in s["log"]]}


def test_the_spinner_clears_its_line_before_each_log_line_and_is_not_drawn_after_the_last(monkeypatch):
    """`lorag train` through the app on a terminal (log lines on stdout, the spinner on stderr, one screen): no bare
    spinner before the first log line, every spinner drawing erased on its own line before anything else is printed
    (never ended by a line feed, which would leave it in the scrollback of a terminal that does not move back up),
    and nothing of it after the job's last line."""
    width = 80
    tty = terminal(monkeypatch, width)

    job = cli_state.run_in_app(_TrainApp(), "train", {}, domain="bashdocs")

    assert job["status"] == "done"
    raw = tty.getvalue()
    frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    drawn = [i for i, ch in enumerate(raw) if ch in frames]
    assert drawn, raw  # it did spin while the job trained
    assert not any(ch in frames for ch in raw[: raw.index("started: ")]), raw  # no bare spinner before the first line
    assert not any(ch in frames for ch in raw[raw.index("done in 209.0s") :]), raw  # none after the last
    for i in drawn:  # each drawing is erased (erase-line) before a line feed or the next log line
        erased, fed = raw.find("\x1b[2K", i), raw.find("\n", i)
        assert erased != -1 and (fed == -1 or erased < fed), repr(raw[i : i + 120])
    shown = [line for line in screen(raw, width) if line]
    assert shown == [
        "started job j2 in the app (it goes on if you stop watching)",
        "started: train bashdocs (1 step)",
        "loss 2.1",
        "done in 209.0s",
    ], shown
