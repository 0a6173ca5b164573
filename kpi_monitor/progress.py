"""Publish progress on stderr: a rich bar on a terminal, else a plain line every N events."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from rich import progress as rp
from rich.console import Console
from rich.text import Text

BAR_WIDTH = 24


def count_lines(path: Path) -> int | None:
    """Lines of a regular file (the progress bar's total), or None when its size is unknown
    (a pipe, a process substitution)."""
    try:
        if not path.is_file():
            return None
        count, last = 0, b"\n"
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError:
        return None
    return count + (last != b"\n")


class EventRate(rp.ProgressColumn):
    """Events (not lines) per second since the first record: a refused line is not sent."""

    def render(self, task: rp.Task) -> Text:
        elapsed = task.elapsed or 0.0
        done = int(task.fields.get("done", 0))
        return Text(f"{done / elapsed:,.0f}/s" if elapsed > 0 else "?/s", style="progress.data.speed")


def _columns(verb: str, known_total: bool) -> list[str | rp.ProgressColumn]:
    done = rp.TextColumn(f"{{task.fields[done]:,}} {verb}")
    if not known_total:
        return ["publish", rp.TextColumn("{task.completed:,.0f} lines"), done, EventRate()]
    return [
        "publish",
        rp.BarColumn(bar_width=BAR_WIDTH),
        rp.TaskProgressColumn(),
        rp.TextColumn("{task.completed:,.0f}/{task.total:,.0f} lines"),
        done,
        EventRate(),
        "ETA",
        rp.TimeRemainingColumn(),
    ]


class Progress:
    """`update(line, done)` after each input record; `note(text)` for a message (printed above
    the bar, which stays); `finish()` at the end. On a terminal the bar is redrawn at most every
    `interval` seconds; elsewhere (a log file, CI) one line is written every `every` events."""

    def __init__(
        self,
        verb: str,
        total_lines: int | None,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float = 0.25,
        every: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verb = verb
        self.total = total_lines
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.every = every
        self.clock = clock
        self.started = clock()
        self._first = True  # the clock starts at the first record, not while Kafka connects
        self._drawn_at: float | None = None
        self._next_every = every
        self.line = 0
        self.done = 0
        self.console = Console(file=self.stream, force_terminal=self.tty, highlight=False)
        # Redrawn by `update` (no refresh thread), so "at most every `interval`" holds exactly;
        # the stderr redirect puts other writers' lines (logging) above the bar too.
        self.bar = rp.Progress(
            *_columns(verb, bool(total_lines)),
            console=self.console,
            auto_refresh=False,
            get_time=clock,
            redirect_stdout=False,
            redirect_stderr=self.stream is sys.stderr,
        )
        self.task = self.bar.add_task("publish", total=total_lines or None, start=False, done=0)

    def update(self, line: int, done: int) -> None:
        self.line, self.done = line, done
        if self._first:
            self._first = False
            self.started = self._drawn_at = self.clock()  # first drawn after `interval`: a rate
            self.bar.start_task(self.task)
            self.bar.update(self.task, completed=line, done=done)  # the first sample of the rate
        if self.tty:
            now = self.clock()
            if self._drawn_at is None or now - self._drawn_at >= self.interval:
                self._draw(now)
        elif done >= self._next_every:
            self._next_every = (done // self.every + 1) * self.every
            elapsed = max(self.clock() - self.started, 1e-9)
            self.stream.write(f"publish: {done} {self.verb} ({done / elapsed:,.0f}/s)\n")
            self.stream.flush()

    def note(self, text: str) -> None:
        if self.tty:
            # above the live bar (rich redraws it below), never wrapped or read as markup
            self.console.print(text, markup=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.tty and not self._first:
            self.bar.update(self.task, completed=self.line, done=self.done)
            if not self.bar.live.is_started:
                self.bar.live.start(refresh=False)
            self.bar.stop()  # draws the final figures and leaves them on their own line

    def _draw(self, now: float) -> None:
        # the bar's figures are set only when drawn: rich's update costs more than a record
        self.bar.update(self.task, completed=self.line, done=self.done)
        if self.bar.live.is_started:
            self.bar.refresh()
        else:
            self.bar.start()  # draws
        self._drawn_at = now
