"""Injected clocks: the wall clock by default, or the highest event time seen (KPI_CLOCK=event)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

ClockMode = Literal["wall", "event"]


def wall_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class KpiClock:
    """`now()` for KPI windows; `wall()` always reads the real (or injected) wall clock."""

    mode: ClockMode = "wall"
    wall: Callable[[], datetime] = wall_now
    high_water: datetime | None = field(default=None)

    def observe(self, event_time: datetime) -> None:
        if self.high_water is None or event_time > self.high_water:
            self.high_water = event_time

    def now(self) -> datetime:
        if self.mode == "event" and self.high_water is not None:
            return self.high_water
        return self.wall()
