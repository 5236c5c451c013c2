"""The A/B run: retrieve once per question, give every arm the identical passages, score, keep it all.

Everything is handed in (retriever, a generator per arm, metric suite, cache): the runner builds no
clients and loads no models itself, so tests drive it with fakes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from assistant.abstention import no_context_message
from assistant.prompt import build_messages
from assistant.retrieval import Passage
from eval.arms import Arm
from eval.cache import EvalCache, key
from eval.metric_catalog import Scored
from eval.metrics import MetricSuite
from eval.testset import TestItem

Progress = Callable[[str, int, int], None]  # (stage, done, total)
# run_ab's phases, in order: retrieve, generate (the answers), score (the answers, then the retrieval); each one's
# last count is done == total, reported before the next phase begins


@dataclass
class QuestionRun:
    item: TestItem
    passages: list[Passage]
    relevant: bool
    domains: list[str]
    messages: list[dict[str, str]]
    answers: dict[str, str] = field(default_factory=dict)
    source: dict[str, str] = field(
        default_factory=dict
    )  # label -> "generated" | "cache" | "fixed" (no relevant passage)
    answer_scores: dict[str, Scored] = field(default_factory=dict)
    retrieval_scores: Scored = field(default_factory=Scored)


@dataclass
class RunResult:
    domain: str
    arms: list[Arm]
    top_k: int
    questions: list[QuestionRun]
    answer_metrics: list[str]
    retrieval_metrics: list[str]
    generation: dict[str, Any]
    suite: dict[str, Any]
    counts: dict[str, int]
    timings_s: dict[str, float]


@dataclass
class Job:
    messages: list[dict[str, str]]
    arm: Arm


def gen_identity(arm: Arm, generation: dict[str, Any]) -> dict[str, Any]:
    return {"arm": arm.identity, "generation": generation}


def generate_all(
    jobs: Sequence[Job],
    generator_for: Callable[[Arm], Any],
    cache: EvalCache,
    generation: dict[str, Any],
    *,
    batch_size: int = 8,
    progress: Progress | None = None,
    stage: str = "generate",
) -> tuple[list[str], list[str], dict[str, float]]:
    """Answers for every job, from the cache or generated in mixed-adapter batches (one generator
    at a time; consecutive jobs of one question stay in one batch). Returns (answers, sources, stats).
    `progress(stage, done, total)` counts the answers: each as it is finished, where the generator says when
    (generate_batch's on_done), else a batch's when it returns."""
    answers: list[str | None] = [None] * len(jobs)
    sources = ["cache"] * len(jobs)
    keys = [key("answer", j.messages, gen_identity(j.arm, generation)) for j in jobs]
    todo: dict[int, list[int]] = {}  # id(generator) -> job indexes
    gens: dict[int, Any] = {}
    first: dict[str, int] = {}  # identical jobs in one run are generated once
    dupes: list[tuple[int, int]] = []
    for i, (j, k) in enumerate(zip(jobs, keys)):
        if k in first:
            dupes.append((i, first[k]))
            continue
        first[k] = i
        hit = cache.get(k)
        if hit is not None:
            answers[i] = hit["answer"]
            continue
        g = generator_for(j.arm)
        gens[id(g)] = g
        todo.setdefault(id(g), []).append(i)
    total = sum(len(v) for v in todo.values())
    done = 0
    stats = {"generate_s": 0.0, "new_tokens": 0.0}
    if progress:
        progress(stage, 0, total)
    for gid, idx in todo.items():
        g = gens[gid]
        n_arms = len({jobs[i].arm.label for i in idx}) or 1
        size = max(n_arms, (max(batch_size, 1) // n_arms) * n_arms)
        for start in range(0, len(idx), size):
            chunk = idx[start : start + size]
            ended: set[int] = set()

            def one_done(row: int, before: int = done, ended: set[int] = ended, rows: int = len(chunk)) -> None:
                """An answer of the batch is finished: the count moves on at once, not when the batch ends."""
                if 0 <= row < rows and row not in ended:
                    ended.add(row)
                    progress(stage, before + len(ended), total)  # type: ignore[misc]

            t0 = time.perf_counter()
            outs = g.generate_batch(
                [jobs[i].messages for i in chunk],
                adapters=[jobs[i].arm.adapter for i in chunk],
                on_done=one_done if progress else None,  # the generator checks rows' ends only when asked
            )
            stats["generate_s"] += time.perf_counter() - t0
            stats["new_tokens"] += float(getattr(getattr(g, "last_stats", None), "new_tokens", 0) or 0)
            for i, text in zip(chunk, outs):
                answers[i] = text.strip()
                sources[i] = "generated"
                cache.put(keys[i], {"answer": answers[i], "arm": jobs[i].arm.label})
            done += len(chunk)
            if progress and len(ended) < len(chunk):  # a generator that does not say when each row ends
                progress(stage, done, total)
    for i, j in dupes:
        answers[i], sources[i] = answers[j], "cache" if sources[j] == "cache" else "duplicate"
    return [a or "" for a in answers], sources, stats


SCORERS = {"answer-scores": "score_answers", "retrieval-scores": "score_retrieval"}  # cache kind: MetricSuite's method


def scores_cached(
    kind: str,
    rows: Sequence[dict[str, Any]],
    suite: MetricSuite,
    cache: EvalCache,
    progress: Progress | None = None,
    stage: str = "score",
    *,
    start: int = 0,
    total: int | None = None,
) -> list[Scored]:
    """The rows' scores of one kind ("answer-scores": the answers'; "retrieval-scores": the questions' retrieval),
    from the cache or scored now. `progress(stage, start + done, total)` (total: the rows, unless the phase counts
    more, as run_ab's counts the questions' retrieval scores after the answers)."""
    score = getattr(suite, SCORERS[kind])
    ident = suite.identity()
    keys = [key(kind, r, ident) for r in rows]
    out: list[Scored | None] = [None] * len(rows)
    miss = []
    for i, k in enumerate(keys):
        hit = cache.get(k)
        if hit is not None:
            out[i] = Scored.from_dict(hit)
        else:
            miss.append(i)
    of = len(rows) if total is None else total
    done = [start + len(rows) - len(miss)]
    if progress and (start == 0 or done[0] > start):  # the phase's first count; a later part's when it moves it
        progress(stage, done[0], of)

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress(stage, done[0], of)

    for i, s in zip(miss, score([rows[i] for i in miss], tick)):
        out[i] = s
        if not s.has_errors:  # an error (e.g. the endpoint was down) is retried next run; a parse failure is kept
            cache.put(keys[i], s.to_dict())
    return [s or Scored() for s in out]


def retrieve_all(retriever: Any, questions: list[str], domain: str, top_k: int) -> list[Any]:
    """One retrieval per question (questions embedded in one batch when the retriever can)."""
    many = getattr(retriever, "retrieve_many", None)
    if many is not None:
        return list(many(questions, domain, top_k=top_k))
    return [retriever.retrieve(q, domain, top_k=top_k) for q in questions]


def stable_passages(passages: Sequence[Passage]) -> list[Passage]:
    """Break score ties by chunk id (the store returns equal RRF scores in any order), renumbered 1..k,
    so the same question gets the same prompt on every run and the cache can hit."""
    import dataclasses

    ordered = sorted(passages, key=lambda p: (-round(p.score, 9), p.chunk_id))
    return [dataclasses.replace(p, n=i + 1) for i, p in enumerate(ordered)]


def answer_row(item: TestItem, answer: str, passages: Sequence[Passage]) -> dict[str, Any]:
    return {
        "question": item.question,
        "answer": answer,
        "reference": item.answer,
        "contexts": [p.text for p in passages],
        "passages": [{"n": p.n, "source": p.source, "text": p.text} for p in passages],
        "reference_ids": list(item.sources),
    }


def run_ab(
    items: Sequence[TestItem],
    arms: Sequence[Arm],
    *,
    retriever: Any,
    domain: str,
    generator_for: Callable[[Arm], Any],
    suite: MetricSuite,
    cache: EvalCache,
    top_k: int,
    generation: dict[str, Any],
    batch_size: int = 8,
    progress: Progress | None = None,
) -> RunResult:
    t0 = time.perf_counter()
    questions: list[QuestionRun] = []
    if progress:
        progress("retrieve", 0, len(items))
    for n, (item, r) in enumerate(zip(items, retrieve_all(retriever, [i.question for i in items], domain, top_k)), 1):
        passages = stable_passages(r.passages)
        questions.append(
            QuestionRun(item, passages, bool(r.relevant), list(r.domains), build_messages(item.question, passages))
        )
        if progress:
            progress("retrieve", n, len(items))
    t1 = time.perf_counter()

    # Arms answer from the same messages; a question without a relevant passage gets the fixed
    # serving reply (as `lorag ask` would), identical for every arm.
    jobs: list[Job] = []
    where: list[tuple[int, str]] = []
    for qi, q in enumerate(questions):
        for arm in arms:
            if q.relevant:
                jobs.append(Job(q.messages, arm))
                where.append((qi, arm.label))
            else:
                q.answers[arm.label] = no_context_message(q.domains)
                q.source[arm.label] = "fixed"
    answers, sources, gstats = generate_all(
        jobs, generator_for, cache, generation, batch_size=batch_size, progress=progress
    )
    for (qi, label), text, src in zip(where, answers, sources):
        questions[qi].answers[label] = text
        questions[qi].source[label] = src
    t2 = time.perf_counter()

    rows, spots = [], []
    for qi, q in enumerate(questions):
        for arm in arms:
            rows.append(answer_row(q.item, q.answers[arm.label], q.passages))
            spots.append((qi, arm.label))
    rrows = [
        {
            "question": q.item.question,
            "reference": q.item.answer,
            "contexts": [p.text for p in q.passages],
            "ids": [p.source for p in q.passages],
            "reference_contexts": q.item.contexts,
            "reference_ids": q.item.sources,
        }
        for q in questions
    ]
    # one scoring phase: the answers, then the questions' retrieval (its count goes on from the answers')
    scoring = len(rows) + len(rrows)
    for (qi, label), s in zip(spots, scores_cached("answer-scores", rows, suite, cache, progress, total=scoring)):
        questions[qi].answer_scores[label] = s
    for q, s in zip(
        questions, scores_cached("retrieval-scores", rrows, suite, cache, progress, start=len(rows), total=scoring)
    ):
        q.retrieval_scores = s
    t3 = time.perf_counter()
    counts = {
        "questions": len(questions),
        "generated": sum(1 for q in questions for v in q.source.values() if v == "generated"),
        "cached": sum(1 for q in questions for v in q.source.values() if v == "cache"),
        "fixed": sum(1 for q in questions for v in q.source.values() if v == "fixed"),
        "not_relevant": sum(1 for q in questions if not q.relevant),
    }
    return RunResult(
        domain=domain,
        arms=list(arms),
        top_k=top_k,
        questions=questions,
        answer_metrics=suite.answer_metrics,
        retrieval_metrics=suite.retrieval_metrics,
        generation=generation,
        suite=suite.identity(),
        counts=counts,
        timings_s={
            "retrieve": t1 - t0,
            "generate": t2 - t1,
            "score": t3 - t2,
            "total": t3 - t0,
            "new_tokens": gstats["new_tokens"],
            "generate_model_s": gstats["generate_s"],
        },
    )
