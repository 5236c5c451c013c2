"""`lorag ingest` progress on stderr: a live bar on a terminal, plain lines otherwise (logs, CI, pipes).

Plain lines: one per finished file; for a file spanning several embed batches, one per batch staged;
a file's chunk count once it is read, when nothing was printed for `every` seconds (so a slow
file is announced, without two lines for every small one); and, at most every `every` seconds, the chunks
embedded of the (estimated) total, chunks/s and an ETA. Stdout (the report, --json) is never touched.
`job` shows the progress of the app's ingest job (the CLI through a running app) the same way.
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
        self._job_words = ""  # the app's job progress last printed

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
        """The app's ingest job as polled (GET /v1/jobs/<id>): its stage, files done of total and the rate;
        plain lines when the words change, at most every `every` seconds."""
        if state.get("status") != "running":
            return
        p = state.get("progress") or {}
        done, total = int(p.get("done") or 0), int(p.get("total") or 0)
        parts = [p.get("stage") or "starting"] + ([f"{done}/{total} files"] if total else [])
        words = " · ".join(parts + ([p["rate"]] if p.get("rate") else []))  # the rate: chunks, chunks/s, ETA
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total or None, description=words)
        elif words != self._job_words and _due(self._last, self.every):
            self._job_words = words
            self._line(f"ingest: {words}")

    def _with_rate(self, text: str) -> str:
        return f"{text} · {self._rate}" if self._rate else text

    def _line(self, text: str) -> None:
        self._last = time.monotonic()
        print(text, file=self.stream, flush=True)


def _due(last: float | None, every: float) -> bool:
    """Nothing printed yet, or `every` seconds passed since `last` (monotonic time has no fixed origin: a machine
    booted a minute ago is at about 60)."""
    return last is None or time.monotonic() - last >= every
