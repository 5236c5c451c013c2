"""The JSON body of the endpoints that read theirs by hand (the CLI's), and the domain field they require."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from assistant.errors import LoragError
from ui.api_request import invalid_json


async def json_object(request: Request, empty: dict[str, Any] | None = None) -> dict[str, Any] | JSONResponse:
    """The request's body as a JSON object, or the 400 the chat endpoint answers for a body that is none (code
    `invalid_json`). `empty`: what an empty body means, where one is allowed."""
    raw = await request.body()
    if not raw.strip() and empty is not None:
        return empty
    content_type = request.headers.get("content-type", "")
    try:
        body = json.loads(raw)
    except ValueError as e:  # not JSON, or not UTF-8
        return JSONResponse(invalid_json(getattr(e, "msg", None) or str(e), content_type), status_code=400)
    if not isinstance(body, dict):
        return JSONResponse(invalid_json(None, content_type), status_code=400)
    return body


def require_domain(value: Any, field: str, what: str) -> None:
    """A LoragError naming the API's field when no domain was sent (the web app's message names its own control)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise LoragError(f"{field} is required: {what} (e.g. 'contracts'; capitals are lowercased)")
    if not isinstance(value, str):
        raise LoragError(f"{field} must be a string: {what} (got {value!r})")
