"""What the user sees while a build runs: one line per stage, a bar for long loops.

Why a tiny wrapper over rich: stages and training loops report through one object, so a
test (or the ``edge-finer build`` CLI) can pass a quiet console and nothing else changes.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Reporter:
    """Stage headers, notes and progress bars on a rich console."""

    def __init__(self, console: Console | None = None, total_stages: int = 0, prefix: str = "") -> None:
        self.console = console or Console(stderr=True)
        self.total = total_stages
        self.index = 0
        self.prefix = prefix  # names the worker process when several print to one console

    def stage(self, name: str, note: str = "") -> None:
        self.index += 1
        head = f"[{self.index}/{self.total}]" if self.total else "•"
        self.console.print(f"[bold cyan]{head}[/] [bold]{name}[/] {note}".rstrip())

    def note(self, text: str) -> None:
        self.console.print(f"    {self.prefix}{text}")

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator["Bar"]:
        progress = Progress(TextColumn("    {task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                            console=self.console, transient=False)
        with progress:
            task = progress.add_task(self.prefix + description, total=total, info="")
            yield Bar(progress, task, None if self.console.is_terminal else self.console)


class Bar:
    def __init__(self, progress: Progress, task: int, log: Console | None = None) -> None:
        self.progress, self.task = progress, task
        self.started = time.monotonic()
        self.log = log  # not a terminal (a log file): also print a line every tenth of the way
        self.done = 0

    def advance(self, n: int = 1, info: str = "") -> None:
        self.progress.update(self.task, advance=n, info=info)
        total = self.progress.tasks[0].total or 0
        before, self.done = self.done, self.done + n
        if self.log is not None and total >= 20 and (10 * self.done) // total != (10 * before) // total:
            desc = self.progress.tasks[0].description
            self.log.print(f"    {desc} {self.done}/{total} {info} ({time.monotonic() - self.started:.0f} s)")

    def finish(self, info: str = "") -> None:
        """Final note (the bar stays where the loop stopped, e.g. at a time cap)."""
        self.progress.update(self.task, info=info)
