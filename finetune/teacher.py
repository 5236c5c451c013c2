"""The teacher: a model that writes synthetic questions and answers, independent of the served one.

`synth.teacher` names it: a built-in name, a Hugging Face id or a local folder (loaded here, on the
GPU when there is one, bf16, batched generation), or, with `synth.teacher_url`, the model an
OpenAI-compatible endpoint serves (vLLM, llama.cpp server, Ollama, any hosted API; bounded
concurrency and retries). Unset: the served generator.

Two uses: `teacher` writes several question/answer pairs for a chunk (JSON first, tolerant
fallback); `answer_first` asks for the question that a given passage sentence answers. Every reply
that gives nothing is counted with its reason by the caller.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from assistant.errors import LoragError
from assistant.json_values import json_values

TEACHER_SYSTEM = (
    "You write training questions for a documentation assistant. Given one passage of the documentation, write up to "
    "{n} different questions that a reader of these documents would really ask and that the passage answers: how to "
    "do something, what something is, why something happens, which option or setting to use, how to fix a problem. "
    "Each answer must come from the passage: one or two complete sentences in the passage's own words. Never ask "
    "about 'the passage' or 'the text' itself. Reply with JSON only, in this form:\n"
    '{{"pairs": [{{"question": "...?", "answer": "...", "type": "how-to"}}]}}'
)
ANSWER_FIRST_SYSTEM = (
    "A sentence from a documentation page follows. Write the one question that a reader of this documentation would "
    "ask and that this sentence answers. Reply with the question only, on one line, ending with '?'."
)


def teacher_messages(text: str, source: str, section: str, n: int) -> list[dict[str, str]]:
    where = f"Document: {source}" + (f" — section: {section}" if section else "")
    return [
        {"role": "system", "content": TEACHER_SYSTEM.format(n=n)},
        {"role": "user", "content": f"{where}\nPassage:\n{text.strip()}"},
    ]


def answer_first_messages(sentence: str, section: str) -> list[dict[str, str]]:
    where = f"Section: {section}\n" if section else ""
    return [
        {"role": "system", "content": ANSWER_FIRST_SYSTEM},
        {"role": "user", "content": f"{where}Sentence: {sentence}"},
    ]


_QA_LINES = re.compile(
    r"(?:^|\n)\s*(?:\d+[.)]\s*)?(?:Q(?:uestion)?\s*\d*\s*[:.)-])\s*(?P<q>.+?)\s*\n+\s*"
    r"(?:A(?:nswer)?\s*\d*\s*[:.)-])\s*(?P<a>.+?)(?=\n\s*(?:\d+[.)]\s*)?Q(?:uestion)?\s*\d*\s*[:.)-]|\Z)",
    re.I | re.S,
)


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs from a teacher reply: a JSON object with "pairs", a JSON list of
    objects, one object, or else "Question:/Answer:" (Q:/A:) lines. Empty when nothing parses."""
    for value in json_values(text or ""):
        items = value.get("pairs", value.get("questions", [value])) if isinstance(value, dict) else value
        if not isinstance(items, list):
            continue
        pairs = [
            (str(i.get("question", "")).strip(), str(i.get("answer", "")).strip()) for i in items if isinstance(i, dict)
        ]
        pairs = [(q, a) for q, a in pairs if q and a]
        if pairs:
            return pairs
    return [(m.group("q").strip(), " ".join(m.group("a").split())) for m in _QA_LINES.finditer(text or "")]


def parse_question(text: str) -> str | None:
    """The first line of a reply that reads as a question."""
    for line in (text or "").splitlines():
        line = re.sub(r"^\s*(?:Q(?:uestion)?\s*[:.-]\s*|[-*\d.)\s]+)", "", line).strip().strip('"“”')
        if line.endswith("?") and len(line.split()) >= 3:
            return line
    return None


class TeacherFailed(LoragError):
    """The teacher could not answer at all (endpoint down, model failed to load)."""


def generate_rows(teacher: Any, prompts: Sequence[list[dict[str, str]]], max_new_tokens: int) -> list[str | Exception]:
    """Replies for a batch; when the batch fails, each prompt is tried alone, and a prompt that still
    fails gives its exception (counted by the caller) instead of stopping the run."""
    try:
        return list(teacher.generate_batch(list(prompts), max_new_tokens=max_new_tokens))
    except Exception:  # noqa: BLE001 - retried row by row below, each failure kept
        out: list[str | Exception] = []
        for p in prompts:
            try:
                out.append(teacher.generate_batch([p], max_new_tokens=max_new_tokens)[0])
            except Exception as e:  # noqa: BLE001
                out.append(e)
        return out


def load_teacher(
    spec: str | None,
    url: str | None,
    *,
    api_key: str | None,
    concurrency: int,
    model_cache: Any,
    model_settings: Any,
    served: Any,
) -> Any:
    """The teacher generator: `served` (no spec, no url), a local model, or an endpoint."""
    if url:
        if not spec:
            raise LoragError(
                "synth.teacher_url is set but synth.teacher (the served model's name) is not",
                hint="set synth.teacher to the model name the endpoint serves (GET /v1/models lists it)",
            )
        from assistant.engines.client import EngineClient
        from assistant.engines.openai_generator import OpenAIGenerator

        endpoint = model_settings.endpoint.model_copy(
            update={
                "base_url": url,
                "model": spec,
                "max_concurrency": concurrency,
                **({"api_key": api_key} if api_key else {}),
            }
        )
        client = EngineClient.from_settings(
            endpoint,
            label="teacher",
            setting="synth",
            fields={
                "base_url": "synth.teacher_url",
                "api_key": "synth.teacher_api_key",
                "max_concurrency": "synth.teacher_concurrency",
            },
        )
        return OpenAIGenerator(model_settings.model_copy(update={"endpoint": endpoint}), client=client)
    if not spec:
        return served
    from assistant.generation import HFGenerator
    from assistant.models.loading import load_causal_lm

    try:
        model, tok = load_causal_lm(spec, model_cache, device=model_settings.device, dtype=model_settings.dtype)
    except LoragError as e:
        raise TeacherFailed(f"the teacher model '{spec}' could not be loaded: {e.args[0]}", hint=e.hint) from e
    return HFGenerator(model, tok, model_settings, name=spec)
