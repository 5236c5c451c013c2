"""The embedded store's shards on qdrant-edge (Qdrant's Rust engine in-process), one folder per domain: opening,
creating (the HNSW and int8 config) and dropping them, loading them in the background and preloading their files,
the record of what embedded each, and the filters every request builds."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from assistant.errors import LoragError, StoreLockedError, UnknownDomainError, known_hint
from assistant.index_record import recorded_backend
from assistant.store.base import DENSE, INT8_QUANTILE, SPARSE, STAGED, check_domain
from assistant.store.preload import Preloader, fits_in_memory, mem_available

log = logging.getLogger(__name__)
_SHARD_MARKER = "edge_config.json"
_RECORD_FILE = "lorag_embedder.json"  # beside the shard's own files: dropped with the domain
_KEYWORD_FIELDS = ("doc_id", "state", "content_hash")


def recorded_backends(root: Path) -> list[str]:
    """The backend labels the domains under `root` were embedded with, read from their records without opening
    the store (which one process holds): for `lorag config` while the app runs. A domain without a readable
    record counts as torch's, as assistant.index_record's LEGACY does."""
    if not Path(root).is_dir():
        return []
    out = []
    for p in sorted(Path(root).iterdir()):
        if not (p / _SHARD_MARKER).is_file():
            continue
        try:
            out.append(recorded_backend(json.loads((p / _RECORD_FILE).read_text(encoding="utf-8"))))
        except (OSError, ValueError, AttributeError):
            out.append(recorded_backend(None))
    return out


class EdgeShards:
    """The domains' shards: opened, created, dropped, optimized and closed, and what this process knows of each
    (may it hold staged chunks, does it hold live ones) without asking it."""

    def __init__(self, root: Path, *, hnsw_ef: int = 128, indexing_threads: int = 0):
        import qdrant_edge

        self._qe = qdrant_edge
        self.root = Path(root)
        self.hnsw_ef = hnsw_ef
        self.indexing_threads = indexing_threads or os.cpu_count() or 1
        self._shards: dict[str, Any] = {}
        # Per open domain: may it hold staged chunks? Only this process writes the shard (it holds its lock), so
        # this is known without asking: while it is False, searches skip the `state == live` filter, which costs
        # a payload-index check per point the dense graph and the BM25 lists visit (benchmarks/RESULTS.md).
        self._staged: dict[str, bool] = {}
        # Open domains seen to hold a live chunk: known until this process deletes points (publish, remove_doc),
        # so a question's `has_live` check does not search the shard each time. `_deletes` counts the deletes, so
        # that a check that overlapped one (another thread) does not keep its answer.
        self._live: set[str] = set()
        self._deletes = 0
        self.preloader: Preloader | None = None  # set by start_preloading (a long-running process)
        self._open_lock = threading.Lock()  # one load per shard (requests' threads, the background opener)
        self._closed = False

    # -- shards ---------------------------------------------------------------------------------
    def _path(self, domain: str) -> Path:
        return self.root / check_domain(domain)

    def _open(self, domain: str) -> Any:
        shard = self._shards.get(domain)
        if shard is not None:
            return shard
        with self._open_lock:
            return self._shards.get(domain) or self._load(domain)

    def _load(self, domain: str) -> Any:
        path = self._path(domain)
        if not (path / _SHARD_MARKER).is_file():
            raise UnknownDomainError(f"unknown domain '{domain}'", hint=known_hint(domain, self.domains(), "domains"))
        try:
            shard = self._qe.EdgeShard.load(str(path))
        except Exception as e:  # qdrant-edge raises a bare Exception
            raise _translate_open_error(e, path) from None
        self._shards[domain] = shard
        self._staged[domain] = self._any_staged(shard)  # leftovers of an interrupted ingest
        if self.preloader is not None:
            self.preloader.start(domain, path, (SPARSE,))
        return shard

    def open_in_background(self, max_memory_share: float = 0.5) -> threading.Thread:
        """Open every domain in a background thread, as a server does at start, so that the first question of a
        long-running process does not wait for qdrant-edge to load its shard (seconds for a large domain). A
        domain whose folder exceeds `max_memory_share` of the memory available is left to open on first use;
        a domain that fails to open here fails again, with its error, when it is used."""

        def run() -> None:
            for domain in self.domains():
                size = _folder_bytes(self._path(domain))
                if self._closed or not fits_in_memory(size, max_memory_share, mem_available()):
                    continue
                try:
                    self._open(domain)
                except Exception as e:  # noqa: BLE001 - reported where the domain is used
                    log.info("opening domain %s in the background failed: %s", domain, e)

        t = threading.Thread(target=run, name="lorag-open-domains", daemon=True)
        t.start()
        return t

    def start_preloading(self, max_memory_share: float = 0.5) -> None:
        """From now on each domain's shard, as it opens (and again after `optimize` rewrites it), is read into the
        page cache by a background thread (assistant.store.preload): for a long-running process, whose searches
        would otherwise read the payloads and payload indexes from disk page by page. Shards already open start now."""
        if self.preloader is None:
            self.preloader = Preloader(max_memory_share=max_memory_share)
            for domain in self._shards:
                self.preloader.start(domain, self._path(domain), (SPARSE,))

    def _any_staged(self, shard: Any) -> bool:
        recs, _ = shard.scroll(
            self._qe.ScrollRequest(
                limit=1, filter=self._filter(self._match("state", STAGED)), with_payload=False, with_vector=False
            )
        )
        return bool(recs)

    def domains(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / _SHARD_MARKER).is_file())

    def has_domain(self, domain: str) -> bool:
        return (self._path(domain) / _SHARD_MARKER).is_file()

    def ensure_domain(self, domain: str, dim: int) -> None:
        qe = self._qe
        path = self._path(domain)
        if (path / _SHARD_MARKER).is_file():
            shard = self._open(domain)
            have = shard_dim(path)
            if have is not None and have != dim:
                raise LoragError(
                    f"domain '{domain}' holds {have}-d vectors but the embedder makes {dim}-d ones",
                    hint="use the embedder the domain was built with, or `lorag docs rm --all` and re-ingest",
                )
            return
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            # Qdrant's default graph; built by every core (edge's default, 0, keeps one free: 1 thread on 2 cores).
            # payload_m=0: no extra per-payload-value graphs. The only filter a search uses, state == live, holds
            # for nearly every point, so the main graph serves it; the extra graphs (one per chunk_index value
            # over a few thousand points) doubled the build time and slowed search (benchmarks/RESULTS.md).
            hnsw_config=qe.HnswIndexConfig(
                m=16,
                ef_construct=100,
                full_scan_threshold=10_000,
                max_indexing_threads=self.indexing_threads,
                payload_m=0,
            ),
            # int8 copies of the dense vectors, held in RAM: the graph is walked on them (4x less memory to read
            # per step) and each search's best candidates rescored on the float vectors (search_params); the
            # build is faster too. A domain created before keeps the config it was created with.
            quantization_config=qe.ScalarQuantizationConfig(
                type=qe.ScalarType.Int8, quantile=INT8_QUANTILE, always_ram=True
            ),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            shard = qe.EdgeShard.create(str(path), config)
        except Exception as e:
            raise _translate_open_error(e, path) from None
        for name in _KEYWORD_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
        shard.update(qe.UpdateOperation.create_field_index("chunk_index", qe.PayloadSchemaType.Integer))
        self._shards[domain] = shard
        self._staged[domain] = False

    def drop_domain(self, domain: str) -> None:
        if self.has_domain(domain):
            self._open(domain)  # fails cleanly if another process holds it
        with self._open_lock:
            shard = self._shards.pop(domain, None)
        if self.preloader is not None:  # after the pop: a preload its opening started ends too
            self.preloader.stop(domain)
        if shard is not None:
            shard.close()
        self._staged.pop(domain, None)
        self._forget_live(domain)
        shutil.rmtree(self._path(domain), ignore_errors=True)

    def _forget_live(self, domain: str) -> None:
        """After a delete: the domain's live chunks may be gone."""
        self._deletes += 1
        self._live.discard(domain)

    def flush(self) -> None:
        for shard in self._shards.values():
            shard.flush()

    def optimize(self, domain: str) -> bool:
        """Build HNSW/segments now (blocking); queries stay correct without it, only slower."""
        shard = self._open(domain)
        if self.preloader is not None:  # its files are about to be replaced
            self.preloader.stop(domain)
        done = bool(shard.optimize())
        if self.preloader is not None:  # the new segment's files
            self.preloader.start(domain, self._path(domain), (SPARSE,))
        return done

    def close(self) -> None:
        self._closed = True  # the background opener opens nothing more
        if self.preloader is not None:
            self.preloader.close()
        with self._open_lock:
            shards, self._shards = dict(self._shards), {}
        for shard in shards.values():
            try:
                shard.flush()
            finally:
                shard.close()
        self._staged.clear()
        self._live.clear()

    # -- what embedded the domain (assistant.index_record) --------------------------------------------
    def embedder_record(self, domain: str) -> dict[str, Any] | None:
        f = self._path(domain) / _RECORD_FILE
        try:
            return json.loads(f.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise LoragError(
                f"{f} is not valid JSON ({e})", hint="delete it; the next ingest writes it again"
            ) from None

    def set_embedder_record(self, domain: str, record: dict[str, Any]) -> None:
        f = self._path(domain) / _RECORD_FILE
        tmp = f.with_suffix(".tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        tmp.replace(f)

    # -- filters --------------------------------------------------------------------------------
    def _match(self, key: str, value: Any) -> Any:
        return self._qe.FieldCondition(key=key, match=self._qe.MatchValue(value=value))

    def _filter(self, *conds: Any, must_not: list[Any] | None = None) -> Any:
        return self._qe.Filter(must=list(conds) or None, must_not=must_not)


def shard_dim(path: Path) -> int | None:
    import json

    try:
        cfg = json.loads((path / _SHARD_MARKER).read_text())
        return int(cfg["vectors"][DENSE]["size"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def _translate_open_error(e: Exception, path: Path) -> LoragError:
    text = str(e)
    if "WouldBlock" in text or "lock" in text.lower():
        return StoreLockedError(
            f"the embedded store at {path} is in use by another lorag process (the app or another ingest)",
            hint="stop that process, or run a Qdrant server (docker compose up) and set qdrant.url so several "
            "processes can share it",
        )
    return LoragError(f"could not open the embedded store at {path}: {text}")


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
