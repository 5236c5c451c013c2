"""Which embedder and backend built a domain's vectors, and whether this process's embedder may use them.

A domain records the embedder's name, its backend label (e.g. "torch:cpu:float32", "onnx:cpu:int8") and the
vector it gives a fixed probe text. Another backend may query or extend the domain only if it gives that probe
(nearly) the same vector: float16 on a GPU, bfloat16 matrix products on a CPU (torch's, or OpenVINO's:
"openvino:cpu:bfloat16") and the float32 ONNX export ("onnx:cpu:float32") match torch float32 on a CPU, so
switching between them needs nothing; an int8 export does not match float32, so switching between them asks for a
re-embed. A domain built before records existed counts as torch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assistant.errors import LoragError
from assistant.models.backends import setting_of, torch_equivalent

PROBE = "How do I reset my password? Open Settings, choose Account, then follow the link sent by email."
MIN_PROBE_COSINE = 0.999  # fp16 on a GPU, bf16 on a CPU or fp32 ONNX vs fp32 on a CPU: > 0.9999; int8: ~0.99
LEGACY = {"embedder": None, "backend": "torch:legacy", "probe": None}


def recorded_backend(record: dict[str, Any] | None) -> str:
    """The backend label a domain's record names (a domain without one: LEGACY's, torch's)."""
    return str((record or {}).get("backend") or LEGACY["backend"])


def domain_backends(store: Any) -> list[str]:
    """The backend labels the store's domains were embedded with (models.embedder_backend: auto follows them)."""
    return [recorded_backend(store.embedder_record(d)) for d in store.domains()]


def backend_of(dense: Any) -> str:
    return str(getattr(dense, "backend", "torch:unknown"))


def record_for(dense: Any) -> dict[str, Any]:
    probe = np.asarray(dense.embed_query(PROBE), dtype=np.float32)
    return {
        "embedder": dense.name,
        "backend": backend_of(dense),
        "dim": int(dense.dim),
        "probe": [round(float(x), 6) for x in probe],
    }


def mismatch(recorded: dict[str, Any] | None, dense: Any) -> str | None:
    """Why `dense` may not use vectors made as `recorded` says; None when it may."""
    rec = recorded or LEGACY
    mine = backend_of(dense)
    if rec.get("embedder") not in (None, dense.name):
        return f"it was embedded by {rec['embedder']}, not {dense.name}"
    if rec["backend"] == mine:
        return None
    if rec.get("probe") is None:  # built before records: by torch
        if torch_equivalent(mine) or mine == "hashing":
            return None
        return f"it was embedded by torch (before backends were recorded); this process embeds with {mine}"
    probe = np.asarray(dense.embed_query(PROBE), dtype=np.float32)
    cos = float(
        probe
        @ np.asarray(rec["probe"], dtype=np.float32)
        / (np.linalg.norm(probe) * np.linalg.norm(rec["probe"]) or 1.0)
    )
    if cos >= MIN_PROBE_COSINE:
        return None
    return (
        f"it was embedded on {rec['backend']}; this process embeds with {mine}, whose vectors differ "
        f"(probe cosine {cos:.4f} < {MIN_PROBE_COSINE})"
    )


def ensure(store: Any, domain: str, dense: Any, *, new: bool) -> None:
    """Before writing: record `dense` for a new domain (or one built before records, once checked); check the
    record of an existing one."""
    if not hasattr(store, "embedder_record"):
        return
    if not new:
        check(store, domain, dense)
    if store.embedder_record(domain) is None:
        store.set_embedder_record(domain, record_for(dense))


def check(store: Any, domain: str, dense: Any) -> None:
    """Raise a LoragError naming the fix when `dense` may not use `domain`'s vectors."""
    if not hasattr(store, "embedder_record"):  # a store that records nothing (a test double)
        return
    recorded = store.embedder_record(domain)
    why = mismatch(recorded, dense)
    if why is None:
        return
    was = setting_of((recorded or {}).get("backend", "torch"))
    raise LoragError(
        f"domain '{domain}' cannot be searched or extended with this embedder: {why}",
        hint=f"set models.embedder_backend: {was} to use the index as it is, or re-embed it with the new backend: "
        f"`lorag docs rm --all --domain {domain}`, then `lorag ingest <files> --domain {domain}`",
    )
