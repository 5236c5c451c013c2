import json

import pytest

from assistant.errors import LoragError
from ingest.pipeline import Ingestor


@pytest.fixture
def ingestor(store, fake_dense, bm25, settings):
    return Ingestor(store, fake_dense, bm25, settings.ingest)


def statuses(report):
    return {r.display: r.status for r in report.results}


def test_every_format_goes_in_with_structure(ingestor, store, corpus):
    report = ingestor.run([corpus], "hr")
    assert report.ok, [r.reason for r in report.results]
    assert report.counts()["added"] == 7
    docs = {d.display: d for d in store.list_docs("hr")}
    assert set(docs) == {
        "leave.md",
        "parking.txt",
        "security.html",
        "travel.pdf",
        "remote.docx",
        "codes.csv",
        "faq.json",
    }
    assert all(d.live_chunks == d.n_chunks > 0 for d in docs.values())
    chunks = store.scroll_chunks("hr")
    pdf_pages = {c.payload["page"] for c in chunks if c.payload["display"] == "travel.pdf"}
    assert pdf_pages == {1, 2}
    assert any(c.payload["section"] == "Leave policy > Annual leave" for c in chunks)


def test_incremental_unchanged_updated_removed(ingestor, store, corpus):
    ingestor.run([corpus], "hr")
    again = ingestor.run([corpus], "hr")
    assert set(statuses(again).values()) == {"unchanged"}

    (corpus / "parking.txt").write_text("Parking permits now cost 15 euros per month.\n")
    (corpus / "faq.json").unlink()
    report = ingestor.run([corpus], "hr", sync=True)
    st = statuses(report)
    assert st["parking.txt"] == "updated" and st["faq.json"] == "removed" and st["leave.md"] == "unchanged"
    texts = [c.text for c in store.scroll_chunks("hr") if c.payload["display"] == "parking.txt"]
    assert texts == ["Parking permits now cost 15 euros per month."]
    assert "faq.json" not in {d.display for d in store.list_docs("hr")}


def test_files_whose_loader_changed_are_read_again_and_the_others_stay(ingestor, store, corpus, monkeypatch):
    """Ingest is incremental by a file's version: an upgrade whose loaders read files into other text (HTML, PDF,
    Markdown, DOCX, and plain text whose chunks now keep their indentation) re-reads the files of those formats
    already ingested (their old chunks would keep the old text) and leaves every other file unchanged, not embedded
    again; with nothing changed, nothing is read again."""
    import ingest.loaders
    from ingest.loaders import load_csv, load_html, load_json, load_markdown, load_pdf

    monkeypatch.setattr(ingest.loaders, "LOADER_VERSIONS", {}, raising=False)  # the release before: no versions
    ingestor.run([corpus], "hr")
    old = {d.display: d.content_hash for d in store.list_docs("hr")}
    monkeypatch.undo()

    upgraded = ingestor.run([corpus], "hr")
    st = statuses(upgraded)
    changed = {"security.html", "travel.pdf", "leave.md", "remote.docx", "parking.txt"}
    assert {st[name] for name in changed} == {"updated"}
    assert {s for name, s in st.items() if name not in changed} == {"unchanged"}
    new = {d.display: d.content_hash for d in store.list_docs("hr")}
    assert {name for name in new if new[name] != old[name]} == changed
    assert set(statuses(ingestor.run([corpus], "hr")).values()) == {"unchanged"}

    versions = ingest.loaders.LOADER_VERSIONS
    assert versions[load_html] >= 2 and versions[load_pdf] >= 2 and versions[load_markdown] >= 2
    assert load_csv not in versions and load_json not in versions
    # a later markdown loader: the .md file alone goes again
    monkeypatch.setitem(versions, load_markdown, versions[load_markdown] + 1)
    st = statuses(ingestor.run([corpus], "hr"))
    assert st.pop("leave.md") == "updated" and set(st.values()) == {"unchanged"}


def test_without_sync_missing_files_stay(ingestor, store, corpus):
    ingestor.run([corpus], "hr")
    (corpus / "faq.json").unlink()
    report = ingestor.run([corpus], "hr")
    assert "removed" not in statuses(report).values()
    assert "faq.json" in {d.display for d in store.list_docs("hr")}


def test_bad_file_is_reported_and_nothing_stored_is_lost(ingestor, store, corpus, settings):
    ingestor.run([corpus], "hr")
    before = {d.display: d.content_hash for d in store.list_docs("hr")}
    # corrupt a stored file, add an undecodable one and one over the size limit (skipped)
    (corpus / "travel.pdf").write_bytes(b"%PDF-1.4 garbage")
    (corpus / "bad.txt").write_bytes("Привет мир".encode("cp1251"))  # not UTF-8, too short to tell
    settings.ingest.max_file_mb = 0.001
    (corpus / "big.md").write_text("# Big\n" + "word " * 400)
    report = ingestor.run([corpus], "hr")
    st = {r.display: (r.status, r.reason) for r in report.results}
    assert st["travel.pdf"][0] == "failed" and "PDF" in st["travel.pdf"][1]
    assert st["bad.txt"][0] == "failed" and "UTF-8" in st["bad.txt"][1]
    assert (
        st["big.md"][0] == "skipped"
        and "over limit (0.00" in st["big.md"][1]
        and "> ingest.max_file_mb 0.001)" in st["big.md"][1]
    )
    assert not report.ok
    after = {d.display: d.content_hash for d in store.list_docs("hr")}
    assert after == before  # the old travel.pdf is still there, whole


def test_missing_path_and_empty_folder(ingestor, tmp_path):
    report = ingestor.run([tmp_path / "nope"], "hr")
    assert report.results[0].status == "failed" and "no such file" in report.results[0].reason
    (tmp_path / "empty").mkdir()
    with pytest.raises(LoragError, match="no supported files"):
        ingestor.run([tmp_path / "empty"], "hr")


def test_files_of_other_formats_in_a_folder_are_reported_not_hidden(ingestor, tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# A\n\nAnnual leave is 27 days.\n")
    (folder / "sub" / "b.xyz").write_text("not a supported format")
    (folder / "NOTES").write_text("no extension")
    (folder / ".hidden.md").write_text("# Hidden\n\ntext\n")
    report = ingestor.run([folder], "hr")
    assert [r.display for r in report.results] == ["a.md"]
    assert report.skipped == ["NOTES", "sub/b.xyz"]  # hidden files are neither ingested nor listed
    only_other = tmp_path / "other"
    only_other.mkdir()
    (only_other / "c.xyz").write_text("x")
    with pytest.raises(LoragError, match=r"no supported files found \(1 file\(s\) of other formats, e.g. c.xyz\)"):
        ingestor.run([only_other], "hr")
    # a file named on its own (a single upload) is left out the same way, not failed
    report = ingestor.run([folder / "a.md", folder / "sub" / "b.xyz"], "hr")
    assert [(r.display, r.status) for r in report.results] == [("a.md", "unchanged")] and report.skipped == ["b.xyz"]
    with pytest.raises(LoragError, match=r"no supported files found \(1 file\(s\) of other formats, e.g. c.xyz\)"):
        ingestor.run([only_other / "c.xyz"], "hr")


def test_a_run_whose_every_file_fails_leaves_no_new_domain(ingestor, store, tmp_path, corpus):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cyrillic.md").write_bytes("Привет мир".encode("cp1251"))  # not UTF-8, too short to tell
    (bad / "nul.txt").write_bytes(b"\x00\x01binary")
    report = ingestor.run([bad], "baddom")
    assert not report.ok and {r.status for r in report.results} == {"failed"}
    assert "baddom" not in store.domains()
    assert ingestor.run([corpus / "leave.md"], "hr").ok
    assert not ingestor.run([bad], "hr").ok  # an existing domain keeps its documents
    assert "hr" in store.domains() and [d.display for d in store.list_docs("hr")] == ["leave.md"]


def test_an_empty_file_is_skipped_not_failed(ingestor, store, tmp_path, corpus):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "empty.md").write_bytes(b"")
    (folder / "blank.txt").write_text("  \n\n\t\n")  # no text once parsed
    (folder / "tags.html").write_text("<html><body><div></div></body></html>")
    (folder / "leave.md").write_text((corpus / "leave.md").read_text())
    seen = []
    report = ingestor.run([folder], "hr", progress=lambda name, done, total, status: seen.append((name, status)))
    by = {r.display: (r.status, r.reason) for r in report.results}
    assert by["empty.md"] == ("skipped", "empty file")
    assert by["blank.txt"][0] == by["tags.html"][0] == "skipped" and by["blank.txt"][1].startswith("empty file")
    assert by["leave.md"][0] == "added" and report.ok
    assert report.counts()["failed"] == 0 and report.counts()["skipped"] == 3
    assert ("empty.md", "skipped") in seen  # the progress says so as the file finishes
    # a file indexed before and now emptied: its old chunks stay searchable, so that is a failure that says so
    (folder / "leave.md").write_bytes(b"")
    again = {r.display: (r.status, r.reason) for r in ingestor.run([folder], "hr").results}
    assert again["leave.md"][0] == "failed" and "earlier version stays indexed" in again["leave.md"][1]
    assert [d.display for d in store.list_docs("hr")] == ["leave.md"]


def test_changed_chunk_settings_reingest(store, fake_dense, bm25, settings, corpus):
    Ingestor(store, fake_dense, bm25, settings.ingest).run([corpus], "hr")
    settings.ingest.chunk_tokens = 30
    report = Ingestor(store, fake_dense, bm25, settings.ingest).run([corpus], "hr")
    assert set(statuses(report).values()) == {"updated"}


def test_a_changed_text_encoding_reingests_with_the_text_it_names(store, fake_dense, bm25, settings, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    text = "Čeština: žluťoučký kůň úpěl ďábelské ódy. Zaměstnanci mají nárok na 25 dní dovolené."
    (folder / "dovolena.txt").write_bytes(text.encode("iso8859_2"))
    Ingestor(store, fake_dense, bm25, settings.ingest).run([folder], "hr")
    assert set(statuses(Ingestor(store, fake_dense, bm25, settings.ingest).run([folder], "hr")).values()) == {
        "unchanged"
    }
    settings.ingest.text_encoding = "iso8859_2"
    report = Ingestor(store, fake_dense, bm25, settings.ingest).run([folder], "hr")
    assert set(statuses(report).values()) == {"updated"} and report.results[0].encoding == "iso8859-2"
    assert [c.payload["text"] for c in store.scroll_chunks("hr")] == [text]


def test_replacement_is_never_a_mix(ingestor, store, corpus, monkeypatch):
    """While a new version is staged, readers see only the old one; after publish only the new."""
    ingestor.run([corpus], "hr")
    (corpus / "leave.md").write_text("# Leave policy\n\n## Annual leave\nStaff now receive 30 days.\n")
    seen = []
    real_publish = store.publish

    def spy(domain, doc_id, content_hash):
        seen.append(sorted(c.text for c in store.scroll_chunks("hr") if c.payload["display"] == "leave.md"))
        real_publish(domain, doc_id, content_hash)

    monkeypatch.setattr(store, "publish", spy)
    ingestor.run([corpus], "hr")
    assert len(seen) == 1 and all("27 days" in " ".join(seen[0]) for _ in seen)
    now = [c.text for c in store.scroll_chunks("hr") if c.payload["display"] == "leave.md"]
    assert "30 days" in " ".join(now) and "27 days" not in " ".join(now)


def test_utf16_text_with_a_bom_goes_in(ingestor, store, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(
        "\ufeffParking permits cost 12 euros.\n".encode("utf-16-le")
    )  # Windows "Unicode" text
    report = ingestor.run([folder], "hr")
    assert statuses(report) == {"notes.txt": "added"}, report.results
    assert [c.text for c in store.scroll_chunks("hr")] == ["Parking permits cost 12 euros."]


def test_any_exception_from_one_file_is_that_files_failure(ingestor, store, tmp_path, monkeypatch):
    """A file that makes a loader crash (RecursionError, MemoryError, a library bug) fails alone, named
    with the reason; the rest of the batch goes in."""
    from ingest import loaders

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "deep.json").write_text("[" * 10000 + "]" * 10000)
    (folder / "good.md").write_text("# Leave\n\nStaff receive 27 days.\n")
    (folder / "huge.txt").write_text("pretend this is too big for memory")
    (folder / "odd.rst").write_text("Title\n=====\n\ntext\n")

    def crash(kind):
        def loader(path, *args, **kwargs):
            raise kind("boom") if kind is not MemoryError else MemoryError()

        return loader

    monkeypatch.setitem(loaders.LOADERS, "txt", crash(MemoryError))
    monkeypatch.setitem(loaders.LOADERS, "rst", crash(ZeroDivisionError))
    report = ingestor.run([folder], "hr")
    st = {r.display: (r.status, r.reason) for r in report.results}
    assert st["good.md"] == ("added", "")
    assert st["deep.json"][0] == "failed" and "nested too deeply" in st["deep.json"][1]
    assert st["huge.txt"][0] == "failed" and "out of memory" in st["huge.txt"][1]
    assert st["odd.rst"] == ("failed", "could not be read: ZeroDivisionError: boom")
    assert [d.display for d in store.list_docs("hr")] == ["good.md"]


def test_a_large_file_is_embedded_and_staged_in_bounded_batches(
    store, fake_dense, bm25, settings, tmp_path, monkeypatch
):
    """However many chunks a file has, one embed call sees at most embed_batch_size * WRITE_BATCHES of them (the
    first one embed batch, each next twice as many up to that); small files share a batch; progress is reported
    per file and per chunk; every document ends whole."""
    from ingest.pipeline import WRITE_BATCHES

    settings.ingest.embed_batch_size = 2
    limit = 2 * WRITE_BATCHES
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nAnnual leave is 27 days.\n")
    (folder / "big.md").write_text("# Big\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(100)))
    (folder / "c.md").write_text("# C\n\nParking costs 12 euros.\n")
    calls, staged, files, chunks = [], [], [], []
    real_embed, real_stage = fake_dense.embed_documents, store.stage
    monkeypatch.setattr(fake_dense, "embed_documents", lambda texts: calls.append(len(texts)) or real_embed(texts))
    monkeypatch.setattr(store, "stage", lambda domain, points: staged.append(len(points)) or real_stage(domain, points))
    report = Ingestor(store, fake_dense, bm25, settings.ingest).run(
        [folder], "hr", progress=lambda *a: files.append(a), chunk_progress=lambda *a: chunks.append(a)
    )
    assert report.ok and report.counts()["added"] == 3
    n_big = {r.display: r.chunks for r in report.results}["big.md"]
    assert n_big > 3 * limit
    assert max(calls) <= limit and sum(calls) == n_big + 2
    assert calls[:4] == [2, 4, 8, limit] and len(calls) == 3 + -(-(n_big + 2 - 14) // limit)
    assert max(staged) <= limit
    assert [done for _, done, _, _ in files] == [0, 1, 2, 3] and {total for _, _, total, _ in files} == {3}
    assert [status for *_, status in files] == ["", "added", "added", "added"]
    big = [done for name, done, total in chunks if name == "big.md" and total == n_big]
    assert big[0] == 0 and big[-1] == n_big and big == sorted(big) and len(big) > 3
    docs = {d.display: d for d in store.list_docs("hr")}
    assert all(d.live_chunks == d.n_chunks for d in docs.values()) and docs["big.md"].n_chunks == n_big


def test_an_embedding_failure_fails_only_that_file(ingestor, store, fake_dense, corpus, monkeypatch):
    ingestor.run([corpus], "hr")
    before = {d.display: d.content_hash for d in store.list_docs("hr")}
    (corpus / "leave.md").write_text("# Leave policy\n\nPOISON: staff now receive 30 days.\n")
    (corpus / "new.md").write_text("# New\n\nThe canteen opens at 8.\n")
    real = fake_dense.embed_documents

    def embed(texts):
        if any("POISON" in t for t in texts):
            raise ValueError("the embedder choked")
        return real(texts)

    monkeypatch.setattr(fake_dense, "embed_documents", embed)
    report = ingestor.run([corpus], "hr")
    st = {r.display: (r.status, r.reason) for r in report.results}
    assert st["leave.md"] == ("failed", "could not be embedded: ValueError: the embedder choked")
    assert st["new.md"] == ("added", "")
    after = {d.display: d.content_hash for d in store.list_docs("hr")}
    assert after["leave.md"] == before["leave.md"]  # the old version stays, whole
    assert "new.md" in after


def test_files_over_a_limit_are_skipped_and_the_batch_goes_on(ingestor, store, tmp_path, settings):
    from tests.conftest import write_pdf

    settings.ingest.max_rows, settings.ingest.max_pages = 100, 2
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "rows.csv").write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(150)))
    (folder / "records.json").write_text(json.dumps([{"id": i} for i in range(101)]))
    write_pdf(folder / "long.pdf", ["one", "two", "three"])
    (folder / "small.csv").write_text("id,name\n1,alpha\n")
    report = ingestor.run([folder], "hr")
    st = {r.display: (r.status, r.reason) for r in report.results}
    assert st["rows.csv"] == ("skipped", "over limit (150 rows > ingest.max_rows 100)")
    assert st["records.json"] == ("skipped", "over limit (101 records > ingest.max_rows 100)")
    assert st["long.pdf"] == ("skipped", "over limit (3 pages > ingest.max_pages 2)")
    assert st["small.csv"] == ("added", "")
    assert report.ok and report.counts()["skipped"] == 3  # skipped on purpose: not a failure
    assert [d.display for d in store.list_docs("hr")] == ["small.csv"]


def test_links_out_of_the_folder_are_not_followed(ingestor, store, tmp_path):
    """A link (to a file or a folder) that resolves outside the folder being ingested is skipped with the
    reason; a link to a file inside it that is ingested anyway is a skipped duplicate; a link to a file
    inside that nothing else reaches (a hidden folder) is followed; a FIFO is not read."""
    import os

    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "passwd").write_text("root:x:0:0:secret:/root:/bin/bash\n")
    (outside / "sub" / "more.md").write_text("# More\n\nsecret too\n")
    folder = tmp_path / "docs"
    (folder / ".private").mkdir(parents=True)
    (folder / "a.md").write_text("# A\n\nAnnual leave is 27 days.\n")
    (folder / ".private" / "hidden.md").write_text("# Hidden\n\nThe canteen opens at 8.\n")
    (folder / "passwd.txt").symlink_to(outside / "passwd")
    (folder / "etc").symlink_to(outside / "sub", target_is_directory=True)
    (folder / "alias.md").symlink_to(folder / "a.md")
    (folder / "shown.md").symlink_to(folder / ".private" / "hidden.md")
    (folder / "gone.md").symlink_to(folder / "missing.md")
    os.mkfifo(folder / "pipe.txt")  # reading it would block forever
    report = ingestor.run([folder], "hr")
    st = {r.display: (r.status, r.reason) for r in report.results}
    assert st["passwd.txt"] == (
        "skipped",
        f"symbolic link to {outside / 'passwd'}, outside the folder being ingested (not followed)",
    )
    assert st["etc"] == (
        "skipped",
        f"symbolic link to {outside / 'sub'}, outside the folder being ingested (not followed)",
    )
    assert st["alias.md"] == ("skipped", "symbolic link to a.md, which is ingested under its own name")
    assert st["gone.md"] == ("failed", f"broken symbolic link (to {folder / 'missing.md'})")
    assert st["pipe.txt"] == ("skipped", "not a regular file")
    assert st["a.md"] == ("added", "") and st["shown.md"] == ("added", "")
    assert sorted(d.display for d in store.list_docs("hr")) == ["a.md", "shown.md"]
    assert not any("secret" in c.text for c in store.scroll_chunks("hr"))


def test_sync_removes_a_document_whose_file_became_a_link_out_of_the_folder(ingestor, store, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nAnnual leave is 27 days.\n")
    (folder / "notes.txt").write_text("Old notes.\n")
    ingestor.run([folder], "hr")
    (folder / "notes.txt").unlink()
    (tmp_path / "secret.txt").write_text("secret\n")
    (folder / "notes.txt").symlink_to(tmp_path / "secret.txt")
    report = ingestor.run([folder], "hr", sync=True)
    assert sorted((r.display, r.status) for r in report.results) == [
        ("a.md", "unchanged"),
        ("notes.txt", "removed"),
        ("notes.txt", "skipped"),
    ]
    assert [d.display for d in store.list_docs("hr")] == ["a.md"]


def test_files_read_with_warnings_say_so_in_their_result(ingestor, store, tmp_path):
    """A cp1252 text is indexed with the encoding it was read in; a CSV whose rows do not fit its header is indexed
    whole, its result warning of the lines; a PDF renamed .md fails as a PDF, not as undecodable text."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "latin1.txt").write_bytes("Congés payés : 27 jours".encode("cp1252"))
    (folder / "broken.csv").write_bytes(b'a,b\n1,2,3\n"unclosed,4\n')
    (folder / "ok.md").write_text("# Leave\n\nStaff receive 27 days.\n")
    (folder / "report.md").write_bytes(b"%PDF-1.4\n\xe2\xe3\xcf\xd3\n")
    report = ingestor.run([folder], "hr")
    by = {r.display: r for r in report.results}
    assert {k: r.status for k, r in by.items()} == {
        "latin1.txt": "added",
        "broken.csv": "added",
        "ok.md": "added",
        "report.md": "failed",
    }
    assert by["latin1.txt"].encoding == "cp1252" and "read as cp1252" in by["latin1.txt"].warnings[0]
    assert (by["ok.md"].encoding, by["ok.md"].warnings) == ("utf-8", [])
    assert by["broken.csv"].warnings == [
        "unclosed quote at line 3: the line was read with quote characters as text",
        'rows with more fields than the header\'s 2 (the extra ones kept as "column 3"): line 2',
    ]
    assert by["report.md"].reason == "this looks like a PDF file, not Markdown text: rename it to report.pdf"
    texts = {c.payload["display"]: c.text for c in store.scroll_chunks("hr")}
    assert texts["latin1.txt"] == "Congés payés : 27 jours"
    assert texts["broken.csv"] == 'a: 1; b: 2; column 3: 3\na: "unclosed; b: 4'
