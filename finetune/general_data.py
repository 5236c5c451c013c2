"""General instruction data mixed into a domain's training set against forgetting (`synth.general_data`,
`synth.general_share`): a JSONL file whose rows are chat `messages`, `prompt`/`completion`,
`instruction`(+`input`)/`output` (Alpaca), or `question`/`answer`. Bad rows are reported with
their line numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.qa import read_jsonl


def _text(v: Any) -> str | None:
    return v.strip() if isinstance(v, str) and v.strip() else None


def to_row(obj: Any) -> dict[str, Any] | None:
    """One prompt/completion row (the trainer's format) from any of the accepted shapes, or None."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("messages"), list):
        msgs = [
            m
            for m in obj["messages"]
            if isinstance(m, dict) and _text(m.get("content")) and m.get("role") in ("system", "user", "assistant")
        ]
        if len(msgs) >= 2 and msgs[-1]["role"] == "assistant" and any(m["role"] == "user" for m in msgs):
            prompt = [{"role": m["role"], "content": m["content"]} for m in msgs[:-1]]
            return _row(prompt, msgs[-1]["content"])
        return None
    if isinstance(obj.get("prompt"), list) and isinstance(obj.get("completion"), list) and obj["completion"]:
        return _row(obj["prompt"], str(obj["completion"][-1].get("content", "")))
    for q_key, a_key in (("instruction", "output"), ("question", "answer"), ("prompt", "completion")):
        q, a = _text(obj.get(q_key)), _text(obj.get(a_key))
        if q and a:
            extra = _text(obj.get("input"))
            return _row([{"role": "user", "content": f"{q}\n\n{extra}" if extra else q}], a)
    return None


def _row(prompt: list[dict[str, str]], answer: str) -> dict[str, Any] | None:
    if not answer.strip():
        return None
    question = next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")
    return {
        "question": question,
        "answer": answer.strip(),
        "target": answer.strip(),
        "oracle_in_context": False,
        "distractors_trimmed": 0,
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": answer.strip()}],
    }


def load_general_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise LoragError(f"{path}: synth.general_data not found")
    rows, bad = [], []
    for n, obj in read_jsonl(path):
        row = None if isinstance(obj, json.JSONDecodeError) else to_row(obj)
        if row is None:
            bad.append(n)
        else:
            rows.append(row)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise LoragError(
            f"{path}: {len(bad)} row(s) are not instruction data (line {shown})",
            hint="each row: messages, prompt/completion, instruction/output or question/answer",
        )
    if not rows:
        raise LoragError(f"{path}: no rows")
    return rows
