"""The API's login, when ui.username/password are set: HTTP Basic with them, or `Authorization: Bearer <password>`."""

from __future__ import annotations

import base64
import hmac

from fastapi import HTTPException, Request


def check_auth(request: Request, auth: tuple[str, str] | None) -> None:
    if auth is None:
        return
    user, pw = auth
    h = request.headers.get("authorization", "")
    scheme, _, value = h.partition(" ")
    ok = False
    if scheme.lower() == "bearer":
        ok = hmac.compare_digest(value.strip().encode(), pw.encode())
    elif scheme.lower() == "basic":
        try:
            u, _, p = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            u, p = "", ""
        ok = hmac.compare_digest(u.encode(), user.encode()) & hmac.compare_digest(p.encode(), pw.encode())
    if not ok:
        raise HTTPException(401, "invalid or missing credentials", headers={"WWW-Authenticate": 'Basic realm="lorag"'})
