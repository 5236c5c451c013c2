"""Documents tab: upload files or a zip into a domain (ingested in the background, with progress and a per-file
result), list and delete documents. The uploads are saved by ui/docs_uploads.py, ingested and deleted by
ui/docs_index.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.markup import markdown_literal
from ui.docs_index import delete_doc, last_upload, list_docs, start_ingest, upload_summary
from ui.tab_chat import message, on_shown, warn


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
    latest = last_upload(core)  # (it reads every job file)
    progress = gr.Markdown(_progress_md(latest), elem_id="docs-progress")
    started = gr.JSON(visible=False)  # what /upload returns: {"job": id} or {"error": ...}
    # None: the progress and results follow the latest upload. A job id ("" for none): this page's click shows
    # its own upload (being copied, or refused) while that job is still the latest: the timer leaves them alone
    held = gr.State(None)
    results = gr.Dataframe(
        headers=["file", "result", "reason or warnings", "chunks"],
        value=_results_rows(latest),
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
        latest = last_upload(core)
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
        job = last_upload(core)
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
