"""While `lorag ui` holds the embedded store, the CLI works through the app's API (with the configured
credentials) and says so; only when no app answers is the lock reported (exit code 3)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from assistant.errors import LoragError, StoreLockedError, UnknownDomainError
from tests.test_ui_core import LiveApp
from ui import cli
from ui.remote import note_path, write_note

runner = CliRunner()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    app = LiveApp(tmp_path_factory.mktemp("cli-app"), auth=("ann", "s3cret"), preload=("manual",), delay=0.001)
    write_note(app.settings, app.url)  # what `lorag ui` leaves for the CLI
    yield app
    app.close()


@pytest.fixture
def lorag(live, monkeypatch, tmp_path):
    """The CLI on the app's data folder, with the store locked as another process's would be."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_PATHS__DATA_DIR", str(live.settings.paths.data_dir))
    monkeypatch.setenv("LORAG_UI__USERNAME", "ann")
    monkeypatch.setenv("LORAG_UI__PASSWORD", "s3cret")

    def locked(settings):
        raise StoreLockedError("the embedded store is in use by another lorag process")

    monkeypatch.setattr("assistant.store.open_store", locked)
    monkeypatch.setattr("ui.components.open_store", locked)
    monkeypatch.setattr(cli.state, "factory", None)

    def run(*args):
        return runner.invoke(cli.app, list(args))

    return run


def test_a_command_whose_settings_differ_from_the_apps_is_told_which(lorag, live, monkeypatch):
    """The app's note fingerprints its settings (values never written out); a CLI command with other settings
    names those it differs in, since the app works with its own; with the same settings it says nothing."""
    from assistant.settings import load_settings
    from ui.settings_fingerprint import settings_differing, settings_digests

    note = note_path(live.settings)
    try:
        monkeypatch.setenv("LORAG_QDRANT__API_KEY", "k3y-of-the-app")
        write_note(load_settings(), live.url)  # an app started with this command's settings
        text = note.read_text()
        assert "s3cret" not in text and "k3y" not in text  # ui.* is not recorded, a secret only as set
        digests = json.loads(text)["settings"]
        monkeypatch.setenv("LORAG_QDRANT__API_KEY", "another-k3y")  # a secret is compared as set or not
        assert digests["qdrant.api_key"] == settings_digests(load_settings())["qdrant.api_key"]
        r = lorag("docs", "list")
        assert r.exit_code == 0, r.output
        assert "holds the store: asking it" in r.stderr and "differ" not in r.stderr
        monkeypatch.setenv("LORAG_RETRIEVAL__TOP_K", "9")
        monkeypatch.setenv("LORAG_UI__MAX_UPLOAD_MB", "5")  # how the CLI reaches the app: not compared
        r = lorag("docs", "list")
        assert r.exit_code == 0, r.output
        assert "settings differ from the app's in retrieval.top_k: the app works with its own" in r.stderr
        monkeypatch.setenv("LORAG_QDRANT__PATH", str(live.settings.paths.data_dir / "qdrant"))  # the default, named
        assert settings_differing(load_settings(), digests) == ["retrieval.top_k"]
        old = {k: v for k, v in digests.items() if k != "retrieval.top_k"}  # an app of a version without it
        assert settings_differing(load_settings(), old) == [] and settings_differing(load_settings(), None) == []
    finally:
        write_note(live.settings, live.url)


def test_docs_and_adapters_go_through_the_running_app(lorag, live):
    r = lorag("docs", "list", "--json")
    assert r.exit_code == 0, r.output
    docs = json.loads(r.stdout)
    assert {d["domain"] for d in docs} == {"manual"} and len(docs) == len(live.store.list_docs("manual"))
    assert "the lorag app at http://127.0.0.1:" in r.stderr and "holds the store: asking it" in r.stderr
    r = lorag("docs", "list", "--domain", "manua")  # the app's list refuses a misspelt domain as the CLI's does
    assert r.exit_code == 1 and isinstance(r.exception, UnknownDomainError), r.output
    assert r.exception.args[0] == "unknown domain 'manua': nothing to list"  # the hint on its own line, as without it
    assert r.exception.hint.startswith("did you mean manual? known domains: ")
    r = lorag("adapters", "list", "--json")
    assert [a["name"] for a in json.loads(r.stdout)] == ["handbook-v1", "handbook-v2"]
    r = lorag("adapters", "show", "handbook-v2")
    assert r.exit_code == 0 and r.stdout.startswith("handbook-v2  domain handbook  version 2")
    r = lorag("adapters", "promote", "handbook-v2")
    assert (
        r.exit_code == 1 and "promotion of handbook-v2 refused" in str(r.exception) and "lorag eval" in str(r.exception)
    )
    r = lorag("adapters", "promote", "handbook-v1")  # already the served one: said plainly, the gate not asked again
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "handbook-v1 is already the promoted adapter for 'handbook': nothing changed"


def test_ask_streams_from_the_app_and_prints_what_answered(lorag, live):
    r = lorag("ask", "How do I clean the Aurora 3 optical window?", "--domain", "manual", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (
        out["relevant"]
        and out["citations"][0]["n"] == 1
        and out["adapter"] == "base"
        and out["timings_ms"]["retrieve_ms"] > 0
    )
    assert out["citations"][0]["quote"] and "›" in out["citations"][0]["label"]
    assert out["similarity"] >= live.settings.retrieval.min_relevance  # as the API's lorag.similarity
    r = lorag("ask", "How do I clean the Aurora 3 optical window?", "--domain", "manual", "--adapter", "handbook-v2")
    assert r.exit_code == 0 and r.stdout.startswith("(handbook-v2)") and "Sources:\n  [1] " in r.stdout
    r = lorag("ask", "How do I clean the Aurora 3 optical window?", "--adapter", "handbok-v2")
    assert r.exit_code == 1 and r.exception.args[0] == "no adapter named 'handbok-v2'"  # the option's word
    assert r.exception.hint.startswith("did you mean handbook-v2? known adapters: ")


def test_ask_through_the_app_takes_a_domains_name_for_its_promoted_adapter(lorag, live):
    """As `lorag eval`'s arms and without the app: `--adapter handbook` is the promoted handbook-v1; a domain without a
    promoted version is refused, naming its versions; a malformed name is refused as without the app."""
    from tests.test_ui_core import register_fake_adapter

    r = lorag("ask", "How do I clean the Aurora 3 optical window?", "--domain", "manual", "--adapter", "handbook")
    assert r.exit_code == 0 and r.stdout.startswith("(handbook-v1)"), r.output
    assert "(adapter handbook-v1: explicit choice: handbook-v1)" in r.stdout
    card = register_fake_adapter(live.comps.registry, live.store, "legal", 1)
    try:
        r = lorag("ask", "How do I clean the Aurora 3 optical window?", "--adapter", "legal")
        assert r.exit_code == 1 and isinstance(r.exception, LoragError), r.output
        assert (
            r.exception.args[0] == "domain 'legal' has no promoted adapter for its name to pick; its versions: legal-v1"
        )
        assert r.exception.hint == "name a version (legal-v1), or promote one: lorag adapters promote legal-v1"
    finally:
        live.comps.registry.remove(card.name)
    r = lorag("ask", "How do I clean the Aurora 3 optical window?", "--adapter", "hand book")
    assert r.exit_code == 1 and r.exception.args[0].startswith("invalid adapter name 'hand book'"), r.output


def test_ingest_uploads_to_the_app_and_rm_removes(lorag, live, tmp_path):
    folder = tmp_path / "hr"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "parking.md").write_text("# Parking\n\nParking permits cost 12 euros per month.\n")
    (folder / "notes.xyz").write_text("not a format lorag reads")
    r = lorag("ingest", str(folder), "--domain", "hr")
    assert r.exit_code == 0, r.output
    assert "domain hr: added 1" in r.stdout and "left out 1 file(s) lorag does not read (.xyz): notes.xyz" in r.stdout
    assert "parking.md" in {d.display for d in live.store.list_docs("hr")}
    r = lorag("ingest", str(folder), "--domain", "hr", "--sync")
    assert r.exit_code == 1 and "--sync needs the store itself" in str(r.exception)
    r = lorag("docs", "rm", "parking.md", "--domain", "hr")
    assert r.exit_code == 0 and "removed parking.md" in r.stdout and live.store.list_docs("hr") == []


def test_the_apps_own_user_ingests_by_path_with_the_ids_of_an_ingest_alone(lorag, live, tmp_path):
    """With the app note's token (what `lorag ui` writes), the app reads the files where they are: the documents
    keep their own paths as ids, so the same files ingested again are unchanged (not a second copy), errors name
    the user's file, and --sync works through the app."""
    import os
    import stat

    saved = note_path(live.settings).read_text()
    live.core.local_token = "t0k3n"
    write_note(live.settings, live.url, "t0k3n")
    try:
        assert stat.S_IMODE(os.stat(note_path(live.settings)).st_mode) == 0o600  # its owner's alone
        folder = tmp_path / "fac"
        folder.mkdir()
        (folder / "canteen.md").write_text("# Canteen\n\nThe canteen opens at 11:30 on weekdays.\n")
        (folder / "bad.txt").write_bytes("Привет мир".encode("cp1251"))  # not UTF-8, too short to tell: fails
        r = lorag("ingest", str(folder), "--domain", "fac")
        assert r.exit_code == 1  # bad.txt failed, named by its own path
        assert "domain fac: added 1" in r.stdout and str(folder / "bad.txt") in r.stdout, r.stdout
        assert " — 1 chunk in " in r.stdout, r.stdout  # the chunks written, as an ingest without the app says
        assert "embedded by" in r.stdout and "hashing" in r.stdout, r.stdout  # the app's job names its embedder
        # stderr is no terminal: the lines an ingest without the app prints, per file and chunks/s
        assert re.search(r"^ingest: 2 file\(s\) to read$", r.stderr, re.M), r.stderr
        assert re.search(r"^ingest: [12]/2 files, canteen\.md added$", r.stderr, re.M), r.stderr
        assert re.search(r"^ingest: [12]/2 files, bad\.txt failed$", r.stderr, re.M), r.stderr
        assert re.search(r"^ingest: 1/1 chunks · [\d.,]+ chunks/s", r.stderr, re.M), r.stderr
        assert [d.doc_id for d in live.store.list_docs("fac")] == [str(folder / "canteen.md")]
        (folder / "bad.txt").unlink()
        r = lorag("ingest", str(folder), "--domain", "fac")
        assert r.exit_code == 0 and "domain fac: added 0, updated 0, unchanged 1" in r.stdout, r.stdout
        (folder / "canteen.md").unlink()
        r = lorag("ingest", str(folder), "--domain", "fac", "--sync")
        assert r.exit_code == 0 and "removed 1" in r.stdout and live.store.list_docs("fac") == [], r.stdout
        assert "removed 1 document whose file is gone: canteen.md" in r.stdout, r.stdout  # named, as without the app
    finally:
        live.core.local_token = None
        note_path(live.settings).write_text(saved)


def test_an_error_reads_the_same_through_the_app_as_without_it(lorag, live, monkeypatch, capsys):
    """An unknown domain: the message, then the hint on its own line (`--json`: the hint in its field), as `lorag
    ask` without the app says it; the API's error object carries the hint for that (`error.hint`), and keeps it at
    the end of its message for other clients."""
    import sys

    import httpx

    from assistant.retrieval import resolve_domains

    with pytest.raises(UnknownDomainError) as alone:  # what `lorag ask` says without the app, on this store
        resolve_domains(live.store, "nosuch")
    hint = alone.value.hint
    assert alone.value.args[0] == "unknown domain 'nosuch'" and hint.startswith("known domains: ") and "manual" in hint
    r = lorag("ask", "How do I clean the optical window?", "--domain", "nosuch")
    assert r.exit_code == 1 and isinstance(r.exception, UnknownDomainError), r.output
    assert str(r.exception) == str(alone.value)
    monkeypatch.setattr(sys, "argv", ["lorag", "ask", "How do I clean it?", "--domain", "nosuch", "--json"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = json.loads(capsys.readouterr().out)
    assert e.value.code == 1 and out == {"error": "unknown domain 'nosuch'", "hint": hint, "exit_code": 1}
    body = {"model": "auto", "messages": [{"role": "user", "content": "Hi?"}], "domain": "nosuch"}
    err = httpx.post(live.url + "/v1/chat/completions", json=body, auth=("ann", "s3cret")).json()["error"]
    assert err["message"] == f"unknown domain 'nosuch' — {hint}" and err["hint"] == hint
    assert (err["param"], err["code"]) == ("domain", "domain_not_found")
    body["domain"] = "All"  # the API's every domain is no domain at all
    err = httpx.post(live.url + "/v1/chat/completions", json=body, auth=("ann", "s3cret")).json()["error"]
    assert err["hint"] == "leave the domain out to search every domain" and err["param"] == "domain"


def test_an_ingest_of_no_supported_file_fails_as_without_the_app_and_is_no_upload_of_the_web_page(
    lorag, live, tmp_path
):
    """One file of a format lorag does not read: the error an ingest without the app gives (no job id in it, the
    hint on its own line), whether the app reads it by path (the app's own user) or the CLI uploads; that failed CLI
    job is not the Documents tab's "last upload" on a page opened afterwards (nor on one open before)."""
    from ingest.discovery import no_supported_files
    from tests.test_ui_core import handler
    from ui.app import build_blocks
    from ui.docs_index import last_upload

    notes = tmp_path / "notes.xyz"
    notes.write_text("not a format lorag reads")
    alone = no_supported_files(["notes.xyz"], live.settings.ingest.formats)  # as `lorag ingest` alone says it
    before = last_upload(live.core)
    open_page, outs = handler(build_blocks(live.core), "ui.tab_docs", "poll")
    r = lorag("ingest", str(notes), "--domain", "garden")  # uploaded: checked before it is sent
    assert r.exit_code == 1 and str(r.exception) == str(alone), r.output
    saved = note_path(live.settings).read_text()
    live.core.local_token = "t0k3n"
    write_note(live.settings, live.url, "t0k3n")
    try:
        r = lorag("ingest", str(notes), "--domain", "garden")  # read where it is, by the app's job
    finally:
        live.core.local_token = None
        note_path(live.settings).write_text(saved)
    assert r.exit_code == 1 and str(r.exception) == str(alone), r.output
    assert str(alone).startswith("no supported files found (1 file(s) of other formats, e.g. notes.xyz)\nhint: ")
    cli_job = live.core.jobs.latest("ingest")
    assert cli_job["title"] == "ingest of notes.xyz into garden" and cli_job["status"] == "failed"
    assert cli_job["params"]["source"] == "cli" and last_upload(live.core) == before
    for page in (open_page, handler(build_blocks(live.core), "ui.tab_docs", "poll")[0]):
        shown = dict(zip(outs, page(None)))
        assert "notes.xyz" not in str(shown["docs-progress"]) + str(shown["docs-results"]), shown


def test_reading_by_path_needs_the_apps_token(live):
    import httpx

    body = {"domain": "x", "paths": ["/etc/hostname"]}
    for headers in ({}, {"X-Lorag-Local-Token": "guess"}):
        live.core.local_token = "t0k3n"
        try:
            r = httpx.post(f"{live.url}/v1/documents/local", json=body, headers=headers, auth=("ann", "s3cret"))
        finally:
            live.core.local_token = None
        assert r.status_code == 403 and "only for the lorag CLI of the app's own user" in r.text
    r = httpx.post(  # an app started without a token (not by `lorag ui`) reads no paths at all
        f"{live.url}/v1/documents/local", json=body, headers={"X-Lorag-Local-Token": ""}, auth=("ann", "s3cret")
    )
    assert r.status_code == 403
    assert "x" not in live.store.domains()


def test_wrong_credentials_and_no_app(lorag, live, monkeypatch):
    monkeypatch.setenv("LORAG_UI__PASSWORD", "wrong")
    r = lorag("docs", "list")
    assert isinstance(r.exception, StoreLockedError) and "refused this command's credentials" in str(r.exception)
    monkeypatch.setenv("LORAG_UI__PASSWORD", "s3cret")
    saved = note_path(live.settings).read_text()
    try:
        note_path(live.settings).write_text(json.dumps({"url": live.url, "pid": 2**22 + 12345}))  # no such process
        r = lorag("docs", "list")
        assert isinstance(r.exception, StoreLockedError) and "asking it" not in r.stderr  # main() exits with code 3
    finally:
        note_path(live.settings).write_text(saved)


def test_synth_train_and_eval_run_as_the_apps_jobs(lorag, live, tmp_path):
    # every chunk: which few a cap would take follows the store's ids, which follow the checkout's path
    r = lorag("synth", "--domain", "manual", "--writer", "cloze", "--max-chunks", "1000")
    assert r.exit_code == 0, r.output
    assert "training examples" in r.stdout and (live.settings.datasets_dir / "manual" / "train.jsonl").is_file()
    r = lorag("train", "--domain", "manual", "--max-steps", "10")  # on the training set just made
    assert r.exit_code == 0, r.output
    assert "started job" in r.stderr and "registered manual-v1" in r.stdout and "loading the base model" in r.stdout
    r = lorag("train", "--domain", "manual", "--epochs", "2")
    assert r.exit_code == 1 and str(r.exception).startswith("--epochs works only when train runs in this process")
    ts = tmp_path / "ts.jsonl"
    ts.write_text(
        json.dumps(
            {
                "id": "q1",
                "question": "How do I clean the Aurora 3 optical window?",
                "answer": "With a lint-free cloth.",
                "sources": ["aurora-3-manual.md"],
            }
        )
        + "\n"
    )
    live.core.eval_use_ragas = False
    r = lorag("eval", "--domain", "manual", "--ab", "base,handbook-v2", "--testset", str(ts))
    assert r.exit_code == 0, r.output
    assert any(p.name.endswith("-manual") for p in live.settings.reports_dir.iterdir())
    assert r.stdout.count("report.html") == 1, (
        r.stdout
    )  # the summary names the report; the job's log line is not echoed
    # what `lorag eval` run alone prints: the verdict (one question is too few for the gate), the table, the files
    assert "handbook-v2 vs base: inconclusive, too few questions: n=1, the gate needs at least 20" in r.stdout
    assert "A = base, B = handbook-v2 · 1 question," in r.stdout and "answer_f1 *" in r.stdout, r.stdout
    assert re.search(r"^report: .*report\.html$", r.stdout, re.M) and "attached to the card of: handbook-v2" in r.stdout
    # --json through the app: stdout is the summary alone (as without the app), the job's log on stderr
    r = lorag("eval", "--domain", "manual", "--ab", "base,handbook-v2", "--testset", str(ts), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["verdict"][0].startswith("handbook-v2 vs base: inconclusive") and out["min_questions"] == 20
    assert out["arms"] and "started job" in r.stderr


def test_synth_in_the_app_says_where_it_wrote_and_what_an_option_of_its_own_needs(lorag, live, tmp_path):
    """An option the app's job does not take is refused in plain words, with the two ways out; a synth the app ran
    ends with where the files went, as a synth run alone does."""
    r = lorag("synth", "--domain", "manual", "--max-chunks", "5", "--preview", "3")
    assert r.exit_code == 1 and str(r.exception) == (
        f"--preview works only when synth runs in this process, and the running lorag app at {live.url} holds the "
        "store\nhint: stop `lorag ui` first, or run synth without --preview (the app then runs it as a job)"
    )
    r = lorag("train", "--domain", "handbook", "--epochs", "2", "--gpus", "2", "--config", "r.yaml")
    assert r.exit_code == 1 and str(r.exception).startswith(
        "--config, --epochs and --gpus work only when train runs in this process"
    )
    assert str(r.exception).endswith("or run train without them (the app then runs it as a job)")
    qa = tmp_path / "qa.jsonl"  # a training set whatever the synthetic pairs of the chunks picked
    qa.write_text(json.dumps({"id": "m1", "question": "How do I clean the optical window?", "answer": "A cloth."}))
    r = lorag("synth", "--domain", "manual", "--writer", "cloze", "--max-chunks", "4", "--qa", str(qa))
    assert r.exit_code == 0, r.output
    assert r.stdout.endswith(f"written to {live.settings.datasets_dir / 'manual'}\n"), r.stdout


def test_jobs_run_in_the_app_name_the_users_own_files(lorag, live, tmp_path):
    """The CLI uploads a test set or Q&A file to the app: messages name the file where the user has it, not the
    app's copy."""
    bad = tmp_path / "badtest.jsonl"
    bad.write_text('{"question": "Fine?", "answer": "yes"}\n{"question": "no answer?"}\nnot json\n')
    r = lorag("eval", "--domain", "manual", "--ab", "base,handbook-v2", "--testset", str(bad))
    assert r.exit_code == 1 and str(r.exception).startswith(f"{bad}: 2 bad row(s):\n  line 2: answer"), r.exception
    assert ".jobs" not in str(r.exception)
    r = lorag("synth", "--domain", "manual", "--writer", "cloze", "--max-chunks", "4", "--qa", str(bad))
    assert r.exit_code == 1 and str(r.exception).startswith(f"{bad}: 2 bad row(s)"), r.exception
    missing, latin = tmp_path / "nope.jsonl", tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"question": "Caf\xe9?", "answer": "oui"}\n')
    r = lorag("synth", "--domain", "manual", "--qa", str(missing))
    assert r.exit_code == 1 and str(r.exception) == f"{missing}: Q&A file not found", r.exception
    r = lorag("eval", "--domain", "manual", "--ab", "base,handbook-v2", "--testset", str(latin))
    assert r.exit_code == 1 and str(r.exception).startswith(f"{latin}: test set is not UTF-8 text"), r.exception
    # a second base model is not the app's to load: the message says what to do, not to run the command just run
    ts = tmp_path / "ts.jsonl"
    ts.write_text(json.dumps({"id": "q1", "question": "How do I clean the optical window?", "answer": "A cloth."}))
    r = lorag("eval", "--domain", "manual", "--ab", "base,model:smollm2-135m-instruct", "--testset", str(ts))
    said = str(r.exception)
    assert r.exit_code == 1 and "run only in `lorag eval` without the app running" in said, said
    assert "stop `lorag ui` first" in said and "model:NAME" in said and "<spec>" not in said
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "m1", "question": "How do I clean the optical window?", "answer": "A cloth."}))
    r = lorag("synth", "--domain", "manual", "--writer", "cloze", "--max-chunks", "4", "--qa", str(qa))
    assert r.exit_code == 0, r.output
    assert f"curated Q&A: {qa}\n" in r.stdout and ".jobs" not in r.stdout


def test_a_job_for_an_unknown_domain_is_refused_at_once_and_a_failed_job_says_why_once(lorag, live):
    """`lorag train` through the app refuses a domain that is not indexed before any job starts, as `lorag synth`
    does; a job that fails in the app prints its error once (not as a log line and again as the error)."""
    for command in ("synth", "train"):
        r = lorag(command, "--domain", "nosuchdomain")
        assert r.exit_code == 1 and str(r.exception).startswith("unknown domain 'nosuchdomain'"), (command, r.output)
        assert "manual" in str(r.exception) and "started job" not in r.stderr, (command, r.output)

    def failing(cfg, **_kw):
        raise LoragError(f"no GPU for {cfg.domain} today", hint="train on another machine")

    trains = live.core.train_fn
    live.core.train_fn = failing
    try:
        r = lorag("train", "--domain", "manual")
    finally:
        live.core.train_fn = trains
    assert r.exit_code == 1 and "started job" in r.stderr, r.output
    assert str(r.exception) == "no GPU for manual today\nhint: train on another machine"  # as without the app
    assert "no GPU" not in r.stdout + r.stderr and "started: train manual" in r.stdout  # the log, but for the error
