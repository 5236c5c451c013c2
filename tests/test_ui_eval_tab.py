"""The Evaluation tab opens the report of an evaluation it watched (started with Run, or seen running, from any
face) once the job is done, and leaves the user's pick alone after that."""

from __future__ import annotations

import json
import threading

from tests.test_ui_core import core, handler, update  # noqa: F401 - core: the fixture

OLD, NEW = "20260301-100000-handbook", "20260302-100000-handbook"


def _report(core, run_id: str) -> None:  # noqa: F811 - core: the fixture's value
    folder = core.settings.reports_dir / run_id
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"run_id": run_id, "domain": "handbook"}))


def test_a_watched_evaluation_opens_its_report_when_it_is_done(core):  # noqa: F811
    from ui.app import build_blocks

    _report(core, OLD)
    poll, outs = handler(build_blocks(core), "ui.tab_eval", "poll")
    go = threading.Event()

    def evaluation(job):
        go.wait(10)
        _report(core, NEW)
        return {"run_id": NEW}

    job = core.jobs.start("eval", "A/B base,handbook-v1 on handbook", evaluation, {"domain": "handbook"})
    running = dict(zip(outs, poll(OLD, "handbook", "", "", None)))
    assert "running" in running["ev-job"] and update(running["ev-report"])["value"] == OLD
    watched = running[None]
    assert watched == job  # seen running: watched from now on
    go.set()
    assert core.jobs.wait(job, 10)["status"] == "done"
    done = dict(zip(outs, poll(OLD, "handbook", "", "", watched)))
    assert "— done" in done["ev-job"] and update(done["ev-report"])["value"] == NEW  # its report opens
    assert done[None] is None  # once
    later = dict(zip(outs, poll(OLD, "handbook", "", "", None)))  # the user went back to the older report: it stays
    assert update(later["ev-report"])["value"] == OLD


def test_an_evaluation_that_ends_before_a_tick_opens_its_report_and_a_failed_one_opens_none(core):  # noqa: F811
    from ui.app import build_blocks

    _report(core, OLD)
    poll, outs = handler(build_blocks(core), "ui.tab_eval", "poll")

    def evaluation(job):
        _report(core, NEW)
        return {"run_id": NEW}

    job = core.jobs.wait(core.jobs.start("eval", "A/B fast", evaluation, {"domain": "handbook"}), 10)["id"]
    # Run started it (the job is watched) and it ended before the next tick
    done = dict(zip(outs, poll(OLD, "handbook", "", "", job)))
    assert update(done["ev-report"])["value"] == NEW and done[None] is None
    # a job the page never watched (it ended before the page opened) changes nothing
    assert update(dict(zip(outs, poll(OLD, "handbook", "", "", None)))["ev-report"])["value"] == OLD
    failed = core.jobs.wait(core.jobs.start("eval", "A/B bad", lambda job: 1 / 0, {"domain": "handbook"}), 10)["id"]
    shown = dict(zip(outs, poll(OLD, "handbook", "", "", failed)))
    assert "failed" in shown["ev-job"] and update(shown["ev-report"])["value"] == OLD and shown[None] is None


def test_a_page_opened_after_a_newer_report_was_written_shows_the_newest(core, monkeypatch):  # noqa: F811
    """The picker's value when the page loads is the newest report of that moment, not of when the app started."""
    from ui.app import build_blocks

    monkeypatch.setattr(core, "domains", lambda: ["handbook"])
    _report(core, OLD)
    blocks = build_blocks(core)  # the app starts: OLD is the newest
    start = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "ev-report").value
    _report(core, NEW)  # `lorag eval` (or the app) wrote a newer one since
    on_show, outs = handler(blocks, "ui.tab_eval", "on_show")
    loaded = dict(zip(outs, on_show(start, "handbook", "", "", None)))  # the page loads with the picker's value
    assert update(loaded["ev-report"])["value"] == NEW
