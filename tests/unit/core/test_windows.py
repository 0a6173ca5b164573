"""Windows (current / previous / previous_to_date), time rejections and retention pruning."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import factories as f
import pytest
from factories import deal_won, target, visit

from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine
from kpi_core.events import Rejection, decode_obj
from kpi_core.state import RepState, bucket_field

LONDON_NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 10:00 local (GMT)


def _state(events: list[dict[str, Any]], engine: KpiEngine) -> RepState:
    state = RepState(rep_id="rep-1")
    ctx = engine.context()
    for event in events:
        engine.apply(state, decode_obj(event, engine.rules), ctx)
    return state


def _windows(events: list[dict[str, Any]], kind: str, now: datetime) -> dict[str, Any]:
    engine = f.engine(now=now)
    return engine.view(_state(events, engine)).windows(kind)


# ---------------------------------------------------------------------------- month windows

OCTOBER = [
    visit("2026-10-01T00:30:00+01:00"),  # first local minute-ish of October (BST)
    visit("2026-10-15T12:00:00Z"),
    visit("2026-10-23T09:30:00+01:00"),  # the 23rd before 10:00 local (now's time of day): to date
    visit("2026-10-23T23:30:00+01:00"),  # the 23rd after it: not to date
    visit("2026-10-24T00:30:00+01:00"),  # the 24th: not to date
    visit("2026-10-31T12:00:00Z"),
    deal_won("2026-10-10T12:00:00Z", "d-1", amount="1000"),
    deal_won("2026-10-28T12:00:00Z", "d-2", amount="5000"),
    visit("2026-09-30T22:30:00Z"),  # 23:30 BST on Sep 30: September
]
NOVEMBER = [
    visit("2026-11-02T09:00:00Z"),
    deal_won("2026-11-05T12:00:00Z", "d-3", amount="1500"),
    target("2026-10-25T09:00:00Z", "month", "2026-11-01", "10000"),
]


def test_month_windows_on_a_hand_made_month() -> None:
    w = _windows(OCTOBER + NOVEMBER, "month", LONDON_NOW)
    assert (w["current"]["start"], w["current"]["visits"], w["current"]["revenue"]) == (
        "2026-11-01",
        1,
        "1500.00",
    )
    assert (w["previous"]["start"], w["previous"]["visits"], w["previous"]["revenue"]) == (
        "2026-10-01",
        6,
        "6000.00",
    )
    ptd = w["previous_to_date"]
    # previous_to_date covers 2026-10-01 00:00 .. 2026-10-23 10:00 local: the same point of the
    # month as now (the 23rd, 10:00), the 23rd's part from its 15-minute slots (still kept).
    assert (ptd["start"], ptd["visits"], ptd["revenue"]) == ("2026-10-01", 3, "1000.00")
    assert [r["start"] for r in w["history"]] == ["2026-09-01", "2026-10-01", "2026-11-01"]
    assert w["history"][-1] == w["current"]


def test_growth_of_the_current_row_compares_with_previous_to_date() -> None:
    w = _windows(OCTOBER + NOVEMBER, "month", LONDON_NOW)
    # (1500 - 1000) / 1000 x 100, not against the whole of October (6000).
    assert w["current"]["derived"]["growth_pct"] == 50.0
    # A complete row compares with the whole previous period: October against September (0).
    assert w["previous"]["derived"]["growth_pct"] is None


def test_growth_of_the_current_row_is_undefined_when_previous_to_date_is_zero() -> None:
    late_october = [deal_won("2026-10-28T12:00:00Z", "d-2", amount="5000")]
    w = _windows(late_october + NOVEMBER, "month", LONDON_NOW)
    assert w["previous_to_date"]["revenue"] == "0.00"
    assert w["current"]["derived"]["growth_pct"] is None


def test_projected_attainment_of_previous_to_date_uses_its_elapsed_point() -> None:
    events = [
        target("2026-09-25T09:00:00Z", "month", "2026-10-01", "3100"),
        deal_won("2026-10-10T12:00:00Z", "d-1", amount="1000"),
    ]
    w = _windows(events, "month", LONDON_NOW)
    ptd = w["previous_to_date"]["derived"]
    # 22 local days and 10 hours of October's 31 (+1 hour of DST in the whole month, none before
    # the 23rd).
    elapsed, length = 22 * 24 + 10, 31 * 24 + 1
    expected = round(1000 * length / elapsed / 3100 * 100, 4)
    assert ptd["projected_attainment_pct"] == pytest.approx(expected, abs=1e-4)
    assert w["previous"]["derived"]["projected_attainment_pct"] == round(1000 / 3100 * 100, 4)


def test_month_end_clamping_compares_with_all_of_february() -> None:
    now = datetime(2026, 3, 31, 11, 0, tzinfo=UTC)  # 12:00 BST on March 31
    events = [
        visit("2026-02-01T00:10:00Z"),
        visit("2026-02-28T23:50:00Z"),  # last minutes of February (GMT)
        visit("2026-03-01T00:10:00Z"),
        deal_won("2026-02-27T12:00:00Z", "d-1", amount="200"),
        deal_won("2026-03-02T12:00:00Z", "d-2", amount="300"),
    ]
    w = _windows(events, "month", now)
    ptd, previous = w["previous_to_date"], w["previous"]
    assert ptd["start"] == previous["start"] == "2026-02-01"
    assert (ptd["visits"], ptd["revenue"]) == (2, "200.00")
    assert {k: v for k, v in ptd.items() if k != "derived"} == {
        k: v for k, v in previous.items() if k != "derived"
    }
    assert w["current"]["derived"]["growth_pct"] == 50.0


WEEK_NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # Wednesday, 10:00 local (GMT)
WEEK = [
    visit("2026-11-16T09:00:00Z"),  # previous Monday
    visit("2026-11-18T09:30:00Z"),  # previous Wednesday, before 10:00: to date
    visit("2026-11-18T23:00:00Z"),  # previous Wednesday, after 10:00: not to date
    visit("2026-11-19T00:30:00Z"),  # previous Thursday: not to date
    visit("2026-11-23T09:00:00Z"),
    visit("2026-11-25T08:00:00Z"),
]


def test_week_windows_compare_with_the_same_time_of_the_same_weekday() -> None:
    # A Monday and a morning against a Monday and a whole Wednesday made every team "drop" by
    # half on Wednesday mornings: the comparison stops at the same time of day.
    w = _windows(WEEK, "week", WEEK_NOW)
    assert w["current"]["start"] == "2026-11-23"
    assert (w["current"]["visits"], w["previous"]["visits"], w["previous_to_date"]["visits"]) == (2, 4, 2)


def test_like_for_like_counts_the_same_day_whole_once_its_slots_are_no_longer_kept() -> None:
    rules = f.rules()
    short = rules.model_copy(update={"keep": rules.keep.model_copy(update={"hour": 72})})
    engine = f.engine(short, now=WEEK_NOW)
    w = engine.view(_state(WEEK, engine)).windows("week")
    # a week ago is beyond 72 hours of slots: the previous Wednesday counts whole
    assert (w["previous"]["visits"], w["previous_to_date"]["visits"]) == (4, 3)
    # the day period still compares with yesterday to the same time (slots of 72 hours)
    day = engine.view(_state(WEEK, engine)).windows("day")
    assert day["previous_to_date"]["start"] == "2026-11-24"


def test_day_previous_to_date_at_slot_resolution() -> None:
    yesterday = [
        visit("2026-11-22T00:05:00Z"),
        visit("2026-11-22T09:50:00Z"),
        visit("2026-11-22T10:00:00Z"),
        visit("2026-11-22T10:14:00Z"),
        visit("2026-11-22T10:15:00Z"),
        visit("2026-11-22T23:59:00Z"),
        visit("2026-11-23T09:00:00Z"),
    ]
    # At 10:00 sharp the slot 10:00-10:15 has not begun: yesterday up to 10:00.
    w = _windows(yesterday, "day", LONDON_NOW)
    assert (w["current"]["start"], w["current"]["visits"]) == ("2026-11-23", 1)
    assert (w["previous"]["start"], w["previous"]["visits"]) == ("2026-11-22", 6)
    assert w["previous_to_date"]["visits"] == 2
    # At 10:07 the whole slot 10:00-10:15 counts: 10:00 and 10:14 join, 10:15 does not.
    w = _windows(yesterday, "day", LONDON_NOW + timedelta(minutes=7))
    assert w["previous_to_date"]["visits"] == 4
    # At midnight nothing of yesterday is to date yet.
    w = _windows(yesterday[:-1], "day", datetime(2026, 11, 23, 0, 0, tzinfo=UTC))
    assert w["previous_to_date"]["visits"] == 0


def test_day_previous_to_date_in_a_zone_east_of_utc() -> None:
    # Asia/Shanghai: now 2026-06-02 09:00 local = 01:00 UTC; yesterday up to 09:00 local.
    rules = f.rules(timezone="Asia/Shanghai")
    engine = f.engine(rules, now=datetime(2026, 6, 2, 1, 0, tzinfo=UTC))
    events = [
        visit("2026-06-01T00:30:00+08:00"),
        visit("2026-06-01T08:59:00+08:00"),
        visit("2026-06-01T09:00:00+08:00"),
        visit("2026-05-31T23:59:00+08:00"),
    ]
    w = engine.view(_state(events, engine)).windows("day")
    assert w["previous"]["start"] == "2026-06-01"
    assert (w["previous"]["visits"], w["previous_to_date"]["visits"]) == (3, 2)


# ---------------------------------------------------------------------------- time rejections


def test_future_rejected_against_the_wall_clock() -> None:
    doc = f.report(
        [
            visit(LONDON_NOW + timedelta(seconds=299)),
            visit(LONDON_NOW + timedelta(seconds=301)),
        ]
    )
    assert doc["rejected"] == {"future": 1}
    assert f.row(doc, "day", "2026-11-23")["visits"] == 1


def test_too_late_with_the_wall_clock() -> None:
    # keep.year = 3: the oldest retained instant is 2024-01-01 00:00 London (= UTC in winter).
    doc = f.report(
        [
            visit("2023-12-31T23:59:59Z"),
            visit("2024-01-01T00:00:00Z"),
            target("2026-10-01T00:00:00Z", "month", "2024-09-01", "1"),  # oldest month 2024-10
            target("2026-10-01T00:00:00Z", "month", "2024-10-01", "2"),
            target("2026-10-01T00:00:00Z", "quarter", "2024-04-01", "3"),  # oldest quarter 2024-07
        ]
    )
    assert doc["rejected"] == {"too_late": 3}
    # The accepted old visit counts only in the buckets still retained (its year).
    assert [(r["period"], r["start"], r["visits"]) for r in doc["periods"] if r["visits"]] == [
        ("year", "2024-01-01", 1)
    ]
    assert f.row(doc, "month", "2024-10-01")["target"] == "2.00"


def test_event_clock_uses_the_highest_non_future_event_time() -> None:
    rules = f.rules(keep={"hour": 25, "day": 30, "week": 8, "month": 3, "quarter": 2, "year": 2})
    wall = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)
    events = [
        visit("2026-06-15T12:00:00Z"),
        visit("2025-01-01T00:30:00Z"),  # oldest year at the event clock: 2025
        visit("2024-12-31T23:30:00Z"),  # too late at either clock
        visit(wall + timedelta(days=1)),  # future: ignored for "now" and rejected
    ]
    doc = f.report(events, rules, now=wall, mode="event")
    assert doc["rejected"] == {"future": 1, "too_late": 1}
    assert f.rows(doc, "month")[-1]["start"] == "2026-06-01"
    assert [r["start"] for r in f.rows(doc, "year")] == ["2025-01-01", "2026-01-01"]
    # The same file at the wall clock: "now" is January 2027, the years kept are 2026 and 2027.
    at_wall = f.report(events, rules, now=wall, mode="wall")
    assert at_wall["rejected"] == {"future": 1, "too_late": 2}
    assert [r["start"] for r in f.rows(at_wall, "year")] == ["2026-01-01"]
    assert f.rows(at_wall, "month") == []  # June 2026 is older than 3 months at the wall clock


def test_event_clock_replays_give_the_same_figures_whatever_the_wall() -> None:
    events = [visit("2026-06-15T12:00:00Z"), deal_won("2026-06-14T12:00:00Z", "d", amount="5")]
    first = f.report(events, mode="event", now=datetime(2026, 7, 1, tzinfo=UTC))
    later = f.report(events, mode="event", now=datetime(2026, 11, 1, tzinfo=UTC))
    assert first == later


def test_engine_rejects_future_and_too_late_in_streaming_mode(
    make_engine: Callable[..., KpiEngine], fixed_now: datetime
) -> None:
    engine = make_engine(
        f.rules(keep={"hour": 25, "day": 2, "week": 2, "month": 2, "quarter": 2, "year": 2}),
        now=fixed_now,
    )
    state = RepState(rep_id="rep-1")
    ctx = engine.context()
    with pytest.raises(Rejection) as future:
        engine.apply(state, decode_obj(visit(LONDON_NOW + timedelta(hours=1)), engine.rules), ctx)
    assert future.value.reason == "future"
    with pytest.raises(Rejection) as late:
        engine.apply(state, decode_obj(visit("2024-12-31T12:00:00Z"), engine.rules), ctx)
    assert late.value.reason == "too_late"
    assert "older than the retained history" in late.value.error
    assert state.seen == {}


# ---------------------------------------------------------------------------- retention pruning


class MovingWall:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_prune_drops_buckets_targets_closed_deals_and_seen_ids() -> None:
    rules = f.rules(
        keep={"hour": 25, "day": 2, "week": 2, "month": 2, "quarter": 2, "year": 2},
        dedupe_horizon_hours=24,
    )
    wall = MovingWall(LONDON_NOW)
    engine = KpiEngine(rules, KpiClock(mode="wall", wall=wall))
    events = [
        visit("2026-11-22T09:00:00Z", event_id="v-22"),
        visit("2026-11-23T09:00:00Z", event_id="v-23"),
        visit("2026-10-20T09:00:00Z", event_id="v-oct"),
        deal_won("2026-10-21T09:00:00Z", "d-closed", amount="10"),
        target("2026-10-01T00:00:00Z", "month", "2026-10-01", "100"),
        target("2026-10-01T00:00:00Z", "month", "2026-11-01", "100"),
    ]
    state = _state(events, engine)
    # keep.day = 2: October's events only reach the retained week/month/quarter/year buckets.
    assert set(state.buckets["day"]) == {date(2026, 11, 22), date(2026, 11, 23)}
    assert "d-closed" in state.deals
    state.touched.clear()

    wall.now = LONDON_NOW + timedelta(days=2)  # 2026-11-25: days kept: 24th and 25th
    engine.prune(state)
    assert state.buckets["day"] == {}
    assert state.buckets["slot"] == {}  # older than 25 hours
    assert set(state.buckets["month"]) == {date(2026, 10, 1), date(2026, 11, 1)}
    assert state.seen == {}  # remembered for 24 hours of wall clock only
    assert bucket_field("day", date(2026, 11, 22)) in state.touched
    assert any(part.startswith("s|") for part in state.touched)  # the hour of seen ids went
    assert "d-closed" in state.deals  # its last event is still inside the month retention

    wall.now = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)  # months kept: Dec 2026 and Jan 2027
    engine.prune(state)
    assert state.buckets["month"] == {}
    assert set(state.buckets["year"]) == {date(2026, 1, 1)}
    assert state.targets == {}
    assert "t|month|2026-11-01" in state.touched
    # The closed deal's events are older than every retained bucket but the year 2026.
    assert "d-closed" in state.deals

    wall.now = datetime(2028, 1, 5, 12, 0, tzinfo=UTC)  # years kept: 2027, 2028
    engine.prune(state)
    assert all(not buckets for buckets in state.buckets.values())
    assert state.deals == {}
    assert "d|d-closed" in state.touched
    # Rows of the pruned periods are gone from the view as well.
    assert engine.view(state).starts("month") == []


def test_year_previous_to_date_uses_whole_months_then_days_of_the_same_month() -> None:
    """Like-for-like for a year: last year's whole months before this month (month buckets) and
    this month's days up to today (day buckets), so it works with the default keep.day."""
    events = [
        deal_won("2025-03-10T10:00:00Z", "d-march", amount="100"),
        deal_won("2025-11-10T10:00:00Z", "d-nov-early", amount="20"),
        deal_won("2025-11-30T10:00:00Z", "d-nov-late", amount="7"),  # after the 23rd: excluded
        deal_won("2025-12-05T10:00:00Z", "d-dec", amount="3"),  # after today's point: excluded
        deal_won("2026-02-01T10:00:00Z", "d-now", amount="60"),
    ]
    windows = _windows(events, "year", LONDON_NOW)
    assert windows["previous_to_date"]["revenue"] == "120.00"
    assert windows["previous"]["revenue"] == "130.00"
    assert windows["current"]["derived"]["growth_pct"] == -50.0


def test_quarter_previous_to_date_is_undefined_when_its_days_are_no_longer_kept() -> None:
    engine = f.engine(
        f.rules(keep={"hour": 72, "day": 20, "week": 60, "month": 26, "quarter": 10, "year": 3}),
        now=LONDON_NOW,
    )
    state = _state([deal_won("2026-08-10T10:00:00Z", "d1", amount="5")], engine)
    # Quarter Q4 2026 started 2026-10-01; like-for-like needs 2026-08-01.. in days: not kept.
    assert engine.view(state).windows("quarter")["previous_to_date"] is None
