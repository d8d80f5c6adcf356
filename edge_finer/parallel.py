"""An ordered map over worker processes: how ``annotate --workers N`` uses every core.

Why processes and not threads: the models are so small that onnxruntime splits one call badly
across threads (a second thread made one-sentence calls 40 % slower), so the only way to use N
cores is N processes, each with one single-threaded session.  Why "spawn": an onnxruntime
session must never be shared across ``fork``; a spawned worker starts clean and loads its
annotator once, in the pool's initializer.

Results come back in the order the items went in, so whatever is written from them is byte for
byte what one process writes.  At most ``window`` items are in flight, so a corpus never has to
fit in memory.  Workers ignore Ctrl-C (the parent stops them: no traceback from N processes),
and each watches its parent, exiting if it disappears (a SIGKILLed parent leaves no orphan
working on).  A worker that dies (SIGKILL, out of memory) ends the run with
:class:`WorkerError`; the outputs already written are whole, so ``--resume`` continues.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

if TYPE_CHECKING:  # the pool is imported only when there is more than one worker (cold start)
    from concurrent.futures import ProcessPoolExecutor

from .errors import EdgeFinerError

#: Most worker processes one command may start.
MAX_WORKERS = 1024


_DIED = ("a worker process died (killed, or out of memory); the outputs written so far are complete: "
         "rerun with --resume to finish")


class WorkerError(EdgeFinerError):
    """A worker process died or could not start; the run cannot finish as one."""


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count: a container
    or ``taskset`` limits it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def parse_workers(value: str | int | None) -> int:
    """``--workers`` as a count: a whole number ≥ 1, or ``auto`` for the usable cores."""
    text = "1" if value is None else str(value).strip().lower()
    if text == "auto":
        return usable_cores()
    try:
        n = int(text)
    except ValueError:
        raise EdgeFinerError(f"--workers takes a number of processes or 'auto', not {value!r}") from None
    if not 1 <= n <= MAX_WORKERS:
        raise EdgeFinerError(f"--workers must be between 1 and {MAX_WORKERS}, not {n}")
    return n


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (what a worker reports)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


@dataclass(frozen=True)
class Local:
    """An item already answered in the parent (an unreadable file, an output to skip): it
    passes through in order without a round trip to a worker."""

    value: Any


@dataclass
class PoolStats:
    """What the workers reported: peak memory (MB) per worker process, items done."""

    workers: int = 0
    peak_mb: dict[int, float] = field(default_factory=dict)
    done: int = 0

    def memory_line(self) -> str:
        if not self.peak_mb:
            return f"{self.workers} worker processes"
        vals = sorted(self.peak_mb.values())
        return (f"{self.workers} worker processes, peak memory per worker {vals[0]:.0f}"
                + (f"-{vals[-1]:.0f}" if round(vals[-1]) != round(vals[0]) else "") + " MB")


class InterruptLatch:
    """Ctrl-C that a run cannot lose: the SIGINT is remembered as well as raised.

    Python prints and drops a KeyboardInterrupt that lands while a finalizer runs (a closed
    generator, a ``__del__``), so a long run could carry on to the end after the user pressed
    Ctrl-C.  :meth:`check` raises it again at the next safe point.  Installed only over
    Python's own handler, from the main thread (a process that ignores SIGINT, as a background
    job does, or an application with its own handler keeps it); the old handler comes back on
    exit.
    """

    def __init__(self) -> None:
        self.hit = False
        self._old: Any = None  # the handler replaced; None: none was

    def __enter__(self) -> "InterruptLatch":
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.hit = True
        raise KeyboardInterrupt

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C came, even if its first raise was swallowed."""
        if self.hit:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def interruptible(items: Iterable[Any]) -> Iterator[Any]:
    """``items``, with a Ctrl-C during the work on one raised before the next is handed out (and
    after the last): the input loop of ``annotate``, one process or many."""
    with InterruptLatch() as latch:
        for item in items:
            latch.check()
            yield item
        latch.check()


# -- the worker side --------------------------------------------------------------------------

_task: Callable[[Any], Any] | None = None
_init_error: BaseException | None = None


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.25)
        if os.getppid() != parent:
            os._exit(1)


def _child_init(parent: int, init: Callable[..., Callable[[Any], Any]], args: tuple) -> None:
    global _task, _init_error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    try:
        _task = init(*args)
    except Exception as exc:  # reported with the first item, as one line, not a traceback
        _init_error = exc


def _child_run(payload: Any) -> tuple[int, float, Any]:
    if _init_error is not None:
        raise _init_error
    assert _task is not None
    return os.getpid(), peak_rss_mb(), _task(payload)


# -- the parent side --------------------------------------------------------------------------


def _stop(pool: "ProcessPoolExecutor") -> None:
    """Stop the workers now: they ignore SIGINT, so they are terminated, then killed.

    Then the pool's manager thread is waited for: left running, it closes its wake-up pipe while
    the interpreter's exit hook writes to it (CPython 3.11 checks and writes without a lock), and
    a Ctrl-C ended with "Exception ignored in: <module 'threading'> ... Bad file descriptor"."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        try:
            p.terminate()
        except Exception:
            pass
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1)
        except Exception:
            pass
    if manager is not None and manager is not threading.current_thread():
        manager.join(max(1.0, deadline - time.monotonic()))


def ordered_map(items: Iterable[tuple[Any, Any]], init: Callable[..., Callable[[Any], Any]], init_args: tuple,
                workers: int, *, window: int | None = None, stats: PoolStats | None = None
                ) -> Iterator[tuple[Any, Any]]:
    """``(meta, result)`` for each ``(meta, payload)`` of ``items``, in their order.

    ``init(*init_args)`` runs once in each worker and returns the function applied to each
    payload there (it and its arguments must pickle).  A payload wrapped in :class:`Local`
    is passed through as is.  An exception raised for one payload is yielded as its result
    (the caller decides whether it ends the run); a dead worker raises :class:`WorkerError`.
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    window = window or 2 * workers + 2
    if stats is not None:
        stats.workers = workers
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_child_init,
                               initargs=(os.getpid(), init, init_args))
    pending: deque[tuple[Any, Any]] = deque()  # (meta, Future or Local)
    source = iter(items)
    finished = False
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    meta, payload = next(source)
                except StopIteration:
                    exhausted = True
                    break
                try:
                    fut = payload if isinstance(payload, Local) else pool.submit(_child_run, payload)
                except BrokenProcessPool:  # a worker died before this item was handed out
                    raise WorkerError(_DIED) from None
                pending.append((meta, fut))
            if not pending:
                break
            meta, fut = pending.popleft()
            if isinstance(fut, Local):
                yield meta, fut.value
                continue
            try:
                pid, peak, value = fut.result()
            except BrokenProcessPool:
                raise WorkerError(_DIED) from None
            except Exception as exc:
                value = exc
            else:
                if stats is not None:
                    stats.peak_mb[pid] = max(peak, stats.peak_mb.get(pid, 0.0))
                    stats.done += 1
            yield meta, value
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop(pool)
