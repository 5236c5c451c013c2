"""The web app's logic without a browser, and the live-server helper the other UI tests use.

`LiveApp` starts the real app (Gradio on FastAPI, uvicorn) on a free localhost port with fake
backends: the hashing embedder, BM25, the real embedded Qdrant, a scripted generator that streams
word by word and knows two fake adapters (handbook-v1 promoted, handbook-v2 not), and a fake
training function that logs a falling loss and registers a new version.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

from assistant.embedding import Bm25SparseEncoder
from assistant.errors import LoragError
from assistant.generation import GenerationStats
from assistant.settings import Settings
from assistant.store.edge import EdgeStore
from tests.fakes import FakeGenerator, HashingEmbedder

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "samples" / "corpus"
_PASSAGE = re.compile(r"\[1\] \([^)]*\)\n(.*?)(?:\n\n\[\d+\] \(|\n\nQuestion:)", re.S)


def scripted_reply(messages, adapter):
    """The sentence of passage [1] sharing most words with the question, cited; adapters and
    follow-ups say so."""
    content = messages[-1]["content"]
    m = _PASSAGE.search(content)
    q = set(re.findall(r"[a-z0-9]+", content.rsplit("Question:", 1)[-1].lower()))
    sentences = [
        s.strip(" *")
        for line in (m.group(1).splitlines() if m else [])
        if line.strip() and line.lstrip()[0] not in "#|"
        for s in re.split(r"(?<=[.!?])\s", line)
    ]
    best = max(sentences, key=lambda s: len(q & set(re.findall(r"[a-z0-9]+", s.lower()))), default="")
    words = (best or "The documents do not contain the answer.").replace("**", "").split()[:30]
    prefix = ("Following up: " if len(messages) > 2 else "") + (f"({adapter}) " if adapter else "")
    return prefix + " ".join(words).rstrip(".") + " [1]."


class ScriptedGenerator(FakeGenerator):
    def __init__(self, adapters=(), delay=0.03):
        super().__init__(name="scripted", adapters=adapters)
        self.delay = delay
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    max_new_tokens = None  # the generator's own limit (models.max_new_tokens); tests lower it to see a cut answer
    script = None  # a test's reply(messages, adapter), in place of scripted_reply's

    def stream(self, messages, *, adapter=None, max_new_tokens=None):
        self.calls.append((list(messages), adapter))
        max_new_tokens = max_new_tokens or self.max_new_tokens
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            t0 = time.perf_counter()
            words = (self.script or scripted_reply)(messages, adapter).split(" ")  # a word is a token here
            cut = max_new_tokens is not None and len(words) > max_new_tokens
            words = words[:max_new_tokens] if cut else words
            for i, w in enumerate(words):
                time.sleep(self.delay)
                yield w if i == 0 else " " + w
            prompt = sum(len(m["content"].split()) for m in messages)
            self.last_stats = GenerationStats(
                prompt, len(words), 0.0, time.perf_counter() - t0, "length" if cut else "stop"
            )
        finally:
            with self._lock:
                self.active -= 1


def register_fake_adapter(registry, store, domain, version, *, promoted=False, metrics=None):
    from assistant.registry import AdapterCard, now
    from assistant.store.base import corpus_fingerprint

    staged = registry.root / f".stage-{domain}-{version}"
    staged.mkdir(parents=True, exist_ok=True)
    (staged / "adapter_config.json").write_text("{}")
    card = AdapterCard(
        name=f"{domain}-v{version}",
        domain=domain,
        version=version,
        base_model="scripted",
        base_fingerprint="scripted",
        data_hash="0" * 64,
        corpus_fingerprint=(corpus_fingerprint(store, domain) if store.has_domain(domain) else None) or "",
        metrics=metrics or {"train_loss": 1.21, "eval_loss": 1.43},
        created_at=now(),
    )
    registry.register(staged, card)
    if promoted:
        registry.promote(card.name)
    return card


def fake_train(cfg, *, settings, store, registry, model_cache, resume=False, on_log=None, **_):
    steps = 10
    for stage in ("loading the base model", "tokenizing the rows", "training"):  # as finetune/train.py reports them
        on_log({"stage": stage})
        time.sleep(0.3)
    for step in range(1, steps + 1):
        entry = {
            "step": step,
            "max_steps": steps,
            "loss": round(2.5 / step**0.5, 4),
            "num_input_tokens_seen": 512 * step,
        }
        if step % 5 == 0:
            entry["eval_loss"] = round(2.8 / step**0.4, 4)
        on_log(entry)
        time.sleep(0.4)
    version, _ = registry.next_folder(cfg.domain)
    return register_fake_adapter(registry, store, cfg.domain, version, metrics={"train_loss": 0.79, "eval_loss": 1.1})


def word_count(messages) -> int:
    return sum(len(m["content"].split()) for m in messages)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveApp:
    """The app on a free port in a background thread."""

    def __init__(
        self, root: Path, *, auth=None, preload=("manual",), delay=0.03, concurrency=2, max_upload_mb=5.0, ui_extra=None
    ):
        import uvicorn

        from ui.app import build_app
        from ui.components import Components

        ui = {"generation_concurrency": concurrency, "max_upload_mb": max_upload_mb, **(ui_extra or {})}
        if auth:
            ui.update(username=auth[0], password=auth[1])
        self.settings = Settings(
            paths={"data_dir": root / "data", "model_cache": root / "cache"},
            ingest={"chunk_tokens": 80, "chunk_overlap": 10},
            retrieval={"min_relevance": 0.2},
            ui=ui,
        )
        self.store = EdgeStore(self.settings.store_path)
        self.generator = ScriptedGenerator(adapters=["handbook-v1", "handbook-v2"], delay=delay)
        self.comps = Components(
            self.settings,
            store=self.store,
            dense=HashingEmbedder(2048),
            sparse=Bm25SparseEncoder(),
            generator=self.generator,
        )
        for d in preload:
            self.comps.ingestor().run([CORPUS / d], d)
        register_fake_adapter(self.comps.registry, self.store, "handbook", 1, promoted=True)
        register_fake_adapter(self.comps.registry, self.store, "handbook", 2)
        self.app, self.blocks, self.core = build_app(self.comps, train_fn=fake_train)
        self.core.eval_use_ragas = False
        self.core.count_tokens = word_count
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.05)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.store.close()


def zip_folder(folder: Path, out: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(out, "w") as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, prefix + f.relative_to(folder).as_posix())
    return out


# -- unit tests on the core (no server) ----------------------------------------------------------
def handler(blocks, module: str, name: str):
    """A tab's event handler (a function defined in its build) and its outputs' elem_ids, to call it as Gradio would."""
    fn = next(f for f in blocks.fns.values() if f.fn and (f.fn.__module__, f.fn.__name__) == (module, name))
    return fn.fn, [getattr(o, "elem_id", None) for o in fn.outputs]


def update(value):
    """What a Gradio update sets: a component's constructor arguments, or a plain value."""
    return dict(value.constructor_args) if hasattr(value, "constructor_args") else value


@pytest.fixture
def core(tmp_path, components):
    from ui.app import AppCore

    core = AppCore(components)
    core.count_tokens = word_count  # no tokenizer download in tests: rows fit by words
    return core


def test_safe_target_refuses_escapes(tmp_path):
    from assistant.names import inside as safe_target

    root = tmp_path / "up"
    root.mkdir()
    assert safe_target(root, "a/b.md") == (root / "a" / "b.md").resolve()
    for bad in ("../x.md", "/etc/passwd", "a/../../x", "..", "C:\\win.ini", "a\\..\\..\\x", "", "x\x00.md"):
        with pytest.raises(LoragError):
            safe_target(root, bad)
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(LoragError):
        safe_target(root, "link/outside.md")


def test_zip_upload_skips_bad_members_and_ingests_the_rest(core, tmp_path):
    from ui.docs_index import start_ingest

    z = tmp_path / "pack.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("good/leave.md", "# Leave\n\nStaff receive 27 days of annual leave each year.\n")
        zf.writestr("../evil.md", "escape")
        zf.writestr("/abs.md", "absolute")
        zf.writestr("notes.txt", "Parking costs 12 euros per month.\n")
    job = core.jobs.wait(start_ingest(core, "hr", [("pack.zip", z)]), 30)
    assert job["status"] == "done", job
    by = {r["display"]: r for r in job["result"]["results"]}
    assert by["good/leave.md"]["status"] == "added" and by["notes.txt"]["status"] == "added"
    assert by["pack.zip:../evil.md"]["status"] == "failed" and "unsafe" in by["pack.zip:../evil.md"]["reason"]
    assert by["pack.zip:/abs.md"]["status"] == "failed"
    assert (
        not (tmp_path / "data" / "uploads" / "evil.md").exists()
        and not (core.data_dir / "uploads" / "hr" / "evil.md").exists()
    )
    assert {d.display for d in core.comps.store.list_docs("hr")} == {"good/leave.md", "notes.txt"}


def test_upload_size_limit_and_reupload_states(core, tmp_path):
    from ui.docs_index import delete_doc, delete_docs, start_ingest

    core.settings.ui.max_upload_mb = 0.001
    big = tmp_path / "big.txt"
    big.write_text("word " * 2000)
    small = tmp_path / "small.txt"
    small.write_text("Visitors sign in at the lobby kiosk.\n")
    job = core.jobs.wait(start_ingest(core, "hr", [("big.txt", big), ("small.txt", small)]), 30)
    status = {r["display"]: (r["status"], r["reason"]) for r in job["result"]["results"]}
    assert status["big.txt"][0] == "failed" and "max_upload_mb" in status["big.txt"][1]
    assert status["small.txt"][0] == "added"
    job = core.jobs.wait(start_ingest(core, "hr", [("small.txt", small)]), 30)
    assert job["result"]["results"][0]["status"] == "unchanged"
    small.write_text("Visitors sign in at the lobby kiosk and wear a red lanyard.\n")
    job = core.jobs.wait(start_ingest(core, "hr", [("small.txt", small)]), 30)
    assert job["result"]["results"][0]["status"] == "updated"
    assert "removed small.txt" in delete_doc(core, "hr", "small.txt")
    assert core.comps.store.list_docs("hr") == [] and not (core.data_dir / "uploads" / "hr" / "small.txt").exists()
    with pytest.raises(LoragError, match="unknown domain 'hrr': nothing to remove") as e:
        delete_docs(core, "hrr", [], all_docs=True)  # the API's {"all": true} with a misspelt domain
    assert "did you mean hr?" in e.value.hint
    assert delete_docs(core, " HR ", [], all_docs=True) == [] and "hr" not in core.comps.store.domains()  # as typed


def test_the_per_file_results_follow_the_upload_order(core, tmp_path):
    """Refused uploads, a zip's members and plain files are listed in the order the files were chosen."""
    from ui.docs_index import start_ingest
    from ui.tab_docs import _results_rows

    core.settings.ui.max_upload_mb = 0.001
    files = []
    texts = {"zeta.txt": "Zeta rules apply.\n", "big.txt": "word " * 2000, "alpha.md": "# A\n\nAlpha.\n"}
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
        files.append((name, tmp_path / name))
    z = tmp_path / "pack.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("b/m.md", "# M\n\nMembers of the pack.\n")
        zf.writestr("../evil.md", "escape")
    files.insert(1, ("pack.zip", z))
    job = core.jobs.wait(start_ingest(core, "hr", files), 30)
    assert job["status"] == "done", job
    shown = [row[0] for row in _results_rows(job)]
    assert shown[0] == "zeta.txt" and shown[-1] == "alpha.md" and shown[-2] == "big.txt", shown
    assert set(shown[1:3]) == {"b/m.md", "pack.zip:../evil.md"}, shown


def test_an_empty_upload_is_skipped_not_failed(core, tmp_path):
    from ui.docs_index import start_ingest
    from ui.tab_docs import _progress_md, _results_rows

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    small = tmp_path / "small.txt"
    small.write_text("Visitors sign in at the lobby kiosk.\n")
    job = core.jobs.wait(start_ingest(core, "hr", [("empty.txt", empty), ("small.txt", small)]), 30)
    assert job["status"] == "done", job
    assert job["result"]["counts"]["skipped"] == 1 and job["result"]["counts"]["failed"] == 0
    assert ["empty.txt", "skipped", "empty file", 0] in _results_rows(job)
    assert "2 files: 1 added, 1 skipped" in _progress_md(job)


def test_an_upload_indexed_with_warnings_shows_them_in_the_results(core, tmp_path):
    from ui.docs_index import start_ingest
    from ui.tab_docs import _results_rows

    table = tmp_path / "broken.csv"
    table.write_bytes(b"a,b\n1,2,3\n")
    job = core.jobs.wait(start_ingest(core, "hr", [("broken.csv", table)]), 30)
    assert job["status"] == "done", job
    expected = '⚠ rows with more fields than the header\'s 2 (the extra ones kept as "column 3"): line 2'
    assert _results_rows(job) == [["broken.csv", "added", expected, 1]]


def test_the_adapters_job_picker_names_the_job_shown(core):
    """The picker names and lists the job the tab shows, of the domain picked only: its newest training job while
    the user picked none (an upload is not this tab's job, a job of another domain is not this domain's), following
    a newer one; a job the user picked or started stays, and a tick that read the picker before a job was started
    does not put the older job back."""
    from ui.app import build_blocks

    def fake(job):
        job.point({"step": 1, "max_steps": 2, "loss": 1.5})

    core.jobs.wait(core.jobs.start("ingest", "upload a", lambda job: None, {"domain": "hr"}), 5)
    poll, outs = handler(build_blocks(core), "ui.tab_adapters", "poll")
    none = dict(zip(outs, poll(None, "", "hr", "", "", "")))
    assert "upload a" not in str(none["ad-progress"]) and update(none["ad-job"]).get("value") is None
    train = core.jobs.wait(core.jobs.start("train", "train hr", fake, {"domain": "hr"}), 5)["id"]
    shown = dict(zip(outs, poll(None, "", "hr", "", "", "")))
    picker, auto = update(shown["ad-job"]), shown[None]
    assert "train hr" in shown["ad-progress"] and picker["value"] == train and picker["choices"] == [train]
    assert auto == train  # the tick chose it, not the user
    failed = core.jobs.start("train", "train nosuchdomain", lambda job: 1 / 0, {"domain": "nosuchdomain"})
    assert core.jobs.wait(failed, 5)["status"] == "failed"
    shown = dict(zip(outs, poll(train, "", "hr", "", "", auto)))  # another domain's newer job: not this domain's
    assert shown["ad-progress"].startswith("**train hr**") and "nosuchdomain" not in shown["ad-log"]
    assert failed not in update(shown["ad-job"])["choices"] and failed in str(shown["ad-jobs"])  # "All jobs" has it
    shown = dict(zip(outs, poll(train, "", "nosuchdomain", "", "", auto)))  # that domain picked: its job
    assert "train nosuchdomain" in shown["ad-progress"] and "failed" in shown["ad-progress"]
    assert update(shown["ad-job"]) == {"choices": [failed], "value": failed} and shown[None] == failed
    newer = core.jobs.wait(core.jobs.start("train", "train hr again", fake, {"domain": "hr"}), 5)["id"]
    shown = dict(zip(outs, poll(train, "", "HR", "", "", auto)))  # the picker still holds the tick's choice
    assert "train hr again" in shown["ad-progress"] and update(shown["ad-job"])["value"] == newer
    # the user picked the older job: it stays, and the picker's value is not sent again (a stale tick that read
    # it before the user started another job cannot put it back)
    shown = dict(zip(outs, poll(train, "", "hr", "", "", newer)))
    assert "train hr**" in shown["ad-progress"] and "value" not in update(shown["ad-job"]) and shown[None] == ""
    for n in range(31):  # newer jobs push the training job out of the newest 30: the picker still lists it
        core.jobs.wait(core.jobs.start("synth", f"training data {n}", lambda job: None, {"domain": "hr"}), 5)
    poll, outs = handler(build_blocks(core), "ui.tab_adapters", "poll")
    shown = dict(zip(outs, poll(None, "", "hr", "", "", "")))
    picker = update(shown["ad-job"])
    assert "train hr again" in shown["ad-progress"] and picker["value"] == newer and newer in picker["choices"]
    shown = dict(zip(outs, poll(train, "", "hr", "", "", "")))
    assert "train hr**" in shown["ad-progress"] and train in update(shown["ad-job"])["choices"]


def test_the_eval_job_line_shows_the_domain_picked_only(core, monkeypatch):
    """The evaluation tab's job line shows the newest evaluation job of the domain picked (as typed), whichever tab
    started it: not another domain's newer one, nor a newer job of another kind; nothing for a domain without one."""
    from ui.app import build_blocks

    hr = core.jobs.wait(core.jobs.start("eval", "A/B base,hr-v1 on hr", lambda job: None, {"domain": "hr"}), 5)
    it = core.jobs.wait(core.jobs.start("eval", "A/B base,it-v1 on it", lambda job: 1 / 0, {"domain": "it"}), 5)
    core.jobs.wait(core.jobs.start("train", "train hr", lambda job: None, {"domain": "hr"}), 5)
    assert (hr["status"], it["status"]) == ("done", "failed")
    blocks = build_blocks(core)
    poll, outs = handler(blocks, "ui.tab_eval", "poll")
    line = {dom: dict(zip(outs, poll(None, dom, "", "")))["ev-job"] for dom in ("hr", "HR", "it", "ops", "Bad Name!")}
    assert line["hr"] == line["HR"] == "**A/B base,hr-v1 on hr** — done", line
    assert line["it"].startswith("**A/B base,it-v1 on it** — failed"), line
    assert line["ops"] == line["Bad Name!"] == "", line
    monkeypatch.setattr(core, "domains", lambda: ["it", "hr"])  # the page's first domain, then the one picked
    blocks = build_blocks(core)
    assert next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "ev-job").value == line["it"]
    on_show, outs = handler(blocks, "ui.tab_eval", "on_show")
    assert dict(zip(outs, on_show(None, "hr", "", "")))["ev-job"] == line["hr"]


def test_the_evaluation_tab_shows_the_report_of_the_domain_picked(core, monkeypatch):
    """With the domain handbook picked, the tab opens handbook's newest report, never another domain's newer one;
    a domain without a report says so, whether picked, ticked or shown; the report a user picked stays while it is
    the domain's."""
    from ui.app import build_blocks
    from ui.tab_eval import list_reports

    root = core.settings.reports_dir

    def report(run_id: str, domain: str | None) -> None:
        (root / run_id).mkdir(parents=True)
        (root / run_id / "report.json").write_text(json.dumps({"run_id": run_id, "domain": domain}))

    report("20260301-100000-handbook", "handbook")
    report("20260302-100000-handbook", "handbook")
    report("20260303-100000-garden", "garden")  # newer than handbook's: another domain's
    report("20260304-100000-x", None)  # no domain in the file: its folder's name says it (x)
    report("20260305-mine", "garden")  # a folder named by hand: the file says its domain
    assert list_reports(core, "handbook") == ["20260302-100000-handbook", "20260301-100000-handbook"]
    assert list_reports(core, "Garden") == ["20260305-mine", "20260303-100000-garden"]
    assert list_reports(core, "x") == ["20260304-100000-x"] and list_reports(core, "Bad Name!") == []
    blocks = build_blocks(core)
    poll, outs = handler(blocks, "ui.tab_eval", "poll")
    ticked = dict(zip(outs, poll(None, "handbook", "", "")))
    picker = update(ticked["ev-report"])
    assert picker["value"] == "20260302-100000-handbook" and ticked["ev-empty"] == ""
    assert [c[0] if isinstance(c, (list, tuple)) else c for c in picker["choices"]] == list_reports(core, "handbook")
    kept = dict(zip(outs, poll("20260301-100000-handbook", "handbook", "", "")))  # the user's pick stays
    assert update(kept["ev-report"])["value"] == "20260301-100000-handbook"
    follow, outs = handler(blocks, "ui.tab_eval", "follow_domain")
    moved = dict(zip(outs, follow("garden", "20260301-100000-handbook")))  # another domain picked: its newest
    assert update(moved["ev-report"])["value"] == "20260305-mine" and moved["ev-empty"] == ""
    none = dict(zip(outs, follow("ops", "20260305-mine")))  # a domain without a report: none shown, and why
    assert update(none["ev-report"])["value"] is None and update(none["ev-report"])["choices"] == []
    assert none["ev-empty"] == "No report for domain **ops** yet: run an evaluation of it above."
    poll, outs = handler(blocks, "ui.tab_eval", "poll")
    ticked = dict(zip(outs, poll(None, "ops", "", "")))
    assert ticked["ev-empty"] == none["ev-empty"] and update(ticked["ev-report"])["value"] is None
    show, outs = handler(blocks, "ui.tab_eval", "show")
    assert dict(zip(outs, show(None, "ops")))["ev-empty"] == none["ev-empty"]
    monkeypatch.setattr(core, "domains", lambda: ["garden", "handbook"])
    on_show, outs = handler(blocks, "ui.tab_eval", "on_show")
    shown = dict(zip(outs, on_show(None, "handbook", "", "")))
    assert update(shown["ev-report"])["value"] == "20260302-100000-handbook" and shown["ev-empty"] == ""
    first = next(b for b in build_blocks(core).blocks.values() if getattr(b, "elem_id", None) == "ev-report")
    assert [c[0] for c in first.choices] == list_reports(core, "garden")  # the page opens on the first domain's


def test_a_new_upload_shows_its_own_job_at_once(core, tmp_path):
    from ui.app import build_blocks
    from ui.tab_docs import _results_rows

    blocks = build_blocks(core)
    (upload, _), (shown, shown_outs), (poll, poll_outs) = (
        handler(blocks, "ui.tab_docs", name) for name in ("upload_files", "show_upload", "poll")
    )
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("Visitors sign in at the lobby kiosk.\n")
    second.write_text("Parking costs 12 euros per month.\n")
    old = core.jobs.wait(upload("hr", [str(first)])["job"], 30)
    assert old["status"] == "done" and _results_rows(old)  # the last upload's rows are on the page
    with core.write_lock:  # the new job waits for the store: it is shown running, with no result yet
        res = upload("hr", [str(second)])
        *_, held = out = shown(res, old["id"])
        page = dict(zip(shown_outs, out))
        assert "upload of second.txt into hr** — running" in page["docs-progress"] and page["docs-results"] == []
        assert "first.txt" not in str(page) and held is None
        ticked = dict(zip(poll_outs, poll(held)))  # the page's own upload is the latest job from now on
        assert "upload of second.txt into hr** — running" in ticked["docs-progress"]
    assert core.jobs.wait(res["job"], 30)["status"] == "done"
    # from the click until the upload is a job (its files are being copied): the new upload, not the last result
    starting, start_outs = handler(blocks, "ui.tab_docs", "starting")
    *_, held = out = starting("hr", [str(first), str(second)])
    page = dict(zip(start_outs, out))
    assert "done" not in page["docs-progress"] and "upload of 2 files into hr" in page["docs-progress"]
    assert page["docs-results"] == [] and held == res["job"]  # held while the last job is still the latest
    ticked = dict(zip(poll_outs, poll(held)))  # a tick meanwhile leaves them alone
    assert ticked["docs-progress"] == ticked["docs-results"] == {"__type__": "update"}


def test_the_last_upload_is_the_documents_tabs_own_not_the_clis_or_a_scripts(core, tmp_path):
    """The tab's "last upload" is the newest ingest started in the tab (any browser): not one the CLI started
    (by path) or that came through POST /v1/documents, nor such a job kept from before jobs said who started them."""
    from ui.app import build_blocks
    from ui.docs_index import last_upload, start_ingest

    kiosk = tmp_path / "kiosk.txt"
    kiosk.write_text("Visitors sign in at the lobby kiosk.\n")
    upload, _ = handler(build_blocks(core), "ui.tab_docs", "upload_files")
    web = core.jobs.wait(upload("hr", [str(kiosk)])["job"], 30)
    assert web["params"]["source"] == "web" and last_upload(core)["id"] == web["id"]
    for source, local in (("cli", [kiosk]), ("api", None)):
        job = start_ingest(core, "hr", [("kiosk.txt", kiosk)], local=local, source=source)
        assert core.jobs.wait(job, 30)["params"]["source"] == source and last_upload(core)["id"] == web["id"]
    old_cli = core.jobs.start("ingest", "ingest of notes.xyz into hr", lambda job: 1 / 0, {"domain": "hr"})
    assert core.jobs.wait(old_cli, 30)["status"] == "failed" and last_upload(core)["id"] == web["id"]
    poll, outs = handler(build_blocks(core), "ui.tab_docs", "poll")  # a page opened now
    assert "upload of kiosk.txt into hr** — done" in dict(zip(outs, poll(None)))["docs-progress"]


def test_a_refused_upload_says_why_in_its_own_line_and_keeps_the_files(core, tmp_path):
    """A domain name that is no domain name: the refusal replaces the last job's status in the upload's own line
    (and stays there until a newer upload starts), quotes the name as typed, and the files chosen stay chosen."""
    from ui.app import build_blocks

    blocks = build_blocks(core)
    (starting, start_outs), (upload, _), (shown, shown_outs), (poll, poll_outs) = (
        handler(blocks, "ui.tab_docs", name) for name in ("starting", "upload_files", "show_upload", "poll")
    )
    picker = next(f for f in blocks.fns.values() if [getattr(o, "elem_id", None) for o in f.outputs] == ["docs-upload"])
    kiosk = tmp_path / "kiosk.txt"
    kiosk.write_text("Visitors sign in at the lobby kiosk.\n")
    old = core.jobs.wait(upload("hr", [str(kiosk)])["job"], 30)
    assert old["status"] == "done"
    *_, held = starting("Bad Name!", [str(kiosk)])
    res = upload("Bad Name!", [str(kiosk)])
    assert "invalid domain name 'Bad Name!'" in res["error"] and "lowercased" in res["error"]
    *_, held = out = shown(res, held)
    page = dict(zip(shown_outs, out))
    assert page["docs-progress"].startswith("⚠ invalid domain name 'Bad Name!'")  # the upload's own line
    assert "done" not in page["docs-progress"] and "kiosk.txt" not in str(page["docs-results"])
    assert page["docs-status"] == ""  # not at the bottom of the page, under Delete document
    ticked = dict(zip(poll_outs, poll(held)))  # the timer does not put the old job's status back
    assert ticked["docs-progress"] == ticked["docs-results"] == {"__type__": "update"}
    assert update(picker.fn(*[res] * len(picker.inputs))) == {"__type__": "update"}  # the files stay chosen
    ok = upload("Orbit", [str(kiosk)])  # capitals are lowercased on purpose: the domain 'orbit'
    assert ok["title"] == "upload of kiosk.txt into orbit"
    assert update(picker.fn(*[ok] * len(picker.inputs))) is None  # a started upload empties the picker
    core.jobs.wait(ok["job"], 30)
    ticked = dict(zip(poll_outs, poll(held)))  # a newer upload (from anywhere) is shown again
    assert "upload of kiosk.txt into orbit** — done" in ticked["docs-progress"]


def test_jobs_persist_and_interrupted_on_restart(tmp_path):
    from ui.jobs import INTERRUPTED, JobRunner

    runner = JobRunner(tmp_path / "jobs")
    gate = threading.Event()

    def work(job):
        job.point({"step": 1, "max_steps": 2, "loss": 2.0})
        gate.wait(5)
        return {"ok": True}

    jid = runner.start("train", "t", work)
    time.sleep(0.2)
    assert runner.get(jid)["status"] == "running" and runner.get(jid)["curve"][0]["loss"] == 2.0
    again = JobRunner(tmp_path / "jobs")  # a new server process reading the same folder
    assert again.get(jid)["status"] == INTERRUPTED
    gate.set()
    assert runner.wait(jid, 5)["result"] == {"ok": True}


def test_a_throttled_progress_update_is_written_once_the_window_passes(tmp_path):
    from ui.jobs import JobRunner

    runner = JobRunner(tmp_path / "jobs")
    gate = threading.Event()

    def work(job):
        job.progress("loading the embedding model", 0, 0)
        job.progress("reading files", 0, 5)  # within the throttle window of the first: held, then written
        gate.wait(5)

    jid = runner.start("ingest", "upload", work)
    deadline = time.monotonic() + 5
    while (runner.get(jid)["progress"] or {}).get("stage") != "reading files" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.get(jid)["progress"]["stage"] == "reading files" and runner.get(jid)["status"] == "running"
    gate.set()  # only now may the job end
    assert runner.wait(jid, 5)["status"] == "done"


def test_votes_export_as_testset(core, corpus):
    from eval.testset import load_testset  # the export must load as an eval test set
    from ui.compare_arms import compare_stream
    from ui.compare_votes import export_votes, record_vote

    core.comps.ingestor().run([corpus], "hr")
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    q = "How many days of annual leave do full-time staff receive?"
    with pytest.raises(LoragError, match="comparing an arm with itself tells nothing"):
        list(compare_stream(core, q, "hr", "base", "base"))
    states = list(compare_stream(core, q, "hr", "base", "hr-v1"))
    assert states[-1]["done"] and states[-1]["left"]["answer"]
    with pytest.raises(LoragError):
        record_vote(core, states[0] if not states[0]["done"] else {}, "left")
    record_vote(core, states[-1], "right")
    for i, vote in enumerate(("both_bad", "tie")):  # both wrong, or equally good or bad: no answer known to be right
        last = list(compare_stream(core, f"Who approves overtime? ({i})", "hr", "base", "hr-v1"))[-1]
        record_vote(core, last, vote)
    info = export_votes(core, "hr")
    assert info == {
        "path": info["path"],
        "cases": 1,
        "votes": 3,
        "both_bad_skipped": 1,
        "tie_skipped": 1,
        "superseded": 0,
        "unreadable_lines": [],
        "votes_file": str(core.data_dir / "votes" / "hr.jsonl"),
    }
    items = load_testset(Path(info["path"]))
    assert items[0].question == q and items[0].answer and "vote" in items[0].tags and items[0].sources
    record_vote(core, last, "tie", reference="The team lead approves overtime.")  # an edited reference: exported
    info = export_votes(core, "hr")
    assert info["cases"] == 2 and info["tie_skipped"] == 0 and info["votes"] == 3  # the tie replaced, not added
    edited = [i for i in load_testset(Path(info["path"])) if "edited reference" in i.tags]
    assert [i.answer for i in edited] == ["The team lead approves overtime."]


def test_one_comparison_takes_one_vote_and_a_second_click_changes_it(core, corpus):
    """Left, right, then tie clicked on one comparison: one vote, the last, kept under the comparison's id, and the
    tab says it changed; the counts are of comparisons; /vote does the same. The export's counts add up: a
    question voted on again in a later comparison is one case, the older vote counted as superseded."""
    from ui.app import api_only, build_blocks
    from ui.compare_votes import export_votes, read_votes

    core.comps.ingestor().run([corpus], "hr")
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    blocks = build_blocks(core)
    run, _ = handler(blocks, "ui.tab_compare", "run")
    q = "How many days of annual leave do full-time staff receive?"
    *_, done = run(q, "hr", "base", "hr-v1")
    first = done[5]  # the comparison the tab keeps for its vote buttons
    f = core.data_dir / "votes" / "hr.jsonl"
    vote = {c: clicked(blocks, f"vote-{c}") for c in ("left", "right", "tie", "both_bad")}
    one = "1 comparison(s) voted on in domain 'hr'"
    assert vote["left"](first, "") == f"Vote recorded: **left** ({one})."
    assert vote["right"](first, "") == f"Vote changed to **right** (was left; one vote per comparison, {one})."
    assert vote["tie"](first, "") == (
        f"Vote changed to **tie** (was right; one vote per comparison, {one}). It is not exported as a test case "
        "without a reference answer: write one above and click Tie again (it replaces this vote)."
    )
    rows = [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["vote"]) for r in rows] == [(first["id"], "tie")] and len(read_votes(core, "hr")) == 1
    said = vote["tie"](first, "27 days a year.")  # the reference the hint asks for: the same vote, now exportable
    assert said == f"Vote unchanged: **tie** (reference answer saved; one vote per comparison, {one})."
    assert [r["reference"] for r in map(json.loads, f.read_text(encoding="utf-8").splitlines())] == ["27 days a year."]
    *_, done = run("Who approves overtime?", "hr", "base", "hr-v1")
    assert vote["both_bad"](done[5], "").startswith("Vote recorded: **both bad** (2 comparison(s) voted on")
    *_, done = run(q, "hr", "base", "hr-v1")  # the first question in a new comparison: a vote of its own
    assert done[5]["id"] != first["id"]
    assert vote["left"](done[5], "") == "Vote recorded: **left** (3 comparison(s) voted on in domain 'hr')."
    info = export_votes(core, "hr")
    assert (info["votes"], info["cases"], info["superseded"], info["both_bad_skipped"], info["tie_skipped"]) == (
        3,
        1,
        1,
        1,
        0,
    )
    assert info["votes"] == info["cases"] + info["superseded"] + info["both_bad_skipped"] + info["tie_skipped"]
    msg, _ = clicked(blocks, "vote-export")("hr")
    assert msg.startswith("Exported 1 case(s) from 3 vote(s)") and (
        "(left out: 1 tie or both-bad vote(s) without a reference answer; 1 older vote(s) on a question voted on "
        "again in a later comparison (the latest vote on a question is its case))." in msg
    )
    # /vote: the same one vote per comparison, the vote it replaced named
    api = {fn.api_name: fn.fn for fn in blocks.fns.values() if api_only(fn)}
    cmp = api["compare"]("Who approves overtime?", "hr", "base", "hr-v1")
    assert api["vote"](cmp, "left")["replaced"] is None
    again = api["vote"](cmp, "right")
    assert again["id"] == cmp["id"] and again["vote"] == "right" and again["replaced"]["vote"] == "left"
    assert len(f.read_text(encoding="utf-8").splitlines()) == len(read_votes(core, "hr")) == 4
    built = {k: v for k, v in cmp.items() if k != "id"}  # a script's own comparison, no id: known by its content
    assert api["vote"](built, "tie")["replaced"] is None and api["vote"](built, "left")["replaced"]["vote"] == "tie"
    assert len(read_votes(core, "hr")) == 5
    assert "malformed" in api["vote"]({**cmp, "id": "../x"}, "left")["error"]
    # the first comparison's vote changed once more: still one line, now the last (the votes in the order cast)
    assert vote["right"](first, "").startswith("Vote changed to **right** (was tie; one vote per comparison, 5 comp")
    ids = [json.loads(x)["id"] for x in f.read_text(encoding="utf-8").splitlines()]
    assert ids.count(first["id"]) == 1 and ids[-1] == first["id"] and len(ids) == 5


def test_votes_files_of_an_earlier_version_stay_readable_and_their_counts_add_up(core, corpus):
    """An earlier version stored every click as a vote of its own: those votes stay as they are (they cannot be
    told from votes on separate comparisons), the export keeps the latest per question and counts the others as
    superseded; a vote replaced in such a file leaves every other line, a torn one included, as it was."""
    from ui.compare_arms import compare_stream
    from ui.compare_votes import export_votes, read_votes, record_vote

    core.comps.ingestor().run([corpus], "hr")
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    q = "How many days of annual leave do full-time staff receive?"
    cmp = list(compare_stream(core, q, "hr", "base", "hr-v1"))[-1]
    row = {k: v for k, v in record_vote(core, cmp, "left").items() if k != "replaced"}
    f = core.data_dir / "votes" / "hr.jsonl"
    clicks = [  # left, right, tie clicked on one comparison, each under a new id, as the earlier version kept them
        {**row, "id": f"old{i}", "vote": v, "time": f"2026-01-01T00:00:0{i}Z"}
        for i, v in enumerate(("left", "right", "tie"))
    ]
    other = {**row, "id": "old9", "question": "Who approves overtime?", "vote": "right"}
    old = "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in (*clicks, other)).encode() + b'{"id": "torn\n'
    f.write_bytes(old)
    info = export_votes(core, "hr")
    assert (info["votes"], info["cases"], info["superseded"], info["tie_skipped"]) == (4, 1, 2, 1)
    assert info["unreadable_lines"] == [5] and f.read_bytes() == old
    cmp2 = list(compare_stream(core, "Who approves overtime?", "hr", "base", "hr-v1"))[-1]
    record_vote(core, cmp2, "left")
    assert f.read_bytes().startswith(old) and len(read_votes(core, "hr")) == 5  # appended on a line of its own
    new = f.read_bytes()
    assert record_vote(core, cmp2, "right")["replaced"]["vote"] == "left"
    lines = f.read_bytes().split(b"\n")
    assert lines[:5] == new.split(b"\n")[:5] and json.loads(lines[5])["vote"] == "right" and len(lines) == 7
    info = export_votes(core, "hr")
    assert info["votes"] == 5 == info["cases"] + info["superseded"] + info["tie_skipped"] + info["both_bad_skipped"]


_VOTER = """
import json, sys, types
from pathlib import Path
from ui.compare_votes import _put_vote, _writing
core = types.SimpleNamespace(data_dir=Path(sys.argv[1]))
row = json.loads(Path(sys.argv[2]).read_text())
for i in range(int(sys.argv[4])):
    for vote in ("left", "right"):  # a vote, then the same comparison's second click, which replaces it
        with _writing(core):
            _put_vote(core.data_dir / "votes" / "hr.jsonl", {**row, "id": f"{sys.argv[3]}-{i}", "vote": vote})
"""


def test_two_processes_voting_at_once_lose_no_vote(core, corpus, tmp_path):
    """Two apps may share a data folder (on a Qdrant server): a vote rewrites its file, so each writer holds the
    votes folder's lock, and every comparison keeps exactly its last vote."""
    import subprocess
    import sys

    from ui.compare_arms import compare_stream
    from ui.compare_votes import read_votes, record_vote

    core.comps.ingestor().run([corpus], "hr")
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    cmp = list(compare_stream(core, "How many days of annual leave?", "hr", "base", "hr-v1"))[-1]
    row = {k: v for k, v in record_vote(core, cmp, "tie").items() if k != "replaced"}
    (tmp_path / "row.json").write_text(json.dumps(row))
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    args = [str(core.data_dir), str(tmp_path / "row.json")]
    voters = [subprocess.Popen([sys.executable, "-c", _VOTER, *args, name, "40"], env=env) for name in "ab"]
    assert [p.wait(timeout=120) for p in voters] == [0, 0]
    votes = read_votes(core, "hr")
    assert len(votes) == 81 and (core.data_dir / "votes" / "hr.jsonl").read_text().count("\n") == 81
    assert sorted(v["vote"] for v in votes if v["id"] != row["id"]) == ["right"] * 80


def test_a_vote_the_reader_would_refuse_is_not_stored_and_a_side_without_adapter_still_exports(core, corpus):
    from ui.compare_arms import compare_stream
    from ui.compare_votes import export_votes, record_vote

    core.comps.ingestor().run([corpus], "hr")
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    cmp = list(compare_stream(core, "How many days of annual leave?", "hr", "base", "hr-v1"))[-1]
    f = core.data_dir / "votes" / "hr.jsonl"
    bad = {**cmp, "passages": [{**cmp["passages"][0], "source": 5}]}
    with pytest.raises(LoragError, match="of the wrong type"):
        record_vote(core, bad, "left")
    assert not f.exists()
    row = {k: v for k, v in record_vote(core, cmp, "left").items() if k != "replaced"}
    left = {k: v for k, v in row["left"].items() if k != "adapter"}  # a side as a hand edit may leave it
    f.write_text(json.dumps({**row, "id": "edited", "question": "Who approves overtime?", "left": left}) + "\n")
    info = export_votes(core, "hr")
    assert info["cases"] == 1 and "preferred:" in Path(info["path"]).read_text()


def test_a_votes_file_with_a_torn_line_still_exports_and_names_the_lines_it_left_out(core, corpus):
    """A line torn by a crash mid-write or edited into no vote: the export and the count skip it, the tab says
    which lines of which file, and the file is left as it was."""
    from ui.app import build_blocks
    from ui.compare_arms import compare_stream
    from ui.compare_votes import export_votes, read_votes, record_vote, voted_domains

    core.comps.ingestor().run([corpus], "hr")
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    last = list(compare_stream(core, "How many days of annual leave?", "hr", "base", "hr-v1"))[-1]
    record_vote(core, last, "right")
    f = core.data_dir / "votes" / "hr.jsonl"
    good = json.loads(f.read_text(encoding="utf-8"))
    with f.open("ab") as fh:
        fh.write('{"id": "x", "question": "torn\n[1, 2]\n{"id": "y"}\n'.encode())
        fh.write(json.dumps({**good, "id": "z", "left": "not a side"}).encode() + b"\n")
        fh.write(json.dumps({**good, "id": "w", "question": "Jours de cong\u00e9s ?"}).encode()[:-20] + b"\n")
        fh.write(
            '{"id": "v", "question": "Urlop wypoczynkow'.encode() + "ą".encode()[:1] + b"\n"
        )  # torn in a character
        fh.write(json.dumps({**good, "id": "u", "question": "two\u2028lines"}, ensure_ascii=False).encode() + b"\n")
    before = f.read_bytes()
    bad: list[int] = []
    assert len(read_votes(core, "hr", bad)) == 2 and bad == [2, 3, 4, 5, 6, 7]
    info = export_votes(core, "hr")
    assert info["cases"] == 2 and info["unreadable_lines"] == [2, 3, 4, 5, 6, 7]
    assert voted_domains(core) == {"hr": 2}
    msg, path = clicked(build_blocks(core), "vote-export")("hr")
    assert msg.startswith("Exported 2 case(s) from 2 vote(s)") and path
    assert "6 line(s) of `" + str(f) + "` hold no vote and were left out (line 2, 3, 4, 5, 6, 7)" in msg
    assert f.read_bytes() == before


def test_a_vote_with_every_domain_searched_counts_for_the_domain_of_its_passages(core, corpus):
    """'all' is no domain `lorag eval` takes: a vote on a comparison of every domain is kept under the domain its
    passages came from; when they came from several, the votes stay closed and the tab says to pick the domain;
    the export is of one domain, and 'all' names the domains with votes."""
    from ui.app import build_blocks
    from ui.compare_votes import export_votes, record_vote

    core.comps.ingestor().run([corpus], "hr")
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    blocks = build_blocks(core)
    run, outs = handler(blocks, "ui.tab_compare", "run")
    votes = [f"vote-{v}" for v in ("left", "right", "tie", "both_bad")]
    q = "How many days of annual leave do full-time staff receive?"
    *_, done = run(q, "all", "base", "hr-v1")
    shown, comparison = dict(zip(outs, done)), done[5]  # 5: the comparison kept for the vote
    assert all(update(shown[v])["interactive"] for v in votes)
    assert "counts for domain **hr**" in shown["vote-status"]
    said = clicked(blocks, "vote-right")(comparison, "")
    assert said == "Vote recorded: **right** (1 comparison(s) voted on in domain 'hr')."
    folder = core.data_dir / "votes"
    assert (folder / "hr.jsonl").is_file() and not (folder / "all.jsonl").exists()
    assert export_votes(core, "hr")["cases"] == 1
    with pytest.raises(LoragError, match="votes are kept per domain") as e:
        export_votes(core, "all")  # no all-testset.jsonl, which `lorag eval` could not take
    assert e.value.hint == "domains with votes: hr (1)" and not (folder / "all-testset.jsonl").exists()
    msg, file = clicked(blocks, "vote-export")("all")
    assert msg.startswith("⚠ votes are kept per domain") and "hr (1)" in msg and file is None
    # passages of two domains: a vote would be a test case of neither
    mixed = {**comparison, "passages": [{**comparison["passages"][0], "domain": d} for d in ("hr", "it")]}
    with pytest.raises(LoragError, match=r"several domains \(hr, it\)"):
        record_vote(core, mixed, "left")
    retrieve = core.comps.retriever.retrieve
    core.comps.retriever.retrieve = lambda *a, **k: _last_passage_from_it(retrieve(*a, **k))
    try:
        *_, done = run(q, "all", "base", "hr-v1")
    finally:
        core.comps.retriever.retrieve = retrieve
    shown = dict(zip(outs, done))
    assert not any(update(shown[v])["interactive"] for v in votes)
    assert "several domains (hr, it)" in shown["vote-status"] and "Pick the domain above" in shown["vote-status"]


def test_votes_an_earlier_version_kept_under_all_move_to_their_domain(core, corpus):
    """votes/all.jsonl (written before votes counted for their passages' domain): its one-domain votes are exported
    with that domain's; a vote whose passages came from several domains stays, as does a line that is no vote."""
    from ui.compare_arms import compare_stream
    from ui.compare_votes import export_votes, record_vote

    core.comps.ingestor().run([corpus], "hr")
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    last = list(compare_stream(core, "Who approves overtime?", "hr", "base", "hr-v1"))[-1]
    row = record_vote(core, last, "right")
    folder = core.data_dir / "votes"
    (folder / "hr.jsonl").unlink()
    old = {**row, "domain": "all", "question": "How many days of annual leave?"}
    mixed = {**old, "question": "Mixed?", "passages": [{**old["passages"][0], "domain": d} for d in "ab"]}
    another = {**old, "id": "another", "question": "Another?"}
    lines = [json.dumps(old), json.dumps(another), json.dumps(mixed), "not json"]
    (folder / "all.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    info = export_votes(core, "hr")
    assert info["votes"] == 2 and info["cases"] == 2
    assert (folder / "all.jsonl").read_text(encoding="utf-8").splitlines() == lines[2:]
    assert all(json.loads(v)["domain"] == "hr" for v in (folder / "hr.jsonl").read_text().splitlines())
    assert export_votes(core, "hr")["votes"] == 2  # moved once
    # a crash after the append, before all.jsonl was rewritten: the votes are not added twice; and an older vote
    # moved in after a newer one on the same question does not win
    newer = record_vote(core, list(compare_stream(core, "Who approves overtime?", "hr", "base", "hr-v1"))[-1], "left")
    (folder / "all.jsonl").write_text(
        json.dumps(
            {**old, "id": "older", "question": newer["question"], "vote": "right", "time": "2026-01-01T00:00:00Z"}
        )
        + "\n"
        + lines[0]
        + "\n",
        encoding="utf-8",
    )
    info = export_votes(core, "hr")
    assert info["votes"] == 4 and not (folder / "all.jsonl").exists()
    from eval.testset import load_testset

    case = next(c for c in load_testset(Path(info["path"])) if c.question == newer["question"])
    assert "preferred:base" in case.tags  # the newer vote: left, base


def clicked(blocks, elem_id: str):
    """The handler of a click on the element `elem_id`."""
    el = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == elem_id)
    return next(f.fn for f in blocks.fns.values() if (el._id, "click") in f.targets)


def _last_passage_from_it(r):
    """The retrieval with its last passage from another domain, 'it'."""
    assert len(r.passages) > 1
    r.passages[-1].domain = "it"
    return r


def test_side_by_side_compares_and_votes_only_on_two_different_arms(core, corpus):
    from ui.app import build_blocks

    votes = ("vote-left", "vote-right", "vote-tie", "vote-both_bad")

    def page():
        blocks = build_blocks(core)
        return blocks, {b.elem_id: b for b in blocks.blocks.values() if getattr(b, "elem_id", None)}

    core.comps.ingestor().run([corpus], "hr")
    _, shown = page()  # no adapter yet: base on both sides, so nothing to compare or vote on, and the page says why
    assert shown["cmp-left"].value == shown["cmp-right"].value == "base"
    assert shown["cmp-go"].interactive is False
    assert all(shown[v].interactive is False for v in votes)
    assert "Compare is off: both sides are **base**" in shown["cmp-status"].value
    assert "train an adapter" in shown["cmp-status"].value
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    blocks, shown = page()  # with an adapter, the page opens on base against it; votes wait for its answers
    assert shown["cmp-right"].value == "hr-v1" and shown["cmp-status"].value == ""
    assert shown["cmp-go"].interactive is not False
    assert all(shown[v].interactive is False for v in votes)
    run, outs = handler(blocks, "ui.tab_compare", "run")
    q = "How many days of annual leave do full-time staff receive?"
    steps = [dict(zip(outs, step)) for step in run(q, "hr", "base", "hr-v1")]
    assert [update(steps[-1][v])["interactive"] for v in votes] == [True] * 4  # the comparison is done: vote
    assert all(update(s[v])["interactive"] is False for s in steps[:-1] for v in votes)  # not while it streams
    (refused,) = [dict(zip(outs, step)) for step in run(q, "hr", "base", "base")]
    assert "comparing an arm with itself" in refused["cmp-status"]
    assert all(update(refused[v])["interactive"] is False for v in votes)
    arms, arm_outs = handler(blocks, "ui.tab_compare", "arms")
    same = dict(zip(arm_outs, arms("hr-v1", "hr-v1")))  # one model twice closes Compare and the votes, says why
    assert "both sides are **hr-v1**" in same["cmp-status"] and "pick an adapter" in same["cmp-status"]
    assert update(same["cmp-go"])["interactive"] is False
    assert all(update(same[v])["interactive"] is False for v in votes)
    differ = dict(zip(arm_outs, arms("base", "hr-v1")))  # two different arms open Compare again, the note goes
    assert differ["cmp-status"] == "" and update(differ["cmp-go"])["interactive"] is True
    follow, _ = handler(blocks, "ui.tab_compare", "follow_domain")
    assert update(follow("hr", "base"))["value"] == "hr-v1"  # the right arm follows the domain's adapter


def test_side_by_side_offers_an_adapter_trained_after_the_app_started(core, corpus):
    """The opening arms are worked out when the page loads and the tab is shown, not once at start: an adapter
    registered since is offered and picked (base against it), while a pair the user picked is kept."""
    from ui.app import build_blocks

    core.comps.ingestor().run([corpus], "hr")
    blocks = build_blocks(core)  # the app starts without an adapter: base against base
    shown = {b.elem_id: b for b in blocks.blocks.values() if getattr(b, "elem_id", None)}
    assert shown["cmp-right"].value == "base" and shown["cmp-go"].interactive is False
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)  # trained while the app runs
    on_show, outs = handler(blocks, "ui.tab_compare", "on_show")
    tab = next(b for b in blocks.blocks.values() if getattr(b, "id", None) == "compare")
    targets = {t for f in blocks.fns.values() if f.fn is on_show for t in f.targets}
    assert {(blocks._id, "load"), (tab._id, "select")} <= targets
    got = dict(zip(outs, on_show("all", "base", "base", False)))
    assert update(got["cmp-left"])["value"] == "base" and update(got["cmp-right"])["value"] == "hr-v1"
    assert "hr-v1" in update(got["cmp-right"])["choices"] and "hr-v1" in update(got["cmp-left"])["choices"]
    assert got["cmp-status"] == "" and update(got["cmp-go"])["interactive"] is True
    kept = dict(zip(outs, on_show("hr", "hr-v1", "base", True)))  # the user's own pick stays
    assert (update(kept["cmp-left"])["value"], update(kept["cmp-right"])["value"]) == ("hr-v1", "base")
    assert "hr-v1" in update(kept["cmp-right"])["choices"]


def test_evaluation_and_adapters_show_current_values_when_the_page_loads(core, corpus):
    """The arms suggested and the next step's button are worked out when the page loads and the tab is shown, not
    left as they were when the app started until the first tick: an adapter trained since is in the arms at once
    (Run would refuse 'base' alone), and the next step's button is coloured at once."""
    from ui.app import build_blocks

    core.comps.ingestor().run([corpus], "hr")
    blocks = build_blocks(core)  # the app starts without an adapter: the arms are base alone
    elems = {b.elem_id: b for b in blocks.blocks.values() if getattr(b, "elem_id", None)}
    assert elems["ev-ab"].value == "base" and elems["ad-arms"].value == "base"
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)  # trained while the app runs
    tabs = {getattr(b, "id", None): b for b in blocks.blocks.values()}
    for module, tab in (("ui.tab_eval", "eval"), ("ui.tab_adapters", "adapters")):
        on_show, _ = handler(blocks, module, "on_show")
        targets = {t for f in blocks.fns.values() if f.fn is on_show for t in f.targets}
        assert {(blocks._id, "load"), (tabs[tab]._id, "select")} <= targets, module
    on_show, outs = handler(blocks, "ui.tab_eval", "on_show")
    got = dict(zip(outs, on_show(None, "hr", "base", "base")))
    assert got["ev-ab"] == "base,hr-v1" and update(got["ev-domain"])["value"] == "hr"
    edited = dict(zip(outs, on_show(None, "hr", "base,hr-v1,hr-v1", "base")))  # arms the user edited stay
    assert update(edited["ev-ab"]) == {"__type__": "update"}
    on_show, outs = handler(blocks, "ui.tab_adapters", "on_show")
    got = dict(zip(outs, on_show(None, "", "hr", "base", "base", "")))
    variants = {k: update(got[k])["variant"] for k in ("ad-synth", "ad-train", "ad-eval", "ad-promote")}
    assert variants == {
        "ad-synth": "secondary",
        "ad-train": "secondary",
        "ad-eval": "primary",
        "ad-promote": "secondary",
    }
    assert "3 · evaluate" in got["ad-next"] and got["ad-arms"] == "base,hr-v1"


def test_chat_render_has_citations_route_and_nothing_relevant(core, corpus):
    from assistant.answer import Answer
    from ui.tab_chat import render_answer

    core.comps.ingestor().run([corpus], "hr")
    final = [
        x
        for x in core.stream("How many days of annual leave do full-time staff receive?", "hr")
        if isinstance(x, Answer)
    ][0]
    html = render_answer(final)
    assert (
        "<details" in html
        and "[1] leave.md › Annual leave" in html
        and "27 days" in html
        and "answered by <b>base</b>" in html
    )
    link = re.search(r'<a class="cite-ref" href="#(cite-\w+-1)"[^>]*>\[1\]</a>', html)  # the inline marker, a link
    assert link and f'<details class="cite" id="{link.group(1)}">' in html  # to its source
    assert "<mark>Full-time staff receive 27 days of annual leave each year.</mark>" in html  # the supporting sentence
    assert "## Annual leave" not in html and "<h2>Annual leave</h2>" in html  # the passage rendered, not raw markdown
    none = core.ask("xylophone quantum zebra", "hr")
    assert not none.relevant and "nothing relevant" in render_answer(none)
    cut = core.ask("How many days of annual leave do full-time staff receive?", "hr", max_new_tokens=2)
    assert cut.cut and "cut at the token limit" in render_answer(cut)


def test_eval_tab_runs_an_ab_in_the_background(core, corpus, tmp_path):
    from ui.tab_chat import message
    from ui.tab_eval import list_reports, load_report, report_tables
    from ui.web_jobs import eval_available, start_eval

    if eval_available():
        pytest.skip(eval_available())
    core.eval_use_ragas = False
    core.comps.ingestor().run([corpus], "hr")
    ts = tmp_path / "ts.jsonl"
    ts.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {
                    "id": "q1",
                    "question": "How many days of annual leave do full-time staff receive?",
                    "answer": "27 days",
                    "sources": ["leave.md"],
                },
                {
                    "id": "q2",
                    "question": "How much do parking permits cost?",
                    "answer": "12 euros per month",
                    "sources": ["parking.txt"],
                },
            ]
        )
    )
    with pytest.raises(LoragError):
        start_eval(core, "hr", "base,nope-v9", ts)
    # a second base model runs only in `lorag eval` with no app: the message says how, in words HTML keeps
    with pytest.raises(LoragError) as e:
        start_eval(core, "hr", "base,model:smollm2-135m-instruct", ts)
    said = message(e.value)
    assert said.startswith("model: arms (model:NAME, a second base model) run only in `lorag eval` without the app")
    assert "stop `lorag ui` first" in said and "<" not in said and not core.jobs.all("eval"), said
    job = core.jobs.wait(_ab_with_fake_adapter(core, ts), 60)
    assert job["status"] == "done", job
    run_id = job["result"]["run_id"]
    assert run_id in list_reports(core)
    means, headers, diffs = report_tables(load_report(core, run_id))
    assert headers[0] == "metric" and means and diffs


def test_an_eval_jobs_generate_count_moves_as_each_answer_is_generated(core, corpus, tmp_path, monkeypatch):
    """A 2-question A/B in the app (4 answers in one batch): the job line the Evaluation tab shows counts the
    answers as they are generated (generate · 1/4, 2/4, 3/4), not 0/4 until the batch is done."""
    from ui.web_jobs import eval_available

    if eval_available():
        pytest.skip(eval_available())
    ts = _two_question_testset(core, corpus, tmp_path)
    gen, stream = core.comps.generator, core.comps.generator.stream

    def slow(messages, **kw):  # an answer takes a while, as a model's does
        time.sleep(0.5)
        yield from stream(messages, **kw)

    monkeypatch.setattr(gen, "stream", slow)
    shown = _lines_while_running(core, _ab_with_fake_adapter(core, ts))
    counts = {m.group(1) for line in shown if (m := re.search(r"generate · (\d/4)", line))}
    assert len(counts & {"1/4", "2/4", "3/4"}) >= 2, shown  # it moved while the batch ran


def test_an_eval_jobs_line_keeps_moving_shows_generate_n_of_n_and_scoring_as_its_own_phase(
    core, corpus, tmp_path, monkeypatch
):
    """What a user saw: 1/4, then 3/4 (two answers ending together), then a long wait while the last answer runs to
    the token limit, then scoring. Now, while at 3/4 the job line goes on (the stage's elapsed time, an ETA counting
    down), and once scoring (its own phase, counting the answers then the questions' retrieval) or the report has
    begun, the line still says generation ended at 4/4 — whenever the tab's timer polls."""
    import eval.metrics
    import eval.report_build
    from ui.web_jobs import eval_available

    if eval_available():
        pytest.skip(eval_available())
    ts = _two_question_testset(core, corpus, tmp_path)
    gen, stream = core.comps.generator, core.comps.generator.stream
    waits = iter([0.4, 0.0, 0.0, 2.2])  # the 2nd and 3rd answers end with the 1st; the 4th runs to the limit

    def timed(messages, **kw):
        time.sleep(next(waits, 0.0))
        yield from stream(messages, **kw)

    def slowly(fn):
        def run(*a, **kw):
            time.sleep(0.6)
            return fn(*a, **kw)

        return run

    monkeypatch.setattr(gen, "stream", timed)
    monkeypatch.setattr(eval.metrics.MetricSuite, "score_answers", slowly(eval.metrics.MetricSuite.score_answers))
    monkeypatch.setattr(eval.report_build, "build_report", slowly(eval.report_build.build_report))
    shown = _lines_while_running(core, _ab_with_fake_adapter(core, ts))
    waiting = [line for line in shown if "generate · 3/4" in line]
    ticks = {m.group(1) for line in waiting if (m := re.search(r"(\d:\d\d) elapsed", line))}
    assert {"0:01", "0:02"} <= ticks, waiting  # the line goes on while the last answer is generated
    assert "longer than estimated" in waiting[-1], waiting  # its ETA (0.13 s per answer) ran out
    after = [line for line in shown if re.search(r" · (score|report) · ", line)]
    assert after and all("generate 4/4 done (0:0" in line for line in after), shown
    assert any(re.search(r" · score · [0-5]/6 · ", line) for line in after), after  # 4 answers, 2 questions
    assert any("score 6/6 done" in line and " · report · 0/1" in line for line in after), after


def test_an_uploaded_files_name_is_a_display_name_only(core, corpus, tmp_path):
    """The Evaluation tab's report names the user's file, not Gradio's temporary path; a name a sender gives (the
    CLI's upload) loses its line breaks and control characters, is capped, and its markdown shows as text."""
    from ui.app import build_blocks
    from ui.tab_eval import load_report, report_view
    from ui.web_jobs import NAME_MOST, eval_available, start_eval, start_synth

    if eval_available():
        pytest.skip(eval_available())
    core.eval_use_ragas = False
    core.comps.ingestor().run([corpus], "hr")
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    upload = tmp_path / "gradio" / "3f9a1c" / "x.jsonl"
    upload.parent.mkdir(parents=True)
    q = {"id": "q1", "question": "How much do parking permits cost?", "answer": "12 euros", "sources": ["parking.txt"]}
    upload.write_text(json.dumps(q) + "\n")
    evaluate, _ = handler(build_blocks(core), "ui.tab_eval", "evaluate")
    job_id = re.search(r"started job `([^`]+)`", evaluate("hr", "base,hr-v1", str(upload), None)[0]).group(1)
    job = core.jobs.wait(job_id, 60)
    assert job["status"] == "done", job
    assert load_report(core, job["result"]["run_id"])["testset"]["path"] == "x.jsonl"

    given = "![](http://x/t.png)\n**big**\x1b[2J\u202e" + "a" * 400 + "/ts.jsonl"
    job = core.jobs.wait(start_eval(core, "hr", "base,hr-v1", upload, testset_name=given), 60)
    assert job["status"] == "done", job
    run_id = job["result"]["run_id"]
    shown = load_report(core, run_id)["testset"]["path"]
    assert len(shown) == NAME_MOST and shown.endswith("a/ts.jsonl") and shown.isprintable()
    short = "![t](t.png) **big**\t[2J.jsonl"
    job = core.jobs.wait(start_eval(core, "hr", "base,hr-v1", upload, testset_name=short), 60)
    shown = load_report(core, job["result"]["run_id"])["testset"]["path"]
    assert shown == "![t](t.png) **big** [2J.jsonl"
    text = report_view(core, job["result"]["run_id"])["verdict"]
    assert "![t](" not in text and "**big**" not in text
    assert r" of \!\[t\]\(t\.png\) \*\*big\*\* \[2J\.jsonl, top-k" in text  # shown as typed, not rendered

    qa = upload.parent / "qa.jsonl"
    qa.write_text(json.dumps({**q, "answer": "Parking permits cost 12 euros per month."}) + "\n")
    synth_data, _ = handler(build_blocks(core), "ui.tab_adapters", "synth_data")
    job_id = re.search(r"started job `([^`]+)`", synth_data("hr", str(qa), "cloze", 3)[0]).group(1)
    job = core.jobs.wait(job_id, 60)
    assert job["params"]["qa"] == "qa.jsonl" and any(x.endswith(" curated Q&A: qa.jsonl") for x in job["log"]), job

    bad = tmp_path / "qa.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(LoragError) as e:
        start_synth(core, "hr", bad, writer="cloze", qa_name="my\nqa.jsonl")
    assert "my qa.jsonl" in str(e.value) and "my\nqa" not in str(e.value)


def _lines_while_running(core, job_id):
    """Every change of the job's progress line, polled as a tab's timer would, until the job is done."""
    from ui.jobs import progress_line

    shown: list[str] = []
    deadline = time.monotonic() + 60
    while (job := core.jobs.get(job_id))["status"] == "running" and time.monotonic() < deadline:
        line = progress_line(job)
        if not shown or shown[-1] != line:
            shown.append(line)
        time.sleep(0.02)
    assert job["status"] == "done", job
    return shown


def _two_question_testset(core, corpus, tmp_path):
    """The "hr" domain ingested, offline metrics only, and a 2-question test set file (4 answers in an A/B)."""
    core.eval_use_ragas = False
    core.comps.ingestor().run([corpus], "hr")
    ts = tmp_path / "ts.jsonl"
    rows = [
        {"id": "q1", "question": "How many days of annual leave do full-time staff receive?", "answer": "27 days"},
        {"id": "q2", "question": "How much do parking permits cost?", "answer": "12 euros per month"},
    ]
    ts.write_text("".join(json.dumps({**r, "sources": []}) + "\n" for r in rows))
    return ts


def _ab_with_fake_adapter(core, ts):
    from ui.web_jobs import start_eval

    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    core.comps.generator._adapters.append("hr-v1")
    return start_eval(core, "hr", "base,hr-v1", ts)


def test_auth_config_must_be_complete(settings):
    from ui.app import _auth

    assert _auth(settings) is None
    settings.ui.username = "ann"
    with pytest.raises(LoragError):
        _auth(settings)
    settings.ui.password = "pw"
    assert _auth(settings) == ("ann", "pw")


def test_lorag_ui_and_demo_serve_launch_the_app(tmp_path, monkeypatch, bm25, corpus):
    import uvicorn
    from typer.testing import CliRunner

    from ui import cli, cli_ask
    from ui.components import Components

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LORAG_RETRIEVAL__MIN_RELEVANCE", "0.2")
    monkeypatch.setattr(
        cli.state,
        "factory",
        lambda s: Components(s, dense=HashingEmbedder(2048), sparse=bm25, generator=FakeGenerator()),
    )
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: served.append((app, host, port)))
    from ui import app as ui_app

    # citation matching's lemmatizer loads with the models, before the app serves: not in the first answer
    warmed = []  # how many apps were served when it loaded
    monkeypatch.setattr(ui_app, "warm_lemmas", lambda: warmed.append(len(served)))
    r = CliRunner().invoke(cli.app, ["ui", "--port", "8123"])
    assert r.exit_code == 0, r.output
    assert warmed == [0] and len(served) == 1
    app, host, port = served[-1]
    assert (host, port) == ("127.0.0.1", 8123) and "/v1/chat/completions" in app.openapi()["paths"]
    assert "http://127.0.0.1:8123" in r.output
    (tmp_path / "samples").mkdir()
    shutil.copytree(corpus, tmp_path / "samples" / "hr")
    monkeypatch.setattr(cli, "models_pull", lambda names=None, force=False: None)
    workers = []
    monkeypatch.setenv("LORAG_CLI__KEEP_WARM_S", "600")
    monkeypatch.setattr(cli_ask, "_warm_worker", lambda *a, **kw: workers.append(a))  # None: answered in this process
    demo = ["demo", "--corpus", str(tmp_path / "samples"), "-q", "How much do parking permits cost?"]
    r = CliRunner().invoke(cli.app, demo)
    assert r.exit_code == 0 and "12 euros" in r.output and len(workers) == 1, r.output  # the next ask finds it warm
    r = CliRunner().invoke(cli.app, [*demo, "--serve"])
    assert r.exit_code == 0, r.output
    assert len(served) == 2 and "lorag ui: http://127.0.0.1:7860" in r.output
    assert len(workers) == 1  # with --serve no worker: the app serves the models the demo's asks loaded


def test_synth_job_writes_the_training_set(core, corpus, tmp_path):
    from ui.adapters_view import registry_rows
    from ui.web_jobs import promote, start_synth

    core.comps.ingestor().run([corpus], "hr")
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "".join(
            json.dumps({"id": f"hr-{i}", "question": q, "answer": a, "sources": [s]}) + "\n"
            for i, (q, a, s) in enumerate(
                [
                    (
                        "How many days of annual leave do full-time staff receive?",
                        "27 days of annual leave each year.",
                        "leave.md",
                    ),
                    ("How much does a parking permit cost?", "Parking permits cost 12 euros per month.", "parking.txt"),
                    ("Where do visitors sign in?", "Visitors sign in at the lobby kiosk.", "security.html"),
                ]
            )
        )
    )
    job = core.jobs.wait(start_synth(core, "hr", qa, writer="cloze", max_chunks=5), 60)
    assert job["status"] == "done", job
    assert job["result"]["train_examples"] > 0 and (core.settings.datasets_dir / "hr" / "train.jsonl").is_file()
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    assert [r[0] for r in registry_rows(core)] == ["hr-v1"] and registry_rows(core)[0][4] == ""  # not stale
    with pytest.raises(LoragError, match="no evaluation report"):
        promote(core, "hr-v1")
    assert "forced" in promote(core, "hr-v1", force=True)
    cell = registry_rows(core)[0][-1]  # the promotion column: forced past the gate, not the refusal alone
    assert cell.startswith("forced (the gate said: ") and "no evaluation report" in cell, cell


def test_verdict_says_in_plain_words_which_arm_answers_better():
    from eval.report_verdict import verdict

    def report(diff, lo, hi, n=40, min_questions=20):
        return {
            "gate_metric": "answer_f1",
            "min_questions": min_questions,
            "baseline": "base",
            "arms": [{"label": "base"}, {"label": "handbook-v2"}],
            "comparisons": [
                {
                    "a": "base",
                    "b": "handbook-v2",
                    "metrics": {"answer_f1": {"diff": diff, "ci_low": lo, "ci_high": hi, "n": n}},
                }
            ],
        }

    assert verdict(report(0.12, 0.05, 0.19)) == [
        "handbook-v2 answers better than base: +0.12 F1, 95% CI [+0.05, +0.19], 40 questions."
    ]
    assert verdict(report(-0.014, -0.025, -0.004))[0].startswith(
        "handbook-v2 answers worse than base: -0.014 F1, 95% CI [-0.025, -0.004]"
    )
    assert verdict(report(0.02, -0.03, 0.07))[0].startswith(
        "No clear difference between handbook-v2 and base: +0.02 F1"
    )
    # a CI over fewer questions than eval.min_questions settles nothing, whichever side of zero it lies
    assert verdict(report(0.0747, 0.0747, 0.0747, n=1)) == [
        "handbook-v2 vs base: inconclusive, too few questions: n=1, the gate needs at least 20 (eval.min_questions); "
        "measured +0.07 F1, 95% CI [+0.07, +0.07]."
    ]
    assert "inconclusive, too few questions: n=19" in verdict(report(-0.1, -0.2, -0.05, n=19))[0]
    assert verdict(report(0.0747, 0.0747, 0.0747, n=1, min_questions=1)) == [
        "handbook-v2 answers better than base: +0.07 F1, 95% CI [+0.07, +0.07], 1 question."
    ]


def test_training_progress_reads_as_stage_step_loss_rate_and_eta(tmp_path):
    from ui.jobs import JobRunner, progress_line

    runner = JobRunner(tmp_path / "jobs")
    gate = threading.Event()

    def work(job):
        job.point({"stage": "loading the base model"})
        gate.wait(5)
        for step in (5, 10):
            job.point({"step": step, "max_steps": 40, "loss": 2.0 / step, "num_input_tokens_seen": 1000 * step})
            time.sleep(0.3)
        gate.clear()
        gate.wait(5)

    jid = runner.start("train", "train hr", work)
    time.sleep(0.3)
    assert progress_line(runner.get(jid)) == "**train hr** — running · loading the base model"
    gate.set()
    time.sleep(1.0)
    line = progress_line(runner.get(jid))
    assert re.fullmatch(
        r"\*\*train hr\*\* — running · training · step 10/40 · loss 0\.200 · [\d,]+ tokens/s · ETA \d:\d\d", line
    ), line
    gate.set()
    runner.wait(jid, 5)
    assert (
        progress_line(runner.get(jid)) == "**train hr** — done"
        and "loading the base model" in runner.get(jid)["log"][1]
    )


def _plotted(fig) -> tuple:
    """A figure's axes box and its lines: label -> (marker radius, line style, points), all in display pixels."""
    fig.canvas.draw()
    ax = fig.axes[0]
    lines = {}
    for line in ax.get_lines():
        marked = line.get_marker() not in (None, "None", "", " ")
        radius = line.get_markersize() * fig.dpi / 72 / 2 if marked else 0.0
        lines[line.get_label()] = (radius, line.get_linestyle(), ax.transData.transform(line.get_xydata()))
    return ax.get_window_extent(), lines


def _whole_inside(box, radius: float, points) -> bool:
    return all(
        box.x0 <= x - radius and x + radius <= box.x1 and box.y0 <= y - radius and y + radius <= box.y1
        for x, y in points
    )


def test_the_loss_plot_of_a_one_step_run_shows_its_train_and_held_out_points_whole():
    """A run of one optimizer step logs one train and one held-out loss, both at its last step: each is a marker (a
    line through one point draws nothing), drawn whole inside the axes (not cut at the right edge); a longer run's
    train loss stays a line, its held-out point at the last step whole too."""
    pytest.importorskip("matplotlib")
    from ui.adapters_view import loss_figure

    one = [{"step": 1, "max_steps": 1, "loss": 2.31}, {"step": 1, "max_steps": 1, "eval_loss": 2.45}]
    fig = loss_figure({"kind": "train", "title": "train hr", "curve": one})
    box, lines = _plotted(fig)
    assert sorted(lines) == ["held-out", "train"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["train", "held-out"]
    for label, (radius, _, points) in lines.items():
        assert radius > 0 and len(points) == 1, label
        assert _whole_inside(box, radius, points), (label, points, box)
    assert all(float(t).is_integer() for t in fig.axes[0].get_xticks())  # steps, not 0.2 of one

    longer = [{"step": s, "max_steps": 40, "loss": 2.0 / s} for s in range(5, 45, 5)]
    longer += [{"step": s, "max_steps": 40, "eval_loss": 1.0 / s} for s in (20, 40)]
    box, lines = _plotted(loss_figure({"kind": "train", "title": "train hr", "curve": longer}))
    radius, style, points = lines["train"]
    assert radius == 0 and style == "-" and len(points) == 8
    radius, style, points = lines["held-out"]
    assert radius > 0 and style == "--" and _whole_inside(box, radius, points), (points, box)


def test_next_step_follows_the_workflow_and_promotion_refusal_speaks_the_apps_language(core, corpus):
    from ui.adapters_view import next_step
    from ui.web_jobs import eval_arms, promote

    assert next_step(core, None)[0] == 0 and "Documents" in next_step(core, None)[1]
    core.comps.ingestor().run([corpus], "hr")
    assert next_step(core, "hr")[0] == 1
    (core.settings.datasets_dir / "hr").mkdir(parents=True)
    (core.settings.datasets_dir / "hr" / "train.jsonl").write_text("{}\n")
    assert next_step(core, "hr")[0] == 2 and eval_arms(core, "hr") == "base"
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    assert next_step(core, "hr")[0] == 3 and eval_arms(core, "hr") == "base,hr-v1"
    with pytest.raises(LoragError) as e:
        promote(core, "hr-v1")
    text = str(e.value)
    assert "Evaluation tab" in text and "tick Force" in text and "--force" not in text and "lorag eval" not in text
    promote(core, "hr-v1", force=True)
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 2)
    assert eval_arms(core, "hr") == "base,hr-v1,hr-v2"  # the served version too: promoting v2 needs a report against it


def test_no_step_is_next_while_a_job_of_the_domain_runs(core, corpus):
    """While the domain's training runs, the guide says so and no button is the primary one (a click would start
    a second run); another domain's job changes nothing; when the job ends, the next step is back."""
    from ui.adapters_view import BUSY, next_step

    core.comps.ingestor().run([corpus], "hr")
    (core.settings.datasets_dir / "hr").mkdir(parents=True)
    (core.settings.datasets_dir / "hr" / "train.jsonl").write_text("{}\n")
    release = threading.Event()
    other = core.jobs.start("train", "train it", lambda job: release.wait(10), {"domain": "it"})
    assert next_step(core, "hr")[0] == 2
    job = core.jobs.start("train", "train hr", lambda job: release.wait(10), {"domain": "hr"})
    n, text = next_step(core, "hr")
    assert n == BUSY and "2 · train hr" in text and job in text
    release.set()
    for j in (job, other):
        deadline = time.monotonic() + 10
        while core.jobs.get(j)["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
    assert next_step(core, "hr")[0] == 2


def test_an_ab_whose_adapter_is_not_loaded_yet_attaches_it_and_finishes(core, corpus, tmp_path):
    """Attaching takes every slot of the generation gate: it happens before the evaluation takes its own."""
    from ui.web_jobs import eval_available, start_eval

    if eval_available():
        pytest.skip(eval_available())
    core.eval_use_ragas = False
    core.comps.ingestor().run([corpus], "hr")
    register_fake_adapter(core.comps.registry, core.comps.store, "hr", 1)
    attached, attach = [], core.comps.attach

    def attach_and_note(names):
        attached.append((list(names), core.gate.busy))
        attach(names)

    core.comps.attach = attach_and_note
    ts = tmp_path / "ts.jsonl"
    q = {"id": "q1", "question": "How much do parking permits cost?", "answer": "12 euros", "sources": ["parking.txt"]}
    ts.write_text(json.dumps(q) + "\n")
    job = core.jobs.wait(start_eval(core, "hr", "base,hr-v1", ts), 120)
    assert job["status"] == "done", job
    assert attached == [(["hr-v1"], core.gate.slots)]  # every slot held by attach itself, none by the evaluation


def test_evaluation_run_opens_only_on_two_different_arms_and_says_why(core, corpus):
    """With base as the only model, Evaluation's Run is off and a note says why (train an adapter first), as Side by
    side's Compare is; arms naming two models open it and the note goes; a run's own status line is left alone."""
    from ui.app import build_blocks

    core.comps.ingestor().run([corpus], "hr")
    blocks = build_blocks(core)
    elems = {b.elem_id: b for b in blocks.blocks.values() if getattr(b, "elem_id", None)}
    assert elems["ev-ab"].value == "base" and elems["ev-run"].interactive is False
    assert "Run is off" in elems["ev-status"].value and "train an adapter" in elems["ev-status"].value
    assert "only one for domain **hr** so far" in elems["ev-status"].value  # which domain has none
    gate, outs = handler(blocks, "ui.tab_eval", "gate")
    targets = {t for f in blocks.fns.values() if f.fn is gate for t in f.targets}
    assert (elems["ev-ab"]._id, "change") in targets  # the arms typed, or suggested by a tick
    opened = dict(zip(outs, gate("base,hr-v1", elems["ev-status"].value, "hr")))
    assert update(opened["ev-run"])["interactive"] is True and opened["ev-status"] == ""
    kept = dict(zip(outs, gate("base,hr-v2", "started job `eval-1`: its progress is below", "hr")))
    assert update(kept["ev-run"])["interactive"] is True and update(kept["ev-status"]) == {"__type__": "update"}
    for arms in ("base", "hr-v1, hr-v1", ""):
        closed = dict(zip(outs, gate(arms, "started job `eval-1`", "hr")))
        assert update(closed["ev-run"])["interactive"] is False and closed["ev-status"].startswith("Run is off")


def test_evaluation_run_off_note_names_the_repeated_arm_and_the_domains_own_adapters(core, corpus, tmp_path):
    """Arms naming one model twice (or base alone while the domain has an adapter) say so, with an example of the
    domain's own adapter, not that base is its only model; a domain without adapters is told it has none, never
    given another domain's adapter as an example."""
    import shutil

    from ui.app import build_blocks

    core.comps.ingestor().run([corpus], "handbook")
    it = tmp_path / "it-docs"
    shutil.copytree(corpus, it)
    core.comps.ingestor().run([it], "itsupport")
    register_fake_adapter(core.comps.registry, core.comps.store, "handbook", 1)
    blocks = build_blocks(core)
    gate, outs = handler(blocks, "ui.tab_eval", "gate")
    for arms in ("base,base", "base, base"):
        note = dict(zip(outs, gate(arms, "", "handbook")))["ev-status"]
        assert note.startswith("Run is off: the arms name **base** 2 times"), note
        assert "`base,handbook-v1`" in note and "only one" not in note and "train an adapter" not in note
    note = dict(zip(outs, gate("base", "", "handbook")))["ev-status"]
    assert "two different arms" in note and "`base,handbook-v1`" in note and "only one" not in note
    note = dict(zip(outs, gate("handbook-v1,handbook-v1", "", "handbook")))["ev-status"]
    assert note.startswith("Run is off: the arms name **handbook\\-v1** 2 times") and "`base,handbook-v1`" in note
    for arms in ("base", "base,base"):
        closed = dict(zip(outs, gate(arms, "", "itsupport")))
        note = closed["ev-status"]
        assert update(closed["ev-run"])["interactive"] is False
        assert "handbook" not in note and ("no adapter" in note or "only one" in note), note
    assert "only one for domain **itsupport** so far" in dict(zip(outs, gate("base", "", "itsupport")))["ev-status"]
    assert "**itsupport** has no adapter yet" in dict(zip(outs, gate("base,base", "", "itsupport")))["ev-status"]


def test_documents_show_todays_domains_and_documents_when_the_page_loads(core, corpus):
    """A domain and documents indexed since the app started (by the CLI, another page) are in the Documents tab
    when the page loads or the tab is shown, not only after its first tick; a domain the user typed stays."""
    from ui.app import build_blocks

    blocks = build_blocks(core)  # nothing indexed when the app starts
    elems = {b.elem_id: b for b in blocks.blocks.values() if getattr(b, "elem_id", None)}
    assert elems["docs-domain"].choices == [] and elems["docs-domain"].value is None
    core.comps.ingestor().run([corpus], "hr")  # indexed while the app runs
    on_show, outs = handler(blocks, "ui.tab_docs", "on_show")
    tabs = {getattr(b, "id", None): b for b in blocks.blocks.values()}
    targets = {t for f in blocks.fns.values() if f.fn is on_show for t in f.targets}
    assert {(blocks._id, "load"), (tabs["docs"]._id, "select")} <= targets
    got = dict(zip(outs, on_show(None, None)))
    assert update(got["docs-domain"])["choices"] == ["hr"] and update(got["docs-domain"])["value"] is None
    assert update(got["docs-filter"])["choices"] == ["(all domains)", "hr"]
    assert {row[0] for row in got["docs-table"]} == {"hr"}
    typed = dict(zip(outs, on_show("canteen", None)))
    assert update(typed["docs-domain"])["value"] == "canteen"


def _answer(text: str, passages: list, question: str = "q?") -> "Answer":  # noqa: F821 - imported lazily
    """An answer to `question` from `passages` (Passage objects), its citations worked out as the service does."""
    from assistant.answer import Answer
    from assistant.citations import extract_citations

    return Answer(question, text, extract_citations(text, passages, question), passages, ["hr"], True)


def _passage(n: int, text: str, section: str = "Leave", source: str = "leave.md"):
    from assistant.retrieval import Passage

    return Passage(n, text, source, section, None, 0.9, "hr", f"/docs/{source}", f"c{n}")


def test_each_inline_marker_links_to_its_own_answers_source():
    """A cited [n] is a link to source n under the same answer (its <details>' id); two answers in one chat (or the
    two columns side by side) never share an id, so each marker opens its own answer's source. A number the
    answer does not cite stays plain text."""
    from ui.tab_chat import render_answer

    passages = [
        _passage(1, "Full-time staff receive 27 days of annual leave each year."),
        _passage(2, "Up to 5 unused days may be carried over to the next year.", "Carry-over"),
    ]
    ans = _answer("You get 27 days [1]. Five days carry over [2]. See also [7].", passages)
    first, second = render_answer(ans), render_answer(ans)
    for html in (first, second):
        links = dict(re.findall(r'<a class="cite-ref" href="#([^"]+)"[^>]*>\[(\d)\]</a>', html))
        ids = re.findall(r'<details class="cite" id="([^"]+)">', html)
        assert sorted(links.values()) == ["1", "2"] and sorted(links) == sorted(ids)  # every marker has its source
        assert "[7]" in html and 'href="#cite-' not in html.split("[7]")[0][-40:]  # not cited: no link
    ids_first = set(re.findall(r'id="([^"]+)"', first))
    ids_second = set(re.findall(r'id="([^"]+)"', second))
    assert ids_first and not ids_first & ids_second  # unique across answers
    fixed = render_answer(ans, key="k1")
    assert 'href="#cite-k1-2"' in fixed and '<details class="cite" id="cite-k1-2">' in fixed


def _rendered(markdown: str):
    """The HTML a Markdown view makes of `markdown` (CommonMark, raw HTML passed through, as shown_text reads it),
    parsed."""
    from bs4 import BeautifulSoup
    from markdown_it import MarkdownIt

    return BeautifulSoup(MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown), "html.parser")


# what a model wrote: "    ```python" indented four spaces (code, no fence), then a "```" at the line's start
# that opens a fence it never closes
UNCLOSED_FENCE = "Turn it on, then list them:\n\n    ```python\n    shopt -s nullglob\n```\nThe word stays as is [1]."


def test_a_code_fence_the_model_leaves_open_takes_in_no_route_cut_notice_or_source():
    """The cut notice, the route line and the sources after an answer whose markdown opens a fence it never
    closes are HTML, not lines of a code block, in Chat and in a Side by side column; the answer's own code stays
    code. So does a source passage's code whose blank line (and indented line after it) would end the sources'
    HTML block and be read as markdown."""
    from assistant.answer import Answer
    from ui.tab_chat import render_answer
    from ui.tab_compare import _column

    code = "shopt -s nullglob\n\n    ls *.txt\n"
    passage = _passage(
        1, f"If no matching filenames are found, the word is left unchanged.\n\n```\n{code}```\nEnd.", "Globs"
    )
    cited = _answer(UNCLOSED_FENCE, [passage])
    ans = Answer("q?", UNCLOSED_FENCE, cited.citations, [passage], ["hr"], True, tokens=30, finish_reason="length")
    for shown in (render_answer(ans), _column({"answer": ans.answer, "final": ans})):
        page = _rendered(shown)
        assert "class=" not in "".join(c.get_text() for c in page.find_all("code"))  # no HTML shown as code
        assert "cut at the token limit" in page.select_one("div.cut").get_text()
        assert page.select_one("div.route").get_text() == "answered by base"
        (source,) = page.select("details.cite")
        assert source.select_one("summary").get_text() == "[1] leave.md › Globs"
        assert source.select_one(".cite-body pre code").get_text() == code  # its blank line and indent kept
        assert source.select_one(".cite-meta").get_text() == "leave.md#Globs · domain hr"
        codes = [c.get_text() for c in page.find_all("code") if not c.find_parent("details")]
        assert codes == ["```python\nshopt -s nullglob\n", "The word stays as is [1].\n"]  # the answer, as written


def test_a_marker_inside_the_answers_code_stays_as_written():
    """A [n] in the answer's code (a block or a `span`: an array index, say) is code, shown as written; the
    marker in its prose is the link to its source."""
    from ui.tab_chat import render_answer

    text = "Read `arr[1]` [1]:\n\n```sh\necho ${arr[1]}\n```\n\n    x[1]=2"
    page = _rendered(render_answer(_answer(text, [_passage(1, "Arrays are indexed from zero: arr[1].")]), key="k"))
    assert [a["href"] for a in page.select("a.cite-ref")] == ["#cite-k-1"]
    codes = [c.get_text() for c in page.find_all("code") if not c.find_parent("details")]
    assert codes == ["arr[1]", "echo ${arr[1]}\n", "x[1]=2\n"]


@pytest.mark.parametrize(
    "text,closed",
    [
        (UNCLOSED_FENCE, UNCLOSED_FENCE + "\n```"),
        ("~~~~\nx\n~~~", "~~~~\nx\n~~~\n~~~~"),  # a shorter fence closes no longer one
        ("Run:\n<pre>\nls", "Run:\n<pre>\nls\n</pre>"),  # raw HTML that only its closing tag ends
        ("Note <!-- draft", "Note <!-- draft"),  # inline: a paragraph, nothing to close
        ("Note\n\n<!-- draft", "Note\n\n<!-- draft\n-->"),
        ("```sh\nls\n```\nDone.", "```sh\nls\n```\nDone."),  # closed already
        ("1. Run:\n\n    ```sh\n    ls\n    ```", "1. Run:\n\n    ```sh\n    ls\n    ```"),  # a list item's
        ("- ```\n  ls\n  ```", "- ```\n  ls\n  ```"),  # fence, closed: a "```" added would open one
        ("- ```\n  ls", "- ```\n  ls"),  # the list ends before what follows, and its fence with it
    ],
)
def test_only_a_block_left_open_at_the_end_is_closed(text, closed):
    from ui.answer_markdown import closed_markdown

    assert closed_markdown(text) == closed
    after = _rendered(closed + '\n\n<div class="route">answered by <b>base</b></div>')
    assert after.select_one("div.route") is not None


def test_a_streamed_answer_shows_as_its_markdown_reads_and_an_error_after_it_is_no_code(core):
    """While the answer streams, Chat and Side by side show its markdown (a fence it opened is code, the cursor
    in it; `don't` is no &#x27;); an engine that fails mid-answer leaves what came, then why, not inside the code."""
    from types import SimpleNamespace

    from ui.tab_chat import chat_turn
    from ui.tab_compare import _column

    pieces = ["Turn it on:\n", "```sh\n", "shopt -s nullglob # don't"]

    def stream(*args, **kwargs):
        yield from pieces
        raise LoragError("the engine stopped answering", hint="see its log")

    shown = [h[-1]["content"] for h, _, _ in chat_turn(SimpleNamespace(stream=stream), "q?", [], [], "hr", "base")]
    for partial in (shown[-2], _column({"answer": "".join(pieces)})):  # Chat, Side by side
        assert _rendered(partial).select_one("pre code").get_text().rstrip("\n") == "shopt -s nullglob # don't ▌"
    failed = _rendered(shown[-1])
    assert failed.select_one("pre code").get_text() == "shopt -s nullglob # don't\n"
    assert failed.find_all("p")[-1].get_text() == "⚠ the engine stopped answering — see its log"


def test_two_markers_of_one_source_open_it_and_it_is_listed_once():
    """[1] and [3] cite two overlapping chunks of one page for one sentence: one source, labelled [1][3], that
    both markers open; the CLI lists it once too."""
    from tests.test_ask import _bash_chunks
    from ui.tab_chat import render_answer

    answer = "When no matching filenames are found under nullglob, the word stays [1]. It is left unchanged [3]."
    ans = _answer(answer, _bash_chunks())
    page = _rendered(render_answer(ans, key="k"))
    (source,) = page.select("details.cite")
    assert source.select_one("summary").get_text() == "[1][3] bashref.pdf › p. 41"
    assert [(a.get_text(), a["href"]) for a in page.select("a.cite-ref")] == [
        ("[1]", "#cite-k-3"),
        ("[3]", "#cite-k-3"),
    ]
    assert source["id"] == "cite-k-3" and "the word is left unchanged." in source.select_one("mark").get_text()


def test_the_cli_lists_a_source_of_two_markers_once(capsys):
    from tests.test_ask import _bash_chunks
    from ui.cli_ask import _print_answer_end

    answer = "When no matching filenames are found under nullglob, the word stays [1]. It is left unchanged [3]."
    _print_answer_end(_answer(answer, _bash_chunks()).to_dict())
    assert capsys.readouterr().out == (
        "\nSources:\n  [1][3] bashref.pdf › p. 41\n      “If no matching filenames are found, and the shell option "
        "nullglob is disabled, the word is left unchanged.”\n"
    )


def test_a_csv_passage_shows_one_row_a_line_and_marks_the_row_quoted():
    """The rows of a CSV passage ("column: value; ..." lines) are a list, one row an item, not one run-on
    paragraph; the row that supports the answer is marked in its place."""
    from ui.tab_chat import passage_block

    rows = [
        "code: E-101; category: Lamp; operator can clear: Yes",
        "code: E-900; category: Supervisor; operator can clear: No",
    ]
    p = _passage(1, "\n".join(rows), "table: code, category, operator can clear", "error-codes.csv")
    html = passage_block(p, quote=rows[1])
    assert re.findall(r"<li>(.*?)</li>", html) == [rows[0], f"<mark>{rows[1]}</mark>"]
    prose = passage_block(_passage(1, "First line\nsecond line of the same paragraph."))
    assert "<li>" not in prose and "<p>First line\nsecond line" in prose  # markdown prose stays as markdown renders it


def test_a_passage_cut_inside_code_keeps_its_first_lines_indentation():
    """A chunk that starts inside a code block keeps the indentation of its first line: markdown shows the lines as
    code, not as one paragraph."""
    from ui.tab_chat import passage_block

    html = passage_block(_passage(1, "\n    for x in xs:\n        if x:\n            f(x)\n"))
    assert "<pre><code>for x in xs:\n    if x:\n        f(x)\n</code></pre>" in html


def test_a_plain_quote_is_marked_through_the_passages_markdown():
    """The supporting sentence is plain text (no ** marks); in the passage rendered from markdown it is still found
    and marked, piece by piece around the bold, so the HTML stays well nested."""
    from ui.tab_chat import passage_block

    p = _passage(1, "## Annual leave\n\nStaff get **27 days** of leave, `paid`. Other text.")
    html = passage_block(p, quote="Staff get 27 days of leave, paid.")
    assert (
        "<p><mark>Staff get </mark><strong><mark>27 days</mark></strong><mark> of leave, </mark>"
        "<code><mark>paid</mark></code><mark>.</mark> Other text.</p>"
    ) in html
    assert '<div class="cite-quote">“<mark>Staff get 27 days of leave, paid.</mark>”</div>' in html
    assert "**" not in html
    missing = passage_block(p, quote="A sentence the passage does not hold.")
    assert "<p>Staff get <strong>27 days</strong>" in missing  # nothing marked in the body


def test_a_quote_with_a_link_an_image_or_an_escape_is_marked_in_the_passage():
    """The quote reads a link and an image as their text and \\* as *, as the rendered passage does: it is found
    and marked there."""
    from assistant.sentences import supporting_sentence
    from ui.tab_chat import passage_block

    text = (
        "## Leave\n\nRead the [leave policy](https://x.example/p) before ![the *form*](img/f.png) is sent. "
        "Other text.\n\nSearch for \\*wildcard\\* names, not `a\\*b`."
    )
    p = _passage(1, text)
    quote = supporting_sentence(text, "leave policy form sent")
    assert quote == "Read the leave policy before the form is sent."
    html = passage_block(p, quote=quote)
    assert (
        '<p><mark>Read the </mark><a href="https://x.example/p"><mark>leave policy</mark></a><mark> before the </mark>'
        "<em><mark>form</mark></em><mark> is sent.</mark> Other text.</p>"
    ) in html
    assert "<img" not in html
    quote = supporting_sentence(text, "wildcard names")
    assert quote == "Search for *wildcard* names, not a\\*b."
    assert "<p><mark>Search for *wildcard* names, not </mark><code><mark>a\\*b</mark></code><mark>.</mark></p>" in (
        passage_block(p, quote=quote)
    )


def test_a_quote_a_hard_wrapped_page_carries_over_lines_is_marked_in_the_passage():
    """A PDF page's sentence over line breaks, a word cut by a hyphen at one: the quote reads it whole and the
    passage shows it marked where it stands, hyphen and all."""
    from assistant.sentences import supporting_sentence
    from tests.test_ask import BASH_PAGE
    from ui.tab_chat import passage_block

    quote = supporting_sentence(BASH_PAGE, "the traditional Bourne shell")
    assert (
        quote == "There are some differences between the traditional Bourne shell and Bash; this section details them."
    )
    html = passage_block(_passage(1, BASH_PAGE, "page 41", "bashref.pdf"), quote=quote)
    assert (
        "<mark>There are some differences between the tradi-\ntional Bourne shell and Bash; this section details "
        "them.</mark> After word splitting,"
    ) in html


def test_an_upload_without_a_domain_is_refused_saying_to_choose_one(core, tmp_path):
    """No domain is picked for the user; an upload without one names what to do (not an 'invalid name' of '')."""
    from ui.tab_docs import upload_api

    f = tmp_path / "a.md"
    f.write_text("# A\n\nSome text.\n")
    for empty in ("", None, "  "):
        got = upload_api(core, empty, [str(f)])
        assert got["error"].startswith("choose a domain for the upload"), got
    assert not (core.data_dir / "uploads").exists() or not any((core.data_dir / "uploads").iterdir())


def test_the_documents_table_filters_by_domain(core, corpus):
    """The table shows every domain ("(all domains)") or the one picked in Show domain, and the documents offered
    for deletion follow it; a domain named "all" is one domain like the others."""
    from assistant.names import is_domain
    from ui.app import build_blocks

    core.comps.ingestor().run([corpus], "hr")
    core.comps.ingestor().run([corpus / "leave.md"], "zz-new")
    core.comps.ingestor().run([corpus / "leave.md"], "all")
    blocks = build_blocks(core)
    elems = {b.elem_id: b for b in blocks.blocks.values() if getattr(b, "elem_id", None)}
    assert [c[0] for c in elems["docs-filter"].choices] == ["(all domains)", "all", "hr", "zz-new"]
    assert elems["docs-filter"].value == "(all domains)" and not is_domain("(all domains)")
    pick_shown, outs = handler(blocks, "ui.tab_docs", "pick_shown")
    assert outs == ["docs-table", "docs-which"]
    rows, which = pick_shown("zz-new")
    assert rows and {r[0] for r in rows} == {"zz-new"}
    assert update(which)["choices"] == ["zz-new / leave.md"]
    rows, which = pick_shown("all")
    assert rows and {r[0] for r in rows} == {"all"}
    assert update(which)["choices"] == ["all / leave.md"]
    rows, which = pick_shown("(all domains)")
    assert {r[0] for r in rows} == {"all", "hr", "zz-new"} and len(update(which)["choices"]) == len(rows)
    poll, outs = handler(blocks, "ui.tab_docs", "poll")
    assert {r[0] for r in dict(zip(outs, poll(None, "hr")))["docs-table"]} == {"hr"}  # the timer keeps the filter


def shown_text(markdown: str) -> tuple[str, set[str]]:
    """(the text a Markdown view shows, the HTML tags it renders): markdown as Gradio renders it, raw HTML passed
    through (its sanitizer keeps tags such as <b> and drops unknown ones such as <spec> with their name)."""
    from html.parser import HTMLParser

    from markdown_it import MarkdownIt

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.text, self.tags = [], set()

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)

        def handle_data(self, data):
            self.text.append(data)

    parser = Text()
    parser.feed(MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown))
    return "".join(parser.text).strip(), parser.tags


@pytest.mark.parametrize(
    "text",
    [
        "model:<spec> arms need `lorag eval` (the app serves one base model)",
        "What is a <b>list</b>? **bold**, __init__.py, *em*, ~~gone~~, [link](http://x) ![img](i.png) <http://x>",
        "AT&T &copy; &#60;x&#62; C:\\data\\new \\* `a<b>c` and a lone ` backtick",
        "# not a heading\n- not a list\n1. not a list\n> not a quote\n---\nx | y\n--|--\n===",
    ],
)
def test_markdown_literal_is_shown_as_written(text):
    from assistant.markup import markdown_literal

    shown, tags = shown_text(markdown_literal(text))
    want = re.sub(r"`([^`]+)`", r"\1", text)  # a code span shows its text; a lone backtick shows
    assert [" ".join(x.split()) for x in shown.splitlines()] == [" ".join(x.split()) for x in want.splitlines()]
    assert tags <= {"p", "code"}, tags


def test_errors_names_and_questions_show_as_written_in_the_app(core, corpus):
    """A message with `<spec>` in it, a question with <b>list</b>, a file named __init__.py: each Markdown view shows
    them as written, whatever markup they hold."""
    from ui.jobs import progress_line
    from ui.tab_chat import chat_turn, error_text, warn
    from ui.tab_docs import _progress_md

    spec = LoragError("model:<spec> arms need `lorag eval`", hint="use <b>lorag eval</b>")
    for line in (warn(spec), error_text(spec), warn("model:<spec> arms")):
        shown, tags = shown_text(line)
        assert shown.startswith("⚠ model:<spec> arms") and "b" not in tags and "spec" not in tags, line
    assert shown_text(warn(spec))[0] == "⚠ model:<spec> arms need lorag eval — use <b>lorag eval</b>"
    assert shown_text(warn(LoragError("line 1: <x>\nline 2: <y>")))[0].splitlines() == ["⚠ line 1: <x>", "line 2: <y>"]

    core.comps.ingestor().run([corpus], "hr")
    *_, (history, turns, _) = chat_turn(core, "What is a <b>list</b> of __init__.py?", [], [], "hr", "base")
    assert shown_text(history[0]["content"]) == ("What is a <b>list</b> of __init__.py?", {"p"})
    assert turns[0][0] == "What is a <b>list</b> of __init__.py?"  # the question itself, as asked

    failed = {"title": "A/B base,<x> on hr", "status": "failed", "error": "model:<spec> arms need `lorag eval`"}
    assert shown_text(progress_line(failed))[0] == "A/B base,<x> on hr — failed · ⚠ model:<spec> arms need lorag eval"
    running = {"title": "upload of __init__.py into hr", "status": "running", "progress": {"stage": "<b>a</b> added"}}
    assert shown_text(progress_line(running))[0] == "upload of __init__.py into hr — running · <b>a</b> added"
    assert shown_text(_progress_md({**failed, "title": "upload of __init__.py into hr"}))[0] == (
        "upload of __init__.py into hr — failed\n⚠ model:<spec> arms need lorag eval"
    )


def test_chat_says_an_empty_question_is_empty_and_sends_nothing(core, corpus):
    """Send (or Enter) with nothing typed: the chat tab says so under the input, as Side by side does, nothing is
    sent to the model and the conversation stays; the next question sent clears the note."""
    from ui.app import build_blocks

    core.comps.ingestor().run([corpus], "hr")
    blocks = build_blocks(core)
    chat, outs = handler(blocks, "ui.tab_chat", "chat")
    assert outs == ["chatbot", None, "chat-input", "chat-status"]
    send = clicked(blocks, "chat-send")
    assert send is chat  # the Send button runs it, as the input's Enter does
    earlier = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    for empty in ("", "   \n ", None):
        (shown,) = list(chat(empty, earlier, [("Hi", "Hello.")], "hr", "auto"))
        assert shown == (earlier, [("Hi", "Hello.")], "", "⚠ the question is empty")
    assert core.comps.generator.calls == []  # nothing was sent
    run, cmp_outs = handler(blocks, "ui.tab_compare", "run")
    (refused,) = list(run("  ", "hr", "base", "hr-v1"))
    assert dict(zip(cmp_outs, refused))["cmp-status"] == shown[-1]  # the same words as side by side
    *_, last = chat("How many days of annual leave do full-time staff receive?", earlier, [], "hr", "auto")
    assert last[-1] == "" and len(last[0]) == 4 and core.comps.generator.calls
    clear = clicked(blocks, "chat-clear")
    assert clear() == ([], [], "")


def test_an_error_no_handler_caught_shows_as_written_in_its_toast(core, monkeypatch):
    """An exception a tab's handler lets through is shown by Gradio in a toast that renders HTML: it comes as a
    gr.Error with its message escaped (streamed handlers too), and a gr.Error as it was."""
    import gradio as gr

    from ui.app import build_blocks, errors_as_text

    blocks = build_blocks(core)
    poll, _ = handler(blocks, "ui.tab_eval", "poll")
    monkeypatch.setattr(core.jobs, "all", lambda kind=None: (_ for _ in ()).throw(RuntimeError("no <spec> job")))
    with pytest.raises(gr.Error) as e:
        poll(None, None, "", "")
    assert e.value.message == "no &lt;spec&gt; job" and isinstance(e.value.__cause__, RuntimeError)

    def streamed():
        yield 1
        raise LoragError("model:<spec>", hint="<b>x</b>")

    with pytest.raises(gr.Error) as e:
        list(errors_as_text(streamed)())
    assert e.value.message == "model:&lt;spec&gt;\nhint: &lt;b&gt;x&lt;/b&gt;"
    kept = gr.Error("<b>made by hand</b>")
    with pytest.raises(gr.Error) as e:
        errors_as_text(lambda: (_ for _ in ()).throw(kept))()
    assert e.value is kept


def test_an_api_endpoints_error_reaches_its_caller_as_raised(core, monkeypatch):
    """Functions registered with gr.api (/ask, /adapters, /compare, ...: for gradio_client, no toast) are not
    wrapped: their error keeps its message as raised, while a UI event's function is wrapped and escapes it."""
    from ui.app import api_only, build_blocks

    blocks = build_blocks(core)
    by_api = {f.api_name: f for f in blocks.fns.values() if api_only(f)}
    assert set(by_api) == {"ask", "adapters", "compare", "vote", "export_votes", "job", "documents"}
    monkeypatch.setattr(core, "chat_adapters", lambda: (_ for _ in ()).throw(RuntimeError("model:<spec>")))
    with pytest.raises(RuntimeError) as e:
        by_api["adapters"].fn()
    assert str(e.value) == "model:<spec>"
    ui_fns = [f for f in blocks.fns.values() if f.fn is not None and not api_only(f)]
    assert ui_fns and all(hasattr(f.fn, "__wrapped__") for f in ui_fns)  # errors_as_text's wrapper


def test_a_passage_whose_text_another_file_holds_too_names_it():
    """Retrieval keeps one of two passages with the same text (a page and its all-in-one copy): the Chat's source
    names where else it is; a passage without a copy says nothing of it."""
    from ui.tab_chat import passage_block

    p = _passage(1, "Visitors sign in at the lobby.", "Security > Visitors", "security.html")
    p.same_text = ["all.html#Security > Visitors"]
    assert "same text in <code>all.html#Security &gt; Visitors</code>" in passage_block(p)
    assert "same text in" not in passage_block(_passage(2, "Badges are red.", "Security", "security.html"))
