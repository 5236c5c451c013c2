"""Side by side: one question, two arms (base / adapters) on the identical retrieved passages, a vote.

The tab opens on base against an adapter (the domain's promoted one, else its newest), when there is one, worked
out again each time the page loads and the tab is shown (an adapter trained since the app started is offered and
picked), until the user picks an arm; the
vote buttons open only once a comparison of two different arms is done. While both sides name one model the
Compare button is closed and the tab says why (a comparison of one model with itself is refused anyway).

Votes go to `<data_dir>/votes/<domain>.jsonl`, one JSON object a line. A vote is a test case of one domain (what
`lorag eval` takes): with every domain searched ("all"), it counts for the domain its passages came from; when they
came from several, the votes stay closed and the tab says to pick the domain. "Export" (of one domain: not "all")
turns them into a test set for `lorag eval --testset`:
`{"id", "question", "answer", "sources", "tags"}` whose reference answer is the one the voter wrote
(an edited reference), else the preferred answer (left or right). A tie or "both bad" without an
edited reference has no answer known to be right, so it is not exported (never is a wrong answer
made the reference); the export counts those, and they stay in the votes file.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

from assistant.answer import Answer
from assistant.errors import LoragError
from assistant.names import ALL_DOMAINS, check_domain
from assistant.routing import BASE_CHOICE
from ui.tab_chat import (
    answer_body,
    citations_html,
    error_text,
    esc,
    message,
    new_key,
    on_shown,
    passage_block,
    route_line,
    warn,
)

VOTES = ("left", "right", "tie", "both_bad")
_VOTES_LOCK = threading.Lock()  # the app's handlers run in threads: one writer of the votes files at a time


def votes_dir(core: Any) -> Path:
    return core.data_dir / "votes"


def votes_domain(core: Any, domain: str | None) -> str:
    """The votes file's domain: a checked domain name ("all" is none: votes are kept per domain)."""
    dom = core.domain_arg(domain)
    if dom is None:
        listed = ", ".join(f"{d} ({n})" for d, n in voted_domains(core).items())
        raise LoragError(
            "votes are kept per domain, as `lorag eval` takes them: pick the domain above (not 'all')",
            hint=f"domains with votes: {listed}" if listed else "no votes yet",
        )
    return check_domain(dom)


def sort_votes_of_all(core: Any) -> int:
    """Votes an earlier version kept under "all" (`votes/all.jsonl`) move to the domain their passages came from,
    where export finds them; a vote whose passages name several domains, or none, stays there. The moved votes are
    appended to their domains' files before all.jsonl is rewritten without them (a crash in between leaves a vote
    in both: a vote whose id is in its domain's file already is not added again). The export orders votes by
    time, so a moved (older) vote never wins over a newer one on the same question. Returns how many moved."""
    src = votes_dir(core) / f"{ALL_DOMAINS}.jsonl"
    with _VOTES_LOCK:
        if not src.is_file():
            return 0
        keep: list[bytes] = []  # lines kept as they were, whatever their bytes
        moved: dict[str, list[dict[str, Any]]] = {}
        for line in src.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            vote, domain = _vote_of(line), None
            try:
                if vote is not None:
                    domain, _ = comparison_domain({"domain": ALL_DOMAINS, "passages": vote["passages"]})
                    domain = check_domain(domain) if domain is not None else None
            except (KeyError, TypeError, LoragError):
                domain = None
            if domain is None or domain == ALL_DOMAINS:
                keep.append(line)
            else:
                moved.setdefault(domain, []).append({**vote, "domain": domain})
        for domain, votes in moved.items():
            dest = votes_dir(core) / f"{domain}.jsonl"
            have = {v.get("id") for v in _votes_in(dest)}
            with dest.open("a", encoding="utf-8") as fh:
                fh.write("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in votes if v["id"] not in have))
                fh.flush()
                os.fsync(fh.fileno())
        if moved:
            if keep:
                tmp = src.with_name(f".{src.name}.{os.getpid()}.tmp")
                with tmp.open("wb") as fh:
                    fh.write(b"".join(v + b"\n" for v in keep))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, src)
            else:
                src.unlink(missing_ok=True)
        return sum(len(v) for v in moved.values())


def _is_side(side: Any) -> bool:
    cited = side.get("citations", []) if isinstance(side, dict) else None
    return (
        isinstance(side, dict)
        and isinstance(side.get("answer", ""), str)
        and isinstance(side.get("adapter", ""), str)
        and isinstance(cited, list)
        and all(isinstance(c, dict) and "n" in c for c in cited)
    )


def _vote_of(line: bytes) -> dict[str, Any] | None:
    """The vote a line of a votes file holds: a JSON object with what an export reads, of the types it reads;
    None for anything else (a line torn by a crash mid-write, even inside a character; one edited by hand)."""
    try:
        v = json.loads(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None
    ok = (
        isinstance(v, dict)
        and isinstance(v.get("id"), (str, int))
        and v["id"] != ""
        and isinstance(v.get("question"), str)
        and v.get("vote") in VOTES
        and _is_side(v.get("left"))
        and _is_side(v.get("right"))
        and isinstance(v.get("reference") or "", str)
        and isinstance(v.get("passages"), list)
        and all(isinstance(p, dict) and isinstance(p.get("source"), str) and "n" in p for p in v["passages"])
    )
    return v if ok else None


def _votes_in(f: Path, unreadable: list[int] | None = None) -> list[dict[str, Any]]:
    """The votes of a file (see _vote_of); the numbers of the lines that hold none are added to `unreadable`, blank
    lines are nothing. Lines end at line feeds only: a vote's text may hold any other line separator."""
    if not f.is_file():
        return []
    out = []
    for n, line in enumerate(f.read_bytes().split(b"\n"), 1):
        if not line.strip():
            continue
        v = _vote_of(line)
        if v is not None:
            out.append(v)
        elif unreadable is not None:
            unreadable.append(n)
    return out


def voted_domains(core: Any) -> dict[str, int]:
    """{domain: votes} of the domains with a votes file."""
    sort_votes_of_all(core)
    files = sorted(votes_dir(core).glob("*.jsonl")) if votes_dir(core).is_dir() else []
    return {f.stem: len(_votes_in(f)) for f in files if not f.stem.endswith("-testset") and f.stem != ALL_DOMAINS}


def comparison_domain(comparison: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(the domain a vote on the comparison counts for, the domains of its passages): the domain searched; with
    every domain searched ("all"), the one its passages came from (None when they came from several, or none)."""
    dom = comparison["domain"]
    if not isinstance(dom, str):
        raise TypeError("domain must be a string")
    came_from = sorted({p["domain"] for p in comparison["passages"]})
    if dom != ALL_DOMAINS:
        return dom, came_from
    return (came_from[0] if len(came_from) == 1 else None), came_from


def no_vote_domain(came_from: list[str]) -> str:
    """Why a comparison of every domain takes no vote: its passages name no one domain."""
    if not came_from:
        return "no passage was found in any domain, so a vote would be a test case of no domain"
    return (
        f"the passages come from several domains ({', '.join(came_from)}), and a vote is a test case of one "
        "domain (what `lorag eval` takes)"
    )


def votes_file(core: Any, domain: str | None) -> Path:
    return votes_dir(core) / f"{votes_domain(core, domain)}.jsonl"


def compare_stream(core: Any, question: str, domain: str | None, left: str, right: str) -> Iterator[dict[str, Any]]:
    """Retrieve once; stream both arms on that retrieval. Yields the comparison as it grows."""
    question = (question or "").strip()
    if not question:
        raise LoragError("the question is empty")
    if left == right:
        raise LoragError(
            f"both sides are {left}: comparing an arm with itself tells nothing",
            hint="pick two different arms, e.g. base and an adapter",
        )
    r = core.comps.retriever.retrieve(question, core.domain_arg(domain))
    state: dict[str, Any] = {
        "question": question,
        "domain": core.domain_arg(domain) or "all",
        "relevant": r.relevant,
        "passages": [p.to_dict() for p in r.passages],
        "left": {"adapter": left, "answer": ""},
        "right": {"adapter": right, "answer": ""},
        "done": False,
    }
    for side, choice in (("left", left), ("right", right)):
        for item in core.stream(question, domain, adapter=choice, retrieval=r):
            if isinstance(item, Answer):
                state[side] = {
                    "adapter": choice,
                    "answer": item.answer,
                    "route": item.route,
                    "citations": [c.to_dict() for c in item.citations],
                    "final": item,
                }
            else:
                state[side]["answer"] += item
            yield state
    state["done"] = True
    yield state


def record_vote(core: Any, comparison: dict[str, Any], vote: str, reference: str | None = None) -> dict[str, Any]:
    """Store a vote; `reference`: the right answer as the voter wrote it (what a tie or "both bad" needs to be
    exported as a test case)."""
    if vote not in VOTES:
        raise LoragError(f"vote must be one of {', '.join(VOTES)}")
    if not isinstance(comparison, dict) or not comparison or not comparison.get("done"):
        raise LoragError("ask a question first: there is no finished comparison to vote on")
    if reference is not None and not isinstance(reference, str):
        raise LoragError("the reference answer must be text")
    try:
        row = _vote_row(comparison, vote)
        if reference and reference.strip():
            row["reference"] = reference.strip()
    except (KeyError, TypeError, AttributeError) as e:
        raise LoragError(
            f"the comparison is malformed ({type(e).__name__}: {e}); vote on what /compare returned"
        ) from None
    f = votes_file(core, row["domain"])
    f.parent.mkdir(parents=True, exist_ok=True)
    sort_votes_of_all(core)  # older votes first
    with _VOTES_LOCK, f.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return row


def _vote_row(comparison: dict[str, Any], vote: str) -> dict[str, Any]:
    if not isinstance(comparison["question"], str):
        raise TypeError("question must be a string")
    domain, came_from = comparison_domain(comparison)
    if domain is None:
        raise LoragError(
            no_vote_domain(came_from), hint="pick the domain above and compare again to vote on its answers"
        )
    check_domain(domain)
    return {
        "id": hashlib.sha256(f"{comparison['question']}|{time.time_ns()}".encode()).hexdigest()[:12],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "vote": vote,
        "question": comparison["question"],
        "domain": domain,
        "left": {k: v for k, v in comparison["left"].items() if k != "final"},
        "right": {k: v for k, v in comparison["right"].items() if k != "final"},
        "passages": [{k: p[k] for k in ("n", "ref", "source", "domain")} for p in comparison["passages"]],
    }


def read_votes(core: Any, domain: str | None, unreadable: list[int] | None = None) -> list[dict[str, Any]]:
    """A domain's votes; the numbers of lines that hold none are added to `unreadable` (see _votes_in)."""
    sort_votes_of_all(core)
    return _votes_in(votes_file(core, domain), unreadable)


def export_votes(core: Any, domain: str | None) -> dict[str, Any]:
    """Votes of a domain -> `<data_dir>/votes/<domain>-testset.jsonl` (the last vote per question wins)."""
    unreadable: list[int] = []
    votes = read_votes(core, domain, unreadable)
    by_q: dict[str, dict[str, Any]] = {}
    for v in sorted(votes, key=lambda v: str(v.get("time", ""))):  # the latest vote on a question wins
        by_q[v["question"].strip().lower()] = v
    rows, both_bad, no_reference = [], 0, 0
    for v in by_q.values():
        reference = (v.get("reference") or "").strip()
        preferred = v["right"] if v["vote"] == "right" else v["left"] if v["vote"] == "left" else None
        if not reference and (preferred is None or not preferred.get("answer", "").strip()):
            both_bad += v["vote"] == "both_bad"
            no_reference += v["vote"] != "both_bad"
            continue  # no answer known to be right: never make one the reference
        side = preferred or {}
        cited = {c["n"] for c in side.get("citations", [])}
        sources = list(dict.fromkeys(p["source"] for p in v["passages"] if not cited or p["n"] in cited))
        tags = ["vote", v["vote"] if v["vote"] in ("tie", "both_bad") else f"preferred:{side['adapter']}"]
        if reference:
            tags.append("edited reference")
        rows.append(
            {
                "id": f"vote-{v['id']}",
                "question": v["question"],
                "answer": reference or side["answer"].strip(),
                "sources": sources,
                "tags": tags,
            }
        )
    out = votes_dir(core) / f"{votes_domain(core, domain)}-testset.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return {
        "path": str(out),
        "cases": len(rows),
        "votes": len(votes),
        "both_bad_skipped": both_bad,
        "tie_skipped": no_reference,
        "unreadable_lines": unreadable,
        "votes_file": str(votes_file(core, domain)),
    }


def domain_adapter(core: Any, domain: str | None) -> str | None:
    """The arm to compare with base: the domain's promoted adapter, else its newest version; for every domain
    ("all"), a promoted adapter, else the newest, else any the generator serves; None when there is none."""
    choices = core.compare_adapters()[1:]
    dom = core.domain_arg(domain)
    cards = [c for c in core.registry_cards() if c.name in choices and dom in (None, c.domain)]
    if cards:
        return min(cards, key=lambda c: (not c.promoted, -c.version, c.name)).name
    return choices[0] if choices and dom is None else None


def same_arms_note(core: Any, left: str | None, right: str | None) -> str:
    """Why Compare is closed and there is nothing to vote on while both sides are one model ("" when they differ)."""
    if left != right:
        return ""
    adapters = len(core.compare_adapters()) > 1
    how = "pick an adapter on one side" if adapters else "train an adapter in the **Adapters** tab first"
    return f"Compare is off: both sides are **{left}**, the same model twice, so there is nothing to compare — {how}."


def _votes(on: bool) -> list[Any]:
    """The vote buttons: open only on a finished comparison of two different arms."""
    import gradio as gr

    return [gr.Button(interactive=on) for _ in VOTES]


def _column(side: dict[str, Any]) -> str:
    final = side.get("final")
    if final is None:
        return esc(side["answer"]) + " ▌"
    key = new_key()  # the [n] markers open this column's own sources
    body = answer_body(final, key) if final.relevant else esc(final.answer)
    return body + "\n\n" + route_line(final) + citations_html(final, key)


def _plain(state: dict[str, Any]) -> dict[str, Any]:
    return {
        **state,
        "left": {k: v for k, v in state["left"].items() if k != "final"},
        "right": {k: v for k, v in state["right"].items() if k != "final"},
    }


def vote_note(comparison: dict[str, Any]) -> tuple[bool, str]:
    """(can the finished comparison be voted on, what the tab says under it)."""
    dom, came_from = comparison_domain(comparison)
    if dom is None:
        return False, f"No vote on this comparison: {no_vote_domain(came_from)}. Pick the domain above to vote."
    if comparison["domain"] == ALL_DOMAINS:
        return True, f"Vote for the better answer (it counts for domain **{dom}**, where the passages come from)."
    return True, "Vote for the better answer."


def opening_arms(core: Any, domain: str | None, left: str, right: str, picked: bool) -> tuple[str, str, str]:
    """(domain, left, right) as the tab shows them: base against the domain's adapter (`domain_adapter`) until the
    user picks an arm; then the arms picked, as long as they still exist."""
    doms, choices = core.domain_choices(), core.compare_adapters()
    dom = domain if domain in doms else "all"
    if picked:
        lft = left if left in choices else BASE_CHOICE
        rgt = right if right in choices else domain_adapter(core, dom) or BASE_CHOICE
        return dom, lft, rgt
    return dom, BASE_CHOICE, domain_adapter(core, dom) or BASE_CHOICE


def build(core: Any, shown: tuple[Any, ...] = ()) -> None:  # noqa: C901 - the sum of its small event handlers
    """`shown`: the events on which the tab is shown (the page's load, the tab's select): the arms offered and
    the opening pair are worked out again then."""
    import gradio as gr

    ads = core.compare_adapters()
    first = domain_adapter(core, "all") or BASE_CHOICE  # base against an adapter when there is one
    with gr.Row():
        domain = gr.Dropdown(core.domain_choices(), value="all", label="Domain", elem_id="cmp-domain")
        left = gr.Dropdown(ads, value=BASE_CHOICE, label="Left", elem_id="cmp-left")
        right = gr.Dropdown(ads, value=first, label="Right", elem_id="cmp-right")
    with gr.Row():
        question = gr.Textbox(
            placeholder="One question, answered by both", show_label=False, elem_id="cmp-input", scale=6
        )
        # closed while both sides are one model: there would be nothing to compare
        go = gr.Button("Compare", variant="primary", elem_id="cmp-go", scale=1, interactive=first != BASE_CHOICE)
    # a refusal (empty question, same arm twice) shows here, and why Compare is closed while the arms match
    cmp_status = gr.Markdown(same_arms_note(core, BASE_CHOICE, first), elem_id="cmp-status")
    with gr.Row(equal_height=True):
        with gr.Column():
            left_title = gr.Markdown("### Left")
            left_out = gr.Markdown(elem_id="left-answer")
        with gr.Column():
            right_title = gr.Markdown("### Right")
            right_out = gr.Markdown(elem_id="right-answer")
    with gr.Accordion("Passages both sides saw", open=False):
        passages = gr.HTML(elem_id="cmp-passages")
    with gr.Row():
        buttons = {  # closed until a comparison of two different arms is done
            "left": gr.Button("← Left is better", elem_id="vote-left", interactive=False),
            "right": gr.Button("Right is better →", elem_id="vote-right", interactive=False),
            "tie": gr.Button("Tie", elem_id="vote-tie", interactive=False),
            "both_bad": gr.Button("Both bad", elem_id="vote-both_bad", interactive=False),
        }
    reference = gr.Textbox(
        label="Reference answer (optional): the right answer in your words — a Tie or Both bad is "
        "exported as a test case only with one",
        lines=2,
        elem_id="vote-reference",
    )
    status = gr.Markdown(elem_id="vote-status")
    with gr.Row():
        export = gr.Button("Export votes as a test set", elem_id="vote-export")
        export_file = gr.File(label="test set (JSONL for lorag eval --testset)", interactive=False)
    current = gr.State({})
    picked = gr.State(False)  # has the user picked an arm? Until then the tab opens on base against the adapter

    def run(q: str, dom: str, lft: str, rgt: str) -> Iterator[tuple]:
        try:
            for st in compare_stream(core, q, dom, lft, rgt):
                plain = _plain(st) if st["done"] else {}
                blocks = "".join(passage_block(SimpleNamespace(**p)) for p in st["passages"])
                voting, note = vote_note(st) if st["done"] else (False, "")
                yield (
                    f"### Left · {lft}",
                    _column(st["left"]),
                    f"### Right · {rgt}",
                    _column(st["right"]),
                    blocks,
                    plain,
                    note,
                    "",
                    *_votes(voting),
                )
        except LoragError as e:
            yield "### Left", "", "### Right", "", "", {}, "", error_text(e), *_votes(False)

    outs = [left_title, left_out, right_title, right_out, passages, current, status, cmp_status, *buttons.values()]
    for trigger in (question.submit, go.click):
        trigger(
            run,
            [question, domain, left, right],
            outs,
            api_visibility="private",
            concurrency_limit=core.generation_slots,
            concurrency_id="generation",
        )

    def make_vote(choice: str) -> Any:
        def cast_vote(state: dict, ref: str) -> str:
            try:
                row = record_vote(core, state, choice, ref)
            except LoragError as e:
                return warn(e)
            n = len(read_votes(core, row["domain"]))
            note = ""
            if choice in ("tie", "both_bad") and not row.get("reference"):
                note = " It is not exported as a test case without a reference answer: write one above and vote again."
            return f"Vote recorded: **{choice.replace('_', ' ')}** ({n} vote(s) in domain '{row['domain']}').{note}"

        return cast_vote

    for choice, b in buttons.items():
        b.click(make_vote(choice), [current, reference], [status], api_visibility="private")

    def do_export(dom: str) -> tuple[str, Any]:
        try:
            info = export_votes(core, dom)
        except LoragError as e:
            return warn(e), None
        skipped = info["both_bad_skipped"] + info["tie_skipped"]
        msg = f"Exported {info['cases']} case(s) from {info['votes']} vote(s) to `{info['path']}`" + (
            f" ({skipped} tie or both-bad vote(s) without a reference answer left out)." if skipped else "."
        )
        if info["unreadable_lines"]:
            lines = info["unreadable_lines"]
            msg += (
                f" ⚠ {len(lines)} line(s) of `{info['votes_file']}` hold no vote and were left out (line "
                + ", ".join(map(str, lines[:10]))
                + (", ..." if len(lines) > 10 else "")
                + "); the file is unchanged."
            )
        return msg, info["path"] if info["cases"] else None

    export.click(do_export, [domain], [status, export_file], api_visibility="private")

    def refresh(dom: str, lft: str, rgt: str) -> tuple:
        doms, choices = core.domain_choices(), core.compare_adapters()
        return (
            gr.Dropdown(choices=doms, value=dom if dom in doms else "all"),
            gr.Dropdown(choices=choices, value=lft if lft in choices else BASE_CHOICE),
            gr.Dropdown(choices=choices, value=rgt if rgt in choices else choices[-1]),
        )

    for dd in (domain, left, right):
        dd.focus(refresh, [domain, left, right], [domain, left, right], api_visibility="private", queue=False)

    def on_show(dom: str, lft: str, rgt: str, was_picked: bool) -> tuple:
        """The tab shown: today's domains and arms, and the opening pair unless the user picked one."""
        dom, lft, rgt = opening_arms(core, dom, lft, rgt, was_picked)
        choices, note = core.compare_adapters(), same_arms_note(core, lft, rgt)
        return (
            gr.Dropdown(choices=core.domain_choices(), value=dom),
            gr.Dropdown(choices=choices, value=lft),
            gr.Dropdown(choices=choices, value=rgt),
            note,
            gr.Button(interactive=not note),
        )

    on_shown(shown, on_show, [domain, left, right, picked], [domain, left, right, cmp_status, go])
    for dd in (left, right):  # a pick of the user's (not a change the tab made) is kept from then on
        dd.input(lambda: True, None, [picked], api_visibility="private", queue=False)

    def arms(lft: str, rgt: str) -> tuple:
        """One model on both sides: say so, and close Compare and the votes (the comparison would be refused);
        two different arms open Compare again."""
        note = same_arms_note(core, lft, rgt)
        return note, gr.Button(interactive=not note), *(_votes(False) if note else [gr.skip() for _ in VOTES])

    for dd in (left, right):
        dd.change(arms, [left, right], [cmp_status, go, *buttons.values()], api_visibility="private", queue=False)

    def follow_domain(dom: str, rgt: str) -> Any:
        """The right arm follows the domain: its adapter, when it has one."""
        return gr.Dropdown(choices=core.compare_adapters(), value=domain_adapter(core, dom) or rgt)

    domain.change(follow_domain, [domain, right], [right], api_visibility="private", queue=False)

    def compare(question: str, domain: str = "all", left: str = BASE_CHOICE, right: str = BASE_CHOICE) -> dict:
        """Both arms on identical passages; returns {question, passages, left, right}."""
        last: dict[str, Any] = {}
        try:
            for st in compare_stream(core, question, domain, left, right):
                last = st
        except LoragError as e:
            return {"error": message(e)}
        return _plain(last)

    def vote(comparison: dict, choice: str) -> dict:
        """Store a vote (left, right, tie, both_bad) on a comparison returned by /compare. Add "reference" to the
        comparison: the right answer in your words (a tie or both_bad is exported as a test case only with one)."""
        try:
            ref = comparison.get("reference") if isinstance(comparison, dict) else None
            return record_vote(core, comparison, choice, ref)
        except LoragError as e:
            return {"error": message(e)}

    def export_testset(domain: str) -> dict:
        """Export a domain's votes as a test set JSONL on the server; returns counts, where it was
        saved (relative to the data folder) and its rows."""
        try:
            info = export_votes(core, domain)
        except LoragError as e:
            return {"error": message(e)}
        path = Path(info.pop("path"))
        info["votes_file"] = Path(info["votes_file"]).relative_to(core.data_dir).as_posix()
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        return {**info, "saved_to": path.relative_to(core.data_dir).as_posix(), "rows": rows}

    gr.api(compare, api_name="compare", concurrency_limit=core.generation_slots, concurrency_id="generation")
    gr.api(vote, api_name="vote")
    gr.api(export_testset, api_name="export_votes")
