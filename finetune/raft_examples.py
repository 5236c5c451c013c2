"""One RAFT training row in the serving format, and the held-out split of synthetic pairs: a store hit as a
prompt passage, the prompt/completion row (oracle among distractors, or without it) trimmed to a token budget, and the
whole documents held out."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import Counter
from typing import Any, Callable, Sequence

from assistant.prompt import NO_ANSWER, build_messages
from assistant.retrieval import Passage
from assistant.store import Hit
from finetune.synth import SynthPair

TokenCounter = Callable[[list[dict[str, str]]], int]  # chat messages (prompt + completion) -> tokens
MIN_DISTRACTOR_WORDS = 8


def as_passage(hit: Hit, domain: str) -> Passage:
    p = hit.payload
    return Passage(
        0,
        p.get("text", ""),
        p.get("display", ""),
        p.get("section") or "",
        p.get("page"),
        0.0,
        domain,
        p.get("doc_id", ""),
        hit.id,
    )


def has_body(text: str) -> bool:
    """A heading-only chunk (a title, a lone table row) teaches nothing as a distractor."""
    return len(text.split()) >= MIN_DISTRACTOR_WORDS


def make_example(
    question: str,
    answer: str,
    oracle: Passage | None,
    negatives: Sequence[Passage],
    *,
    k: int,
    include_oracle: bool,
    rng: random.Random,
    count_tokens: TokenCounter | None = None,
    max_tokens: int = 0,
) -> dict[str, Any] | None:
    """One prompt/completion row in the exact serving format. With a token counter, distractors are
    dropped (longest first) until the row fits max_tokens; None when even the fewest passages do not."""
    has_oracle = include_oracle and oracle is not None
    if has_oracle:
        ctx = [oracle] + [n for n in negatives if n.chunk_id != oracle.chunk_id][: k - 1]
    else:
        ctx = [n for n in negatives if oracle is None or n.doc_id != oracle.doc_id][:k]
    rng.shuffle(ctx)
    trimmed = 0
    while True:
        numbered = [dataclasses.replace(p, n=i + 1) for i, p in enumerate(ctx)]
        if has_oracle:
            n = next(p.n for p in numbered if p.chunk_id == oracle.chunk_id)
            target = f"{answer.rstrip()} [{n}]"
        else:
            target = NO_ANSWER
        messages = build_messages(question, numbered)
        completion = [{"role": "assistant", "content": target}]
        if count_tokens is None or count_tokens(messages + completion) <= max_tokens:
            break
        others = [p for p in ctx if not (has_oracle and p.chunk_id == oracle.chunk_id)]
        if len(ctx) <= 1 or not others:
            return None
        ctx.remove(max(others, key=lambda p: len(p.text)))
        trimmed += 1
    return {
        "question": question,
        "answer": answer,
        "target": target,
        "oracle_in_context": has_oracle,
        "distractors_trimmed": trimmed,
        "prompt": messages,
        "completion": completion,
    }


def heldout_documents(pairs: Sequence[SynthPair], fraction: float, cap: int) -> set[str]:
    """Whole documents whose pairs make the held-out split: a stable choice (by the document's name)
    of about `fraction` of the pairs, at most `cap`, never every document."""
    by_doc = Counter(p.source for p in pairs)
    if len(by_doc) < 2:
        return set()
    order = sorted(by_doc, key=lambda d: hashlib.sha256(f"lorag-heldout-v1|{d}".encode()).hexdigest())
    target = min(cap, max(1, round(fraction * len(pairs))))
    held: set[str] = set()
    n = 0
    for d in order:
        if n >= target or len(held) == len(by_doc) - 1:
            break
        if n + by_doc[d] > cap and held:
            continue
        held.add(d)
        n += by_doc[d]
    return held
