"""What the metrics are: each one's name, kind (answer or retrieval), whether it needs a judge and what it measures;
the issues a row's metric can carry instead of a value (failed, error, n/a); and Scored, one row's scores and
issues."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# name -> (kind, needs judge, description)
METRICS: dict[str, tuple[str, bool, str]] = {
    "answer_f1": ("answer", False, "SQuAD token F1 of the answer against the reference answer"),
    "exact_match": ("answer", False, "SQuAD exact match (normalised) against the reference answer"),
    "rouge_l": ("answer", False, "Ragas RougeScore (ROUGE-L F-measure) against the reference answer"),
    "string_presence": ("answer", False, "Ragas StringPresence: the normalised reference appears in the answer"),
    "semantic_similarity": ("answer", False, "Ragas SemanticSimilarity with the local embedder (cosine)"),
    "right_source": (
        "answer",
        False,
        "the answer cites (with [n], else by overlap) a passage of a reference source (needs sources)",
    ),
    "abstained": (
        "answer",
        False,
        "the answer says the documents do not contain it while a reference source was retrieved (lower is better)",
    ),
    "unsupported": (
        "answer",
        False,
        "under half of the answer's content words are in the passages; abstentions excluded (lower is better)",
    ),
    "faithfulness": (
        "answer",
        True,
        "Ragas Faithfulness: share of the answer's claims supported by the passages (judge)",
    ),
    "answer_relevancy": (
        "answer",
        True,
        "Ragas AnswerRelevancy: questions the judge infers from the answer vs the question",
    ),
    "context_precision": ("retrieval", False, "Ragas NonLLMContextPrecisionWithReference (needs reference contexts)"),
    "context_recall": ("retrieval", False, "Ragas NonLLMContextRecall (needs reference contexts)"),
    "source_precision": ("retrieval", False, "Ragas IDBasedContextPrecision on source file names (needs sources)"),
    "source_recall": ("retrieval", False, "Ragas IDBasedContextRecall on source file names (needs sources)"),
    "llm_context_recall": (
        "retrieval",
        True,
        "Ragas ContextRecall: reference claims attributable to the passages (judge)",
    ),
}
GROUNDING = ("right_source", "abstained", "unsupported")
OFFLINE_NO_RAGAS = ("answer_f1", "exact_match", *GROUNDING)
LOWER_IS_BETTER = {"abstained", "unsupported"}

FAILED, ERROR, NA = "failed", "error", "n/a"


# -- rows and results --------------------------------------------------------------------------
@dataclass
class Scored:
    scores: dict[str, float | None] = field(default_factory=dict)  # None: no value (see issues)
    issues: dict[str, str] = field(default_factory=dict)  # metric -> "failed: ..." | "error: ..." | "n/a"

    def to_dict(self) -> dict[str, Any]:
        return {"scores": self.scores, "issues": self.issues}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Scored":
        return cls(dict(d.get("scores", {})), dict(d.get("issues", {})))

    @property
    def has_errors(self) -> bool:
        return any(v.startswith(ERROR) for v in self.issues.values())
