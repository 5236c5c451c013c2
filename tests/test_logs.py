"""ui/logs.py's log file handler: made on the first record, never while it holds its own lock."""

from __future__ import annotations

import logging
import threading

from ui.logs import _LazyFileHandler


def test_the_log_file_is_made_outside_the_handlers_lock(tmp_path):
    """Making the file's handler takes logging's module lock; logging.config (uvicorn's start) holds that lock while
    it takes every handler's lock. So a thread logging its first record must not hold this handler's lock while it
    makes the file: another thread can take that lock meanwhile, and the record still reaches the file."""
    asked, go = threading.Event(), threading.Event()

    def path():
        asked.set()
        assert go.wait(10)
        return tmp_path / "logs" / "lorag.log"

    handler = _LazyFileHandler(path)
    record = logging.LogRecord("lorag.test", logging.INFO, __file__, 1, "first record", None, None)
    first = threading.Thread(target=handler.handle, args=(record,))
    first.start()
    assert asked.wait(10)  # the first record is making the file
    took = handler.lock.acquire(timeout=2)  # what logging.config does to every handler
    if took:
        handler.lock.release()
    go.set()
    first.join(10)
    handler.close()
    assert took and not first.is_alive()
    assert "first record" in (tmp_path / "logs" / "lorag.log").read_text()
