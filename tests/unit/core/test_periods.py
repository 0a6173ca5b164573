"""Calendar periods: ISO weeks, months, fiscal quarters and years, DST-correct day bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import factories as f
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpi_core.periods import (
    PERIOD_KINDS,
    SLOT_SECONDS,
    Calendar,
    is_period_start,
    local_midnight,
    period_start,
    shift,
    slot_of,
    slot_start,
)

LONDON = Calendar(ZoneInfo("Europe/London"))
NEW_YORK = Calendar(ZoneInfo("America/New_York"))
SHANGHAI = Calendar(ZoneInfo("Asia/Shanghai"))
UTC_CAL = Calendar(ZoneInfo("UTC"))


# ---------------------------------------------------------------------------- period starts


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 11, 23), date(2026, 11, 23)),  # a Monday is its own week start
        (date(2026, 11, 29), date(2026, 11, 23)),  # Sunday belongs to the week from Monday
        (date(2026, 1, 1), date(2025, 12, 29)),  # ISO week 1 of 2026 starts in 2025
        (date(2024, 3, 1), date(2024, 2, 26)),  # across a leap-day month end
    ],
)
def test_iso_week_starts_on_monday(day: date, expected: date) -> None:
    assert period_start("week", day) == expected
    assert expected.weekday() == 0
    assert expected.isocalendar()[1] == day.isocalendar()[1]


@pytest.mark.parametrize(
    ("day", "month", "quarter", "year"),
    [
        (date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1)),
        (date(2026, 3, 31), date(2026, 3, 1), date(2026, 1, 1), date(2026, 1, 1)),
        (date(2026, 4, 1), date(2026, 4, 1), date(2026, 4, 1), date(2026, 1, 1)),
        (date(2026, 11, 23), date(2026, 11, 1), date(2026, 10, 1), date(2026, 1, 1)),
        (date(2024, 2, 29), date(2024, 2, 1), date(2024, 1, 1), date(2024, 1, 1)),
    ],
)
def test_calendar_year_starts(day: date, month: date, quarter: date, year: date) -> None:
    assert period_start("day", day) == day
    assert period_start("month", day) == month
    assert period_start("quarter", day) == quarter
    assert period_start("year", day) == year


@pytest.mark.parametrize(
    ("day", "quarter", "year"),
    [
        (date(2026, 4, 1), date(2026, 4, 1), date(2026, 4, 1)),
        (date(2026, 6, 30), date(2026, 4, 1), date(2026, 4, 1)),
        (date(2026, 7, 1), date(2026, 7, 1), date(2026, 4, 1)),
        (date(2026, 12, 31), date(2026, 10, 1), date(2026, 4, 1)),
        (date(2027, 1, 15), date(2027, 1, 1), date(2026, 4, 1)),
        (date(2027, 3, 31), date(2027, 1, 1), date(2026, 4, 1)),
        (date(2026, 3, 31), date(2026, 1, 1), date(2025, 4, 1)),
    ],
)
def test_fiscal_year_from_april(day: date, quarter: date, year: date) -> None:
    assert period_start("quarter", day, 4) == quarter
    assert period_start("year", day, 4) == year
    assert period_start("month", day, 4) == day.replace(day=1)  # months do not move


@pytest.mark.parametrize(
    ("day", "quarter", "year"),
    [
        (date(2026, 10, 1), date(2026, 10, 1), date(2026, 10, 1)),
        (date(2026, 12, 31), date(2026, 10, 1), date(2026, 10, 1)),
        (date(2027, 1, 1), date(2027, 1, 1), date(2026, 10, 1)),
        (date(2027, 5, 20), date(2027, 4, 1), date(2026, 10, 1)),
        (date(2027, 9, 30), date(2027, 7, 1), date(2026, 10, 1)),
        (date(2026, 9, 30), date(2026, 7, 1), date(2025, 10, 1)),
    ],
)
def test_fiscal_year_from_october(day: date, quarter: date, year: date) -> None:
    assert period_start("quarter", day, 10) == quarter
    assert period_start("year", day, 10) == year


def test_fiscal_calendar_applies_to_instants() -> None:
    cal = Calendar(ZoneInfo("Europe/London"), fiscal_start_month=4)
    instant = datetime(2027, 2, 10, 12, tzinfo=UTC)
    assert cal.start_of("year", instant) == date(2026, 4, 1)
    assert cal.start_of("quarter", instant) == date(2027, 1, 1)
    assert cal.days_in("year", date(2026, 4, 1)) == 365
    assert cal.days_in("quarter", date(2026, 4, 1)) == 91


def test_shift_and_unknown_kind() -> None:
    assert shift("month", date(2026, 1, 1), -1) == date(2025, 12, 1)
    assert shift("quarter", date(2026, 10, 1), 1) == date(2027, 1, 1)
    assert shift("year", date(2026, 4, 1), -2) == date(2024, 4, 1)
    assert shift("week", date(2026, 11, 23), -1) == date(2026, 11, 16)
    assert is_period_start("month", date(2026, 11, 1))
    assert not is_period_start("week", date(2026, 11, 24))
    with pytest.raises(ValueError, match="allowed: day, week, month, quarter, year"):
        period_start("fortnight", date(2026, 1, 1))
    with pytest.raises(ValueError, match="allowed"):
        shift("decade", date(2026, 1, 1), 1)


# ---------------------------------------------------------------------------- DST-correct bounds


def _hours(cal: Calendar, kind: str, start: date) -> float:
    begin, end = cal.bounds(kind, start)
    return (end - begin).total_seconds() / 3600


@pytest.mark.parametrize(
    ("cal", "day", "hours"),
    [
        (NEW_YORK, date(2026, 11, 1), 25),  # fall back
        (LONDON, date(2026, 10, 25), 25),
        (NEW_YORK, date(2026, 3, 8), 23),  # spring forward
        (LONDON, date(2026, 3, 29), 23),
        (NEW_YORK, date(2026, 11, 2), 24),
        (LONDON, date(2026, 11, 23), 24),
    ],
)
def test_day_bounds_across_dst(cal: Calendar, day: date, hours: int) -> None:
    begin, end = cal.bounds("day", day)
    assert _hours(cal, "day", day) == hours
    # Both ends are local midnights of consecutive dates.
    assert begin.astimezone(cal.zone).replace(tzinfo=None) == datetime(day.year, day.month, day.day)
    nxt = day + timedelta(days=1)
    assert end.astimezone(cal.zone).replace(tzinfo=None) == datetime(nxt.year, nxt.month, nxt.day)
    assert begin.tzinfo is UTC and end.tzinfo is UTC


def test_new_york_fall_back_bounds_in_utc() -> None:
    begin, end = NEW_YORK.bounds("day", date(2026, 11, 1))
    assert begin == f.utc(2026, 11, 1, 4)  # EDT midnight
    assert end == f.utc(2026, 11, 2, 5)  # EST midnight


def test_month_bounds_contain_the_dst_hour() -> None:
    assert _hours(LONDON, "month", date(2026, 10, 1)) == 31 * 24 + 1
    assert _hours(LONDON, "month", date(2026, 3, 1)) == 31 * 24 - 1
    assert _hours(LONDON, "year", date(2026, 1, 1)) == 365 * 24


def test_elapsed_fraction_counts_real_seconds_on_a_25_hour_day() -> None:
    day = date(2026, 11, 1)
    # 12:00 local (EST) is 13 real hours after EDT midnight.
    noon = datetime(2026, 11, 1, 12, tzinfo=NEW_YORK.zone)
    elapsed, length = NEW_YORK.elapsed_fraction("day", day, noon)
    assert (elapsed, length) == (13 * 3600 * 10**6, 25 * 3600 * 10**6)
    # Clamped to [0, length].
    assert NEW_YORK.elapsed_fraction("day", day, f.utc(2026, 10, 1))[0] == 0
    assert NEW_YORK.elapsed_fraction("day", day, f.utc(2026, 12, 1))[0] == length


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("America/Santiago", date(2026, 9, 6)),  # DST starts at midnight: 00:00 does not exist
        ("America/Havana", date(2026, 3, 8)),
    ],
)
def test_skipped_midnight_starts_the_day_at_its_first_real_instant(zone: str, day: date) -> None:
    tz = ZoneInfo(zone)
    begin = local_midnight(day, tz)
    assert begin.astimezone(tz).date() == day
    assert (begin - timedelta(microseconds=1)).astimezone(tz).date() == day - timedelta(days=1)
    assert begin.astimezone(tz).hour == 1
    assert _hours(Calendar(tz), "day", day) == 23


# ---------------------------------------------------------------------------- time zone of events


def test_shanghai_early_morning_event_belongs_to_the_local_day() -> None:
    instant = datetime.fromisoformat("2026-05-31T17:30:00+00:00")
    assert instant.astimezone(SHANGHAI.zone).hour == 1  # 01:30 local on 2026-06-01
    assert SHANGHAI.start_of("day", instant) == date(2026, 6, 1)
    assert SHANGHAI.start_of("month", instant) == date(2026, 6, 1)
    assert SHANGHAI.start_of("quarter", instant) == date(2026, 4, 1)
    assert UTC_CAL.start_of("day", instant) == date(2026, 5, 31)
    assert UTC_CAL.start_of("month", instant) == date(2026, 5, 1)


def test_shanghai_event_lands_in_the_local_buckets_of_a_report() -> None:
    event = f.visit("2026-06-01T01:30:00+08:00", rep="r-sh")
    now = f.utc(2026, 6, 2, 12)
    shanghai = f.report([event], f.rules(timezone="Asia/Shanghai"), now=now)
    assert f.row(shanghai, "day", "2026-06-01", "r-sh")["visits"] == 1
    assert f.row(shanghai, "month", "2026-06-01", "r-sh")["visits"] == 1
    utc_doc = f.report([event], f.rules(timezone="UTC"), now=now)
    assert f.row(utc_doc, "day", "2026-05-31", "r-sh")["visits"] == 1
    assert f.row(utc_doc, "month", "2026-05-01", "r-sh")["visits"] == 1


def test_slots_are_fifteen_utc_minutes() -> None:
    at = f.utc(2026, 11, 23, 10, 7, 30)
    slot = slot_of(at)
    assert slot_start(slot) == f.utc(2026, 11, 23, 10, 0)
    assert slot_start(slot + 1) - slot_start(slot) == timedelta(seconds=SLOT_SECONDS)


# ---------------------------------------------------------------------------- properties

dates = st.dates(min_value=date(1901, 1, 1), max_value=date(2199, 12, 31))
kinds = st.sampled_from(PERIOD_KINDS)
fiscal = st.integers(min_value=1, max_value=12)


@settings(max_examples=100, deadline=None)
@given(day=dates, kind=kinds, fiscal_month=fiscal)
def test_period_start_properties(day: date, kind: str, fiscal_month: int) -> None:
    start = period_start(kind, day, fiscal_month)
    assert period_start(kind, start, fiscal_month) == start  # idempotent
    nxt = shift(kind, start, 1)
    assert start <= day < nxt
    assert shift(kind, nxt, -1) == start
    assert period_start(kind, nxt, fiscal_month) == nxt  # the next period starts where this ends
    if kind in ("quarter", "year"):
        assert start.day == 1
        assert (start.month - fiscal_month) % (3 if kind == "quarter" else 12) == 0


@settings(max_examples=60, deadline=None)
@given(
    day=st.dates(min_value=date(1971, 1, 1), max_value=date(2099, 12, 31)),
    kind=kinds,
    zone=st.sampled_from(
        ["Europe/London", "America/New_York", "Asia/Shanghai", "Australia/Lord_Howe", "UTC"]
    ),
)
def test_bounds_tile_the_timeline(day: date, kind: str, zone: str) -> None:
    cal = Calendar(ZoneInfo(zone))
    start = period_start(kind, day)
    begin, end = cal.bounds(kind, start)
    assert begin < end
    assert cal.bounds(kind, shift(kind, start, 1))[0] == end  # no gap, no overlap
    assert cal.start_of(kind, begin) == start
    assert cal.start_of(kind, end - timedelta(microseconds=1)) == start


# Zones with 30- and 45-minute offsets and half-hour DST shifts, besides the usual ones.
_ODD_ZONES = [
    "Europe/London",
    "America/New_York",
    "Asia/Kathmandu",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
    "Australia/Eucla",
]


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(_ODD_ZONES),
    st.integers(1, 12),
)
def test_the_cached_slot_plan_equals_the_events_own_local_periods(
    at: datetime, zone_name: str, fiscal_start: int
) -> None:
    """The hot path converts a slot, not each event, to local periods: valid because every UTC
    offset in use is a multiple of 15 minutes, so a slot never straddles a local midnight."""
    from kpi_core.state import period_keys, slot_plan

    zone = ZoneInfo(zone_name)
    slot = int(at.timestamp()) // SLOT_SECONDS
    name, keys = slot_plan(slot, zone, fiscal_start)
    assert name == f"b|slot|{slot}"
    assert keys == period_keys(at.astimezone(zone).date(), fiscal_start)


@pytest.mark.parametrize("zone_name", _ODD_ZONES)
def test_no_slot_of_a_year_straddles_a_local_midnight(zone_name: str) -> None:
    """Every slot of 2026 (DST changes included): its first and last second share a local date."""
    zone = ZoneInfo(zone_name)
    first = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) // SLOT_SECONDS
    for slot in range(first, first + 366 * 96):
        begin = datetime.fromtimestamp(slot * SLOT_SECONDS, tz=zone)
        end = datetime.fromtimestamp(slot * SLOT_SECONDS + SLOT_SECONDS - 1, tz=zone)
        assert begin.date() == end.date(), (zone_name, begin, end)
