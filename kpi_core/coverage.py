"""Which retained periods may lack events when the input before some instant is gone (pure)."""

from __future__ import annotations

from datetime import date, datetime

from kpi_core.periods import PERIOD_KINDS, Calendar
from kpi_core.state import Horizon

__all__ = ["incomplete_periods"]


def incomplete_periods(
    calendar: Calendar, horizon: Horizon, before: datetime
) -> dict[str, tuple[date, date]]:
    """For each period kind, the first and last retained period that may miss an event which
    happened before ``before`` (the periods from the oldest retained one to the one containing
    ``before``); kinds with no such period are left out, so an empty answer means every
    retained figure is complete."""
    out: dict[str, tuple[date, date]] = {}
    for kind in PERIOD_KINDS:
        oldest = horizon.oldest[kind]
        last = min(calendar.start_of(kind, before), calendar.start_of(kind, horizon.now))
        if last >= oldest:
            out[kind] = (oldest, last)
    return out
