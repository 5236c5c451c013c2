"""Components with fake backends that a keep-warm worker process can import (`--factory`, tests/test_warm.py):
the hashing embedder, BM25 and a scripted generator over the real embedded store of the data folder."""

from __future__ import annotations

from typing import Any

from assistant.embedding import Bm25SparseEncoder
from tests.fakes import FakeGenerator, HashingEmbedder
from ui.components import Components

REPLY = "Full-time staff receive 27 days [1]."


def components(settings: Any) -> Components:
    gen = FakeGenerator(lambda m: REPLY, name="fake-generator")
    return Components(settings, dense=HashingEmbedder(2048), sparse=Bm25SparseEncoder(), generator=gen)


def components_loading_the_generator(settings: Any) -> Components:
    """The fakes, but the generator is the one the settings name, loaded as `lorag ask` loads it (and so looked for
    first: Components.check_models)."""
    return Components(settings, dense=HashingEmbedder(2048), sparse=Bm25SparseEncoder())
