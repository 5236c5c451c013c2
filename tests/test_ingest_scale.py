"""Ingest at scale: the read-ahead thread (order, bounds, errors), chunks/s and ETA, and the index's record of the
embedder backend that built it (a mismatched backend is refused with the fix)."""

from __future__ import annotations

import io
import threading
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from assistant import index_record
from assistant.errors import LoragError
from assistant.retrieval import Retriever
from ingest.meter import IngestMeter, Throughput, clock
from ingest.pipeline import Ingestor
from ingest.prefetch import prefetched
from tests.fakes import HashingEmbedder


# -- read-ahead ---------------------------------------------------------------------------------
def test_prefetched_keeps_order_and_runs_in_another_thread():
    threads = set()

    def produce():
        for i in range(20):
            threads.add(threading.get_ident())
            yield i

    assert list(prefetched(produce, ahead=3)) == list(range(20))
    assert threads and threading.get_ident() not in threads


def test_prefetched_stays_a_bounded_number_of_items_ahead():
    made = []
    gate = threading.Event()

    def produce():
        for i in range(50):
            made.append(i)
            yield i

    it = prefetched(produce, ahead=2)
    assert next(it) == 0
    gate.wait(0.5)  # give the producer time to run ahead as far as it can
    assert len(made) <= 1 + 2 + 1  # the one taken, the queue's 2, one waiting to be put
    assert list(it) == list(range(1, 50))


def test_a_producer_error_reaches_the_consumer_after_the_items_before_it():
    def produce():
        yield "a"
        yield "b"
        raise ValueError("broken file list")

    got = []
    with pytest.raises(ValueError, match="broken file list"):
        for item in prefetched(produce):
            got.append(item)
    assert got == ["a", "b"]


def test_a_consumer_that_stops_stops_the_producer():
    stopped = threading.Event()

    def produce():
        try:
            for i in range(10**9):
                yield i
        finally:
            stopped.set()

    with pytest.raises(RuntimeError):
        with closing(prefetched(produce, ahead=1)) as it:
            for i in it:
                if i == 3:
                    raise RuntimeError("store failed")
    assert stopped.wait(5), "the producer thread kept running"


# -- chunks/s and ETA -----------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_meter_rate_and_eta_from_chunks_done_and_the_estimated_total():
    c = Clock()
    m = IngestMeter(total_bytes=4000, clock_fn=c)
    assert m.snapshot() == Throughput(0, 0, None, None)
    m.file_read(1000, 50)  # 1 chunk per 20 bytes: the 3000 unread bytes are ~150 more chunks
    c.t += 10
    t = m.embedded(40)
    assert (t.chunks_done, t.chunks_total) == (40, 200)
    assert t.chunks_per_s == pytest.approx(4.0) and t.eta_s == pytest.approx(40.0)
    assert t.words() == "40/200 chunks · 4.0 chunks/s · ETA 40s"
    m.file_read(2000, 0)  # unchanged: its bytes leave the estimate, the chunks per byte stay
    t = m.snapshot()
    assert t.chunks_total == 50 + 50 and t.eta_s == pytest.approx(15.0)


def test_meter_extrapolates_each_format_by_its_own_chunks_per_byte():
    """A format read already is estimated by its own chunks per byte (a PDF's bytes hold far less text than a
    markdown file's); a format not read yet by all the files read."""
    m = IngestMeter({"md": 3000, "pdf": 20000}, clock_fn=Clock())
    m.file_read(1000, 10, "md")  # md: 1 chunk per 100 bytes; pdf unread: at the same rate
    assert m.snapshot().chunks_total == 10 + 20 + 200
    m.file_read(10000, 5, "pdf")  # pdf: 1 chunk per 2000 bytes
    assert m.snapshot().chunks_total == 15 + 20 + 5


def test_a_docx_is_weighed_by_its_text_not_its_styles_and_fonts():
    from ingest.meter import text_bytes

    docx = Path(__file__).resolve().parents[1] / "samples" / "corpus" / "handbook" / "remote-work-policy.docx"
    assert 0 < text_bytes(docx) < docx.stat().st_size / 4  # its document part, not ~30 KB of styles and theme


def _docx_of_an_unknown_zip_version(path: Path) -> Path:
    """A .docx whose zip directory asks for a zip version Python does not read (NotImplementedError, not
    BadZipFile): one of the corrupt uploads an ingest meets."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document><w:body><w:p>Leave is 27 days.</w:p></w:body></w:document>")
    data = bytearray(buf.getvalue())
    at = data.index(b"PK\x01\x02")  # the central directory's entry: its "version needed to extract"
    data[at + 6] = 0xC3
    path.write_bytes(bytes(data))
    return path


def test_a_corrupt_docx_is_weighed_by_its_size_and_fails_alone(store, bm25, settings, tmp_path):
    """The estimate never takes the ingest down: a .docx that is no zip Python reads is weighed by its size,
    and the ingest reports that file failed and adds the others."""
    from ingest.meter import text_bytes

    bad = _docx_of_an_unknown_zip_version(tmp_path / "bad.docx")
    assert text_bytes(bad) == bad.stat().st_size
    (tmp_path / "ok.md").write_text("# Leave\n\nFull-time staff receive 27 days of annual leave.\n")
    report = Ingestor(store, HashingEmbedder(dim=256), bm25, settings.ingest).run([tmp_path], "hr")
    assert {Path(r.path).name: r.status for r in report.results} == {"bad.docx": "failed", "ok.md": "added"}


def test_the_first_chunk_estimate_is_near_the_chunks_written(store, bm25, settings):
    """The sample handbook (markdown, text, HTML, CSV, JSON, a PDF and a .docx read last): the total shown after
    the first embed batch is within a fifth of the chunks the ingest writes (it said 146 of 84 when a .docx's
    bytes counted as text)."""
    folder = Path(__file__).resolve().parents[1] / "samples" / "corpus" / "handbook"
    seen: list[Throughput] = []
    ingest = settings.ingest.model_copy(update={"embed_batch_size": 16})
    report = Ingestor(store, HashingEmbedder(dim=256), bm25, ingest).run([folder], "hb", throughput=seen.append)
    n = report.chunks_written
    assert report.ok and seen[0].chunks_done < n
    assert abs(seen[0].chunks_total - n) <= n / 5, (seen[0], n)


def test_clock_words():
    assert (clock(7), clock(125), clock(3 * 3600 + 61)) == ("7s", "2m05s", "3h01m")


def test_ingest_reports_throughput_up_to_every_chunk_written(store, bm25, settings, corpus):
    seen: list[Throughput] = []
    report = Ingestor(store, HashingEmbedder(dim=256), bm25, settings.ingest).run(
        [corpus], "hr", throughput=seen.append
    )
    assert report.ok and seen
    assert seen[-1].chunks_done == seen[-1].chunks_total == report.chunks_written
    assert [t.chunks_done for t in seen] == sorted(t.chunks_done for t in seen)
    assert [r.display for r in report.results] == sorted(r.display for r in report.results)  # files in order


def test_ingest_under_one_write_batch_reports_progress_after_its_first_embed_batch(store, bm25, settings, tmp_path):
    """A file under embed_batch_size * WRITE_BATCHES chunks reports chunks done, chunks/s and an ETA while it
    runs, starting after one embed batch, not only once at the end."""
    doc = tmp_path / "long.txt"
    doc.write_text("\n\n".join(f"Paragraph {i} says the reference code is R-{i:04d} for item {i}." for i in range(40)))
    ingest = settings.ingest.model_copy(update={"embed_batch_size": 8, "chunk_tokens": 20, "chunk_overlap": 0})
    seen: list[Throughput] = []
    report = Ingestor(store, HashingEmbedder(dim=256), bm25, ingest).run([doc], "hr", throughput=seen.append)
    n = report.chunks_written
    assert report.ok and 8 < n < 8 * 8  # one file, under one full write batch of 64 chunks
    assert seen[0].chunks_done == 8 and seen[0].chunks_total == n  # after the first embed batch, of the total
    assert [t.chunks_done for t in seen] == [c for c in (8, 24, 56) if c < n] + [n]  # batches of 8, 16, 32, ...


def test_cli_progress_prints_chunks_per_second_and_eta():
    from ui.cli_progress import IngestProgress

    out = io.StringIO()
    with IngestProgress(out, every=3600) as p:
        p.throughput(Throughput(10, 100, None, None))  # no rate yet: nothing printed
        p.throughput(Throughput(20, 100, 5.0, 16.0))
        p.throughput(Throughput(30, 100, 5.0, 14.0))  # within `every` of the last line: not printed
    assert out.getvalue() == "ingest: 20/100 chunks · 5.0 chunks/s · ETA 16s\n"


def test_cli_through_the_app_prints_the_jobs_progress(tmp_path, monkeypatch):
    """Not on a terminal, an ingest through the app prints the lines an ingest in this process prints: the
    files to read, one line per file done (those that finished between two polls from the job's result, in
    their order), chunks/s with the ETA; a short job that ends between two polls too."""
    from assistant.settings import Settings
    from ui import cli
    from ui.cli_docs import ingest_through_app

    def running(stage, done, total, rate=None):
        p = {"stage": stage, "done": done, "total": total} | ({"rate": rate} if rate else {})
        return {"status": "running", "progress": p}

    first = "64/400 chunks · 20.0 chunks/s · ETA 17s"
    polled = [
        {"status": "running", "progress": None},
        running("loading the embedding model", 0, 0),
        running("loading the embedding model", 0, 0),  # unchanged: not printed again
        running("reading files", 0, 3, first),
        running("a.md added", 1, 3, first),  # the same rate: not printed again
    ]
    results = [
        {"display": "a.md", "status": "added"},
        {"display": "b.md", "status": "unchanged"},  # finished between two polls
        {"display": "c.md", "status": "added"},
        {"display": "d.exe", "status": "left out"},
    ]
    done = {
        "status": "done",
        "progress": {"stage": "c.md added", "done": 3, "total": 3, "rate": "400/400 chunks · 25.0 chunks/s · ETA 0s"},
        "result": {"counts": {"added": 2, "unchanged": 1, "left out": 1}, "results": results, "chunks": 400},
    }

    class App:
        url = "http://127.0.0.1:1"
        token = None  # an app of another user: the files are uploaded

        def upload(self, domain, files):
            return "job-1"

        def wait(self, job_id, on_progress=None):
            for state in polled + [done]:
                on_progress(state)
            return done

    (tmp_path / "a.md").write_text("# A\n\nAnnual leave is 27 days.\n")
    monkeypatch.setattr(cli.state, "_settings", Settings(paths={"data_dir": tmp_path / "data"}))
    err, clock_s = io.StringIO(), iter(range(0, 10**6, 10))  # 10 s between polls: no line held back
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr("ui.cli_progress.time", SimpleNamespace(monotonic=lambda: next(clock_s)))
    ingest_through_app(App(), [tmp_path / "a.md"], "hr", False, True)
    assert err.getvalue().splitlines() == [
        "ingest: starting",
        "ingest: loading the embedding model",
        "ingest: 3 file(s) to read",
        "ingest: 64/400 chunks · 20.0 chunks/s · ETA 17s",
        "ingest: 1/3 files, a.md added",
        "ingest: 2/3 files, b.md unchanged",
        "ingest: 3/3 files, c.md added",
        "ingest: 400/400 chunks · 25.0 chunks/s · ETA 0s",
    ]

    # a poll that sees a file past one that finished between polls holds its line until the job's result names
    # both; the app's results are in upload order, each with where it finished ("order")
    polled[:] = [running("reading files", 0, 3), running("a.md added", 1, 3), running("c.md added", 3, 3)]
    results[:] = [
        {"display": "c.md", "status": "added", "order": 2},
        {"display": "a.md", "status": "added", "order": 0},
        {"display": "b.md", "status": "failed", "order": 1},
        {"display": "d.exe", "status": "left out"},
    ]
    err.seek(0)
    err.truncate()
    ingest_through_app(App(), [tmp_path / "a.md"], "hr", False, True)
    files = [line for line in err.getvalue().splitlines() if " file" in line]
    assert files == [
        "ingest: 3 file(s) to read",
        "ingest: 1/3 files, a.md added",
        "ingest: 2/3 files, b.md failed",
        "ingest: 3/3 files, c.md added",
    ]

    # a job done before the second poll: every file and the rate, from the finished job
    polled[:] = [{"status": "running", "progress": None}]
    results[:] = [r for r in results if r["display"] != "d.exe"] + [{"display": "d.exe", "status": "left out"}]
    results.sort(key=lambda r: r.get("order", 9))
    results[1]["status"] = "unchanged"
    err.seek(0)
    err.truncate()
    ingest_through_app(App(), [tmp_path / "a.md"], "hr", False, True)
    assert err.getvalue().splitlines() == [
        "ingest: starting",
        "ingest: 3 file(s) to read",
        "ingest: 1/3 files, a.md added",
        "ingest: 2/3 files, b.md unchanged",
        "ingest: 3/3 files, c.md added",
        "ingest: 400/400 chunks · 25.0 chunks/s · ETA 0s",
    ]


def test_documents_tab_job_shows_chunks_per_second_and_eta():
    from ui.docs_index import JobIngestProgress
    from ui.jobs import progress_line
    from ui.tab_docs import _progress_md

    class Job:
        state: dict = {}

        def progress(self, stage, done, total, *, rate=None):
            self.state = {
                "title": "upload",
                "status": "running",
                "progress": {"stage": stage, "done": done, "total": total, "rate": rate},
            }

    job = Job()
    shown = JobIngestProgress(job)
    shown.file("a.pdf", 1, 4, "failed")
    shown.rate(Throughput(120, 480, 12.0, 30.0))
    shown_md = _progress_md(job.state)
    assert "a.pdf failed · 1/4 files" in shown_md and "12.0 chunks/s · ETA 30s" in shown_md
    assert "120/480 chunks · 12.0 chunks/s · ETA 30s" in progress_line(job.state)


# -- the index records its embedder backend ---------------------------------------------------------
class Labelled(HashingEmbedder):
    """The fake embedder under another backend label, its vectors optionally nudged."""

    def __init__(self, backend: str, noise: float = 0.0):
        super().__init__(dim=256)
        self.backend, self.noise = backend, noise

    def _vec(self, text):
        v = super()._vec(text)
        if self.noise:
            v = v + self.noise * np.random.default_rng(len(text)).standard_normal(v.shape).astype(np.float32)
            v = v / np.linalg.norm(v)
        return v


def test_ingest_records_the_backend_and_refuses_another_whose_vectors_differ(store, bm25, settings, corpus):
    Ingestor(store, Labelled("torch:cpu:float32"), bm25, settings.ingest).run([corpus], "hr")
    rec = store.embedder_record("hr")
    assert rec["backend"] == "torch:cpu:float32" and rec["embedder"] == "hashing-fake" and len(rec["probe"]) == 256
    # float16 on a GPU: nearly the same vectors, so the index is usable as it is
    close = Labelled("torch:cuda:float16", noise=0.0005)
    assert index_record.mismatch(rec, close) is None
    Retriever(store, close, bm25, settings.retrieval).retrieve("annual leave days", "hr")
    # int8: vectors that differ; ingest and search both refuse, naming both ways out
    far = Labelled("onnx:cpu:int8", noise=0.2)
    for attempt in (
        lambda: Ingestor(store, far, bm25, settings.ingest).run([corpus], "hr"),
        lambda: Retriever(store, far, bm25, settings.retrieval).retrieve("annual leave", "hr"),
    ):
        with pytest.raises(LoragError) as e:
            attempt()
        assert "domain 'hr'" in str(e.value) and "onnx:cpu:int8" in str(e.value)
        assert "models.embedder_backend: torch" in e.value.hint and "lorag docs rm --all --domain hr" in e.value.hint
    assert store.embedder_record("hr") == rec


def test_a_refused_new_domain_is_not_left_behind(store, bm25, settings, corpus, monkeypatch):
    monkeypatch.setattr(index_record, "record_for", lambda *a: (_ for _ in ()).throw(LoragError("no")))
    with pytest.raises(LoragError):
        Ingestor(store, HashingEmbedder(dim=64), bm25, settings.ingest).run([corpus], "fresh")
    assert "fresh" not in store.domains()


def test_a_domain_from_before_records_counts_as_torch(store, bm25, settings, corpus):
    Ingestor(store, HashingEmbedder(dim=256), bm25, settings.ingest).run([corpus], "old")
    (store._path("old") / "lorag_embedder.json").unlink()  # as written before records existed
    assert store.embedder_record("old") is None
    with pytest.raises(LoragError, match="before backends were recorded"):
        Retriever(store, Labelled("openvino:cpu:int8"), bm25, settings.retrieval).retrieve("leave", "old")
    torch_cpu = Labelled("torch:cpu:float32")
    Retriever(store, torch_cpu, bm25, settings.retrieval).retrieve("leave", "old")
    Ingestor(store, torch_cpu, bm25, settings.ingest).run([corpus], "old")  # the next ingest records it
    assert store.embedder_record("old")["backend"] == "torch:cpu:float32"


def test_the_record_goes_with_the_domain(store, bm25, settings, corpus):
    Ingestor(store, HashingEmbedder(dim=256), bm25, settings.ingest).run([corpus], "hr")
    store.drop_domain("hr")
    Ingestor(store, Labelled("onnx:cpu:int8", noise=0.2), bm25, settings.ingest).run([corpus], "hr")
    assert store.embedder_record("hr")["backend"] == "onnx:cpu:int8"


def test_server_store_keeps_the_record_in_collection_metadata():
    from qdrant_client import QdrantClient

    from assistant.store.server import QdrantClientStore

    s = QdrantClientStore(QdrantClient(":memory:"))
    s.ensure_domain("hr", 8)
    assert s.embedder_record("hr") is None
    s.set_embedder_record("hr", {"backend": "onnx:cpu:int8", "probe": [0.1] * 8})
    assert s.embedder_record("hr") == {"backend": "onnx:cpu:int8", "probe": [0.1] * 8}


def test_ingest_reads_files_in_a_thread_and_a_reading_error_fails_the_run(store, bm25, settings, corpus, monkeypatch):
    ing = Ingestor(store, HashingEmbedder(dim=64), bm25, settings.ingest)
    real, readers = ing._prepare, set()

    def prepare(path, display, existing):
        readers.add(threading.get_ident())
        return real(path, display, existing)

    monkeypatch.setattr(ing, "_prepare", prepare)
    assert ing.run([corpus], "hr").ok
    assert readers and threading.get_ident() not in readers  # read and chunked beside the embedding, not before it

    def broken(path, display, existing):
        if display == "leave.md":
            raise KeyboardInterrupt  # what _prepare does not turn into a file's failure reaches the caller
        return real(path, display, existing)

    monkeypatch.setattr(ing, "_prepare", broken)
    (corpus / "leave.md").write_text("# Leave\n\nStaff get 30 days.\n")
    with pytest.raises(KeyboardInterrupt):
        ing.run([corpus], "hr")
    assert {d.display for d in store.list_docs("hr")} >= {"leave.md", "codes.csv"}  # the index is still whole
