"""The metric suite: scores answer and retrieval rows with the plain-Python metrics (eval.offline_metrics) and
Ragas metrics (imported lazily); the catalogue of metrics is eval.metric_catalog.

Answer metrics score one arm's answer to one question; retrieval metrics score the passages, which
every arm shares (so they describe the retriever, not the arms). Metrics that need no judge run
always and offline; the judge-based ones run when a judge (eval.judge.Judge) is given.

A judge output that fails to parse (or a metric that comes back NaN) is recorded as "failed" for
that row and metric; any other exception as "error". Both are counted in the report, never dropped
silently, and neither enters a mean.
"""

from __future__ import annotations

import asyncio
import math
import warnings
from typing import Any, Callable, Sequence

from eval.metric_catalog import ERROR, FAILED, GROUNDING, NA, OFFLINE_NO_RAGAS, Scored
from eval.offline_metrics import exact_match, grounding, normalize_answer, token_f1
from eval.ragas_compat import ragas_modules, ragas_version


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# -- Ragas, lazily -----------------------------------------------------------------------------
def ragas_embeddings(embedder: Any) -> Any:
    """The local dense embedder (assistant.embedding.DenseEmbedder) as a ragas embedding, memoised."""
    R = ragas_modules()

    class LocalEmbedding(R.BaseRagasEmbedding):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner
            self.memo: dict[str, list[float]] = {}

        def warm(self, texts: Sequence[str]) -> None:
            todo = list(dict.fromkeys(t for t in texts if t not in self.memo))
            if todo:
                for t, v in zip(todo, self.inner.embed_documents(todo)):
                    self.memo[t] = [float(x) for x in v]

        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            self.warm([text])
            return self.memo[text]

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return self.embed_text(text)

        def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            self.warm(texts)
            return [self.memo[t] for t in texts]

        async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return self.embed_texts(texts)

    return LocalEmbedding(embedder)


class MetricSuite:
    """Scores answers and retrievals. `embedder`: the local dense embedder (for semantic similarity
    and answer relevancy); `judge`: an eval.judge.Judge or None; `use_ragas=False` keeps only the
    plain-Python metrics (for quick tests)."""

    def __init__(
        self, embedder: Any = None, judge: Any = None, *, use_ragas: bool = True, concurrency: int | None = None
    ):
        self.embedder = embedder
        self.judge = judge
        self.use_ragas = use_ragas
        self.concurrency = concurrency or (judge.concurrency if judge is not None else 8)
        self._m: dict[str, Any] | None = None
        self._emb: Any = None

    # which metrics this suite computes
    @property
    def answer_metrics(self) -> list[str]:
        if not self.use_ragas:
            return list(OFFLINE_NO_RAGAS)
        out = ["answer_f1", "exact_match", *GROUNDING, "rouge_l", "string_presence"]
        if self.embedder is not None:
            out.append("semantic_similarity")
        if self.judge is not None:
            out.append("faithfulness")
            if self.embedder is not None:
                out.append("answer_relevancy")
        return out

    @property
    def retrieval_metrics(self) -> list[str]:
        if not self.use_ragas:
            return []
        out = ["context_precision", "context_recall", "source_precision", "source_recall"]
        if self.judge is not None:
            out.append("llm_context_recall")
        return out

    def identity(self) -> dict[str, Any]:
        """What a cached score depends on besides the inputs."""
        return {
            "answer": self.answer_metrics,
            "retrieval": self.retrieval_metrics,
            "embedder": getattr(self.embedder, "name", None) if self.embedder is not None else None,
            "judge": self.judge.identity() if self.judge is not None else None,
            "ragas": ragas_version() if self.use_ragas else None,
            # 2: grounding's inferred citations (question words, CJK pairs) changed right_source; 3: the fixed
            # "nothing relevant" reply counts as an abstention; 4: inferred citations compare words as lemmas and
            # leave out the answer's words that only frame it ("The document states ...", no passage holds them),
            # which changed right_source (3 was also written by the first lemma matching, that left them out always);
            # 5: a sentence goes on over a line break that ends no sentence (hard-wrapped text), which changed the
            # sentences an inferred citation's quote is looked for in
            "v": 5,
        }

    def _metrics(self) -> dict[str, Any]:
        if self._m is None:
            m: dict[str, Any] = {}
            if self.use_ragas:
                R = ragas_modules()
                C = R.C
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m["rouge_l"] = C.RougeScore(rouge_type="rougeL", mode="fmeasure")
                    m["string_presence"] = C.StringPresence()
                    m["context_precision"] = R.NonLLMContextPrecisionWithReference()
                    m["context_recall"] = R.NonLLMContextRecall()
                    m["source_precision"] = R.IDBasedContextPrecision()
                    m["source_recall"] = R.IDBasedContextRecall()
                    if self.embedder is not None:
                        self._emb = ragas_embeddings(self.embedder)
                        m["semantic_similarity"] = C.SemanticSimilarity(embeddings=self._emb)
                    if self.judge is not None:
                        llm = self.judge.ragas_llm()
                        m["faithfulness"] = C.Faithfulness(llm=llm)
                        m["llm_context_recall"] = C.ContextRecall(llm=llm)
                        if self._emb is not None:
                            m["answer_relevancy"] = C.AnswerRelevancy(
                                llm=llm, embeddings=self._emb, strictness=self.judge.strictness
                            )
            self._m = m
        return self._m

    # -- public ---------------------------------------------------------------------------------
    def score_answers(
        self, rows: Sequence[dict[str, Any]], progress: Callable[[int], None] | None = None
    ) -> list[Scored]:
        """rows: {question, answer, reference, contexts (the passages' texts)}."""
        if not rows:
            return []  # (nothing to score: do not import ragas)
        metrics = self._metrics()
        if self._emb is not None:
            self._emb.warm([r["reference"] for r in rows] + [r["answer"] for r in rows if r["answer"]])
        names = self.answer_metrics

        async def one(r: dict[str, Any]) -> Scored:
            s = Scored()
            s.scores["answer_f1"] = token_f1(r["answer"], r["reference"])
            s.scores["exact_match"] = exact_match(r["answer"], r["reference"])
            for name, value in grounding(r).items():
                if value is None:
                    self._na(s, name)
                else:
                    s.scores[name] = value
            for name in names[2 + len(GROUNDING) :]:
                await self._run(s, name, metrics[name], self._answer_kwargs(name, r))
            return s

        return self._gather([one(r) for r in rows], progress)

    def score_retrieval(
        self, rows: Sequence[dict[str, Any]], progress: Callable[[int], None] | None = None
    ) -> list[Scored]:
        """rows: {question, reference, contexts, ids (passage sources), reference_contexts, reference_ids}."""
        if not rows:
            return []
        metrics = self._metrics()
        names = self.retrieval_metrics
        R = ragas_modules() if names else None

        async def one(r: dict[str, Any]) -> Scored:
            s = Scored()
            for name in names:
                if name in ("context_precision", "context_recall"):
                    if not r.get("reference_contexts") or not r.get("contexts"):
                        self._na(s, name)
                        continue
                    sample = R.SingleTurnSample(
                        retrieved_contexts=r["contexts"], reference_contexts=r["reference_contexts"]
                    )
                    await self._run(s, name, metrics[name], sample)
                elif name in ("source_precision", "source_recall"):
                    if not r.get("reference_ids") or not r.get("ids"):
                        self._na(s, name)
                        continue
                    sample = R.SingleTurnSample(
                        retrieved_context_ids=r["ids"], reference_context_ids=r["reference_ids"]
                    )
                    await self._run(s, name, metrics[name], sample)
                elif name == "llm_context_recall":
                    if not r.get("contexts"):
                        self._na(s, name)
                        continue
                    kw = {"user_input": r["question"], "retrieved_contexts": r["contexts"], "reference": r["reference"]}
                    await self._run(s, name, metrics[name], kw)
            return s

        return self._gather([one(r) for r in rows], progress)

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _answer_kwargs(name: str, r: dict[str, Any]) -> dict[str, Any] | None:
        if name == "string_presence":
            return {"reference": normalize_answer(r["reference"]), "response": normalize_answer(r["answer"])}
        if name in ("rouge_l", "semantic_similarity"):
            return {"reference": r["reference"], "response": r["answer"]}
        if name == "faithfulness":
            if not r["answer"].strip() or not r.get("contexts"):
                return None
            return {"user_input": r["question"], "response": r["answer"], "retrieved_contexts": r["contexts"]}
        if name == "answer_relevancy":
            if not r["answer"].strip():
                return None
            return {"user_input": r["question"], "response": r["answer"]}
        raise KeyError(name)

    @staticmethod
    def _na(s: Scored, name: str) -> None:
        s.scores[name] = None
        s.issues[name] = NA

    async def _run(self, s: Scored, name: str, metric: Any, arg: Any) -> None:
        from eval.judge import JudgeParseError

        if arg is None:
            self._na(s, name)
            return
        try:
            if isinstance(arg, dict):
                res = await metric.ascore(**arg)
                value = getattr(res, "value", res)
            else:  # a legacy single-turn metric and its sample
                value = await metric.single_turn_ascore(arg)
        except JudgeParseError as e:
            s.scores[name] = None
            s.issues[name] = f"{FAILED}: {e}"
            return
        except Exception as e:  # noqa: BLE001 - counted and shown in the report, never dropped
            s.scores[name] = None
            s.issues[name] = f"{ERROR}: {type(e).__name__}: {e}"[:300]
            return
        v = _finite(value)
        if v is None:
            s.issues[name] = f"{FAILED}: the metric returned {value!r}"
        elif name in ("context_precision",):
            v = round(v, 6)  # ragas adds 1e-10 to the denominator
        s.scores[name] = v

    def _gather(self, coros: list[Any], progress: Callable[[int], None] | None) -> list[Scored]:
        if not coros:
            return []

        async def main() -> list[Scored]:
            sem = asyncio.Semaphore(max(1, self.concurrency))

            async def guarded(c: Any) -> Scored:
                async with sem:
                    out = await c
                if progress:
                    progress(1)
                return out

            return list(await asyncio.gather(*(guarded(c) for c in coros)))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return asyncio.run(main())
