"""Dense and sparse text encoders behind small interfaces (their fakes live in tests/fakes.py)."""

from __future__ import annotations

import copy
import threading
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
    backend: str  # what computes the vectors, e.g. "torch:cpu:float32", "onnx:cpu:int8" (the index records it)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...
    def embed_query(self, text: str) -> np.ndarray: ...
    def token_length(self, text: str) -> int: ...


class SparseEncoder(Protocol):
    def embed_documents(self, texts: Sequence[str]) -> list[SparseVector]: ...
    def embed_query(self, text: str) -> SparseVector: ...


class SentenceTransformerEmbedder:
    """Dense vectors from any sentence-transformers model (normalised, so cosine == dot)."""

    backend = "torch:sentence-transformers"

    def __init__(self, model: Any, name: str, batch_size: int = 64):
        self.model = model
        self.name = name
        self.batch_size = batch_size
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        # its own copy: ingest counts tokens in its reading thread while encode() tokenises in another, and a fast
        # tokenizer used from two threads at once fails ("Already borrowed")
        self._tokenizer = copy.deepcopy(model.tokenizer)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def token_length(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))


def pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    """A batch's token states pooled into its texts' (not yet normalised) vectors: "cls" or the masked mean."""
    if pooling == "cls":
        return hidden[:, 0]
    m = mask[..., None].astype(hidden.dtype)
    return (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)


def normalized(vec: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)


class PooledEmbedder:
    """The batching every plain sentence-transformers layout shares (Transformer -> mean or CLS pooling ->
    Normalize), whatever runs the transformer: texts stripped (lower-cased if the model says so), sorted by length
    into batches, padded, truncated at max_seq_length, pooled, normalised. Subclasses give `_hidden`.

    `backend` names what computes the vectors (e.g. "torch:cpu:float32", "onnx:cpu:int8"): the index records it.
    Tokenizer calls hold a lock: ingest chunks (token_length) in one thread while it embeds in another, and a
    fast tokenizer must not be used from two threads at once."""

    backend = "torch:cpu:float32"

    def __init__(
        self,
        tokenizer: Any,
        name: str,
        *,
        dim: int,
        pooling: str = "mean",
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        batch_size: int = 64,
    ):
        self.tokenizer = tokenizer
        self.name = name
        self.dim = int(dim)
        self.pooling = pooling
        self.max_seq_length = max_seq_length
        self.do_lower_case = do_lower_case
        self.batch_size = batch_size
        self._tok_lock = threading.Lock()

    def _hidden(self, enc: dict[str, np.ndarray]) -> np.ndarray:
        """The pooled, not yet normalised, float32 vectors of one tokenised batch."""
        raise NotImplementedError

    def _tokenize(self, batch: list[str], tensors: str) -> Any:
        with self._tok_lock:
            return self.tokenizer(
                batch, padding=True, truncation="longest_first", max_length=self.max_seq_length, return_tensors=tensors
            )

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return pool(hidden, mask, self.pooling)

    def _prepared(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The texts as the model reads them (stripped, lower-cased if it says so) and their order longest first."""
        texts = [str(t).strip().lower() if self.do_lower_case else str(t).strip() for t in texts]
        return texts, np.argsort([-len(t) for t in texts], kind="stable")

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts, order = self._prepared(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(order), self.batch_size):
            idx = order[i : i + self.batch_size]
            out[idx] = normalized(np.asarray(self._embed_batch([texts[j] for j in idx]), dtype=np.float32))
        return out

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        enc = self._tokenize(batch, "np")
        return self._pool(self._hidden(enc), enc["attention_mask"])

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def token_length(self, text: str) -> int:
        with self._tok_lock:
            return len(self.tokenizer.encode(text, add_special_tokens=False))


class TransformersEmbedder(PooledEmbedder):
    """Sentence embeddings with transformers alone, for the usual sentence-transformers layout: the vectors
    SentenceTransformer.encode gives, without importing sentence-transformers and what it pulls in (scikit-learn,
    pandas, datasets, peft, bitsandbytes), which took most of a `lorag ask`'s start. On CUDA the model may run in
    float16 (see assistant.models.loading): pooling and normalising stay in float32."""

    def __init__(self, model: Any, tokenizer: Any, name: str, *, cpu_bf16: bool = False, **kw: Any):
        """cpu_bf16: on the CPU, the matrix products in bfloat16 (torch.autocast; norms and softmax stay float32),
        for a CPU with native bfloat16 dot products (benchmarks/RESULTS.md, embedder backends)."""
        super().__init__(tokenizer, name, dim=int(model.config.hidden_size), **kw)
        self.model = model
        p = next(model.parameters())
        self.autocast = cpu_bf16 and p.device.type == "cpu"
        dtype = "bfloat16" if self.autocast else str(p.dtype).removeprefix("torch.")
        self.backend = f"torch:{p.device.type}:{dtype}"

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        import torch

        enc = self._tokenize(batch, "pt").to(next(self.model.parameters()).device)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            hidden = self.model(**enc).last_hidden_state.float()
        if self.pooling == "cls":
            vec = hidden[:, 0]
        else:
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return vec.cpu().numpy()


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
