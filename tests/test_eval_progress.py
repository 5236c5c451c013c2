"""An evaluation's progress as the Evaluation tab, `lorag eval` through the app (ui.jobs.progress_line) and
`lorag eval` in this process (ui.cli_progress.StageBars) show it: the time and the ETA go on between two counts, and
a phase that has ended keeps its last count (generate n/n) once the next one has begun."""

from __future__ import annotations

import threading
import time

from ui.cli_progress import StageBars
from ui.jobs import JobRunner, eta_words, progress_line


def _job(progress: dict) -> dict:
    return {"title": "A/B base,hr-v1 on hr", "status": "running", "progress": progress}


def test_the_eta_counts_down_from_the_time_per_answer_and_the_elapsed_time_goes_on():
    """3 of 4 answers after 30 s of the stage (10 s each): 10 s left then; 5 s later the line says 5 s left and 35 s
    elapsed, not what it said at the count; once the estimate has run out, it says so."""
    p = {"stage": "generate", "done": 3, "total": 4, "stage_t": 2.0, "t": 32.0, "at": 1000.0}
    assert progress_line(_job(p), now=1000.0).endswith("generate · 3/4 · 0:30 elapsed · ETA 0:10")
    assert progress_line(_job(p), now=1005.0).endswith("generate · 3/4 · 0:35 elapsed · ETA 0:05")
    assert progress_line(_job(p), now=1012.0).endswith("generate · 3/4 · 0:42 elapsed · longer than estimated")
    assert progress_line(_job({**p, "done": 0}), now=1012.0).endswith("generate · 0/4 · 0:42 elapsed")  # no rate yet
    assert progress_line(_job(p), now=990.0).endswith("0:30 elapsed · ETA 0:10")  # a clock behind: as at the count
    old = {k: v for k, v in p.items() if k != "at"}  # a state written before the clock's time was kept
    assert progress_line(_job(old), now=2000.0).endswith("generate · 3/4 · 0:30 elapsed · ETA 0:10")


def test_eta_words():
    assert eta_words(30.0, 3, 4, 30.0) == "ETA 0:10"
    assert eta_words(30.0, 3, 4, 39.5) == "ETA 0:01"  # never 0:00 while time is left
    assert eta_words(30.0, 3, 4, 40.0) == "longer than estimated"
    assert eta_words(30.0, 0, 4, 40.0) is None and eta_words(30.0, 4, 4, 40.0) is None
    assert eta_words(0.0, 2, 4, 5.0) is None  # counted at the stage's start (cached): no rate


def _line_once(runner: JobRunner, jid: str, words: str) -> str:
    """The job's line once it shows `words` (within 5 s)."""
    deadline = time.monotonic() + 5
    while words not in (line := progress_line(runner.get(jid))) and time.monotonic() < deadline:
        time.sleep(0.02)
    return line


def test_a_phase_ended_stays_on_the_line_however_soon_the_next_one_begins(tmp_path):
    """The last answers end in one burst and scoring begins at once, inside the job's write throttle: the line, read
    whenever, shows generate 4/4 done beside the scoring phase's own count."""
    runner = JobRunner(tmp_path / "jobs")
    steps = [threading.Event() for _ in range(3)]

    def work(job):
        job.phase("retrieve", 2, 2)
        job.phase("generate", 0, 4)
        job.phase("generate", 1, 4)
        steps[0].wait(5)
        for n in (2, 3, 4):
            job.phase("generate", n, 4)
        job.phase("score", 0, 6)
        steps[1].wait(5)
        job.phase("score", 6, 6)
        job.phase("report", 0, 1)
        steps[2].wait(5)

    jid = runner.start("eval", "A/B base,hr-v1 on hr", work)
    line = _line_once(runner, jid, "generate · 1/4")
    assert " — running · retrieve 2/2 done (0:00) · generate · 1/4 · 0:00 elapsed" in line, line
    steps[0].set()
    line = _line_once(runner, jid, "score ·")
    assert " · retrieve 2/2 done (0:00) · generate 4/4 done (0:00) · score · 0/6 · 0:00 elapsed" in line, line
    steps[1].set()
    line = _line_once(runner, jid, "report ·")
    assert "generate 4/4 done (0:00) · score 6/6 done (0:00) · report · 0/1" in line, line
    steps[2].set()
    assert runner.wait(jid, 5)["status"] == "done"


def test_a_job_of_one_stage_after_another_keeps_no_phases(tmp_path):
    """progress (an ingest's, a synth's) replaces the stage: nothing of the earlier ones is kept."""
    runner = JobRunner(tmp_path / "jobs")

    def work(job):
        job.progress("loading the embedding model", 0, 0)
        job.progress("reading files", 1, 5)

    jid = runner.start("ingest", "upload", work)
    runner.wait(jid, 5)
    assert "ended" not in runner.get(jid)["progress"]


def test_lorag_evals_bars_keep_each_stage_and_count_down_between_counts():
    """In this process: each stage its own bar (generate's stays at 4/4 above score's); between two counts the
    stage's ETA counts down from the time per answer, then says it has run out."""
    clock = [100.0]
    bars = StageBars(enabled=False, get_time=lambda: clock[0])
    with bars:
        bars("generate", 0, 4)
        clock[0] = 130.0
        bars("generate", 3, 4)  # 10 s per answer
        assert bars.eta("generate") == "ETA 0:10"
        clock[0] = 136.0
        assert bars.eta("generate") == "ETA 0:04"
        clock[0] = 145.0
        assert bars.eta("generate") == "longer than estimated"
        bars("generate", 4, 4)
        bars("score", 0, 6)
        assert bars.eta("generate") == "" and bars.eta("score") == "ETA -:--"
        tasks = {t.description: (t.completed, t.total) for t in bars.progress.tasks}
        assert tasks == {"generate": (4, 4), "score": (0, 6)}
