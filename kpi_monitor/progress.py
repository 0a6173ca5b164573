"""A progress line on stderr: a redrawn bar on a terminal, else a plain line every N events."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

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


def _duration(seconds: float) -> str:
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Progress:
    """`update(line, done)` after each input record; `note(text)` for a message (it does not
    tear the bar); `finish()` at the end. On a terminal the bar is redrawn at most every
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
        self._shown = False  # a bar is on screen (so a note must clear it first)
        self._next_every = every
        self.line = 0
        self.done = 0

    def update(self, line: int, done: int) -> None:
        self.line, self.done = line, done
        if self._first:
            self._first = False
            self.started = self._drawn_at = self.clock()  # first drawn after `interval`: a rate
            return
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
        if self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False
            self._drawn_at = None  # redraw at the next update
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self._drawn_at is not None:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False

    def render(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = f"{self.done / elapsed:,.0f}/s"
        if not self.total:
            return f"publish {self.line:,} lines  {self.done:,} {self.verb}  {rate}"
        fraction = min(self.line / self.total, 1.0)
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        eta = _duration(elapsed * (1 - fraction) / fraction) if fraction > 0 else "?"
        return (
            f"publish [{bar}] {fraction:4.0%}  {self.line:,}/{self.total:,} lines  "
            f"{self.done:,} {self.verb}  {rate}  ETA {eta}"
        )

    def _draw(self, now: float) -> None:
        self.stream.write("\r\x1b[K" + self.render(now))
        self.stream.flush()
        self._drawn_at = now
        self._shown = True
