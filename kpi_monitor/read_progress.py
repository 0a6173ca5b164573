"""Progress on stderr while `report` reads a large event file: a byte bar on a terminal, nothing
in a log (the summary line says how much was read)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from rich import progress as rp
from rich.console import Console

EVERY_LINES = 2_000  # lines between two looks at the clock: cheap next to decoding a line
INTERVAL = 0.25  # seconds between two redraws


class ReadProgress:
    """`lines(handle, label)` yields the handle's lines and draws how far into the file it is."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.lines_read = 0
        self.started = time.monotonic()

    def lines(self, handle: BinaryIO, label: str) -> Iterator[bytes]:
        total = _size(handle)
        self.lines_read = 0  # the last pass's (the event clock reads the file twice)
        if not self.tty or total is None:
            for line in handle:
                self.lines_read += 1
                yield line
            return
        console = Console(file=self.stream, force_terminal=True, highlight=False)
        bar = rp.Progress(
            rp.TextColumn(label),
            rp.BarColumn(bar_width=30),
            rp.DownloadColumn(),
            rp.TransferSpeedColumn(),
            rp.TimeRemainingColumn(),
            console=console,
            auto_refresh=False,
            transient=True,
        )
        task = bar.add_task(label, total=total)
        drawn = 0.0
        with bar:
            for count, line in enumerate(handle, 1):
                self.lines_read += 1
                if count % EVERY_LINES == 0 and (now := time.monotonic()) - drawn >= INTERVAL:
                    bar.update(task, completed=handle.tell())
                    bar.refresh()
                    drawn = now
                yield line

    def summary(self) -> str:
        return f"read {self.lines_read:,} lines in {time.monotonic() - self.started:.1f}s"


def _size(handle: BinaryIO) -> int | None:
    try:
        if not handle.seekable():
            return None
        here = handle.tell()
        end = handle.seek(0, 2)
        handle.seek(here)
        return end
    except OSError:
        return None
