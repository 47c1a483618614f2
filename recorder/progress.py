"""Progress of long commands (rebuild, recover, verify, replay) on stderr.

On a terminal a ``rich`` progress bar (a spinner when the total is unknown) with a note of
what is being worked on; log lines print above it. Otherwise (cron, a pipe, tests) plain
lines: what the command logs, a progress line at most every ``every`` seconds, and none of
the bar's redrawing.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


class Steps:
    """``with Steps("rebuild 2026-01-01", total=12, unit="runs") as p: p.advance(note=...)``."""

    def __init__(self, what: str, total: int | None = None, *, unit: str = "",
                 out: TextIO | None = None, every: float = 10.0,
                 console: Console | None = None) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.out = out or sys.stderr
        self.console = console or Console(file=self.out, highlight=False)
        self.tty = self.console.is_terminal
        self.every = every
        self.done = 0
        self.note = ""
        self._last_line = time.monotonic()
        self._bar: Progress | None = None
        self._task: int | None = None

    def __enter__(self) -> Steps:
        if self.tty:
            cols = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24)]
            cols += [MofNCompleteColumn()] if self.total is not None else []
            cols += [TextColumn(self.unit), TimeElapsedColumn(),
                     TextColumn("[dim]{task.fields[note]}")]
            self._bar = Progress(*cols, console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total, note="")
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)  # type: ignore[arg-type]

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        self.update(note)

    def update(self, note: str = "", done: int | None = None) -> None:
        if done is not None:
            self.done = done
        if note:
            self.note = note
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done, note=self.note)  # type: ignore[arg-type]
            return
        now = time.monotonic()
        if now - self._last_line >= self.every:
            self._last_line = now
            of = f"/{self.total}" if self.total is not None else ""
            print(f"{self.what}: {self.done}{of} {self.unit} {self.note}".rstrip(),
                  file=self.out, flush=True)

    def log(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, highlight=False, soft_wrap=True)
        else:
            print(line, file=self.out, flush=True)
