"""Training a teacher's ensemble members side by side, one worker process each.

Why processes and not a bigger thread pool: a member is one small model, and torch's intra-op
threads scale poorly on it (two threads on two cores ran a student's batches 1.3x faster than
one, and collapse when anything else holds a core; :func:`quantize.train.build_threads`), while
members are independent — each is seeded only from its own seed (:func:`quantize.train.fit`,
:func:`quantize.wordtagger.train_word_tagger` keep their own generators), so a member trained in
a worker is the member trained in line, up to where its time cap stops it. Two one-thread
workers on two cores train two members in the time of one: the teacher stage, most of a build,
takes half the wall-clock time.

Workers are started with ``spawn``, never ``fork``: a process forked after torch's OpenMP pool or
the tokenizers' Rayon pool has run can hang, and ``spawn`` behaves the same on every platform.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from queue import Empty
from typing import Any, Callable, Sequence

from .train import idle_cores


@dataclass(frozen=True)
class MemberJob:
    """One ensemble member to train: ``kind`` "subword" (a :mod:`quantize.teacher` model) or
    "word" (a :mod:`quantize.wordtagger` model), its ``index`` among its kind, its ``seed`` and
    its time cap in ``minutes`` (0 = none), by which workers take the longest first."""

    kind: str
    index: int
    seed: int
    minutes: float


def worker_count(jobs: int, threads: int, members: int) -> int:
    """Workers for ``members`` members: ``jobs``, or with 0 as many ``threads``-thread workers
    as the idle cores hold; never more than there are members, at least one."""
    if jobs <= 0:
        jobs = max(1, idle_cores() // max(1, threads))
    return max(1, min(jobs, members))


def longest_first(jobs: Sequence[MemberJob]) -> list[MemberJob]:
    """The order workers take jobs in: the longest time cap first (ties in the given order), the
    simple schedule that keeps one worker from finishing long after the others."""
    return sorted(jobs, key=lambda j: -j.minutes if j.minutes > 0 else float("-inf"))


class _LineWriter:
    """A text file for a worker's rich console that sends whole lines to the parent's queue."""

    def __init__(self, queue: Any) -> None:
        self.queue, self.pending = queue, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.queue.put(line)
        return len(text)

    def flush(self) -> None:
        pass


_lines: Any = None  # in a worker: the queue its output goes to


def _start_worker(queue: Any) -> None:
    global _lines
    _lines = queue


def worker_output() -> _LineWriter | None:
    """In a worker of :func:`run_in_workers`: a file whose lines the parent prints; else None."""
    return _LineWriter(_lines) if _lines is not None else None


def run_in_workers(task: Callable[..., Any], args: Callable[[MemberJob], tuple[Any, ...]],
                   jobs: Sequence[MemberJob], workers: int, echo: Callable[[str], None]) -> dict[MemberJob, Any]:
    """``task(*args(job))`` for every job in ``workers`` spawned processes; their results by job.

    ``task`` must be a module-level function and its arguments picklable; what workers write to
    :func:`worker_output` reaches ``echo`` line by line while they run.  The first failure
    cancels the jobs not yet started and is raised once the running ones stop."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                               initargs=(queue,))
    futures: dict[Future[Any], MemberJob] = {}

    def relay() -> None:
        while True:
            try:
                echo(queue.get_nowait())
            except Empty:
                return

    try:
        for job in longest_first(jobs):
            futures[pool.submit(task, *args(job))] = job
        pending: set[Future[Any]] = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            relay()
            for future in done:
                if future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
        return {job: future.result() for future, job in futures.items()}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        relay()
