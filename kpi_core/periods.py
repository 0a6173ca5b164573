"""Calendar periods (day, ISO week, month, fiscal quarter, year) in an IANA time zone, DST-safe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from kpi_rules.vocabulary import PeriodKind

PERIOD_KINDS: tuple[PeriodKind, ...] = tuple(PeriodKind)
# Fine buckets of 15 minutes on the UTC epoch: every real UTC offset is a multiple of 15 minutes,
# so slots tile every local day exactly; they give the day period its like-for-like comparison.
SLOT_SECONDS = 900
_MONTHS_IN = {"month": 1, "quarter": 3, "year": 12}


def _add_months(d: date, months: int) -> date:
    index = d.year * 12 + (d.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


@lru_cache(maxsize=65536)
def period_start(kind: str, day: date, fiscal_start_month: int = 1) -> date:
    """First local date of the period of `kind` that contains local date `day`."""
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    if kind in ("quarter", "year"):
        months_into_year = (day.month - fiscal_start_month) % 12
        fiscal_year_start = _add_months(day.replace(day=1), -months_into_year)
        if kind == "year":
            return fiscal_year_start
        return _add_months(fiscal_year_start, (months_into_year // 3) * 3)
    raise ValueError(f"unknown period kind {kind!r}; allowed: {', '.join(PERIOD_KINDS)}")


def shift(kind: str, start: date, periods: int) -> date:
    """The start of the period `periods` away from the one starting at `start`."""
    if kind == "day":
        return start + timedelta(days=periods)
    if kind == "week":
        return start + timedelta(days=7 * periods)
    if kind in _MONTHS_IN:
        return _add_months(start, _MONTHS_IN[kind] * periods)
    raise ValueError(f"unknown period kind {kind!r}; allowed: {', '.join(PERIOD_KINDS)}")


def is_period_start(kind: str, day: date, fiscal_start_month: int = 1) -> bool:
    return period_start(kind, day, fiscal_start_month) == day


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of local date `day` (the earliest one if midnight is skipped by DST)."""
    naive = datetime(day.year, day.month, day.day)
    aware = naive.replace(tzinfo=zone).astimezone(UTC)
    # If midnight does not exist (a DST jump at 00:00), the conversion lands after the gap;
    # step back to the real first instant of the day.
    while (aware - timedelta(minutes=15)).astimezone(zone).date() == day:
        aware -= timedelta(minutes=15)
    return aware


@dataclass(frozen=True, slots=True)
class Calendar:
    """Period arithmetic bound to one business time zone and fiscal year start."""

    zone: ZoneInfo
    fiscal_start_month: int = 1

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def start_of(self, kind: str, instant: datetime) -> date:
        return period_start(kind, self.local_date(instant), self.fiscal_start_month)

    def bounds(self, kind: str, start: date) -> tuple[datetime, datetime]:
        """UTC instants [start, end) of the period of `kind` beginning on local date `start`."""
        return _bounds(self.zone, kind, start)

    def elapsed_fraction(self, kind: str, start: date, now: datetime) -> tuple[int, int]:
        """(elapsed, length) in microseconds of the period at `now`, clamped to [0, length]."""
        begin, end = self.bounds(kind, start)
        length = _micros(end - begin)
        elapsed = min(max(_micros(now - begin), 0), length)
        return elapsed, length

    def days_in(self, kind: str, start: date) -> int:
        return (shift(kind, start, 1) - start).days


@lru_cache(maxsize=65536)
def _bounds(zone: ZoneInfo, kind: str, start: date) -> tuple[datetime, datetime]:
    return local_midnight(start, zone), local_midnight(shift(kind, start, 1), zone)


def _micros(delta: timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def slot_of(instant: datetime) -> int:
    return int(instant.timestamp()) // SLOT_SECONDS


def slot_start(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, tz=UTC)
