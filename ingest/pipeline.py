"""Ingest files into a domain: discover, hash, load, chunk, embed (dense + sparse), stage, publish.

Incremental by content hash: unchanged files are skipped, changed ones replaced whole (see
assistant.store.base for the staged/live protocol), and with `sync` files gone from a folder are
removed. A bad file is reported with its reason; the rest of the batch goes in.
"""

from __future__ import annotations

import hashlib
import logging
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from assistant import index_record
from assistant.embedding import DenseEmbedder, SparseEncoder
from assistant.errors import LoragError
from assistant.settings_pipeline import IngestSettings
from assistant.store import Store, check_domain
from ingest.chunking import split_sections
from ingest.discovery import Found, discover, no_supported_files
from ingest.formats import file_format
from ingest.load_types import BadFileError, EmptyFileError, Limits, LoadNotes, OverLimitError
from ingest.loaders import load_document, loader_version
from ingest.meter import IngestMeter, Throughput
from ingest.prefetch import prefetched
from ingest.writer import (
    ADDED,
    FAILED,
    REMOVED,
    SKIPPED,
    UNCHANGED,
    UPDATED,
    BatchWriter,
    ChunkProgressFn,
    FileResult,
    Pending,
)

WRITE_BATCHES = 8  # an embed call sees up to this many embed batches: less padding than many ragged small calls
READ_AHEAD = 2  # files read and chunked ahead of the embedder (bounds the memory of chunks waiting)
ThroughputFn = Callable[[Throughput], None]
log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    domain: str
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[str] = field(
        default_factory=list
    )  # files in the folders given whose format ingest.formats leaves out
    backend: str = ""  # the label of what embedded the chunks, as the domain records it ("openvino:cpu:bfloat16")

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in (ADDED, UPDATED, UNCHANGED, REMOVED, FAILED, SKIPPED)}
        for r in self.results:
            out[r.status] += 1
        return out

    @property
    def chunks_written(self) -> int:
        return sum(r.chunks for r in self.results if r.status in (ADDED, UPDATED))

    @property
    def ok(self) -> bool:
        return not any(r.status == FAILED for r in self.results)


ProgressFn = Callable[[str, int, int, str], None]  # (display name, files done, files total, its status) per file


class Ingestor:
    """Writes documents into a Store; the store and encoders are handed in, never built here."""

    def __init__(self, store: Store, dense: DenseEmbedder, sparse: SparseEncoder, settings: IngestSettings):
        self.store = store
        self.dense = dense
        self.sparse = sparse
        self.settings = settings
        # A change of embedder or chunking re-ingests everything: it is part of each version's hash.
        self.signature = f"{dense.name}|{settings.chunk_tokens}|{settings.chunk_overlap}|v1"
        if settings.text_encoding != "auto":  # text read in another encoding is other text: every file again
            self.signature += f"|text={settings.text_encoding}"

    def _limits(self) -> Limits:
        s = self.settings
        return Limits(s.max_rows, s.max_pages, s.text_encoding)

    def discover(self, paths: Iterable[Path]) -> Found:
        """The files to ingest, and the paths failed or skipped up front (see ingest.discovery)."""
        return discover(paths, set(self.settings.formats))

    # -- one file -------------------------------------------------------------------------------
    def _version(self, path: Path) -> str:
        """The file's version: its bytes, the embedder and chunking (self.signature) and its loader's version,
        so that a file read by a changed loader is read again; one whose loader is at version 1 hashes as it did
        before loaders had versions."""
        signature = self.signature
        if (loader := loader_version(path)) != 1:
            signature += f"|loader={loader}"
        h = hashlib.sha256(signature.encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()[:32]

    def _prepare(self, path: Path, display: str, existing: dict) -> Pending | FileResult:
        try:
            size_mb = path.stat().st_size / 2**20
            if size_mb > self.settings.max_file_mb:
                raise OverLimitError(f"{size_mb:.4g} MB > ingest.max_file_mb {self.settings.max_file_mb:g}")
            if file_format(path) not in self.settings.formats:
                raise BadFileError(f"format '.{file_format(path)}' is not in ingest.formats")
            version = self._version(path)
            old = existing.get(str(path))
            if old is not None and old.content_hash == version and old.live_chunks == old.n_chunks:
                return FileResult(str(path), display, UNCHANGED, chunks=old.n_chunks)
            notes = LoadNotes()
            sections = load_document(path, self._limits(), notes)
            chunks = split_sections(
                sections,
                chunk_tokens=self.settings.chunk_tokens,
                overlap=self.settings.chunk_overlap,
                token_length=self.dense.token_length,
            )
            if not chunks:
                raise EmptyFileError("empty file (no text found in it)")
        except OverLimitError as e:
            return FileResult(str(path), display, SKIPPED, f"over limit ({e})")
        except EmptyFileError as e:  # nothing to index: not an error, unless an earlier version is indexed
            if existing.get(str(path)) is not None:  # its old chunks stay searchable: say so, as a failure
                why = f"{e}; its earlier version stays indexed (`lorag docs rm` removes it)"
                return FileResult(str(path), display, FAILED, why)
            return FileResult(str(path), display, SKIPPED, str(e))
        except BadFileError as e:
            return FileResult(str(path), display, FAILED, str(e))
        except OSError as e:
            return FileResult(str(path), display, FAILED, f"cannot read: {e.strerror or e}")
        except Exception as e:  # anything else a loader raises is this file's failure, not the batch's
            return FileResult(str(path), display, FAILED, _crash_reason(e))
        status = UPDATED if old is not None else ADDED
        return Pending(path, display, version, status, chunks, warnings=notes.warnings, encoding=notes.encoding)

    # -- a whole run ----------------------------------------------------------------------------
    def run(
        self,
        paths: Iterable[Path],
        domain: str,
        *,
        sync: bool = False,
        progress: ProgressFn | None = None,
        chunk_progress: ChunkProgressFn | None = None,
        throughput: ThroughputFn | None = None,
    ) -> IngestReport:
        """Ingest files and folders; `progress` hears of each file as it finishes (with its status: added,
        updated, unchanged, failed, skipped; first once with "", 0 files done), `chunk_progress` of each
        file's chunks as they are chunked (0 of n) and staged, `throughput` of chunks/s and the ETA after each
        embed batch is staged. The next files are read and chunked in a thread while the current batch is embedded."""
        t0 = time.perf_counter()
        check_domain(domain)
        found = self.discover(paths)
        files, upfront, skipped = found.files, found.results, found.other_formats
        report = IngestReport(domain, list(upfront), skipped=skipped, backend=index_record.backend_of(self.dense))
        if not files and not (sync and found.roots):
            if not upfront:
                raise no_supported_files(skipped, self.settings.formats)
            report.seconds = time.perf_counter() - t0
            return report
        new_domain = domain not in self.store.domains()
        self.store.ensure_domain(domain, self.dense.dim)
        try:
            index_record.ensure(
                self.store, domain, self.dense, new=new_domain
            )  # another backend's vectors do not mix with these
        except LoragError:
            if new_domain:
                self.store.drop_domain(domain)
            raise
        self.store.purge_staged(domain)  # leftovers of an interrupted run
        existing = {d.doc_id: d for d in self.store.list_docs(domain)}

        def finished(results: list[FileResult]) -> None:
            for r in results:
                report.results.append(r)
                if progress:
                    progress(r.display, len(report.results) - len(upfront), len(files), r.status)

        if progress:
            progress("", 0, len(files), "")
        meter = IngestMeter.for_files([f for f, _ in files])

        def staged(n: int) -> None:
            snapshot = meter.embedded(n)
            if throughput:
                throughput(snapshot)

        limit = self.settings.embed_batch_size * WRITE_BATCHES
        first = self.settings.embed_batch_size  # the first report comes after one embed batch
        writer = BatchWriter(self.store, self.dense, self.sparse, domain, limit, chunk_progress, staged, first)

        def read_ahead() -> Iterator[tuple[Path, Pending | FileResult]]:  # in a thread, while the writer embeds
            for path, display in files:
                yield path, self._prepare(path, display, existing)

        with closing(prefetched(read_ahead, READ_AHEAD)) as prepared:  # closed: the reading thread stops too
            for path, item in prepared:
                meter.path_read(path, len(item.chunks) if isinstance(item, Pending) else 0)
                if isinstance(item, FileResult):
                    finished([item])
                    continue
                if chunk_progress:
                    chunk_progress(item.display, 0, len(item.chunks))
                finished(writer.add(item))
        finished(writer.flush())
        if sync:
            present = {str(f) for f, _ in files}
            for doc in existing.values():
                in_root = any(Path(doc.doc_id).is_relative_to(r) for r in found.roots)
                gone = not Path(doc.doc_id).exists() or doc.doc_id in found.refused  # refused: now a link out
                if in_root and doc.doc_id not in present and gone:
                    self.store.remove_doc(domain, doc.doc_id)
                    report.results.append(FileResult(doc.doc_id, doc.display, REMOVED, chunks=doc.n_chunks))
        if new_domain and not any(r.status in (ADDED, UPDATED) for r in report.results):
            self.store.drop_domain(domain)  # every file failed: no empty domain is left behind
            report.seconds = time.perf_counter() - t0
            return report
        self.store.flush()
        self.store.optimize(domain)
        report.seconds = time.perf_counter() - t0
        log.info(
            "ingest into %s: %d chunks embedded by %s in %.1fs",
            domain,
            report.chunks_written,
            report.backend,
            report.seconds,
        )
        return report


def _crash_reason(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "nested too deeply to read (RecursionError)"
    if isinstance(e, MemoryError):
        return "out of memory while reading it (MemoryError)"
    return f"could not be read: {type(e).__name__}: {e}"
