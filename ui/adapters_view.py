"""What the Adapters tab shows of the registry and the jobs: their tables, the job watched with its loss plot and
log, and a domain's next step (documents, training data, training, evaluation, promotion)."""

from __future__ import annotations

from typing import Any

from ui.jobs import RUNNING
from ui.web_jobs import jobs_of_domain


def registry_rows(core: Any) -> list[list[Any]]:
    from services.adapters import adapter_rows

    try:
        rows = adapter_rows(core.comps)
    except Exception:  # noqa: BLE001 - a broken card must not take the tab down
        rows = []
    return [
        [
            r["name"],
            r["domain"],
            r["base_model"],
            "yes" if r["promoted"] else "",
            "STALE" if r["stale"] else "",
            _f(r["train_loss"]),
            _f(r["eval_loss"]),
            r["created_at"],
            r["last_run"] or "",
            r["promotion"],
        ]
        for r in rows
    ]


def _f(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else ""


def jobs_rows(core: Any) -> list[list[Any]]:
    rows = []
    for j in core.jobs.all()[:30]:
        p = j.get("progress") or {}
        if p.get("stage") == "training":
            prog = f"step {p.get('done', 0)}/{p.get('total', '?')}"
        elif p:
            prog = f"{p.get('stage', '')}" + (f" {p.get('done', 0)}/{p.get('total')}" if p.get("total") else "")
        else:
            prog = ""
        rows.append([j["id"], j["kind"], j["title"], j["status"], prog, j["started_at"], j.get("error") or ""])
    return rows


TAB_JOBS = ("train", "synth", "eval")  # the jobs this tab starts (an upload is the Documents tab's)


def domain_jobs(core: Any, domain: str | None) -> list[dict[str, Any]]:
    """The jobs this tab starts (TAB_JOBS) for the domain picked (as typed: 'HR' is 'hr'), newest first."""
    return jobs_of_domain(core, domain, TAB_JOBS)


def watched_job(core: Any, picked: str | None, domain: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """(the job the tab shows, the picker's choices), of the domain picked only: the picked job, else its newest
    training job, else its newest job of another kind (training data, evaluation). The choices are its 30 newest
    jobs, and the shown one always among them, so the picker can show it."""
    jobs = domain_jobs(core, domain)
    ids = [j["id"] for j in jobs[:30]]
    job = next((j for j in jobs if j["id"] == picked), None) if picked else None
    job = job or next((j for j in jobs if j["kind"] == "train"), None) or (jobs[0] if jobs else None)
    if job and job["id"] not in ids:
        ids = [job["id"], *ids]
    return job, ids


def loss_figure(job: dict[str, Any] | None) -> Any:
    """Training and held-out loss against the step (matplotlib, drawn on the server); the x axis spans the
    whole run from its first point, so the curve fills it as the steps come, with a margin past the last step so
    that a point there (the held-out loss at the end, the only step of a 1-step run) is drawn whole. A train loss
    of a single point is drawn as a marker (a line through one point draws nothing); steps are whole numbers."""
    try:
        import matplotlib
    except ImportError:  # the eval extra brings it; without it the log still shows the losses
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 2.8), dpi=100)
    job = job if (job or {}).get("kind") == "train" else None
    curve = (job or {}).get("curve", [])
    for key, label, style in (("loss", "train", "-"), ("eval_loss", "held-out", "o--")):
        pts = [(e["step"], e[key]) for e in curve if isinstance(e.get(key), (int, float))]
        if pts:
            ax.plot(*zip(*pts), style if len(pts) > 1 else "o", label=label)  # a line through one point: nothing
    total = max((e.get("max_steps") or 0 for e in curve), default=0)
    if total:
        ax.set_xlim(0, total + max(0.5, total * 0.02))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if job is None:
        title = "no training job yet: the loss appears here as it trains"
    elif not curve:
        title = (
            f"{job['title']}: {((job.get('progress') or {}).get('stage') or 'starting')} (the first loss "
            "comes after a few steps)"
        )
    else:
        title = job["title"]
    ax.set_title(title, fontsize=10)
    if curve:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def job_detail(job: dict[str, Any] | None) -> str:
    """The job's log, ending in readable lines (never a raw dict)."""
    if not job:
        return "No job yet."
    lines = [f"{job['id']}  [{job['status']}]  {job['title']}", *job.get("log", [])]
    result = job.get("result") or {}
    if job["kind"] == "train" and result.get("adapter"):
        m = result.get("metrics") or {}
        parts = [f"adapter {result['adapter']}"]
        for key, label in (("train_loss", "train loss"), ("eval_loss", "held-out loss")):
            if isinstance(m.get(key), (int, float)):
                parts.append(f"{label} {m[key]:.4f}")
        if isinstance(m.get("steps"), int):
            parts.append(
                f"{m['steps']} steps"
                + (f" in {m['train_seconds']:.0f} s" if isinstance(m.get("train_seconds"), (int, float)) else "")
            )
        lines.append("result: " + ", ".join(parts))
    return "\n".join(lines)


STEP_OF_JOB = {"synth": 1, "train": 2, "eval": 3}  # the workflow's step each kind of job does
BUSY = -1  # next_step's step while one of the domain's jobs runs: none is next


def next_step(core: Any, domain: str | None) -> tuple[int, str]:
    """(step 0..4, what to do next) for a domain: 0 add documents, 1 make training data, 2 train, 3 evaluate,
    4 promote; 5 when the newest adapter is served; BUSY while a job of the domain runs."""
    from finetune.jobs import dataset_dir

    doms = core.domains()
    if not doms:
        return 0, (
            "**Nothing to train on yet.** Add documents in the **Documents** tab; then come back here to make "
            "training data from them (1), train an adapter (2), evaluate it (3) and promote it (4)."
        )
    if not domain or domain not in doms:
        return 0, "Pick a domain (one per folder of documents you added)."
    busy = [j for j in jobs_of_domain(core, domain, tuple(STEP_OF_JOB)) if j.get("status") == RUNNING]
    if busy:  # no step is the next one while a job of the domain runs: its button would start a second
        job = busy[0]
        n = STEP_OF_JOB[job["kind"]]
        return BUSY, (
            f"**{n} · {job['title']}** is running (job `{job['id']}`): its progress is below. The next step "
            "shows here when it ends."
        )
    cards = [c for c in core.registry_cards() if c.domain == domain]
    if not cards:
        if not (dataset_dir(core.settings, domain) / "train.jsonl").is_file():
            return (
                1,
                f"**Next: 1 · make training data** from the documents of **{domain}** (questions and answers "
                "written from them).",
            )
        return 2, f"**Next: 2 · train** an adapter on the training data of **{domain}**."
    newest = max(cards, key=lambda c: c.version)
    promoted = next((c.name for c in cards if c.promoted), None)
    against = promoted if promoted and promoted != newest.name else "base"
    if newest.promoted:
        return (
            5,
            f"**{newest.name} is served** for {domain}. Train again when the documents change (the registry "
            "says STALE).",
        )
    if not any(against in (r.get("vs") or {}) for r in newest.reports):
        return 3, f"**Next: 3 · evaluate** {newest.name} against {against} before promoting it."
    return 4, f"**Next: 4 · promote** {newest.name} (its report against {against} is in), or train again."
