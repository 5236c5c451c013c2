"""Adapters tab: make training data, train (loss live), the registry, promotion through the gate.

Synth and train run as background jobs (ui/jobs.py); their state is on disk, so a page reload or
another browser shows them. The tab polls every 1.5 s; what it shows is worked out in ui/adapters_view.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.markup import markdown_literal
from ui.adapters_view import job_detail, jobs_rows, loss_figure, next_step, registry_rows, watched_job
from ui.tab_chat import on_shown, warn
from ui.web_jobs import eval_arms, promote, start_eval, start_synth, start_train

REGISTRY_HEADERS = [
    "name",
    "domain",
    "base",
    "promoted",
    "stale",
    "train loss",
    "held-out loss",
    "created",
    "last report",
    "promotion",
]  # the registry table's columns (registry_rows' cells)


def build(core: Any, shown: tuple[Any, ...] = ()) -> None:
    """`shown`: the events on which the tab is shown (the page's load, the tab's select): the domain, the next
    step (its button coloured), the arms, the jobs and the registry are worked out again then (not left as they
    were when the app started until the first tick)."""
    import gradio as gr

    from ui.jobs import progress_line

    doms = core.domains()
    first_job, first_ids = watched_job(core, None, doms[0] if doms else None)
    with gr.Row():
        domain = gr.Dropdown(
            doms, value=doms[0] if doms else None, label="Domain", elem_id="ad-domain", allow_custom_value=True, scale=1
        )
        guide = gr.Markdown(next_step(core, doms[0] if doms else None)[1], elem_id="ad-next")
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown(
                "#### 1 · Make training data\nQuestions and answers written from the domain's passages, plus your own."
            )
            qa = gr.File(label="Your own Q&A, JSONL (optional)", type="filepath")
            with gr.Row():
                writer = gr.Dropdown(
                    ["auto", "section+sentence", "teacher+section+sentence", "section", "sentence", "cloze"],
                    value="auto",
                    label="Writers",
                    allow_custom_value=True,
                )
                max_chunks = gr.Number(value=0, minimum=0, label="Max chunks (0: the recipe's)", precision=0)
            synth = gr.Button("1 · Make training data", elem_id="ad-synth")
            synth_status = gr.Markdown(elem_id="ad-synth-status")
        with gr.Column():
            gr.Markdown(
                "#### 2 · Train an adapter\nA LoRA adapter on that data; the loss is plotted below as it trains."
            )
            with gr.Row():
                steps = gr.Number(value=0, minimum=0, label="Max steps (0: the recipe's)", precision=0)
                resume = gr.Checkbox(False, label="Resume the interrupted run")
            train = gr.Button("2 · Start training", elem_id="ad-train")
            train_status = gr.Markdown(elem_id="ad-status")
    gr.Markdown("#### Progress (jobs run in the background and survive a page reload)")
    with gr.Row():
        # custom values allowed: a job just started sets the value while a timer tick that read the job list a
        # moment before may still send choices without it (Gradio would refuse the value and leave the old job).
        # No value yet (not the newest job when the app started, for every page): the first tick names the job shown
        job_pick = gr.Dropdown(
            first_ids,
            value=None,
            label="Job to watch (default: the newest training job)",
            elem_id="ad-job",
            scale=2,
            allow_custom_value=True,
        )
        progress = gr.Markdown(progress_line(first_job), elem_id="ad-progress")  # the domain's jobs only
    with gr.Row():
        loss = gr.Plot(loss_figure(first_job), label="Loss", elem_id="ad-loss", scale=3)
        detail = gr.Textbox(
            label="Job log", lines=10, max_lines=14, elem_id="ad-log", interactive=False, scale=2, autoscroll=True
        )
    with gr.Accordion("All jobs", open=False):
        jobs = gr.Dataframe(
            headers=["id", "kind", "title", "status", "progress", "started", "error"],
            value=jobs_rows(core),
            interactive=False,
            elem_id="ad-jobs",
            wrap=True,
        )
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("#### 3 · Evaluate\nAn A/B test on the held-out questions: the same passages, two models.")
            arms = gr.Textbox(
                eval_arms(core, doms[0] if doms else None), label="Arms (first is the baseline)", elem_id="ad-arms"
            )
            evaluate = gr.Button("3 · Evaluate", elem_id="ad-eval")
            eval_status = gr.Markdown(elem_id="ad-eval-status")
        with gr.Column():
            gr.Markdown("#### 4 · Promote\nServe the adapter for its domain — only when its A/B report shows a gain.")
            with gr.Row():
                # no value: the first adapter when the app started (another domain's, an old version) is no choice
                pick = gr.Dropdown([r[0] for r in registry_rows(core)], value=None, label="Adapter", elem_id="ad-pick")
                force = gr.Checkbox(False, label="Force (recorded on the card)", elem_id="ad-force")
            prom = gr.Button("4 · Promote (through the A/B gate)", elem_id="ad-promote")
            promote_status = gr.Markdown(elem_id="ad-promote-status")
    gr.Markdown("#### Registry")
    registry = gr.Dataframe(
        headers=REGISTRY_HEADERS,
        value=registry_rows(core),
        interactive=False,
        elem_id="ad-registry",
        wrap=True,
        # the short columns as wide as their header's longest word, the long ones shares of the table that leave
        # them the rest at 1280 px: every column in sight there (without widths a long base model name and report
        # id pushed "promotion" out of the table); a long cell wraps in its column. In a narrower window the app's
        # CSS (ui/app.py) leaves out "created", then "last report", so the rest still fit
        column_widths=["10%", "96px", "14%", "90px", "64px", "72px", "72px", "11%", "13%", "19%"],
    )
    drawn = gr.State("")  # (job, points) the plot shows, so it is redrawn only when the curve grows
    auto_picked = gr.State("")  # the job a tick put in the picker itself (the user picked none): not a choice
    suggested = gr.State(arms.value)  # the arms last suggested: replaced while the user has not edited them
    step_buttons = {1: synth, 2: train, 3: evaluate, 4: prom}
    timer = gr.Timer(1.5)

    def buttons(dom: str | None) -> tuple:
        """The next step's button is the primary one."""
        n, text = next_step(core, dom)
        return (text, *[gr.Button(variant="primary" if k == n else "secondary") for k in step_buttons])

    def started(job: str, domain: str) -> Any:
        _, ids = watched_job(core, job, domain)
        return gr.Dropdown(choices=ids, value=job)  # the watched job follows the one just started

    def synth_data(domain: str, qa_file: str | None, writers: str, max_chunks: float | None) -> tuple:
        """Make the domain's training set (a background job); returns its status line."""
        try:
            job = start_synth(
                core,
                domain,
                Path(qa_file) if qa_file else None,
                writers,
                int(max_chunks) if max_chunks else None,
                qa_name=Path(qa_file).name if qa_file else None,  # the user's file name, not Gradio's temporary path
            )
        except LoragError as e:
            return warn(e, file=qa_file), gr.skip()
        return f"started job `{job}`: its progress is below.", started(job, domain)

    def train_adapter(domain: str, max_steps: float | None, resume: bool) -> tuple:
        """Train an adapter for the domain (a background job); returns its status line."""
        try:
            job = start_train(core, domain, int(max_steps) if max_steps else None, bool(resume))
        except LoragError as e:
            return warn(e), gr.skip()
        return f"started job `{job}`: its progress and loss are below.", started(job, domain)

    def evaluate_arms(domain: str, arms: str) -> tuple:
        try:
            job = start_eval(core, domain, arms)
        except LoragError as e:
            return warn(e), gr.skip()
        return (
            f"started job `{job}`: its progress is below; the report opens in the **Evaluation** tab.",
            started(job, domain),
        )

    synth.click(synth_data, [domain, qa, writer, max_chunks], [synth_status, job_pick], api_name="synth")
    train.click(train_adapter, [domain, steps, resume], [train_status, job_pick], api_name="train")
    evaluate.click(evaluate_arms, [domain, arms], [eval_status, job_pick], api_visibility="private")

    def poll(picked: str | None, drawn: str, dom: str | None, arms_now: str, last: str, auto: str) -> tuple:
        reg = registry_rows(core)  # before the jobs: a job registers its adapter, then logs it, so no tick shows
        rows = jobs_rows(core)  # the registry ahead of the job's log
        # the picker holding what a tick chose itself is no choice of the user's: follow the newest training job
        chosen = None if picked == auto else picked
        job, ids = watched_job(core, chosen, dom)
        if job and not job.get("curve") and job["kind"] == "train" and job.get("result"):
            from finetune.jobs import run_root
            from ui.jobs import read_loss_log

            name = job["result"]["adapter"]
            job["curve"] = read_loss_log(
                run_root(core.settings, job["params"]["domain"]) / f"v{name.rsplit('-v', 1)[-1]}"
            )
        j = job or {}
        key = f"{j.get('id')}:{len(j.get('curve', []))}:{(j.get('progress') or {}).get('stage')}"
        plot = gr.skip() if key == drawn else loss_figure(job)
        now = eval_arms(core, dom)  # a new adapter: the suggested arms follow it
        arms_update = now if arms_now == last and now != last else gr.skip()
        # the picker names the job shown; its value is sent only when it changes, so a tick that read the picker
        # just before a job was started cannot put the older job back
        shown_id = job["id"] if job else None
        picker = gr.Dropdown(choices=ids, value=shown_id) if shown_id != picked else gr.Dropdown(choices=ids)
        # the user's pick stays theirs; a job shown instead of it (theirs was of the domain picked before) is the tick's
        auto_now = "" if chosen is not None and shown_id == chosen else (shown_id or "")
        out = (rows, picker, progress_line(job), plot, job_detail(job), reg, key, arms_update, now, *buttons(dom))
        return (*out, auto_now)

    ticked = [jobs, job_pick, progress, loss, detail, registry, drawn, arms, suggested, guide, *step_buttons.values()]
    timer.tick(
        poll,
        [job_pick, drawn, domain, arms, suggested, auto_picked],
        ticked + [auto_picked],
        api_visibility="private",
        queue=False,
    )

    def on_show(picked: str | None, plotted: str, dom: str | None, arms_now: str, last: str, auto: str) -> tuple:
        """The tab shown: today's domains (the one shown while it exists, else the first) and what a tick shows."""
        doms = core.domains()
        dom = dom if dom in doms else (doms[0] if doms else None)
        return gr.Dropdown(choices=doms, value=dom), *poll(picked, plotted, dom, arms_now, last, auto)

    on_shown(shown, on_show, [job_pick, drawn, domain, arms, suggested, auto_picked], [domain, *ticked, auto_picked])

    def promote_adapter(adapter: str | None, force: bool) -> tuple[str, list]:
        """Promote an adapter through the A/B gate (force: anyway, recorded on the card)."""
        if not adapter:
            return "Pick an adapter.", registry_rows(core)
        try:
            msg = markdown_literal(promote(core, adapter, bool(force)))
        except LoragError as e:
            msg = warn(e)
        return msg, registry_rows(core)

    prom.click(promote_adapter, [pick, force], [promote_status, registry], api_name="promote")
    pick.focus(
        lambda p: gr.Dropdown(choices=[r[0] for r in registry_rows(core)], value=p),
        [pick],
        [pick],
        api_visibility="private",
        queue=False,
    )
    domain.focus(
        lambda d: gr.Dropdown(choices=core.domains(), value=d),
        [domain],
        [domain],
        api_visibility="private",
        queue=False,
    )
    domain.change(
        lambda d: (eval_arms(core, d), eval_arms(core, d), *buttons(d)),
        [domain],
        [arms, suggested, guide, *step_buttons.values()],
        api_visibility="private",
        queue=False,
    )
