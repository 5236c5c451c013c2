"""The environment of a lorag process started by another one (training workers, the keep-warm worker)."""

from __future__ import annotations

import os
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parents[1]


def child_env(**extra: str) -> dict[str, str]:
    """This environment with this lorag first on PYTHONPATH (a worktree or checkout ahead of an installed
    one runs the same code in the child), plus `extra`."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(CODE_ROOT), path) if p), **extra}
