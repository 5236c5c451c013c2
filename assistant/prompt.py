"""The one prompt format, used by `ask`, by synthetic training data and by evaluation.

Train on the exact format you serve: every caller goes through `build_messages`.
"""

from __future__ import annotations

from typing import Protocol, Sequence

NO_ANSWER = "The documents do not contain the answer."

SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages below. "
    "Give a short, direct answer and cite the passages you used with their numbers in brackets, like [1]. "
    f'If the passages do not contain the answer, reply exactly: "{NO_ANSWER}"'
)


class PassageLike(Protocol):
    n: int
    text: str

    @property
    def ref(self) -> str: ...


def format_passages(passages: Sequence[PassageLike]) -> str:
    return "\n\n".join(f"[{p.n}] ({p.ref})\n{p.text.strip()}" for p in passages)


def build_messages(
    question: str, passages: Sequence[PassageLike], history: Sequence[tuple[str, str]] = ()
) -> list[dict[str, str]]:
    """Chat messages: system rules, earlier turns (question, answer), then passages + the question."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for q, a in history:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append(
        {"role": "user", "content": f"Passages:\n{format_passages(passages)}\n\nQuestion: {question.strip()}"}
    )
    return messages
