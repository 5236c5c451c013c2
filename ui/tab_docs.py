"""Documents tab: upload files or a zip into a domain (background ingest with progress and a per-file
result), list and delete documents.

Uploads are copied under `<data_dir>/uploads/<domain>/`. A name that is absolute, contains `..`
or resolves outside that folder is refused (zip members too, and zip symlinks); each upload must be
at most `ui.max_upload_mb`, and a zip may unpack to at most 10x that. The ingest runs in a
background thread of the same process (the embedded store admits one process): chat keeps
answering from the published chunks while it runs.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.markup import markdown_literal
from assistant.names import check_domain, domain_name, inside
from ui.tab_chat import message, on_shown, warn

ZIP_EXPANSION = 10


def uploads_root(core: Any, domain: str) -> Path:
    return core.data_dir / "uploads" / check_domain(domain)


def in_upload_order(root: Path, names: list[str], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-file results in the order the files were chosen (a zip's members where the zip was; the ingest
    reports by folder and refused uploads first); a result of no upload keeps its place after them."""
    where: list[tuple[str, str]] = []  # (the upload's name, where it was saved: a file, or a zip's folder + "/")
    for name in names:
        try:
            saved = str(saved_path(root, name)) + ("/" if is_zip(name) else "")
        except LoragError:
            saved = "\0"  # refused name: matched by its name only
        where.append((name, saved))

    def rank(r: dict[str, Any]) -> int:
        path = str(r.get("path", ""))
        for i, (name, saved) in enumerate(where):
            if path in (name, saved) or path.startswith((f"{name}:", saved if saved.endswith("/") else "\0")):
                return i
        return len(where)

    return sorted(results, key=rank)


def is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def saved_path(root: Path, name: str) -> Path:
    """Where an upload named `name` is saved under the domain's upload folder: the file, or the folder a zip is
    unpacked into (its name without .zip). Raises LoragError for a name that would leave the folder."""
    return inside(root, Path(name).stem) if is_zip(name) else inside(root, name)


def save_uploads(core: Any, domain: str, files: list[tuple[str, Path]]) -> tuple[list[Path], list[dict[str, Any]]]:
    """Copy uploaded (name, temp path) pairs into the domain's upload folder; unpack zips.
    Returns (paths to ingest, failed results)."""
    root = uploads_root(core, domain)
    root.mkdir(parents=True, exist_ok=True)
    limit = core.settings.ui.max_upload_mb * 2**20
    paths: list[Path] = []
    failed: list[dict[str, Any]] = []

    def fail(name: str, reason: str) -> None:
        failed.append({"path": name, "display": name, "status": "failed", "reason": reason, "chunks": 0})

    for name, tmp in files:
        name = str(name)
        try:
            size = Path(tmp).stat().st_size
            if size > limit:
                raise LoragError(
                    f"too large ({size / 2**20:.1f} MB > ui.max_upload_mb {core.settings.ui.max_upload_mb:g})"
                )
            if is_zip(name):
                folder = saved_path(root, name)
                ok, bad = _unzip(Path(tmp), folder, limit * ZIP_EXPANSION)
                failed += [
                    {"path": f"{name}:{m}", "display": f"{name}:{m}", "status": "failed", "reason": r, "chunks": 0}
                    for m, r in bad
                ]
                if ok:
                    paths.append(folder)
            else:
                target = saved_path(root, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(tmp, target)
                paths.append(target)
        except LoragError as e:
            fail(name, str(e))
        except (OSError, zipfile.BadZipFile) as e:
            fail(name, f"cannot read the upload: {e}")
    return paths, failed


def _unzip(zpath: Path, folder: Path, max_total: float) -> tuple[int, list[tuple[str, str]]]:
    """Extract members one by one after checking each name; returns (files written, refused members)."""
    bad: list[tuple[str, str]] = []
    written = 0
    with zipfile.ZipFile(zpath) as z:
        members = [m for m in z.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > max_total:
            raise LoragError(f"the zip unpacks to more than {max_total / 2**20:.0f} MB")
        folder.mkdir(parents=True, exist_ok=True)
        for m in members:
            if stat.S_ISLNK(m.external_attr >> 16):
                bad.append((m.filename, "symbolic links are not accepted"))
                continue
            try:
                target = inside(folder, m.filename)
            except LoragError as e:
                bad.append((m.filename, str(e)))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(m) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            written += 1
    return written, bad


def upload_domain(typed: str | None) -> str:
    """The domain an upload goes into (domain_name: 'Orbit' is the domain 'orbit'); none typed or picked is refused."""
    if not (typed or "").strip():
        raise LoragError("choose a domain for the upload: pick one in Domain, or type a new name (e.g. 'contracts')")
    return domain_name(typed)


def start_ingest(
    core: Any, domain: str, files: list[tuple[str, Path]], *, local: list[Path] | None = None, sync: bool = False
) -> str:
    """Save the uploads and ingest them in a background job; returns the job id. local: files and folders of
    this machine ingested where they are instead (the `lorag` CLI of the app's own user: the documents keep their
    paths as ids, as an ingest without the app would; sync as `lorag ingest --sync`)."""
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
            "skipped": skipped,
            "chunks": chunks,
            "embedder_backend": backend,  # the label of what embedded the chunks
        }

    names = ", ".join(n for n, _ in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    what = "ingest" if local is not None else "upload"
    return core.jobs.start("ingest", f"{what} of {names} into {domain}", run, {"domain": domain})


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


def _progress_md(job: dict[str, Any] | None) -> str:
    if not job:
        return "No upload yet: choose files (or a .zip of a folder), a domain, then **Add to index**."
    p = job.get("progress") or {}
    line = f"**{markdown_literal(job['title'])}** — {job['status']}"  # the files' names as they are
    if job["status"] == "running" and p:
        line += f" · {markdown_literal(p.get('stage', ''))}" + (
            f" · {p.get('done', 0)}/{p.get('total')} files" if p.get("total") else ""
        )
        line += f" · {p['rate']}" if p.get("rate") else ""  # chunks embedded, chunks/s, ETA
    if job.get("result"):
        line += " · " + upload_summary(job["result"])
    if job.get("error"):
        line += "\n\n" + warn(job["error"])
    return line


def _starting_md(domain: str | None, files: list[str] | None) -> str:
    """What the tab shows from the click until the upload's job exists (the files are copied first)."""
    n = len(files or [])
    into = markdown_literal(str(domain))  # as typed: it is checked once the click reaches the upload
    return f"**upload of {n} file{'s' if n != 1 else ''} into {into}** — starting: copying the files…"


def _results_rows(job: dict[str, Any] | None) -> list[list[Any]]:
    if not job or not job.get("result"):
        return []
    return [[r["display"], r["status"], _reason(r), r["chunks"]] for r in job["result"]["results"]]


def _reason(r: dict[str, Any]) -> str:
    """The reason of a failure or skip; for a file indexed with warnings (a guessed encoding, CSV lines), those."""
    return r["reason"] or "\n".join(f"⚠ {w}" for w in r.get("warnings") or [])


EVERY_DOMAIN = "(all domains)"  # the filter's every-domain value: no domain name can be it (is_domain)


def in_domain(docs: list[dict[str, Any]], shown: str | None) -> list[dict[str, Any]]:
    """The documents of the domain picked in the table's filter (EVERY_DOMAIN or none picked: every one)."""
    if shown in (None, "", EVERY_DOMAIN):
        return docs
    return [d for d in docs if d["domain"] == shown]


def _docs_rows(core: Any, shown: str | None = EVERY_DOMAIN) -> list[list[Any]]:
    return [
        [d["domain"], d["display"], d["format"], d["n_chunks"], d["ingested_at"]]
        for d in in_domain(list_docs(core), shown)
    ]


def filter_choices(core: Any) -> list[str]:
    return [EVERY_DOMAIN, *core.domains()]


def upload_api(core: Any, domain: str, files: list[str] | None) -> dict[str, Any]:
    """Start an ingest of uploaded files: {"job": id, "title"} to poll with /job, or {"error": ...}."""
    try:
        job_id = start_ingest(core, domain, [(Path(f).name, Path(f)) for f in files or []])
    except LoragError as e:
        return {"error": message(e)}
    return {"job": job_id, "title": (core.jobs.get(job_id) or {}).get("title", "")}


def build(core: Any, shown: tuple[Any, ...] = ()) -> None:
    """`shown`: the events on which the tab is shown (the page's load, the tab's select): the domains, the latest
    upload's progress and the documents are worked out again then (not left as they were when the app started)."""
    import gradio as gr

    # No domain is chosen for the user: a preselected one (a sample's, or the only one there is) took uploads
    # meant for a new domain whenever the user did not look at it. An upload without one is refused, saying so.
    with gr.Row():
        domain = gr.Dropdown(
            core.domains(),
            value=None,
            allow_custom_value=True,
            label="Domain (pick or type a new one)",
            info="the domain these files go into",
            elem_id="docs-domain",
        )
    upload = gr.File(
        file_count="multiple",
        label=f"Files or a .zip of a folder (max {core.settings.ui.max_upload_mb:g} MB each)",
        elem_id="docs-upload",
        type="filepath",
    )
    go = gr.Button("Add to index", variant="primary", elem_id="docs-ingest")
    progress = gr.Markdown(_progress_md(core.jobs.latest("ingest")), elem_id="docs-progress")
    started = gr.JSON(visible=False)  # what /upload returns: {"job": id} or {"error": ...}
    # None: the progress and results follow the latest upload. A job id ("" for none): this page's click shows
    # its own upload (being copied, or refused) while that job is still the latest: the timer leaves them alone
    held = gr.State(None)
    results = gr.Dataframe(
        headers=["file", "result", "reason or warnings", "chunks"],
        value=_results_rows(core.jobs.latest("ingest")),
        label="Last upload, per file",
        elem_id="docs-results",
        interactive=False,
        wrap=True,
        # shares of the width that add up to it (no sideways scroll at any width): the long columns wrap; the result
        # and the count keep room for a word and a number (without widths a long reason widened its column past the
        # table and squeezed these): 100 and 75 px in a table 540 px wide (a 600 px window)
        column_widths=["22%", "19%", "45%", "14%"],
    )
    gr.Markdown("### Indexed documents")
    shown_domain = gr.Dropdown(filter_choices(core), value=EVERY_DOMAIN, label="Show domain", elem_id="docs-filter")
    docs = gr.Dataframe(
        headers=["domain", "document", "format", "chunks", "ingested"],
        value=_docs_rows(core),
        elem_id="docs-table",
        interactive=False,
    )
    with gr.Row():
        which = gr.Dropdown([], label="Document to delete", elem_id="docs-which", scale=3)
        delete = gr.Button("Delete document…", variant="stop", elem_id="docs-delete", scale=1)
        refresh = gr.Button("Refresh", elem_id="docs-refresh", scale=1)
    with gr.Row(visible=False, elem_id="docs-confirm") as confirm_row:
        confirm_text = gr.Markdown(elem_id="docs-confirm-text")
        yes = gr.Button("Yes, delete it", variant="stop", elem_id="docs-confirm-yes", scale=0)
        no = gr.Button("Cancel", elem_id="docs-confirm-no", scale=0)
    status = gr.Markdown(elem_id="docs-status")
    timer = gr.Timer(1.0)

    def choices(shown: str | None = EVERY_DOMAIN) -> Any:
        listed = in_domain(list_docs(core), shown)
        return gr.Dropdown(choices=[f"{d['domain']} / {d['display']}" for d in listed], value=None)

    def upload_files(domain: str, files: list[str] | None) -> dict:
        """Upload files (or a .zip of a folder) into a domain and start indexing them; returns {"job": id} to
        poll with /job (the per-file result is its `result`), or {"error": why}."""
        return upload_api(core, domain, files)

    def starting(domain: str, files: list[str] | None) -> tuple:
        """At the click: the new upload, not the last one's result (the old job stays the latest until it starts)."""
        latest = core.jobs.latest("ingest")
        return _starting_md(domain, files), [], "", {}, (latest or {}).get("id", "")

    def show_upload(res: dict | None, held_id: str | None) -> tuple[str, list, str, str | None]:
        """The upload's own line: its job, or why it was refused (kept until a newer upload starts)."""
        if not res or res.get("error"):
            return warn((res or {}).get("error", "the upload failed")), [], "", held_id
        job = core.jobs.get(res["job"])
        return _progress_md(job), _results_rows(job), "", None

    def clear_files(res: dict | None) -> Any:
        """A started upload empties the file picker; a refused one keeps the files chosen, to try again."""
        return None if (res or {}).get("job") else gr.skip()

    go.click(
        starting,
        [domain, upload],
        [progress, results, status, started, held],
        api_visibility="private",
        queue=False,
    ).then(upload_files, [domain, upload], [started], api_name="upload").then(
        show_upload, [started, held], [progress, results, status, held], api_visibility="private"
    ).then(clear_files, [started], [upload], api_visibility="private")

    def poll(hold: str | None, shown: str | None = EVERY_DOMAIN) -> tuple[Any, Any, list]:
        job = core.jobs.latest("ingest")
        if hold is not None and (job or {}).get("id", "") == hold:  # this page's own upload is shown, not that job
            return gr.skip(), gr.skip(), _docs_rows(core, shown)
        return _progress_md(job), _results_rows(job), _docs_rows(core, shown)

    timer.tick(poll, [held, shown_domain], [progress, results, docs], api_visibility="private", queue=False)

    def on_show(dom: str | None, hold: str | None, shown: str | None = EVERY_DOMAIN) -> tuple:
        """The tab shown: today's domains (the one typed or picked stays; none is picked for the user) and what a
        tick shows."""
        doms = core.domains()
        flt = [EVERY_DOMAIN, *doms]  # filter_choices, from the same listing
        shown = shown if shown in flt else EVERY_DOMAIN
        return (
            gr.Dropdown(choices=doms, value=dom or None),
            gr.Dropdown(choices=flt, value=shown),
            *poll(hold, shown),
        )

    on_shown(shown, on_show, [domain, held, shown_domain], [domain, shown_domain, progress, results, docs])

    def pick_shown(shown: str | None) -> tuple:
        """The table, and the documents offered for deletion, of the domain picked."""
        return _docs_rows(core, shown), choices(shown)

    shown_domain.change(pick_shown, [shown_domain], [docs, which], api_visibility="private", queue=False)
    shown_domain.focus(
        lambda shown: gr.Dropdown(choices=filter_choices(core), value=shown),
        [shown_domain],
        [shown_domain],
        api_visibility="private",
        queue=False,
    )

    def ask_first(choice: str | None) -> tuple:
        if not choice or " / " not in choice:
            return gr.Row(visible=False), "", "Pick a document to delete."
        dom, name = choice.split(" / ", 1)
        n = next((d["n_chunks"] for d in list_docs(core) if d["domain"] == dom and d["display"] == name), "?")
        return (
            gr.Row(visible=True),
            f"⚠ Delete **{markdown_literal(name)}** ({n} chunk{'' if n == 1 else 's'}) from domain "
            f"**{markdown_literal(dom)}**? Answers will no longer cite it; an uploaded copy is deleted too.",
            "",
        )

    def remove(choice: str | None, shown: str | None) -> tuple[str, list, Any, Any]:
        if not choice or " / " not in choice:
            return "Pick a document to delete.", _docs_rows(core, shown), choices(shown), gr.Row(visible=False)
        dom, name = choice.split(" / ", 1)
        try:
            msg = markdown_literal(delete_doc(core, dom, name))
        except LoragError as e:
            msg = warn(e)
        return msg, _docs_rows(core, shown), choices(shown), gr.Row(visible=False)

    delete.click(ask_first, [which], [confirm_row, confirm_text, status], api_visibility="private")
    yes.click(remove, [which, shown_domain], [status, docs, which, confirm_row], api_visibility="private")
    no.click(lambda: (gr.Row(visible=False), "Nothing deleted."), None, [confirm_row, status], api_visibility="private")
    refresh.click(
        lambda shown: (_docs_rows(core, shown), choices(shown)), [shown_domain], [docs, which], api_visibility="private"
    )
    which.focus(choices, [shown_domain], [which], api_visibility="private", queue=False)

    def job(job_id: str) -> dict:
        """A background job's state (ingest, synth, train, eval): status, progress, log, result (an ingest's
        per-file rows name their file under "file")."""
        state = core.jobs.get(job_id)
        if state is None:
            return {"error": f"no job {job_id!r}"}
        result = state.get("result")
        if isinstance(result, dict) and isinstance(
            result.get("results"), list
        ):  # {"path": ...} reads as a file to Gradio
            result["results"] = [{("file" if k == "path" else k): v for k, v in r.items()} for r in result["results"]]
        return state

    def documents() -> list:
        """Every indexed document."""
        return list_docs(core)

    gr.api(job, api_name="job")
    gr.api(documents, api_name="documents")
