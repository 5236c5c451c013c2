"""Embed, stage and publish chunks in bounded batches that run across files.

A batch holds at most `limit` chunks, from one file or several: small files share a batch (fewer,
fuller embed calls), a large file is cut into many. The first batch holds `first` chunks (one embed batch)
and each next one twice as many up to `limit`, so progress and a chunks/s rate come after the first embed
batch rather than after `limit` chunks. Each file's slices are staged as they are
embedded and the file is published once its last chunk is staged, so memory holds one batch of
vectors however large a file is. A file whose embedding or writing raises fails alone; its staged
slices stay invisible and the next run purges them.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from assistant.embedding import DenseEmbedder, SparseEncoder
from assistant.store import ChunkPoint, Store
from ingest.chunking import Chunk
from ingest.formats import file_format

ADDED, UPDATED, UNCHANGED, REMOVED, FAILED = "added", "updated", "unchanged", "removed", "failed"
SKIPPED = "skipped"  # left out on purpose (over a limit, a link out, an empty file); the reason says why
_POINT_NS = uuid.UUID("6f1c1f0e-7d0a-4a8e-9a53-2c3c5b1e9d11")
ChunkProgressFn = Callable[[str, int, int], None]  # (display name, chunks staged, chunks of the file)


@dataclass
class FileResult:
    path: str
    display: str
    status: str
    reason: str = ""
    chunks: int = 0
    warnings: list[str] = field(default_factory=list)  # indexed, but with something the user should know (by line)
    encoding: str = ""  # the text encoding it was read in ("utf-8", "cp1252"...); "" when not read as text


@dataclass
class Pending:
    """A file read and chunked, waiting to be embedded and written."""

    path: Path
    display: str
    version: str
    status: str  # added or updated, once published
    chunks: list[Chunk]
    ingested_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    failed: bool = False
    warnings: list[str] = field(default_factory=list)
    encoding: str = ""


class BatchWriter:
    def __init__(
        self,
        store: Store,
        dense: DenseEmbedder,
        sparse: SparseEncoder,
        domain: str,
        limit: int,
        on_chunks: ChunkProgressFn | None = None,
        on_staged: Callable[[int], None] | None = None,
        first: int | None = None,
    ):
        self.store, self.dense, self.sparse, self.domain = store, dense, sparse, domain
        self.limit = max(1, limit)
        self.size = min(self.limit, max(1, first or self.limit))  # this batch's size: grows up to limit
        self.on_chunks = on_chunks
        self.on_staged = on_staged  # hears how many chunks each embed batch staged (the ingest meter)
        self._spans: list[tuple[Pending, int, int]] = []  # (file, first chunk, end) waiting to be embedded
        self._queued = 0

    def add(self, p: Pending) -> list[FileResult]:
        """Queue a file's chunks; returns the results of the files finished by the batches this filled."""
        out: list[FileResult] = []
        start = 0
        while start < len(p.chunks):
            end = min(len(p.chunks), start + self.size - self._queued)
            self._spans.append((p, start, end))
            self._queued += end - start
            start = end
            if self._queued >= self.size:
                out += self.flush()
        return out

    def flush(self) -> list[FileResult]:
        """Embed and stage what is queued; publish the files whose last chunk this stages."""
        spans, self._spans, self._queued = [s for s in self._spans if not s[0].failed], [], 0
        self.size = min(self.limit, self.size * 2)
        if not spans:
            return []
        out: list[FileResult] = []
        staged = 0
        for (p, start, end), vectors in zip(spans, self._embed(spans)):
            if p.failed:
                continue
            try:
                if isinstance(vectors, Exception):
                    raise vectors
                self.store.stage(self.domain, self._points(p, start, end, vectors))
                staged += end - start
                if self.on_chunks:
                    self.on_chunks(p.display, end, len(p.chunks))
                if end == len(p.chunks):
                    self.store.publish(self.domain, str(p.path), p.version)
                    n, warnings, encoding = len(p.chunks), list(p.warnings), p.encoding
                    out.append(FileResult(str(p.path), p.display, p.status, "", n, warnings, encoding))
            except Exception as e:  # this file's failure; the others in the batch go on
                p.failed = True
                step = "embedded" if isinstance(vectors, Exception) else "stored"
                out.append(FileResult(str(p.path), p.display, FAILED, f"could not be {step}: {type(e).__name__}: {e}"))
        if self.on_staged and staged:
            self.on_staged(staged)
        return out

    def _embed(self, spans: list[tuple[Pending, int, int]]) -> list[tuple | Exception]:
        """(dense, sparse) per span from one embed call; if it raises, span by span, so only the file at fault fails."""
        texts = [[c.embed_text for c in p.chunks[a:b]] for p, a, b in spans]
        try:
            dense, sparse = self._encode([t for ts in texts for t in ts])
        except Exception as e:
            if len(spans) == 1:
                return [e]
            out: list[tuple | Exception] = []
            for ts in texts:
                try:
                    out.append(self._encode(ts))
                except Exception as e:
                    out.append(e)
            return out
        out, k = [], 0
        for ts in texts:
            out.append((dense[k : k + len(ts)], sparse[k : k + len(ts)]))
            k += len(ts)
        return out

    def _encode(self, texts: list[str]) -> tuple:
        return self.dense.embed_documents(texts), self.sparse.embed_documents(texts)

    def _points(self, p: Pending, start: int, end: int, vectors: tuple) -> list[ChunkPoint]:
        dense, sparse = vectors
        doc_id = str(p.path)
        points = []
        for k, i in enumerate(range(start, end)):
            c = p.chunks[i]
            payload = {
                "doc_id": doc_id,
                "display": p.display,
                "content_hash": p.version,
                "chunk_index": i,
                "n_chunks": len(p.chunks),
                "text": c.text,
                "section": c.heading,
                "page": c.page,
                "format": file_format(p.path),
                "title": p.path.stem,
                "domain": self.domain,
                "ingested_at": p.ingested_at,
            }
            pid = str(uuid.uuid5(_POINT_NS, f"{doc_id}|{p.version}|{i}"))
            points.append(ChunkPoint(pid, dense[k].tolist(), sparse[k], payload))
        return points
