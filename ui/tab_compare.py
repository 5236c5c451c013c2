"""Compare tab: one question, two arms (base / adapters) on the identical retrieved passages, a vote.

The tab opens on base against an adapter (the domain's promoted one, else its newest), when there is one, worked
out again each time the page loads and the tab is shown (an adapter trained since the app started is offered and
picked), until the user picks an arm; the vote buttons open only once a comparison of two different arms is done.
While both sides name one model the Compare button is closed and the tab says why (a comparison of one model with
itself is refused anyway). With every domain searched ("all"), a comparison whose passages came from several
domains takes no vote: the tab says to pick the domain. The arms and the run are ui/compare_arms.py's; the votes
and their export ui/compare_votes.py's.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

from assistant.errors import LoragError
from assistant.names import ALL_DOMAINS
from assistant.routing import BASE_CHOICE
from ui.compare_arms import compare_stream, domain_adapter, opening_arms, same_arms_note
from ui.compare_votes import VOTES, comparison_domain, export_votes, no_vote_domain, read_votes, record_vote
from ui.tab_chat import (
    answer_body,
    citations_html,
    error_text,
    esc,
    message,
    new_key,
    on_shown,
    partial_answer,
    passage_block,
    route_line,
    warn,
)


def _votes(on: bool) -> list[Any]:
    """The vote buttons: open only on a finished comparison of two different arms."""
    import gradio as gr

    return [gr.Button(interactive=on) for _ in VOTES]


def _column(side: dict[str, Any]) -> str:
    final = side.get("final")
    if final is None:
        return partial_answer(side["answer"])
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


def _said(vote: str) -> str:
    return vote.replace("_", " ")


def vote_message(row: dict[str, Any], voted: int) -> str:
    """What the tab says of a vote stored (record_vote's row): recorded, or changed (one vote per comparison: a
    second click replaces it); `voted`: the comparisons voted on in its domain."""
    old, vote = row.get("replaced"), row["vote"]
    count = f"{voted} comparison(s) voted on in domain '{row['domain']}'"
    if old is None:
        text = f"Vote recorded: **{_said(vote)}** ({count})."
    elif old["vote"] != vote:
        text = f"Vote changed to **{_said(vote)}** (was {_said(old['vote'])}; one vote per comparison, {count})."
    else:
        edited = "reference answer saved; " if row.get("reference") != old.get("reference") else ""
        text = f"Vote unchanged: **{_said(vote)}** ({edited}one vote per comparison, {count})."
    if vote in ("tie", "both_bad") and not row.get("reference"):
        text += (
            " It is not exported as a test case without a reference answer: write one above and click "
            f"{'Tie' if vote == 'tie' else 'Both bad'} again (it replaces this vote)."
        )
    return text


def export_message(info: dict[str, Any]) -> str:
    """What the tab says of an export (export_votes' counts): the cases, and every vote left out, and why."""
    left_out = []
    skipped = info["both_bad_skipped"] + info["tie_skipped"]
    if skipped:
        left_out.append(f"{skipped} tie or both-bad vote(s) without a reference answer")
    if info.get("superseded"):
        left_out.append(
            f"{info['superseded']} older vote(s) on a question voted on again in a later comparison (the latest "
            "vote on a question is its case)"
        )
    msg = f"Exported {info['cases']} case(s) from {info['votes']} vote(s) to `{info['path']}`" + (
        f" (left out: {'; '.join(left_out)})." if left_out else "."
    )
    if info["unreadable_lines"]:
        lines = info["unreadable_lines"]
        msg += (
            f" ⚠ {len(lines)} line(s) of `{info['votes_file']}` hold no vote and were left out (line "
            + ", ".join(map(str, lines[:10]))
            + (", ..." if len(lines) > 10 else "")
            + "); the file is unchanged."
        )
    return msg


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
            return vote_message(row, len(read_votes(core, row["domain"])))

        return cast_vote

    for choice, b in buttons.items():
        b.click(make_vote(choice), [current, reference], [status], api_visibility="private")

    def do_export(dom: str) -> tuple[str, Any]:
        try:
            info = export_votes(core, dom)
        except LoragError as e:
            return warn(e), None
        return export_message(info), info["path"] if info["cases"] else None

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
        comparison: the right answer in your words (a tie or both_bad is exported as a test case only with one).
        One vote per comparison: voting again on it replaces its vote ("replaced" names the vote replaced)."""
        try:
            ref = comparison.get("reference") if isinstance(comparison, dict) else None
            return record_vote(core, comparison, choice, ref)
        except LoragError as e:
            return {"error": message(e)}

    def export_testset(domain: str) -> dict:
        """Export a domain's votes as a test set JSONL on the server; returns counts (votes = cases +
        both_bad_skipped + tie_skipped + superseded), where it was saved (relative to the data folder) and its rows."""
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
