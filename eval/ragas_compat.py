"""ragas, imported once and offline: the one place that knows its module layout (0.4.x).

A leaf: the metric suite and the judge both import it, and it imports neither.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

_RAGAS: Any = None


def ragas_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ragas")
    except PackageNotFoundError:
        return "missing"


def ragas_modules() -> Any:
    """Import ragas once (slow: ~10 s), offline (usage tracking off), deprecation noise muted."""
    global _RAGAS
    if _RAGAS is None:
        os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
        from types import SimpleNamespace

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                import ragas
            except ImportError as e:
                from assistant.errors import LoragError

                raise LoragError(
                    f"the evaluation metrics need ragas, which failed to import: {e}",
                    hint="install the eval extra: pip install -e '.[eval]' "
                    "(ragas 0.4.3 with langchain-community 0.4.1)",
                ) from e
            import ragas.metrics as legacy
            from ragas.dataset_schema import SingleTurnSample
            from ragas.embeddings.base import BaseRagasEmbedding
            from ragas.llms.base import InstructorBaseRagasLLM
            from ragas.metrics import collections as C

            _RAGAS = SimpleNamespace(
                version=ragas.__version__,
                C=C,
                SingleTurnSample=SingleTurnSample,
                BaseRagasEmbedding=BaseRagasEmbedding,
                InstructorBaseRagasLLM=InstructorBaseRagasLLM,
                NonLLMContextPrecisionWithReference=legacy.NonLLMContextPrecisionWithReference,
                NonLLMContextRecall=legacy.NonLLMContextRecall,
                IDBasedContextPrecision=legacy.IDBasedContextPrecision,
                IDBasedContextRecall=legacy.IDBasedContextRecall,
            )
    return _RAGAS
