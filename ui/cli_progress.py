"""`lorag ingest` progress on stderr: a live bar on a terminal, plain lines otherwise (logs, CI, pipes).

Plain lines: one per finished file; for a file spanning several embed batches, one per batch staged;
a file's chunk count once it is read, when nothing was printed for `every` seconds (so a slow
file is announced, without two lines for every small one); and, at most every `every` seconds, the chunks
embedded of the (estimated) total, chunks/s and an ETA. Stdout (the report, --json) is never touched.
`job` shows the progress of the app's ingest job (the CLI through a running app) the same way.

StageBars: `lorag eval`'s bars, one per stage (retrieve, generate, score, report), each left at its last count.
JobSpinner: the spinner under the log lines of an app's job that `lorag synth/train/eval` follow.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ingest.meter import Throughput


class IngestProgress:
    def __init__(self, stream: TextIO | None = None, *, every: float = 2.0):
        self.stream = stream or sys.stderr
        self.every = every
        self.live = self.stream.isatty()
        self._bar: Any = None
        self._task: Any = None
        self._last: float | None = None  # when a line was last printed (monotonic; None: never)
        self._rate = ""  # the latest throughput in words, shown on the live bar
        self._rate_line: float | None = None  # when a throughput line was last printed
        self._job_words = ""  # the app's job stage last printed (before its files)
        self._job_files: set[int] = set()  # the app's job's files printed (their number; 0: the total)
        self._job_total = 0  # the app's job's files to read
        self._job_rate = ""  # the app's job's chunks/s and ETA last printed

    def __enter__(self) -> "IngestProgress":
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream, highlight=False, soft_wrap=True)
            self._bar = Progress(
                TextColumn("[bold]ingest[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=console,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=None)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def file(self, name: str, done: int, total: int, status: str = "") -> None:
        """A file finished, with its outcome (added, updated, unchanged, failed or skipped)."""
        if self._bar is not None:
            what = f"{name} {status}".strip()
            self._bar.update(self._task, completed=done, total=total, description=self._with_rate(what))
        elif done == 0:
            self._line(f"ingest: {total} file(s) to read")
        else:
            self._line(f"ingest: {done}/{total} files, {name} {status or 'done'}")

    def chunks(self, name: str, done: int, total: int) -> None:
        """`done` of a file's `total` chunks are embedded and staged (0: the file is read and chunked)."""
        if self._bar is not None:
            self._bar.update(self._task, description=self._with_rate(f"{name}: {done}/{total} chunks"))
        elif 0 < done < total:  # a file spanning several embed batches
            self._line(f"ingest: {name}: {done}/{total} chunks embedded")
        elif done == 0 and _due(self._last, self.every):
            self._line(f"ingest: {name}: {total} chunks to embed")

    def throughput(self, t: "Throughput") -> None:
        """Chunks embedded so far, chunks/s and the ETA (after each staged slice)."""
        self._rate = t.words()
        if self._bar is None and t.chunks_per_s is not None and _due(self._rate_line, self.every):
            self._rate_line = time.monotonic()
            self._line(f"ingest: {self._rate}")

    def job(self, state: dict[str, Any]) -> None:
        """The app's ingest job as polled (GET /v1/jobs/<id>, every poll, the finished job's last): on a terminal,
        the bar; otherwise the plain lines of an ingest in this process: the files to read, one line per file
        done (the files that finished between two polls from the job's result once it is done), the stage
        before the files (loading the model) and, at most every `every` seconds, chunks/s and the ETA."""
        status = state.get("status")
        p = state.get("progress") or {}
        done, total = int(p.get("done") or 0), int(p.get("total") or 0)
        if self._bar is not None:
            if status == "running":
                parts = [p.get("stage") or "starting"] + ([f"{done}/{total} files"] if total else [])
                words = " · ".join(parts + ([p["rate"]] if p.get("rate") else []))  # chunks, chunks/s, ETA
                self._bar.update(self._task, completed=done, total=total or None, description=words)
            return
        if status not in ("running", "done"):  # failed or cut off: the CLI says why
            return
        stage = str(p.get("stage") or "starting")
        if total:  # the files: "reading files" (0 done), then each file as "<name> <status>" (the latest)
            self._job_total = total
            if not self._job_files:
                self._line(f"ingest: {total} file(s) to read")
                self._job_files.add(0)
            if status == "running" and done and done not in self._job_files and done - 1 in self._job_files:
                self._job_files.add(done)
                self._line(f"ingest: {done}/{total} files, {stage}")
            # a file past one that finished between two polls waits for the job's result, which names both: the
            # lines stay in order
        elif status == "running" and stage != self._job_words:
            self._job_words = stage
            self._line(f"ingest: {stage}")
        if status == "done":
            self._job_missed(state.get("result") or {})
        rate = p.get("rate")
        if (
            rate
            and "chunks/s" in rate
            and rate != self._job_rate
            and (status == "done" or _due(self._rate_line, self.every))
        ):
            self._job_rate, self._rate_line = rate, time.monotonic()
            self._line(f"ingest: {rate}")

    def _job_missed(self, result: dict[str, Any]) -> None:
        """The files that finished between two polls, from the done job's results: the files of the run are its
        last results but the removed (--sync) and those left out (other formats), in the order they finished."""
        files = [r for r in result.get("results") or [] if r.get("status") not in ("removed", "left out")]
        files.sort(key=lambda r: r.get("order", -1))  # as they finished (an app's results are in upload order)
        total = self._job_total or len(files)
        files = files[-total:] if total else []
        for n, r in enumerate(files, start=total - len(files) + 1):
            if n not in self._job_files:
                self._job_files.add(n)
                self._line(
                    f"ingest: {n}/{total} files, {r.get('display') or r.get('path')} {r.get('status') or 'done'}"
                )

    def _with_rate(self, text: str) -> str:
        return f"{text} · {self._rate}" if self._rate else text

    def _line(self, text: str) -> None:
        self._last = time.monotonic()
        print(text, file=self.stream, flush=True)


class JobSpinner:
    """A spinner with a job's progress line, on a terminal's stderr, under the job's log lines: drawn only once
    `show` gives it a line (no bare spinner), its line wrapping at the terminal's width; `clear` erases what it drew
    and leaves the cursor at the start of the line it took (nothing redrawn, no line fed), so a log line printed
    next takes its place and the next `show` draws it below; after the last `clear` nothing of it is left."""

    def __init__(self, console: Any = None):
        from rich.console import Console
        from rich.spinner import Spinner

        self.console = console or Console(stderr=True, highlight=False)
        self._spinner = Spinner("dots", style="status.spinner")
        self._live: Any = None

    def show(self, text: Any) -> None:
        """Draw the spinner with `text` (a rich Text or str), below what was printed since the last `clear`."""
        self._spinner.update(text=text)
        if self._live is None:
            from rich.live import Live

            # a new live display each time: one restarted would move up over the lines printed since it last drew
            self._live = Live(self._spinner, console=self.console, transient=True, refresh_per_second=12.5)
            self._live.start(refresh=True)
        else:
            self._live.refresh()

    def clear(self) -> None:
        """Erase the spinner, drawing nothing in its place (a live display redraws its content when it stops: here
        that is an empty group, which only erases)."""
        live, self._live = self._live, None
        if live is not None:
            from rich.console import Group

            live.update(Group(), refresh=False)
            live.stop()

    def __enter__(self) -> "JobSpinner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.clear()


def _due(last: float | None, every: float) -> bool:
    """Nothing printed yet, or `every` seconds passed since `last` (monotonic time has no fixed origin: a machine
    booted a minute ago is at about 60)."""
    return last is None or time.monotonic() - last >= every


class StageBars:
    """Rich progress bars, one per stage, each kept at its last count when the next begins (generate 4/4 stays above
    score); the elapsed time and the ETA go on between two counts (the ETA counts down from the time per item so far,
    ui.jobs.eta_words). Silent when not `enabled` (stderr not a terminal, or --json). `get_time`: the bars' clock."""

    def __init__(self, enabled: bool, get_time: Any = None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description:>9}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            _eta_column(),
            console=Console(stderr=True, highlight=False, soft_wrap=True),
            disable=not enabled,
            **({"get_time": get_time} if get_time is not None else {}),
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> "StageBars":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total, ran=0.0)
        task = self.progress.tasks[self.tasks[stage]]
        moved = done != task.completed
        self.progress.update(self.tasks[stage], completed=done, total=total)
        if moved:  # the stage's time at this count: the ETA counts down from it
            self.progress.update(self.tasks[stage], ran=task.elapsed or 0.0)

    def eta(self, stage: str) -> str:
        """The stage's ETA as its bar shows it now."""
        return str(_eta_column().render(self.progress.tasks[self.tasks[stage]]))


def _eta_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Eta(ProgressColumn):
        def render(self, task: Any) -> Text:
            from ui.jobs import eta_words

            if task.finished or not task.total:
                return Text("")
            words = eta_words(task.fields.get("ran", 0.0), int(task.completed), int(task.total), task.elapsed or 0.0)
            return Text(words or "ETA -:--", style="progress.remaining")

    return Eta()


def job_phase_bars(progress: dict[str, Any] | None, enabled: bool) -> None:
    """The bars `lorag eval` leaves when it runs in this process (one per phase, at its last count and time), drawn
    from the phases of the app's evaluation job (its progress: the phases ended, and the last) once it is done, so
    both ways end with the same lines. Silent when not `enabled`, as StageBars."""
    p = progress or {}
    phases = [e for e in p.get("ended") or [] if isinstance(e, dict) and e.get("stage")]
    if p.get("stage"):
        ran = max((p.get("t") or 0.0) - (p.get("stage_t") or 0.0), 0.0)
        phases.append({"stage": p["stage"], "done": p.get("done") or 0, "total": p.get("total") or 0, "s": ran})
    if not enabled or not phases:
        return
    clock = [0.0]  # the bars' clock: each phase's bar runs for the time the job took on it
    with StageBars(True, get_time=lambda: clock[0]) as bars:
        for ph in phases:
            stage, total = str(ph["stage"]), int(ph.get("total") or 0)
            bars(stage, 0, total)
            clock[0] += float(ph.get("s") or 0.0)
            bars(stage, int(ph.get("done") or 0), total)
            bars.progress.stop_task(bars.tasks[stage])
