"""The generation gate: at most `slots` answers generated at once, at most `max_waiting` requests
queued for a slot, each waiting at most `timeout_s`.

A request waits without holding a worker thread when it can (`acquire_async`, the API's path), so
the threads that stream the running answers are never starved by requests waiting behind them.
Web-app handlers, which Gradio already runs in its own bounded worker threads, wait in their thread
(`acquire`). A full queue or a wait past the timeout raises `Busy`, which the API answers with 429
or 503 and a Retry-After header. Slots are handed out first come, first served.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import Iterator

from assistant.errors import LoragError


class Busy(LoragError):
    """No generation slot: the queue is full (`status` 429) or the wait timed out (503)."""

    def __init__(self, message: str, *, status: int, retry_after: int):
        super().__init__(message, hint=f"try again in {retry_after} s")
        self.status, self.retry_after = status, retry_after


class _AsyncWaiter:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.future = loop, loop.create_future()

    def grant(self) -> None:
        self.loop.call_soon_threadsafe(lambda: self.future.done() or self.future.set_result(True))


class _ThreadWaiter:
    def __init__(self) -> None:
        self.event = threading.Event()

    def grant(self) -> None:
        self.event.set()


class GenerationGate:
    def __init__(self, slots: int, *, max_waiting: int, timeout_s: float):
        self.slots, self.max_waiting, self.timeout_s = slots, max_waiting, timeout_s
        self._lock = threading.Lock()
        self._free = slots
        self._waiting: deque[_AsyncWaiter | _ThreadWaiter] = deque()

    # -- state ----------------------------------------------------------------------------------
    @property
    def busy(self) -> int:
        return self.slots - self._free

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _retry_after(self) -> int:
        return max(1, min(60, int(self.timeout_s / 4) or 1))

    def _enter_or_queue(self, make: type) -> _AsyncWaiter | _ThreadWaiter | None:
        """Take a free slot (None) or queue a waiter; Busy when the queue is full."""
        with self._lock:
            if self._free > 0 and not self._waiting:
                self._free -= 1
                return None
            if len(self._waiting) >= self.max_waiting:
                raise Busy(
                    f"the server is busy: {self.busy} answer(s) generating and {len(self._waiting)} waiting "
                    f"(ui.generation_queue {self.max_waiting})",
                    status=429,
                    retry_after=self._retry_after(),
                )
            waiter = make(asyncio.get_running_loop()) if make is _AsyncWaiter else make()
            self._waiting.append(waiter)
            return waiter

    def _give_up(self, waiter: _AsyncWaiter | _ThreadWaiter) -> bool:
        """A waiter stops waiting: True if it left the queue, False if it was granted a slot meanwhile."""
        with self._lock:
            try:
                self._waiting.remove(waiter)
                return True
            except ValueError:
                return False

    def _timed_out(self) -> Busy:
        return Busy(
            f"no generation slot came free within {self.timeout_s:g} s (ui.generation_timeout_s)",
            status=503,
            retry_after=self._retry_after(),
        )

    # -- acquire / release ----------------------------------------------------------------------
    def acquire(self, timeout: float | None = None) -> None:
        """Wait in this thread for a slot."""
        waiter = self._enter_or_queue(_ThreadWaiter)
        if waiter is None:
            return
        assert isinstance(waiter, _ThreadWaiter)
        if not waiter.event.wait(self.timeout_s if timeout is None else timeout) and self._give_up(waiter):
            raise self._timed_out()

    async def acquire_async(self) -> None:
        """Wait on the event loop for a slot (no thread is held while waiting)."""
        waiter = self._enter_or_queue(_AsyncWaiter)
        if waiter is None:
            return
        assert isinstance(waiter, _AsyncWaiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), self.timeout_s)
        except asyncio.TimeoutError:
            if self._give_up(waiter):
                raise self._timed_out() from None
        except BaseException:  # cancelled (the client went away): leave the queue or pass the slot on
            if not self._give_up(waiter):
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().grant()  # the slot passes straight to the next in line
            else:
                self._free += 1

    @contextlib.contextmanager
    def slot(self, timeout: float | None = None) -> Iterator[None]:
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Every slot, for changing the served model (attaching adapters); waits as long as it takes."""
        taken = 0
        try:
            for _ in range(self.slots):
                waiter = self._enter_or_queue_unbounded()
                if waiter is not None:
                    waiter.event.wait()
                taken += 1
            yield
        finally:
            for _ in range(taken):
                self.release()

    def _enter_or_queue_unbounded(self) -> _ThreadWaiter | None:
        with self._lock:
            if self._free > 0 and not self._waiting:
                self._free -= 1
                return None
            waiter = _ThreadWaiter()
            self._waiting.append(waiter)
            return waiter
