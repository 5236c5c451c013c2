"""Arms of an A/B: `base`, a registry adapter (`handbook-v2`, or `handbook` for the promoted one),
or a different base model (`model:<spec>`: a built-in name, HF id, folder or .gguf)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistant.errors import LoragError


@dataclass
class Arm:
    label: str  # shown in reports: "base", "handbook-v2", "model:qwen2.5-0.5b"
    kind: str  # "base" | "adapter" | "model"
    adapter: str | None = None  # registry name, for kind "adapter"
    spec: str | None = None  # the model it runs on
    identity: dict[str, Any] = field(default_factory=dict)  # what its answers depend on (cache key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "kind": self.kind,
            "adapter": self.adapter,
            "spec": self.spec,
            "identity": self.identity,
        }


def parse_arms(text: str, *, registry: Any, base_model: str) -> list[Arm]:
    """'base,handbook-v2' -> arms; adapters resolved through the registry (unknown names: a clear error)."""
    names = [n.strip() for n in (text or "").split(",")]
    if len(names) < 2 or any(not n for n in names):
        raise LoragError(f"arms {text!r}: name at least two arms separated by commas, e.g. base,handbook-v2")
    arms: list[Arm] = []
    for name in names:
        if name == "base":
            arms.append(Arm("base", "base", None, base_model, {"kind": "base", "model": base_model}))
        elif name.startswith("model:"):
            spec = name[len("model:") :].strip()
            if not spec:
                raise LoragError(
                    f"--ab: arm {name!r} names no model (use model:NAME: a built-in name, HF id, folder or .gguf)"
                )
            arms.append(Arm(f"model:{spec}", "model", None, spec, {"kind": "model", "model": spec}))
        else:
            if registry is None:
                raise LoragError(f"--ab: arm {name!r} is an adapter but no adapter registry is available")
            card = registry.get(name)
            ident = {
                "kind": "adapter",
                "name": card.name,
                "version": card.version,
                "data_hash": card.data_hash,
                "created_at": card.created_at,
                "base_fingerprint": card.base_fingerprint,
                "model": base_model,
            }
            arms.append(Arm(card.name, "adapter", card.name, base_model, ident))
    labels = [a.label for a in arms]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise LoragError(f"--ab {text!r}: arm {', '.join(dupes)} appears twice")
    return arms
