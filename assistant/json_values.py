"""JSON values inside a model's reply: the whole reply, fenced ```json blocks, then every object or
list that starts somewhere in the text (models wrap JSON in prose and code fences)."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def json_values(text: str, limit: int = 20) -> list[Any]:
    out: list[Any] = []
    for chunk in [text.strip(), *_FENCE.findall(text)]:
        try:
            out.append(json.loads(chunk))
        except (json.JSONDecodeError, ValueError):
            pass
    dec = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", text):
        try:
            obj, _ = dec.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        out.append(obj)
        if len(out) > limit:
            break
    return out
