"""Which retained periods may miss events when the input before an instant is gone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from kpi_core.coverage import incomplete_periods
from kpi_core.periods import PERIOD_KINDS, Calendar
from kpi_core.state import Horizon

LONDON = Calendar(ZoneInfo("Europe/London"))
KEEP = {"hour": 72, "day": 400, "week": 60, "month": 26, "quarter": 10, "year": 3}
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
HORIZON = Horizon.at(NOW, LONDON, KEEP)


def test_input_lost_only_before_every_retained_period_leaves_nothing_incomplete() -> None:
    assert incomplete_periods(LONDON, HORIZON, HORIZON.earliest_instant - timedelta(seconds=1)) == {}


def test_input_lost_up_to_now_makes_every_retained_period_incomplete() -> None:
    out = incomplete_periods(LONDON, HORIZON, NOW)
    assert out["month"] == (date(2024, 10, 1), date(2026, 11, 1))
    assert out["year"] == (date(2024, 1, 1), date(2026, 1, 1))
    assert out["day"][1] == date(2026, 11, 23) and set(out) == set(PERIOD_KINDS)
    # An instant after now (a clock behind the input's time stamps) stops at the current period.
    assert incomplete_periods(LONDON, HORIZON, NOW + timedelta(days=40)) == out


def test_the_period_holding_the_instant_and_the_older_retained_ones() -> None:
    # 2026-03-01 00:30 UTC is 00:30 in London (GMT): Sunday 1 March, in ISO week 2026-02-23.
    out = incomplete_periods(LONDON, HORIZON, datetime(2026, 3, 1, 0, 30, tzinfo=UTC))
    assert out == {
        "day": (date(2025, 10, 20), date(2026, 3, 1)),
        "week": (date(2025, 10, 6), date(2026, 2, 23)),
        "month": (date(2024, 10, 1), date(2026, 3, 1)),
        "quarter": (date(2024, 7, 1), date(2026, 1, 1)),
        "year": (date(2024, 1, 1), date(2026, 1, 1)),
    }
    # Lost before 2025-06-15: the days and weeks kept all start later.
    assert set(incomplete_periods(LONDON, HORIZON, datetime(2025, 6, 15, tzinfo=UTC))) == {
        "month",
        "quarter",
        "year",
    }


@given(st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)))
def test_a_period_is_flagged_exactly_when_retained_and_starting_before_the_instant(before: datetime) -> None:
    out = incomplete_periods(LONDON, HORIZON, before)
    for kind in PERIOD_KINDS:
        current = LONDON.start_of(kind, NOW)
        oldest = HORIZON.oldest[kind]
        holding = LONDON.start_of(kind, before)
        if kind not in out:
            assert holding < oldest  # every retained period starts after the lost input
            continue
        first, last = out[kind]
        assert first == oldest and last == min(holding, current)
        assert LONDON.bounds(kind, last)[0] <= max(before, LONDON.bounds(kind, current)[0])
