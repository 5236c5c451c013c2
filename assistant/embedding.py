"""Dense and sparse text encoders behind small interfaces, with a model-free fake for tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


class DenseEmbedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...
    def embed_query(self, text: str) -> np.ndarray: ...
    def token_length(self, text: str) -> int: ...


class SparseEncoder(Protocol):
    def embed_documents(self, texts: Sequence[str]) -> list[SparseVector]: ...
    def embed_query(self, text: str) -> SparseVector: ...


class SentenceTransformerEmbedder:
    """Dense vectors from any sentence-transformers model (normalised, so cosine == dot)."""

    def __init__(self, model: Any, name: str, batch_size: int = 64):
        self.model = model
        self.name = name
        self.batch_size = batch_size
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._tokenizer = model.tokenizer

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def token_length(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))


class TransformersEmbedder:
    """Sentence embeddings with transformers alone, for the usual sentence-transformers layout (Transformer ->
    mean or CLS pooling -> Normalize): the vectors SentenceTransformer.encode gives (texts stripped, sorted by
    length into batches, padded, truncated at max_seq_length, normalised), without importing
    sentence-transformers and what it pulls in (scikit-learn, pandas, datasets, peft, bitsandbytes), which
    took most of a `lorag ask`'s start."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str,
        *,
        pooling: str = "mean",
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        batch_size: int = 64,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.pooling = pooling
        self.max_seq_length = max_seq_length
        self.do_lower_case = do_lower_case
        self.batch_size = batch_size
        self.dim = int(model.config.hidden_size)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = [str(t).strip().lower() if self.do_lower_case else str(t).strip() for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        device = next(self.model.parameters()).device
        for i in range(0, len(order), self.batch_size):
            idx = order[i : i + self.batch_size]
            enc = self.tokenizer(
                [texts[j] for j in idx],
                padding=True,
                truncation="longest_first",
                max_length=self.max_seq_length,
                return_tensors="pt",
            ).to(device)
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            if self.pooling == "cls":
                vec = hidden[:, 0]
            else:
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vec = torch.nn.functional.normalize(vec.float(), p=2, dim=1)
            out[idx] = vec.cpu().numpy()
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def token_length(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))


class Bm25SparseEncoder:
    """BM25 term weights computed locally with Qdrant's own tokenizer, stemmer and hashed term ids.

    Documents get BM25 term-frequency weights; the collection's IDF modifier supplies IDF at query
    time, so the same vectors fit the embedded engine and a Qdrant server.
    """

    def __init__(self) -> None:
        import qdrant_edge

        self._bm25 = qdrant_edge.Bm25()

    @staticmethod
    def _convert(v: Any) -> SparseVector:
        return SparseVector(list(v.indices), list(v.values))

    def embed_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return [self._convert(self._bm25.embed_document(t)) for t in texts]

    def embed_query(self, text: str) -> SparseVector:
        return self._convert(self._bm25.embed_query(text))
