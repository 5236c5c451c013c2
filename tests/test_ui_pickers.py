"""The pickers of the Evaluation and Adapters tabs: the report of an evaluation the page watched (started with Run,
or seen running, from any face) opens once the job is done, and the user's pick stays after that; a page opened later
shows the newest report of that moment; the Promote step names no adapter until the user picks one."""

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


def test_the_promote_picker_names_no_adapter_until_one_is_picked(core):  # noqa: F811
    """The Promote step's picker starts empty (Promote says to pick one), not on whichever adapter was first when the
    app started: an old version, or another domain's, promoted by a click on 4 · Promote."""
    from tests.test_ui_core import register_fake_adapter
    from ui.app import build_blocks

    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    blocks = build_blocks(core)
    picker = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "ad-pick")
    assert picker.value is None and [c[0] for c in picker.choices] == ["hr-v1"]
    promote, _ = handler(blocks, "ui.tab_adapters", "promote_adapter")
    assert promote(picker.value, False)[0] == "Pick an adapter."
    assert not core.comps.registry.get("hr-v1").promoted
