"""The one user-facing error type. The CLI, the API and the UI turn it into a clean message."""

from __future__ import annotations

from typing import Iterable


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice a misspelt name most likely meant, for a "did you mean" hint."""
    import difflib

    found = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def known_hint(name: str, known: Iterable[str], what: str) -> str:
    """ "did you mean X? known <what>: a, b" for a name not among `known` (the first part only when one is close)."""
    known = list(known)
    close = closest(name, known)
    return (f"did you mean {close}? " if close else "") + f"known {what}: {', '.join(known) or 'none'}"


EMPTY_QUESTION = "the question is empty"  # what retrieval, `lorag ask`, Chat and Side by side say of a blank one


class LoragError(Exception):
    """A problem the user can act on: the message says what and where (file, field, setting)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:  # message plus an optional hint on its own line
        base = super().__str__()
        return f"{base}\nhint: {self.hint}" if self.hint else base


class UnknownDomainError(LoragError):
    """A domain that is not indexed; the hint lists the known ones. The API answers 400 with code
    `domain_not_found` and param `domain`."""

    code = "domain_not_found"


class UnknownAdapterError(LoragError):
    """An adapter name the registry does not resolve: no such version (the hint names the close ones), or a domain's
    name while the domain has no promoted version (NoPromotedAdapterError). The API answers 404."""


class NoPromotedAdapterError(UnknownAdapterError):
    """A domain's name stands for its promoted version, and the domain has none; the message names its versions."""


class ConfigError(LoragError):
    """Settings or a recipe file failed validation; the message lists every problem."""

    exit_code = 2


class StoreLockedError(LoragError):
    """The embedded store is open in another process."""

    exit_code = 3


class EngineError(LoragError):
    """The generation engine (an OpenAI-compatible endpoint) failed: unreachable, an HTTP error, a malformed
    reply (`status` 502), or too slow (504). The message names the URL and the cause; the API answers with
    `status` and an OpenAI-style error body."""

    def __init__(self, message: str, *, status: int = 502, hint: str | None = None, code: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code or ("engine_timeout" if status == 504 else "engine_error")
