"""The two arms of a comparison: the pair the Compare tab opens on, why one model twice is refused, and the run
that streams both arms on one retrieval."""

from __future__ import annotations

from typing import Any, Iterator

from assistant.answer import Answer
from assistant.errors import EMPTY_QUESTION, LoragError
from assistant.routing import BASE_CHOICE
from ui.compare_votes import new_comparison_id


def compare_stream(core: Any, question: str, domain: str | None, left: str, right: str) -> Iterator[dict[str, Any]]:
    """Retrieve once; stream both arms on that retrieval. Yields the comparison as it grows; its "id" is the one
    its vote keeps (one vote per comparison)."""
    question = (question or "").strip()
    if not question:
        raise LoragError(EMPTY_QUESTION)
    if left == right:
        raise LoragError(
            f"both sides are {left}: comparing an arm with itself tells nothing",
            hint="pick two different arms, e.g. base and an adapter",
        )
    r = core.comps.retriever.retrieve(question, core.domain_arg(domain))
    state: dict[str, Any] = {
        "id": new_comparison_id(),
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
