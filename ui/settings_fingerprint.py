"""Fingerprints of the settings, never their values (secrets included): what a server process records of the
settings it started with, so a CLI command can tell whether it would be served with its own. The keep-warm worker
(ui/warm.py) compares one fingerprint of them all; a `lorag ui` app's note holds one per setting (ui/remote.py), so
a command names the settings it differs in.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def _plain(v: Any, secrets: bool = True) -> Any:
    """Settings values as JSON can hold them: paths resolved, secrets revealed (only ever hashed) or, without
    `secrets`, only said to be set."""
    if isinstance(v, dict):
        return {k: _plain(x, secrets) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x, secrets) for x in v]
    if isinstance(v, Path):
        return str(v.expanduser().resolve())
    if hasattr(v, "get_secret_value"):
        return v.get_secret_value() if secrets else "<set>"
    return v


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def settings_id(settings: Any) -> str:
    """One fingerprint of all the settings (paths resolved, secrets included): a keep-warm worker serves the
    settings it was started with, so a command with other settings must not ask it (ui/warm.py)."""
    return _digest(_plain(settings.model_dump()))


# sections that only say how the CLI reaches or keeps a server (its address, credentials, the worker's idle time),
# not how the server answers
_REACH_SECTIONS = ("ui", "cli")


def settings_digests(settings: Any) -> dict[str, str]:
    """Each setting that shapes answers and jobs ("section.field") with a fingerprint of its value, secrets only
    as set or not (a key is no guess to check against the note): what `lorag ui` leaves in its note, so a CLI
    command can name the settings it differs in."""
    dump = _plain(settings.model_dump(), secrets=False)
    if isinstance(dump.get("qdrant"), dict) and hasattr(settings, "store_path"):  # unset means <data_dir>/qdrant
        dump["qdrant"]["path"] = _plain(Path(settings.store_path))
    return {
        f"{section}.{name}": _digest(value)
        for section, fields in dump.items()
        if section not in _REACH_SECTIONS and isinstance(fields, dict)
        for name, value in fields.items()
    }


def settings_differing(settings: Any, digests: Any) -> list[str]:
    """The settings ("section.field") whose value here differs from what `digests` (settings_digests of another
    process) recorded; none when nothing was recorded. A setting one side does not have (another lorag version)
    is not counted."""
    if not isinstance(digests, dict):
        return []
    mine = settings_digests(settings)
    return sorted(k for k in mine.keys() & digests.keys() if mine[k] != digests[k])
