"""The body of POST /v1/chat/completions as a pydantic model, and pydantic's errors as OpenAI's error object.

Strict types: `"stream": "yes"`, `"temperature": "hot"` or `"max_tokens": "10"` are refused with a 400 that
names the field (`param`) and the reason, as OpenAI does. Fields OpenAI clients send that lorag does not use
(`user`, `stream_options`, `seed`, ...) are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class ContentPart(BaseModel):
    """One part of a message's content list; only `text` parts are read."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: str
    text: Optional[str] = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal[ROLES]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's chat completion request; `domain` and `top_k` are lorag's. temperature, top_p and stop are
    checked but not used: the server's generation settings apply."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra={
            "examples": [{"model": "auto", "messages": [{"role": "user", "content": "How many days of annual leave?"}]}]
        },
    )
    model: Optional[str] = Field(
        None, description="auto (default), base, an adapter (GET /v1/models), or a domain: its promoted adapter"
    )
    messages: list[ChatMessage] = Field(min_length=1, description="the last one is the question, from the user")
    stream: Optional[bool] = Field(None, description="server-sent events in OpenAI's chunk format")
    max_tokens: Optional[int] = Field(None, ge=1, description="the answer's token limit")
    max_completion_tokens: Optional[int] = Field(None, ge=1, description="the answer's token limit (wins)")
    temperature: Optional[float] = Field(None, ge=0, le=2, allow_inf_nan=False)
    top_p: Optional[float] = Field(None, ge=0, le=1, allow_inf_nan=False)
    n: Optional[int] = Field(None, ge=1, le=1, description="one answer per request: only 1")
    stop: str | Annotated[list[str], Field(max_length=4)] | None = Field(
        None, description="one string of any length, or a list of at most 4"
    )
    domain: Optional[str] = Field(None, description="lorag: the domain to search (default: all)")
    top_k: Optional[int] = Field(None, ge=1, le=50, description="lorag: how many passages to retrieve")


def _fields(model: type[BaseModel], seen: set[str]) -> set[str]:
    for name, f in model.model_fields.items():
        seen.add(name)
        for arg in getattr(f.annotation, "__args__", ()) or ():
            for inner in (arg, *(getattr(arg, "__args__", ()) or ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner is not model:
                    _fields(inner, seen)
    return seen


_FIELD_NAMES = _fields(ChatRequest, set())


def _param(loc: tuple[Any, ...]) -> str:
    """('body', 'messages', 0, 'content', 'str') -> 'messages[0].content': list indexes in brackets, pydantic's
    union-member tags (a string that is no field name) left out."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _FIELD_NAMES:
            out += f".{part}" if out else str(part)
    return out


def _code(kind: str) -> str:
    if kind == "missing":
        return "missing_required_parameter"
    if kind.endswith(("_type", "_parsing")) or kind == "model_attributes_type":
        return "invalid_type"
    return "invalid_value"


def validation_error(errors: list[dict[str, Any]], content_type: str) -> dict[str, Any]:
    """OpenAI's error object for a request pydantic refused: the first field in error (the deepest place in it
    when several member types of a field failed), its reasons joined."""
    first = errors[0]
    if first["type"] == "json_invalid":
        return invalid_json((first.get("ctx") or {}).get("error", ""), content_type)
    params = [(_param(tuple(e["loc"])), e) for e in errors]
    if not params[0][0]:  # the body itself: not an object, or none
        return invalid_json(None, content_type)
    top = params[0][0].split(".")[0].split("[")[0]
    group = [(p, e) for p, e in params if p.split(".")[0].split("[")[0] == top]
    param = max(group, key=lambda pe: pe[0].count(".") + pe[0].count("["))[0]
    same = [e for p, e in group if p == param]
    # a union member whose type the value has, but not its limits, is the one meant: a list of 5 stop strings is
    # "at most 4 items", not "a valid string or ..."
    same = [e for e in same if _code(e["type"]) != "invalid_type"] or same
    reasons = list(dict.fromkeys(e["msg"] for e in same))
    reason = reasons[0] + "".join(f" or {r.removeprefix('Input should be ')}" for r in reasons[1:])
    e = same[0]
    if e["type"] == "missing":
        return error_object(f"'{param}' is required", param, _code("missing"))
    return error_object(
        f"invalid '{param}': {reason[:1].lower()}{reason[1:]} (got {e.get('input')!r})", param, _code(e["type"])
    )


def invalid_json(reason: str | None, content_type: str) -> dict[str, Any]:
    """OpenAI's error object (code `invalid_json`) for a body that is no JSON (`reason`: the parser's) or, with
    reason None, no JSON object; every /v1 endpoint that reads a JSON body answers it."""
    if reason is not None:
        return error_object(f"the body must be JSON: {reason}".rstrip(": "), None, "invalid_json")
    hint = "" if "json" in content_type else " (send it with Content-Type: application/json)"
    return error_object(f"the body must be a JSON object{hint}", None, "invalid_json")


def error_object(
    message: str, param: str | None, code: str, type_: str = "invalid_request_error", hint: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body: every error the API answers has this shape; a lorag error with a hint (what to do) has it
    as `hint` too (also at the end of the message, after " — ", for clients that show the message alone)."""
    error: dict[str, Any] = {"message": message, "type": type_, "param": param, "code": code}
    if hint:
        error["hint"] = hint
    return {"error": error}
