"""Adapters tab: make training data, train (loss live), the registry, promotion through the gate.

Synth and train run as background jobs (ui/jobs.py); their state is on disk, so a page reload or
another browser shows them. The tab polls every 1.5 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from ui.tab_chat import message


def start_synth(core: Any, domain: str, qa: Path | None = None, writer: str | None = None, max_chunks: int | None = None) -> str:
    from finetune.config import load_train_config
    from finetune.data_report import report_lines
    from finetune.jobs import build_training_set, dataset_dir

    overrides: dict[str, Any] = {}
    if writer:
        overrides["writer"] = writer
    if max_chunks:
        overrides["max_chunks"] = int(max_chunks)
    cfg = load_train_config(domain=domain, overrides={"synth": overrides})
    from assistant.retrieval import resolve_domains

    resolve_domains(core.comps.store, domain)
    c = core.comps

    def run(job: Any) -> dict[str, Any]:
        if qa:
            job.log(f"curated Q&A: {qa}")
        summary = build_training_set(cfg, settings=c.settings, store=c.store, retriever=c.retriever,
                                     served_generator=lambda: c.generator, model_cache=c.model_cache, qa=qa,
                                     progress=job.progress, count_tokens=core.count_tokens)  # fmt: skip
        s = summary["synthetic"]
        job.log(f"{summary['train_examples']} training examples, {summary['heldout']} held-out questions "
                f"({summary['heldout_from']}); synthetic: {s['kept']} pairs from {s['chunks']} chunks")  # fmt: skip
        for line in report_lines(summary["report"]):
            job.log(line)
        drops = sorted({**s["dropped"], **summary["dropped"]}.items(), key=lambda x: -x[1])[:8]
        job.log("dropped: " + "; ".join(f"{n} {why}" for why, n in drops) if drops else "dropped: none")
        return {"domain": domain, "folder": str(dataset_dir(c.settings, domain)), **summary}

    return core.jobs.start("synth", f"training data for {domain}", run, {"domain": domain, "qa": str(qa) if qa else None})


def start_train(core: Any, domain: str, max_steps: int | None = None, resume: bool = False) -> str:
    from finetune.config import load_train_config
    from finetune.jobs import train_domain
    from finetune.runtime import describe_runtime

    if core.jobs.running("train"):
        raise LoragError("a training job is already running; wait for it to finish")
    cfg = load_train_config(domain=domain, overrides={"max_steps": int(max_steps)} if max_steps else {})

    def run(job: Any) -> dict[str, Any]:
        fn = core.train_fn or train_domain
        c = core.comps
        card = fn(cfg, settings=c.settings, store=c.store, registry=c.registry, model_cache=c.model_cache,
                  resume=resume, on_log=job.point)  # fmt: skip
        job.log(f"registered {card.name}; promote it after an evaluation")
        job.log(describe_runtime(card.metrics, card.hyperparameters))
        return {"adapter": card.name, "metrics": card.metrics}

    return core.jobs.start("train", f"train {domain}" + (f" ({max_steps} steps)" if max_steps else ""), run,
                           {"domain": domain, "max_steps": max_steps, "resume": resume})  # fmt: skip


def promote(core: Any, name: str, force: bool = False) -> str:
    from finetune.config import load_train_config

    reg = core.comps.registry
    card = reg.get(name)
    try:
        metric = load_train_config(domain=card.domain).gate_metric
    except LoragError:
        metric = "answer_f1"
    try:
        from eval.gate import promotion_gate
    except ImportError:
        promotion_gate = None  # type: ignore[assignment]

    def gate(c: Any) -> dict[str, Any]:
        if promotion_gate is None:
            return {"ok": False, "reason": "the evaluation package is not available to check this adapter"}
        return promotion_gate(c, reg, metric)

    with core.write_lock:
        card = reg.promote(name, force=force, gate=gate)
    core.refresh_routing()
    note = " (forced; recorded on the card)" if card.promotion.get("forced") else ""
    return f"promoted {card.name}{note}: {card.promotion.get('reason', '')}"


def registry_rows(core: Any) -> list[list[Any]]:
    from assistant.store.base import corpus_fingerprint
    from finetune.registry import is_stale

    store = core.comps.store
    cards = core.registry_cards()
    fps = {d: corpus_fingerprint(store, d) if store.has_domain(d) else None for d in {c.domain for c in cards}}
    rows = []
    for c in cards:
        last = c.reports[-1] if c.reports else {}
        gate = c.promotion.get("reason", "") if c.promoted else ""
        rows.append([c.name, c.domain, c.base_model, "yes" if c.promoted else "", "STALE" if is_stale(c, fps[c.domain]) else "",
                     _f(c.metrics.get("train_loss")), _f(c.metrics.get("eval_loss")), c.created_at,
                     last.get("run_id") or "", gate])  # fmt: skip
    return rows


def _f(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else ""


def jobs_rows(core: Any) -> list[list[Any]]:
    rows = []
    for j in core.jobs.all()[:30]:
        p = j.get("progress") or {}
        prog = f"{p.get('done', 0)}/{p.get('total', '?')} {p.get('stage', '')}" if p else ""
        rows.append([j["id"], j["kind"], j["title"], j["status"], prog, j["started_at"], j.get("error") or ""])
    return rows


def loss_figure(job: dict[str, Any] | None) -> Any:
    """Training and held-out loss against the step (matplotlib, drawn on the server)."""
    try:
        import matplotlib
    except ImportError:  # the eval extra brings it; without it the log still shows the losses
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.8), dpi=100)
    curve = (job or {}).get("curve", [])
    for key, label, style in (("loss", "train", "-"), ("eval_loss", "held-out", "o--")):
        pts = [(e["step"], e[key]) for e in curve if isinstance(e.get(key), (int, float))]
        if pts:
            ax.plot(*zip(*pts), style, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    title = (job or {}).get("title", "no training job yet") if (job or {}).get("kind") == "train" else "no training job selected"
    ax.set_title(title, fontsize=10)
    if curve:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def job_detail(job: dict[str, Any] | None) -> str:
    if not job:
        return "No job yet."
    lines = [f"{job['id']}  [{job['status']}]  {job['title']}", *job.get("log", [])]
    if job.get("result") and job["kind"] == "train":
        lines.append(f"result: {job['result']}")
    return "\n".join(lines)


def build(core: Any) -> None:
    import gradio as gr

    doms = core.domains()
    with gr.Row():
        domain = gr.Dropdown(doms, value=doms[0] if doms else None, label="Domain", elem_id="ad-domain", allow_custom_value=True)
    with gr.Row():
        with gr.Column():
            gr.Markdown("#### 1 · Training data (synthetic RAFT Q&A + curated)")
            qa = gr.File(label="Curated Q&A JSONL (optional)", type="filepath")
            with gr.Row():
                writer = gr.Dropdown(["auto", "section+sentence", "teacher+section+sentence", "section", "sentence", "cloze"],
                                     value="auto", label="Writers", allow_custom_value=True)  # fmt: skip
                max_chunks = gr.Number(value=0, minimum=0, label="Max chunks (0: the recipe's)", precision=0)
            synth = gr.Button("Generate training data", elem_id="ad-synth")
        with gr.Column():
            gr.Markdown("#### 2 · Train a LoRA adapter")
            with gr.Row():
                steps = gr.Number(value=0, minimum=0, label="Max steps (0: the recipe's)", precision=0)
                resume = gr.Checkbox(False, label="Resume the interrupted run")
            train = gr.Button("Start training", variant="primary", elem_id="ad-train")
    action = gr.Markdown(elem_id="ad-status")
    gr.Markdown("#### Jobs (they run in the background and survive a page reload)")
    jobs = gr.Dataframe(headers=["id", "kind", "title", "status", "progress", "started", "error"], value=jobs_rows(core),
                        interactive=False, elem_id="ad-jobs", wrap=True)  # fmt: skip
    with gr.Row():
        job_pick = gr.Dropdown([j[0] for j in jobs_rows(core)], label="Job to watch (default: the newest)", elem_id="ad-job")
    with gr.Row():
        loss = gr.Plot(loss_figure(None), label="Loss", elem_id="ad-loss")
        detail = gr.Textbox(label="Job log", lines=10, max_lines=14, elem_id="ad-log", interactive=False)
    gr.Markdown("#### 3 · Registry")
    registry = gr.Dataframe(headers=["name", "domain", "base", "promoted", "stale", "train loss", "held-out loss",
                                     "created", "last report", "promotion"], value=registry_rows(core),
                            interactive=False, elem_id="ad-registry", wrap=True)  # fmt: skip
    with gr.Row():
        pick = gr.Dropdown([r[0] for r in registry_rows(core)], label="Adapter", elem_id="ad-pick")
        force = gr.Checkbox(False, label="Force (recorded on the card)")
        prom = gr.Button("Promote (through the A/B gate)", elem_id="ad-promote")
    shown = gr.State("")  # (job, points) the plot shows, so it is redrawn only when the curve grows
    timer = gr.Timer(1.5)

    def do_synth(dom: str, qa_file: str | None, wr: str, mc: float | None) -> str:
        try:
            job = start_synth(core, dom, Path(qa_file) if qa_file else None, wr, int(mc) if mc else None)
        except LoragError as e:
            return "⚠ " + message(e)
        return f"started job `{job}`"

    def do_train(dom: str, st: float | None, res: bool) -> str:
        try:
            job = start_train(core, dom, int(st) if st else None, bool(res))
        except LoragError as e:
            return "⚠ " + message(e)
        return f"started job `{job}`"

    synth.click(do_synth, [domain, qa, writer, max_chunks], [action], api_name="synth")
    train.click(do_train, [domain, steps, resume], [action], api_name="train")

    def poll(picked: str | None, drawn: str) -> tuple:
        reg = registry_rows(core)  # before the jobs: a job registers its adapter, then logs it, so no tick shows
        rows = jobs_rows(core)  # the registry ahead of the job's log
        ids = [r[0] for r in rows]
        job = core.jobs.get(picked) if picked in ids else (core.jobs.latest("train") or (core.jobs.all() or [None])[0])
        if job and not job.get("curve") and job["kind"] == "train" and job.get("result"):
            from finetune.jobs import run_root
            from ui.jobs import read_loss_log

            name = job["result"]["adapter"]
            job["curve"] = read_loss_log(run_root(core.settings, job["params"]["domain"]) / f"v{name.rsplit('-v', 1)[-1]}")
        key = f"{(job or {}).get('id')}:{len((job or {}).get('curve', []))}"
        plot = gr.skip() if key == drawn else loss_figure(job)
        return rows, gr.Dropdown(choices=ids, value=picked if picked in ids else None), plot, job_detail(job), reg, key

    timer.tick(poll, [job_pick, shown], [jobs, job_pick, loss, detail, registry, shown], api_visibility="private", queue=False)

    def do_promote(name: str | None, frc: bool) -> tuple[str, list]:
        if not name:
            return "Pick an adapter.", registry_rows(core)
        try:
            msg = promote(core, name, bool(frc))
        except LoragError as e:
            msg = "⚠ " + message(e)
        return msg, registry_rows(core)

    prom.click(do_promote, [pick, force], [action, registry], api_name="promote")
    pick.focus(lambda p: gr.Dropdown(choices=[r[0] for r in registry_rows(core)], value=p), [pick], [pick],
               api_visibility="private", queue=False)  # fmt: skip
    domain.focus(lambda d: gr.Dropdown(choices=core.domains(), value=d), [domain], [domain], api_visibility="private", queue=False)
