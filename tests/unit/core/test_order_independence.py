"""Results do not depend on arrival order, duplicates or grouping (contract section 3)."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

import factories as f
import orjson
from factories import deal_created, deal_won, quote, stage_changed, target, visit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi_core.derived import money, number, ratio
from kpi_core.events import decode_obj
from kpi_core.state import RepState
from kpi_core.windows import RepView

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CENTS = Decimal("0.01")


def _doc(events: list[dict[str, Any]] | list[bytes], mode: str = "wall") -> bytes:
    return orjson.dumps(f.report(events, mode=mode), option=orjson.OPT_SORT_KEYS)


# ---------------------------------------------------------------------------- (a) order, duplicates


@PROPERTY
@given(
    events=f.event_sets(),
    seed=st.integers(0, 2**32 - 1),
    mode=st.sampled_from(["wall", "event"]),
)
def test_shuffled_with_duplicates_gives_the_same_report(
    events: list[dict[str, Any]], seed: int, mode: str
) -> None:
    rng = random.Random(seed)
    baseline = _doc(events, mode)
    shuffled = list(events) + [rng.choice(events) for _ in range(rng.randint(0, len(events)))]
    rng.shuffle(shuffled)
    assert _doc(shuffled, mode) == baseline


# ---------------------------------------------------------------------------- (b) group sums

COUNTS = (
    "visits",
    "deals_created",
    "deals_won",
    "deals_lost",
    "quotes_sent",
    "cycle_seconds_count",
    "first_response_seconds_count",
)
SUMS = ("cycle_seconds_sum", "first_response_seconds_sum")


def _by_period(doc: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in doc["periods"]:
        out[(row["period"], row["start"])].append(row)
    return out


@PROPERTY
@given(events=f.event_sets())
def test_sum_over_reps_equals_the_whole_set_as_one_rep(events: list[dict[str, Any]]) -> None:
    per_rep = f.report(events)
    merged_events = [{**e, "rep_id": "everyone"} for e in events]
    merged = f.report(merged_events)
    reps = _by_period(per_rep)
    whole = _by_period(merged)
    assert set(reps) <= set(whole)  # a period with data (or a target) for a rep has it for all
    for key, (group_row,) in whole.items():
        rows = reps.get(key, [])
        for name in COUNTS:
            assert group_row[name] == sum(r[name] for r in rows), (key, name)
        for name in SUMS:
            assert group_row[name] == sum(r[name] for r in rows), (key, name)
        revenue = sum((Decimal(r["revenue"]) for r in rows), Decimal(0))
        assert Decimal(group_row["revenue"]) == revenue, key
        channels: dict[str, Decimal] = defaultdict(Decimal)
        for r in rows:
            for channel, amount in r["revenue_by_channel"].items():
                channels[channel] += Decimal(amount)
        assert {c: Decimal(v) for c, v in group_row["revenue_by_channel"].items()} == {
            c: v for c, v in channels.items() if v
        }
        # A ratio over the group is the ratio of the sums, never an average of ratios.
        won = group_row["deals_won"]
        d = group_row["derived"]
        assert d["win_rate_pct"] == number(ratio(won, won + group_row["deals_lost"], 100))
        assert d["quote_to_close_pct"] == number(ratio(won, group_row["quotes_sent"], 100))
        assert d["lead_conversion_pct"] == number(ratio(won, group_row["deals_created"], 100))
        assert d["visits_per_win"] == number(ratio(group_row["visits"], won))
        size = ratio(revenue, won)
        assert d["avg_deal_size"] == (None if size is None else money(size.quantize(CENTS)))
    # The pipeline snapshot adds up too.
    for name in ("open_deals",):
        assert sum(p[name] for p in per_rep["pipeline"]) == sum(p[name] for p in merged["pipeline"])
    for name in ("open_pipeline", "weighted_pipeline"):
        total = sum((Decimal(p[name]) for p in per_rep["pipeline"]), Decimal(0))
        assert total == sum((Decimal(p[name]) for p in merged["pipeline"]), Decimal(0))


# ---------------------------------------------------------------------------- (c) replay twice


@PROPERTY
@given(events=f.event_sets())
def test_replaying_the_file_twice_changes_nothing(events: list[dict[str, Any]]) -> None:
    once = f.lines(events)
    assert _doc(once + once) == _doc(once)


# ------------------------------------------------------------------ (d) the contract's examples


def test_won_before_created_gives_the_natural_figures() -> None:
    created = deal_created("2026-11-02T09:00:00Z", "d-1", channel="web", stage="proposal")
    won = deal_won("2026-11-04T09:00:00Z", "d-1", amount="400")
    natural = f.report([created, won])
    assert f.report([won, created]) == natural
    nov = f.row(natural, "month", "2026-11-01")
    assert nov["revenue_by_channel"] == {"web": "400.00"}
    assert (nov["cycle_seconds_sum"], nov["cycle_seconds_count"]) == (2 * 86400, 1)
    assert natural["pipeline"] == []  # won: not open, in either order


def test_late_stage_change_gives_the_natural_pipeline() -> None:
    created = deal_created("2026-11-02T09:00:00Z", "d-1", amount="1000", stage="qualification")
    moved = stage_changed("2026-11-03T09:00:00Z", "d-1", "commit", amount="2000")
    older = stage_changed("2026-11-02T10:00:00Z", "d-1", "discovery")
    natural = f.report([created, older, moved])
    for order in ([moved, created, older], [older, moved, created], [moved, older, created]):
        assert f.report(order) == natural
    assert f.pipe(natural)["weighted_pipeline"] == "1800.00"


def test_late_visit_for_last_month_updates_last_month() -> None:
    engine = f.engine()
    state = RepState(rep_id="rep-1")

    def apply(event: dict[str, Any]) -> None:
        engine.apply(state, decode_obj(event, engine.rules), engine.context())

    for event in (visit("2026-10-10T09:00:00Z"), visit("2026-11-20T09:00:00Z")):
        apply(event)
    view: RepView = engine.view(state)
    assert view.period_row("month", f.date_of("2026-10-01"))["visits"] == 1
    apply(visit("2026-10-31T23:30:00Z"))  # arrives late: still October in London (GMT)
    view = engine.view(state)
    assert view.period_row("month", f.date_of("2026-10-01"))["visits"] == 2
    assert view.period_row("month", f.date_of("2026-11-01"))["visits"] == 1
    assert view.windows("month")["previous"]["visits"] == 2


def test_target_revision_arriving_before_the_one_it_replaces() -> None:
    revised = target("2026-10-28T09:00:00Z", "month", "2026-11-01", "12000")
    original = target("2026-10-20T09:00:00Z", "month", "2026-11-01", "10000")
    for order in ([revised, original], [original, revised]):
        doc = f.report(order)
        assert f.row(doc, "month", "2026-11-01")["target"] == "12000.00"


def test_ties_in_event_time_are_broken_by_event_id() -> None:
    at = "2026-11-02T09:00:00Z"
    a = target(at, "month", "2026-11-01", "100", event_id="t-a", team="x")
    b = target(at, "month", "2026-11-01", "200", event_id="t-b", team="y")
    for order in ([a, b], [b, a]):
        row = f.row(f.report(order), "month", "2026-11-01")
        assert (row["target"], row["team"]) == ("200.00", "y")


def test_a_repeated_event_id_is_counted_once() -> None:
    event = deal_won("2026-11-04T09:00:00Z", "d-1", amount="10", event_id="same")
    doc = f.report([event, event, event])
    assert f.row(doc, "month", "2026-11-01")["revenue"] == "10.00"
    assert f.row(doc, "month", "2026-11-01")["deals_won"] == 1


def test_first_touch_is_found_whatever_the_arrival_order() -> None:
    created = deal_created("2026-11-10T08:00:00Z", "d-1")
    touches = [
        visit("2026-11-10T07:00:00Z", deal="d-1"),  # before creation: not a response
        quote("2026-11-12T12:00:00Z", "d-1"),
        visit("2026-11-11T10:00:00Z", deal="d-1"),  # the first response: 26 hours
        visit("2026-11-10T09:00:00Z", "rep-1"),  # not on the deal
    ]
    natural = f.report([created, *sorted(touches, key=lambda e: e["occurred_at"])])
    nov = f.row(natural, "month", "2026-11-01")
    assert (nov["first_response_seconds_sum"], nov["first_response_seconds_count"]) == (26 * 3600, 1)
    assert f.row(natural, "day", "2026-11-11")["first_response_seconds_count"] == 1
    for order in ([*reversed(touches), created], [touches[1], created, touches[2], touches[0], touches[3]]):
        assert f.report(order) == natural
