"""The `synth:` section of a training recipe: how `lorag synth` writes, filters and splits the Q&A it trains on."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from .recipe_rules import Positive, RecipeSection, between, combination_problem, rule

SYNTH_WRITERS = (
    "auto",
    "section",
    "sentence",
    "teacher",
    "answer_first",
    "cloze",
    "model",
    "heading",
)  # the writers finetune.synth implements


def _writers_ok(v: str) -> bool:
    names = [w.strip() for w in str(v).split("+")]
    return (
        bool(names)
        and all(w in SYNTH_WRITERS for w in names)
        and len(set(names)) == len(names)
        and not ("auto" in names and len(names) > 1)
    )


class SynthConfig(RecipeSection):
    _prefix: ClassVar[str] = "synth."

    max_chunks: Positive = Field(
        1000, description="Chunks of the domain to write synthetic questions for (sampled with the seed)."
    )
    writer: Annotated[
        str,
        rule(
            _writers_ok, "auto, or section, sentence, teacher, answer_first, cloze joined by '+' in order of preference"
        ),
    ] = Field(
        "auto",
        description="Writers joined with '+' in order of preference: 'section' (questions from section titles "
        "and definition-list terms, answered by their opening prose), 'sentence' (definition and procedure "
        "sentences), 'teacher' (a teacher model writes several pairs per chunk; alias 'model'), "
        "'answer_first' (a model writes the question a passage sentence answers), 'cloze' (a blanked fact). "
        "'auto': teacher+section+sentence when synth.teacher or synth.teacher_url is set, else section+sentence.",
    )
    pairs_per_chunk: Positive = Field(
        2, description="Pairs kept per chunk at most (the teacher is asked for this many)."
    )
    teacher: str | None = Field(
        None,
        description="Model that writes the teacher's and answer_first's questions: a built-in name, HF id or "
        "local folder (loaded here: the GPU when there is one), or with teacher_url the name the "
        "endpoint serves. Unset: the served generator.",
    )
    teacher_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint of the teacher, e.g. http://localhost:8000/v1 (vLLM, "
        "llama.cpp server, Ollama, a hosted API).",
    )
    teacher_api_key: str | None = Field(None, description="Bearer token for teacher_url (default: $OPENAI_API_KEY).")
    teacher_concurrency: Positive = Field(4, description="Requests to teacher_url at once.")
    p_oracle: Annotated[float, between(0, 1)] = Field(
        1.0,
        description="RAFT P: share of examples whose context contains the oracle passage (among distractors); "
        "the others teach the reply that the documents do not contain the answer. 1.0 by default: on the benchmark "
        "corpora a lower share made adapters abstain where the base model answered (benchmarks/RESULTS.md); the "
        "assistant's relevance check already refuses questions with no relevant passage.",
    )
    distractors: Annotated[int, rule(lambda v: v >= 0, "a whole number >= 0")] = Field(
        3, description="Retriever hard negatives shown with (or instead of) the oracle."
    )
    max_new_tokens: Annotated[int, rule(lambda v: v >= 8, "a whole number >= 8")] = Field(
        512, description="Token budget of one teacher reply."
    )
    batch_size: Positive = Field(
        8, description="Chunks per writing batch (one batched generation for the model writers)."
    )
    model_probe: Annotated[int, rule(lambda v: v >= 0, "a whole number >= 0")] = Field(
        16,
        description="The model writers stop once they have written for this many chunks without one pair kept "
        "(a model too small to follow the format); the other writers do the rest. 0: never stops.",
    )
    min_answer_support: Annotated[float, between(0, 1, lo_open=True)] = Field(
        0.7, description="Share of the answer's content words that must appear in the oracle."
    )
    min_answer_words: Positive = Field(
        6, description="Shortest answer kept, in words (a bare span teaches bare answers)."
    )
    max_answer_words: Positive = Field(80, description="Longest answer kept, in words.")
    round_trip: bool = Field(
        True,
        description="Keep a question only if retrieving it over the domain ranks its chunk in the top-k "
        "(retrieval.top_k) and its best passage reaches retrieval.min_relevance (else the assistant replies "
        "'nothing relevant'): questions a user could ask and the assistant would answer.",
    )
    heldout_max: Annotated[int, rule(lambda v: v >= 0, "a whole number >= 0")] = Field(
        200,
        description="With no curated Q&A: synthetic pairs held out (whole documents, half of heldout_fraction of "
        "them) as the held-out split, at most this many.",
    )
    general_data: str | None = Field(
        None,
        description="JSONL of general instruction data mixed in against forgetting (rows of "
        "messages, prompt/completion, instruction/output or question/answer).",
    )
    general_share: Annotated[float, between(0, 1, hi_open=True)] = Field(
        0.0, description="Share of training rows taken from general_data (0: none)."
    )
    curriculum: bool = Field(
        False,
        description="Order training rows easy first (short answers, oracle ranked high) instead of "
        "shuffling; padded batches (batching auto trains padded).",
    )
    seed: int = Field(0, description="Sampling seed for chunks, oracle dropping and distractor order.")
    exclude_sources: list[Annotated[str, rule(lambda v: bool(v.strip()), "a non-empty glob pattern")]] = Field(
        default_factory=list,
        description="Glob patterns of document paths (as `lorag docs list` shows them, e.g. "
        "'faq/*') kept out of the training data entirely: never an oracle, never a distractor. Keeps an evaluation's "
        "documents unseen.",
    )

    @model_validator(mode="after")
    def _together(self) -> "SynthConfig":
        if self.min_answer_words > self.max_answer_words:
            raise combination_problem(
                f"min_answer_words / max_answer_words: 1 <= min <= max (got {self.min_answer_words}, "
                f"{self.max_answer_words})"
            )
        if self.general_share > 0 and not self.general_data:
            raise combination_problem("general_share: set synth.general_data (a JSONL file) to mix general data in")
        return self
