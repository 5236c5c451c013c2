"""The index's documents as the app handles them: ingested from uploads (or from this machine's files) in a
background job with progress and a per-file result, listed, removed.

The ingest runs in a background thread of the same process (the embedded store admits one process): chat keeps
answering from the published chunks while it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.names import domain_name
from ui.docs_uploads import in_upload_order, save_uploads, upload_domain, uploads_root


def start_ingest(
    core: Any,
    domain: str,
    files: list[tuple[str, Path]],
    *,
    local: list[Path] | None = None,
    sync: bool = False,
    source: str = "web",
) -> str:
    """Save the uploads and ingest them in a background job; returns the job id. local: files and folders of
    this machine ingested where they are instead (the `lorag` CLI of the app's own user: the documents keep their
    paths as ids, as an ingest without the app would; sync as `lorag ingest --sync`). source: who started it, kept
    in the job's params: "web" (the Documents tab, or its Gradio API /upload), "api" (POST /v1/documents: a
    script, or `lorag ingest` uploading its files), "cli" (POST /v1/documents/local); the tab shows only "web"
    jobs as its last upload (last_upload)."""
    domain = upload_domain(domain)
    if local is not None:
        paths, failed = list(local), []
        files = [(p.name, p) for p in paths]
        if not files:
            raise LoragError("name the files or folders to ingest")
    else:
        if not files:
            raise LoragError("choose files (or a zip of a folder) to upload first")
        paths, failed = save_uploads(core, domain, files)

    def run(job: Any) -> dict[str, Any]:
        results = list(failed)
        skipped: list[str] = []
        chunks, backend = 0, None
        if paths:
            job.progress("loading the embedding model", 0, 0)
            ingestor = core.comps.ingestor()
            shown = JobIngestProgress(job)
            with core.write_lock:
                try:
                    report = ingestor.run(paths, domain, sync=sync, progress=shown.file, throughput=shown.rate)
                except LoragError as e:  # e.g. no supported file at all: every upload is listed with why
                    if results:
                        raise
                    raise LoragError(str(e.args[0]), hint=e.hint) from None
            # "order": where each finished in the run (the results are shown in upload order; the CLI's lines
            # following this job number the files as they finished)
            results += [{**r.__dict__, "order": i} for i, r in enumerate(report.results)]
            skipped, chunks, backend = list(report.skipped), report.chunks_written, report.backend or None
            results += [
                {
                    "path": n,
                    "display": n,
                    "status": "left out",
                    "chunks": 0,
                    "reason": "lorag does not read this kind of file (setting ingest.formats)",
                }
                for n in skipped
            ]
            core.refresh_routing()
        results = in_upload_order(uploads_root(core, domain), [n for n, _ in files], results)
        statuses = ("added", "updated", "unchanged", "removed", "failed", "skipped", "left out")
        counts = {k: sum(r["status"] == k for r in results) for k in statuses}
        job.log(upload_summary({"counts": counts}))
        return {
            "domain": domain,
            "counts": counts,
            "results": results,
            "files": len(results),
            "not_read": skipped,  # files of formats lorag does not read ("left out" in results and counts)
            "chunks": chunks,
            "embedder_backend": backend,  # the label of what embedded the chunks
        }

    names = ", ".join(n for n, _ in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    what = "ingest" if local is not None else "upload"
    return core.jobs.start("ingest", f"{what} of {names} into {domain}", run, {"domain": domain, "source": source})


def last_upload(core: Any) -> dict[str, Any] | None:
    """The newest ingest started from the web app's Documents tab (in any browser): the tab's "last upload". An ingest
    the CLI or a script started through the API is not one: the command that started it reports it, and it is no
    upload of this page's users (a `lorag ingest` that failed showed as the last upload of every new page)."""
    return next((j for j in core.jobs.all("ingest") if _source(j) == "web"), None)


def _source(job: dict[str, Any]) -> str:
    """Who started an ingest job (start_ingest's source); a job from before sources were kept: "cli" for the CLI's
    ingest by path (titled "ingest of ..."), else "web"."""
    default = "cli" if str(job.get("title", "")).startswith("ingest of ") else "web"
    return str((job.get("params") or {}).get("source", default))


class JobIngestProgress:
    """An ingest's progress on its job: files done of total, with chunks/s and the ETA once embedding runs."""

    def __init__(self, job: Any):
        self.job = job
        self.where: tuple[str, int, int] = ("", 0, 0)
        self.words: str | None = None

    def file(self, name: str, done: int, total: int, status: str = "") -> None:
        self.where = (f"{name} {status}".strip() if name else "reading files", done, total)
        self.job.progress(*self.where, rate=self.words)

    def rate(self, t: Any) -> None:
        self.words = t.words()
        self.job.progress(*self.where, rate=self.words)


def upload_summary(result: dict[str, Any]) -> str:
    """'18 files: 16 added, 1 failed, 1 left out' — the parts add up to the whole."""
    c = result["counts"]
    total = sum(v for k, v in c.items() if k != "removed")
    parts = ", ".join(f"{v} {k}" for k, v in c.items() if v)
    return f"{total} file{'s' if total != 1 else ''}: {parts or 'nothing to do'}"


def list_docs(core: Any) -> list[dict[str, Any]]:
    from services.documents import list_documents

    return list_documents(core.comps.store)


def delete_docs(core: Any, domain: str, names: list[str], all_docs: bool = False) -> list[dict[str, Any]]:
    """Remove documents (or, with all_docs, the whole domain); the app's copy of an upload goes too."""
    from services.documents import drop_domain, remove_documents

    domain = domain_name(domain)  # as typed (the API): 'HR' is the domain 'hr'
    store = core.comps.store
    with core.write_lock:
        if all_docs:
            removed = drop_domain(store, domain)
        else:
            if not names:
                raise LoragError("name the documents to remove, or remove the whole domain")
            removed = remove_documents(store, domain, names, uploads=uploads_root(core, domain))
    core.refresh_routing()
    return removed


def delete_doc(core: Any, domain: str, display_or_id: str) -> str:
    removed = delete_docs(core, domain, [display_or_id])
    return f"removed {', '.join(d['display'] for d in removed)} from '{domain}'"
