"""Shared fakes for tests/test_eval_*.py (no tests here): a generator that answers per adapter, a test set,
adapter cards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from tests.fakes import FakeGenerator

QA = [
    (
        "How many days of annual leave do full-time staff receive?",
        "Full-time staff receive 27 days of annual leave each year.",
        "leave.md",
    ),
    ("How much does a parking permit cost?", "Parking permits cost 12 euros per month.", "parking.txt"),
    ("Which class are trains booked in?", "Trains are booked in second class.", "travel.pdf"),
    ("When must lost badges be reported?", "Within 24 hours, to the front desk.", "security.html"),
    (
        "What is the monitor allowance for remote staff?",
        "Remote staff get a monitor allowance of 300 euros.",
        "remote.docx",
    ),
    ("What does error code E-42 mean?", "Door open during scan.", "codes.csv"),
    ("Who approves overtime?", "The team lead approves overtime.", "faq.json"),
    ("Where do visitors sign in?", "Visitors sign in at the lobby kiosk.", "security.html"),
    ("When is a doctor's note needed for sick leave?", "After 3 consecutive sick days.", "leave.md"),
    ("How much can hotels cost per night?", "Hotels up to 140 euros per night.", "travel.pdf"),
]
UNANSWERABLE = "zebra giraffe photosynthesis quasar?"
REFERENCE = {q: a for q, a, _ in QA}


def write_testset(path: Path, n: int | None = None, *, unanswerable: bool = True) -> Path:
    rows = [{"id": f"hr-{i + 1:03d}", "question": q, "answer": a, "sources": [s]} for i, (q, a, s) in enumerate(QA[:n])]
    if unanswerable:
        rows.append({"id": "hr-999", "question": UNANSWERABLE, "answer": "The documents do not contain the answer."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def question_of(messages: Sequence[dict[str, str]]) -> str:
    return messages[-1]["content"].rsplit("Question: ", 1)[-1]


class ArmGenerator(FakeGenerator):
    """Answers with `answer(question, adapter)`; records every batch as [(user message, adapter), ...]."""

    def __init__(self, answer: Callable[[str, str | None], str], name: str = "arm-fake"):
        super().__init__(name=name)
        self.answer = answer
        self.batches: list[list[tuple[str, str | None]]] = []

    def generate_batch(self, batch, *, adapters=None, max_new_tokens=None, on_done=None):  # noqa: ANN001
        names = list(adapters) if adapters is not None else [None] * len(batch)
        self.batches.append([(m[-1]["content"], a) for m, a in zip(batch, names)])
        return [self.answer(question_of(m), a) for m, a in zip(batch, names)]

    def stream(self, messages, *, adapter=None, max_new_tokens=None):  # noqa: ANN001
        yield self.answer(question_of(messages), adapter)

    @property
    def n_generated(self) -> int:
        return sum(len(b) for b in self.batches)


def adapter_knows(good: str = "hr-v1") -> Callable[[str, str | None], str]:
    """The adapter `good` answers with the reference; anything else answers vaguely."""

    def answer(question: str, adapter: str | None) -> str:
        if adapter == good:
            return REFERENCE.get(question, "The documents do not contain the answer.")
        return "I am not sure, please check the policy documents."

    return answer


def make_adapter(registry, tmp_path: Path, domain: str = "hr", version: int = 1, data_hash: str | None = None):  # noqa: ANN001, ANN201
    from assistant.registry import AdapterCard

    staged = tmp_path / f"staged-{domain}-{version}"
    staged.mkdir(parents=True)
    (staged / "adapter_config.json").write_text("{}")
    card = AdapterCard(
        name=f"{domain}-v{version}",
        domain=domain,
        version=version,
        base_model="fake",
        base_fingerprint="fp",
        data_hash=data_hash or f"data{version}",
        corpus_fingerprint="corpus",
    )
    return registry.register(staged, card)
