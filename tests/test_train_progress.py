"""A training job's line (the Adapters tab, `lorag train` through the app): before two steps are logged there is no
ETA, and on a CPU a step takes minutes, so the time training has run goes on instead, between two updates."""

from __future__ import annotations

from ui.jobs import progress_line


def _job(progress: dict, curve: list | None = None) -> dict:
    return {"title": "train hr", "status": "running", "progress": progress, "curve": curve or []}


def test_training_shows_its_elapsed_time_until_an_eta_can_be_worked_out():
    started = {"stage": "training", "done": 0, "total": 0, "stage_t": 4.0, "t": 4.0, "at": 1000.0}
    assert progress_line(_job(started), now=1000.0) == "**train hr** — running · training · 0:00 elapsed"
    assert progress_line(_job(started), now=1090.0) == "**train hr** — running · training · 1:30 elapsed"
    first = [{"step": 1, "max_steps": 32, "loss": 0.7, "tokens": 4500, "t": 150.0}]
    one = {"stage": "training", "done": 1, "total": 32, "stage_t": 4.0, "t": 150.0, "at": 1146.0}
    assert progress_line(_job(one, first), now=1150.0).endswith("training · step 1/32 · loss 0.700 · 2:30 elapsed")
    two = first + [{"step": 2, "max_steps": 32, "loss": 0.6, "tokens": 9000, "t": 296.0}]
    line = progress_line(_job({**one, "done": 2, "t": 296.0, "at": 1292.0}, two), now=1300.0)
    assert line.endswith("step 2/32 · loss 0.600 · 31 tokens/s · ETA 1:13:00") and "elapsed" not in line, line
