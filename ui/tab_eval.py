"""Evaluation tab: run an A/B on a test set in the background (ui/web_jobs.py); view reports (tables, plots).

Without the `eval` package the tab says so and the rest of the app works.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.markup import markdown_literal
from assistant.names import check_id, domain_name
from ui.tab_chat import on_shown, warn
from ui.web_jobs import eval_arms, eval_available, jobs_of_domain, start_eval


def eval_job(core: Any, domain: str | None) -> dict[str, Any] | None:
    """The newest evaluation job of the domain picked (as typed: 'HR' is 'hr'), whichever tab started it; None
    while no domain is picked (every job names its domain) or the name typed is no domain's."""
    return next(iter(jobs_of_domain(core, domain, ("eval",))), None)


_RUN_ID = re.compile(r"\d{8}-\d{6}-(.+)")  # new_run_id's <time>-<domain>
_DOMAIN_OF: dict[tuple[str, int, int], str | None] = {}  # report.json (path, mtime, size) -> its domain


def report_domain(f: Path) -> str | None:
    """The domain a report (its report.json) is of, read once per version of the file; from its folder's name
    (<time>-<domain>) when the file does not say."""
    try:
        st = f.stat()
    except OSError:
        return None
    seen = (str(f), st.st_mtime_ns, st.st_size)
    if seen not in _DOMAIN_OF:
        try:
            dom = json.loads(f.read_text(encoding="utf-8")).get("domain")
        except (OSError, ValueError, AttributeError):
            dom = None
        if not isinstance(dom, str):
            m = _RUN_ID.fullmatch(f.parent.name)
            dom = m.group(1) if m else None
        _DOMAIN_OF[seen] = dom
    return _DOMAIN_OF[seen]


def list_reports(core: Any, domain: str | None = None) -> list[str]:
    """The reports, newest first; with `domain` (as typed: 'HR' is 'hr'), that domain's only (none for a name that
    is no domain's)."""
    root = core.settings.reports_dir
    if not root.is_dir():
        return []
    files = sorted(root.glob("*/report.json"), key=lambda f: f.parent.name, reverse=True)
    if domain is None:
        return [f.parent.name for f in files]
    try:
        want = domain_name(domain)
    except LoragError:
        return []
    return [f.parent.name for f in files if report_domain(f) == want]


def no_report(domain: str | None) -> str:
    """What the tab says while the domain picked has no report."""
    if not domain:
        return "No report yet: run an evaluation above."
    from assistant.markup import markdown_escaped

    return f"No report for domain **{markdown_escaped(domain.strip())}** yet: run an evaluation of it above."


def load_report(core: Any, run_id: str) -> dict[str, Any]:
    f = core.settings.reports_dir / check_id(run_id, "report id") / "report.json"
    if not f.is_file():
        raise LoragError(f"no report {run_id!r}")
    return json.loads(f.read_text(encoding="utf-8"))


def report_tables(report: dict[str, Any]) -> tuple[list[list[Any]], list[str], list[list[Any]]]:
    """(means rows, their headers, comparison rows) of a report."""
    labels = [a["label"] for a in report["arms"]]
    metrics = report["metrics"]["answer"]
    means = [
        [
            m + (" *" if m == report.get("gate_metric") else ""),
            *[_n(report["means"][lab][m].get("mean")) for lab in labels],
        ]
        for m in metrics
    ]
    for m, v in report.get("retrieval", {}).items():
        means.append([f"(retrieval) {m}", *[_n(v.get("mean"))] * len(labels)])
    comps = []
    for c in report.get("comparisons", []):
        for m, v in c["metrics"].items():
            ci = "" if v.get("ci_low") is None else f"[{v['ci_low']:+.3f}, {v['ci_high']:+.3f}]"
            comps.append([f"{c['b']} − {c['a']}", m, _n(v.get("diff"), True), ci, v.get("n", "")])
    return means, ["metric", *labels], comps


def _n(v: Any, signed: bool = False) -> str:
    if not isinstance(v, (int, float)):
        return "–"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def report_view(core: Any, run_id: str | None) -> dict[str, Any]:
    """What the tab shows of a report: the verdict, the link, the two tables, the plots."""
    from assistant.markup import markdown_escaped
    from eval.report_verdict import n_questions, verdict

    rep = load_report(core, run_id)
    rows, headers, diffs = report_tables(rep)
    pl = rep.get("files", {}).get("plots", {})
    imgs = [pl.get(k) if pl.get(k) and Path(pl[k]).is_file() else None for k in ("means", "diffs", "distributions")]
    n = n_questions(rep.get("counts", {}).get("questions", "?"))
    lines = [markdown_literal(line) for line in verdict(rep)] or ["Only one arm: nothing to compare."]
    text = "\n\n".join(f"### {line}" if i == 0 else f"**{line}**" for i, line in enumerate(lines))
    text += (
        f"\n\n{n} of {markdown_escaped(rep.get('testset', {}).get('path', 'the test set').rsplit('/', 1)[-1])}, "
        f"top-k {rep.get('top_k')}, gate metric {rep.get('gate_metric')} · "
        f'<a href="/reports/{run_id}/report.html" target="_blank">open the full report</a>'
    )
    return {"verdict": text, "means": (rows, headers), "diffs": diffs, "plots": imgs}


def arms_note(arms: str, domain: str | None = None, cards: list[Any] | None = None) -> str:
    """Why an evaluation of these arms cannot run ('' when it can): it compares two or more different models.
    `cards`: the registry's adapter cards; an example of arms uses the domain's own adapters (never another
    domain's), or the note says the domain has none."""
    from assistant.markup import markdown_escaped
    from services.evaluation import suggested_arms

    typed = [a.strip() for a in (arms or "").split(",") if a.strip()]
    names = list(dict.fromkeys(typed))
    if len(names) >= 2:
        return ""
    try:
        dom = domain_name(domain) if domain else None
    except LoragError:
        dom = None
    where = f" for domain **{markdown_escaped(domain.strip())}**" if domain and domain.strip() else ""
    example = suggested_arms(cards or [], dom) if dom else ""
    has_adapter = "," in example
    if has_adapter:
        such = f"e.g. `{example}`"
    elif dom:
        such = f"domain **{markdown_escaped(dom)}** has no adapter yet: train one in the **Adapters** tab"
    else:
        such = "e.g. base and an adapter of the domain"
    if len(typed) > len(names):  # one model named more than once
        return (
            f"Run is off: the arms name **{markdown_escaped(names[0])}** {len(typed)} times — an evaluation compares "
            f"two or more different models (the first is the baseline); {such}."
        )
    if names == ["base"] and not has_adapter:
        return (
            "Run is off: an evaluation compares two or more models (the first is the baseline), and **base** is "
            f"the only one{where} so far — train an adapter for it in the **Adapters** tab, or pick another domain."
        )
    return f"Run is off: name at least two different arms separated by commas (the first is the baseline); {such}."


def build(core: Any, shown: tuple[Any, ...] = ()) -> None:
    """`shown`: the events on which the tab is shown (the page's load, the tab's select): the domain, the arms
    suggested, the job line and the reports are worked out again then (not left as they were when the app
    started until the first tick)."""
    import gradio as gr

    from ui.jobs import progress_line

    why = eval_available()
    if why:
        gr.Markdown(warn(why) + ". Chat, side by side, documents and adapters still work.")
    doms = core.domains()
    first = doms[0] if doms else None
    with gr.Row():
        domain = gr.Dropdown(doms, value=first, label="Domain", allow_custom_value=True, elem_id="ev-domain")
        ab = gr.Textbox(
            eval_arms(core, first),
            label="Arms, comma-separated (the first is the baseline)",
            elem_id="ev-ab",
            info="base, an adapter version (handbook-v2), or a domain's name for its served version; model:<spec> "
            "arms run only in `lorag eval` without the app",  # an info line escapes HTML itself
        )
        limit = gr.Number(value=0, minimum=0, label="Only the first N questions (0: all)", precision=0)
    testset = gr.File(
        label="Test set JSONL (default: the domain's held-out split; an export of side-by-side votes works too)",
        type="filepath",
        elem_id="ev-testset",
    )

    def gate(arms: str, said: str, dom: str | None) -> tuple:
        """Run is open when the evaluation package runs and the arms name two or more models; else a note why (a
        run's own status line stays)."""
        note = "" if why else arms_note(arms, dom, core.registry_cards())
        shown = note if note or (said or "").startswith("Run is off") else gr.skip()
        return gr.Button(interactive=why is None and not note), shown

    first_note = "" if why else arms_note(eval_arms(core, first), first, core.registry_cards())
    run = gr.Button(
        "Run A/B evaluation", variant="primary", elem_id="ev-run", interactive=why is None and not first_note
    )
    status = gr.Markdown(first_note, elem_id="ev-status")  # what the button did (or why it is off)
    job_line = gr.Markdown(progress_line(eval_job(core, first)), elem_id="ev-job")  # the domain's, refreshed
    gr.Markdown("#### Reports")
    # the domain's reports (a tick or the domain picked opens its newest), or why there is none
    first_reports = list_reports(core, first)
    # no value: a page opened later shows the newest report then (a value here would be the newest at start)
    pick = gr.Dropdown(first_reports, value=None, label="Report (of the domain picked)", elem_id="ev-report")
    empty = gr.Markdown("" if first_reports else no_report(first), elem_id="ev-empty")
    verdict_md = gr.Markdown(elem_id="ev-verdict")
    means = gr.Dataframe(label="Means per arm (* gate metric)", interactive=False, elem_id="ev-means", visible=False)
    comps = gr.Dataframe(
        headers=["comparison", "metric", "diff", "95% CI", "n"],
        label="Paired differences",
        interactive=False,
        elem_id="ev-comps",
        visible=False,
    )
    plots = [
        gr.Image(label=name, type="filepath", interactive=False, visible=False, elem_id=f"ev-plot-{name}")
        for name in ("means", "differences", "distributions")
    ]  # full width, one under the other
    timer = gr.Timer(1.5)

    watching = gr.State(None)  # the evaluation job whose report opens when it is done

    def evaluate(domain: str, arms: str, testset: str | None, limit: float | None) -> tuple[str, Any]:
        """Start an A/B evaluation (a background job) of the arms on the test set; returns its status line and the
        job to watch."""
        try:
            job = start_eval(
                core,
                domain,
                arms,
                Path(testset) if testset else None,
                int(limit) if limit else None,
                testset_name=Path(testset).name if testset else None,  # the report names the user's file
            )
        except LoragError as e:
            return warn(e, file=testset), gr.skip()
        return f"started job `{job}`: its progress is below; the report opens when it is done.", job

    run.click(evaluate, [domain, ab, testset, limit], [status, watching], api_name="evaluate")
    # typed, or suggested by a tick (a domain picked suggests its arms)
    ab.change(gate, [ab, status, domain], [run, status], api_visibility="private", queue=False)

    def show(run_id: str | None, dom: str | None) -> tuple:
        hidden = gr.Dataframe(visible=False)
        if not run_id:
            return "", hidden, hidden, *[gr.Image(visible=False)] * 3, no_report(dom)
        try:
            view = report_view(core, run_id)
        except LoragError as e:
            return warn(e), hidden, hidden, *[gr.Image(visible=False)] * 3, ""
        rows, headers = view["means"]
        return (
            view["verdict"],
            gr.Dataframe(value=rows, headers=headers, visible=True),
            gr.Dataframe(value=view["diffs"], visible=bool(view["diffs"])),
            *[gr.Image(value=img, visible=img is not None) for img in view["plots"]],
            "",
        )

    pick.change(show, [pick, domain], [verdict_md, means, comps, *plots, empty], api_visibility="private")

    suggested = gr.State(eval_arms(core, first))  # the arms last suggested: replaced while the user has not edited them

    def reports_of(current: str | None, dom: str | None, opening: str | None = None) -> tuple:
        """The domain's reports in the picker: `opening` (a finished job's) when it is one, else the one shown while
        it is the domain's, else its newest; and the note while it has none."""
        reports = list_reports(core, dom)
        value = next((r for r in (opening, current) if r in reports), reports[0] if reports else None)
        return gr.Dropdown(choices=reports, value=value), "" if reports else no_report(dom)

    def poll(current: str | None, dom: str | None, arms: str, last: str, watched: str | None = None) -> tuple:
        """The job line, the reports (the report of a job the page watched opens once it is done), the arms
        suggested, and the job watched: one started here or seen running, until it ends."""
        now = eval_arms(core, dom)  # a new adapter: the suggestion follows it
        arms_update = now if arms == last and now != last else gr.skip()
        job = eval_job(core, dom)
        opening, watch = None, watched
        if job and job.get("status") == "running":
            watch = job.get("id")
        elif job and job.get("id") == watched:  # it ended: its report opens (once: the user's pick stays after)
            opening, watch = (job.get("result") or {}).get("run_id") if job.get("status") == "done" else None, None
        # unchanged: not sent, so a tick that read it before Run was clicked does not forget the job started
        watch_update = watch if watch != watched else gr.skip()
        return progress_line(job), *reports_of(current, dom, opening), arms_update, now, watch_update

    timer.tick(
        poll,
        [pick, domain, ab, suggested, watching],
        [job_line, pick, empty, ab, suggested, watching],
        api_visibility="private",
        queue=False,
    )

    def follow_domain(dom: str | None, current: str | None) -> tuple:
        """Another domain picked: its arms suggested, and its own newest report shown (or why there is none)."""
        return (eval_arms(core, dom),) * 2 + reports_of(current, dom)

    domain.change(follow_domain, [domain, pick], [ab, suggested, pick, empty], api_visibility="private", queue=False)

    def on_show(current: str | None, dom: str | None, arms: str, last: str, watched: str | None = None) -> tuple:
        """The tab shown: today's domains (the one shown while it exists, else the first) and what a tick shows."""
        doms = core.domains()
        dom = dom if dom in doms else (doms[0] if doms else None)
        return gr.Dropdown(choices=doms, value=dom), *poll(current, dom, arms, last, watched)

    on_shown(
        shown,
        on_show,
        [pick, domain, ab, suggested, watching],
        [domain, job_line, pick, empty, ab, suggested, watching],
    )
