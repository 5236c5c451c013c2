"""What a writer offers: a question, its answer, the writer's name and the question's type."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass
class Candidate:
    question: str
    answer: str
    writer: str
    qtype: str


def qtype(question: str) -> str:
    """how | what | why | which | when | where | who | yes-no | other (the question's first word)."""
    first = question.split()[0].lower().strip("¿") if question.split() else ""
    if first in ("how", "what", "why", "which", "when", "where", "who"):
        return first
    if first in ("can", "is", "are", "does", "do", "should", "could", "will", "may", "must"):
        return (
            "yes-no"
            if first not in ("could", "can")
            or not re.match(r"^(can|could) you (explain|describe|show)", question, re.I)
            else "what"
        )
    return "other"
