"""Where log records and warnings go when `lorag` runs: the one place that decides it.

A user sees lorag's own output: its messages, progress and errors, plus lorag's own warnings
(`warning: ...`). Everything libraries say — Python warnings (XMLParsedAsHTMLWarning, FutureWarning),
log records (pypdf, bitsandbytes' "Failed to load CPU gemm_4bit_forward ...", transformers'
"Token indices sequence length is longer ...") — goes to `<data_dir>/logs/lorag.log`, and with
`--verbose` to stderr as well.

transformers, huggingface_hub and datasets put their own stderr handler on their loggers when they
are imported; an import hook takes it off right after, so their records reach the log file like
any other library's (without importing them early: `lorag --help` stays fast).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
import threading
from pathlib import Path
from typing import Any, Callable

OWN = ("assistant", "ingest", "finetune", "eval", "ui", "benchmarks")  # lorag's packages: their warnings are shown
LIBRARY_LOGGING = {  # module that configures a library's own stderr handler -> the library's root logger
    "transformers.utils.logging": "transformers",
    "huggingface_hub.utils.logging": "huggingface_hub",
    "datasets.utils.logging": "datasets",
}
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _LazyFileHandler(logging.Handler):
    """Appends to a file whose path is known only when the first record arrives (the data folder comes
    from the settings, loaded lazily); creates its folder then. Nothing is written when nothing is logged."""

    def __init__(self, path_fn: Callable[[], Path]):
        super().__init__(logging.DEBUG)
        self.path_fn = path_fn
        self._handler: logging.Handler | None = None
        self._opening = threading.Lock()
        self.setFormatter(logging.Formatter(FORMAT))

    @property
    def path(self) -> Path:
        return Path(self._handler.baseFilename) if self._handler else self.path_fn()  # type: ignore[attr-defined]

    def handle(self, record: logging.LogRecord) -> Any:
        # the file's handler is made before this handler's lock is taken (handle takes it around emit): making a
        # handler takes logging's module lock, which logging.config holds while it takes every handler's lock
        # (uvicorn configures logging when it starts), so making it under this lock could deadlock the two threads
        if self._handler is None:
            try:
                self._open()
            except Exception:  # noqa: BLE001 - logging never breaks a command
                self.handleError(record)
                return False
        return super().handle(record)

    def _open(self) -> None:
        with self._opening:
            if self._handler is not None:
                return
            path = self.path_fn()
            path.parent.mkdir(parents=True, exist_ok=True)
            from logging.handlers import RotatingFileHandler

            handler = RotatingFileHandler(path, maxBytes=5 * 2**20, backupCount=2, encoding="utf-8")  # 15 MB at most
            handler.setFormatter(self.formatter)
            self._handler = handler

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._handler is not None:
                self._handler.emit(record)
        except Exception:  # noqa: BLE001 - logging never breaks a command
            self.handleError(record)

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
        super().close()


class _OwnWarnings(logging.Filter):
    """lorag's own warnings and errors, shown on stderr without --verbose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and record.name.split(".")[0] in OWN


class _QuietLibraryLogging(importlib.abc.MetaPathFinder):
    """After a library's logging module is imported, its stderr handler goes and its records propagate."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in LIBRARY_LOGGING:
            return None
        sys.meta_path.remove(self)  # the real finder answers
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        run = loader.exec_module

        class _Loader(importlib.abc.Loader):
            def create_module(self, s: Any) -> Any:
                return loader.create_module(s)

            def exec_module(self, module: Any) -> None:
                run(module)
                quiet_library(module, LIBRARY_LOGGING[name])

        spec.loader = _Loader()
        return spec


def quiet_library(module: Any, root_name: str) -> None:
    """Take a library's own stderr handler off its root logger; its records propagate to the root's handlers."""
    if hasattr(module, "disable_default_handler"):  # transformers: adds its handler lazily, once
        module.disable_default_handler()
    lg = logging.getLogger(root_name)
    for h in list(lg.handlers):
        if type(h) is logging.StreamHandler and getattr(h, "stream", None) in (sys.stderr, sys.__stderr__, sys.stdout):
            lg.removeHandler(h)
    lg.propagate = True


_file: _LazyFileHandler | None = None
_stderr: logging.Handler | None = None


def setup(log_file: Callable[[], Path], *, verbose: bool = False) -> None:
    """Route warnings and log records for this run of `lorag` (idempotent: a second call replaces the first)."""
    global _file, _stderr
    root = logging.getLogger()
    for h in (_file, _stderr):
        if h is not None:
            root.removeHandler(h)
            h.close()
    _file = _LazyFileHandler(log_file)
    _stderr = logging.StreamHandler(sys.stderr)
    if verbose:
        _stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        _stderr.setLevel(logging.INFO)
    else:
        _stderr.setFormatter(logging.Formatter("warning: %(message)s"))
        _stderr.addFilter(_OwnWarnings())
    root.addHandler(_file)
    root.addHandler(_stderr)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    for name in OWN:
        logging.getLogger(name).setLevel(logging.INFO)  # lorag's own info lines reach the log file
    logging.captureWarnings(True)  # warnings.warn(...) -> the "py.warnings" logger -> the file
    if not any(isinstance(f, _QuietLibraryLogging) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietLibraryLogging())
    for module_name, root_name in LIBRARY_LOGGING.items():  # already imported (tests, `lorag demo`)
        if module_name in sys.modules:
            quiet_library(sys.modules[module_name], root_name)
