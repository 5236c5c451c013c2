"""The API's errors as OpenAI error responses: a request's fault is a 400 (`invalid_request_error`), an engine's
failure a 502/504 (`server_error`)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from assistant.errors import EngineError, LoragError, UnknownDomainError
from ui.api_request import error_object


class APIError(Exception):
    def __init__(
        self, status: int, message: str, code: str, type_: str = "invalid_request_error", param: str | None = None
    ):
        self.status, self.message, self.code, self.type, self.param = status, message, code, type_, param


def error_response(
    status: int,
    message: str,
    code: str,
    type_: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
    param: str | None = None,
    hint: str | None = None,
) -> JSONResponse:
    return JSONResponse(error_object(message, param, code, type_, hint), status_code=status, headers=headers)


def lorag_message(e: LoragError) -> str:
    """The message of an error object: a lorag error's message and its hint (after " — "), for clients that show the
    message alone; the hint also comes on its own as the object's `hint` (the `lorag` CLI prints it as without
    the app)."""
    return str(e.args[0]) + (f" — {e.hint}" if e.hint else "")


def lorag_error_body(e: LoragError) -> dict[str, Any]:
    """OpenAI's error object: an engine's failure is a server error (502/504), anything else the request's."""
    if isinstance(e, EngineError):
        return error_object(lorag_message(e), None, e.code, "server_error", e.hint)
    if isinstance(e, UnknownDomainError):  # every API names the domain in a field called `domain`
        return error_object(lorag_message(e), "domain", e.code, hint=e.hint)
    return error_object(lorag_message(e), None, "lorag_error", hint=e.hint)


def lorag_error_response(e: LoragError) -> JSONResponse:
    return JSONResponse(lorag_error_body(e), status_code=e.status if isinstance(e, EngineError) else 400)
