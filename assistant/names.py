"""Names that become paths: domains, adapter names, run ids, job ids, files under a root folder.

Every face (CLI, web app, Gradio API, OpenAI API) hands such a name to a service; the service and
the function that builds the path both pass it through one of these checks, so no name can leave
its folder (`../`, absolute paths, NUL bytes, dots alone).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from assistant.errors import LoragError

DOMAIN_PATTERN = r"[a-z0-9][a-z0-9_-]{0,62}"
_DOMAIN = re.compile(rf"^{DOMAIN_PATTERN}$")
_ADAPTER = re.compile(rf"^(?P<domain>{DOMAIN_PATTERN}?)(?:-v(?P<version>\d{{1,6}}))?$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_domain(domain: str, field: str = "domain name") -> str:
    """A domain name: lowercase letters, digits, '-' or '_', at most 63, starting alphanumeric."""
    if not isinstance(domain, str) or not _DOMAIN.match(domain):
        raise LoragError(
            f"invalid {field} {domain!r}: use lowercase letters, digits, '-' or '_' (max 63), starting alphanumeric"
        )
    return domain


ALL_DOMAINS = "all"  # what the chat, side by side and the API's domain choice mean by every domain


def domain_name(typed: str | None, field: str = "domain name", every_domain_hint: str | None = None) -> str:
    """The domain a name typed by a user means, in every face (CLI, API, web app): trimmed and lowercased ('Orbit'
    is the domain 'orbit'). A name that is no domain name even then is refused, quoted as typed. 'all' is refused
    with `every_domain_hint` where the domain may be left out for every domain (a search, a listing), else with a
    hint to pick another name (ingest, an upload, training: the domain is one to create or use)."""
    name = typed.strip() if isinstance(typed, str) else ""
    if not is_domain(name.lower()):
        raise LoragError(
            f"invalid {field} {name!r}: use letters, digits, '-' or '_' (max 63), starting with a letter or digit "
            "(capitals are lowercased: 'Orbit' is the domain 'orbit')"
        )
    if name.lower() == ALL_DOMAINS:
        raise LoragError(
            f"'{ALL_DOMAINS}' is no domain name: the chat and the side-by-side tab take it for every domain",
            hint=every_domain_hint or f"'{ALL_DOMAINS}' is reserved for every domain: pick another name for this one",
        )
    return name.lower()


def is_domain(name: str) -> bool:
    return isinstance(name, str) and bool(_DOMAIN.match(name))


def parse_adapter(name: str) -> tuple[str, int | None]:
    """'<domain>-v<N>' -> (domain, N); '<domain>' (its promoted or newest version) -> (domain, None)."""
    m = _ADAPTER.match(name) if isinstance(name, str) else None
    if not m or not _DOMAIN.match(m["domain"]):
        raise LoragError(f"invalid adapter name {name!r}: use <domain>-v<N> or <domain>")
    return m["domain"], int(m["version"]) if m["version"] is not None else None


def check_id(value: str, field: str) -> str:
    """A run id or job id: letters, digits, '.', '_' or '-', starting alphanumeric, no '..'."""
    if not isinstance(value, str) or not _ID.match(value) or ".." in value:
        raise LoragError(f"invalid {field} {value!r}: use letters, digits, '.', '_' or '-'")
    return value


def inside(root: Path, name: str, field: str = "file name") -> Path:
    """root/name for a relative name that stays inside root (after resolving links); else a LoragError."""
    raw = (name or "").replace("\\", "/")
    parts = PurePosixPath(raw).parts
    if not raw or raw.startswith("/") or (len(raw) > 1 and raw[1] == ":") or ".." in parts or "\x00" in raw:
        raise LoragError(f"unsafe {field} {name!r}")
    base = Path(root).resolve()
    target = (base / PurePosixPath(*[p for p in parts if p not in ("", ".")])).resolve()
    if not target.is_relative_to(base) or target == base:
        raise LoragError(f"unsafe {field} {name!r}")
    return target
