"""Bounded concurrency for the web API: annotation is CPU work, so a server that took every
request at once would only make all of them slow and its memory grow with the backlog.

At most ``workers`` requests run at once (threads: onnxruntime releases the GIL), at most
``queue`` more wait their turn, and a request beyond that is refused at once with
:class:`Busy` (HTTP 503 and a ``Retry-After`` estimated from recent run times).  A request
that waited ``queue_timeout`` seconds without starting is refused the same way, and one whose
client went away while waiting gives up its place.  Every admitted request gets exactly one
answer: its result, or Busy.

Only thread-safe primitives are used (no asyncio locks), so one gate serves any event loop,
as in tests that drive the app from several loops.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class Busy(Exception):
    """The server is at capacity; ``retry_after`` is a whole number of seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Gate:
    """A pool of ``workers`` threads with a waiting line of at most ``queue`` requests."""

    def __init__(self, workers: int = 2, queue: int = 16, queue_timeout: float = 30.0) -> None:
        if workers < 1 or queue < 0 or queue_timeout <= 0:
            raise ValueError("workers must be >= 1, queue >= 0 and queue_timeout > 0")
        self.workers, self.queue, self.queue_timeout = workers, queue, queue_timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edge-finer-worker")
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self._running = 0
        self._mean_s = 0.05  # moving average of run times, for Retry-After
        self.refused = 0

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"workers": self.workers, "running": self._running,
                    "queued": self._admitted - self._running, "queue": self.queue, "refused": self.refused}

    def _retry_after(self) -> int:
        waiting = max(0, self._admitted - self.workers) + 1
        return max(1, math.ceil(waiting * self._mean_s / self.workers))

    def _refuse(self, why: str) -> Busy:
        self.refused += 1
        return Busy(f"the server is busy ({why}); retry after the time in Retry-After", self._retry_after())

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread, or :class:`Busy` when the line is full or too slow."""
        with self._lock:
            if self._admitted >= self.workers + self.queue:
                raise self._refuse(f"{self.workers} running, {self.queue} waiting")
            self._admitted += 1
        try:
            cf: Future = self._pool.submit(self._timed, fn, *args)
        except RuntimeError:  # the pool is shut down: the server is stopping
            with self._lock:
                self._admitted -= 1
                raise self._refuse("stopping") from None
        cf.add_done_callback(self._release)
        af = asyncio.wrap_future(cf)
        try:
            done, _ = await asyncio.wait({af}, timeout=self.queue_timeout)
        except asyncio.CancelledError:  # the client went away: a job still waiting never runs
            cf.cancel()
            raise
        if not done and cf.cancel():  # never started: give its place back and say so
            with self._lock:
                raise self._refuse(f"waited {self.queue_timeout:g} s in the queue")
        return await af

    def _timed(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            self._running += 1
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            took = time.perf_counter() - t0
            with self._lock:
                self._running -= 1
                self._mean_s = 0.8 * self._mean_s + 0.2 * took

    def _release(self, _: Future) -> None:
        with self._lock:
            self._admitted -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
