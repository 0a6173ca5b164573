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
    "leads",
    "csat_responses",
    "csat_satisfied",
    "nps_responses",
    "nps_promoters",
    "nps_detractors",
    "new_customers",
    "buying_customers",
    "returning_customers",
    "reactivated_customers",
    "churned_customers",
    "active_customers_start",
    "retained_customers",
)
SUMS = ("cycle_seconds_sum", "first_response_seconds_sum")
MONEY = ("revenue", "gross_margin", "costed_revenue", "spend_marketing", "spend_sales")
SPEND = ("spend_marketing", "spend_sales")


def _pct(numerator: Any, denominator: Any, scale: int = 100) -> float | None:
    return number(ratio(Decimal(numerator), Decimal(denominator), scale))


def _cash(numerator: Decimal, denominator: Any) -> str | None:
    value = ratio(numerator, Decimal(denominator))
    return None if value is None else money(value.quantize(CENTS))


def assert_ratios_of_sums(row: dict[str, Any]) -> None:
    """The issue-13 and customer ratios of a row are ratios of its (summed) components."""
    d = row["derived"]
    cash = {name: Decimal(row[name]) for name in MONEY}
    assert d["gross_margin_pct"] == _pct(cash["gross_margin"], cash["costed_revenue"])
    assert d["cost_coverage_pct"] == _pct(cash["costed_revenue"], cash["revenue"])
    assert d["cost_per_lead"] == _cash(cash["spend_marketing"], row["leads"])
    assert d["lead_to_deal_pct"] == _pct(row["deals_created"], row["leads"])
    assert d["cost_of_sales_pct"] == _pct(cash["spend_sales"], cash["revenue"])
    assert d["cac"] == _cash(cash["spend_marketing"] + cash["spend_sales"], row["new_customers"])
    assert d["csat_pct"] == _pct(row["csat_satisfied"], row["csat_responses"])
    assert d["nps"] == _pct(row["nps_promoters"] - row["nps_detractors"], row["nps_responses"])
    assert d["retention_pct"] == _pct(row["retained_customers"], row["active_customers_start"])
    assert d["repurchase_pct"] == _pct(row["returning_customers"], row["buying_customers"])
    targets = row["metric_target"]
    actual = {
        "revenue": cash["revenue"],
        "gross_margin": cash["gross_margin"],
        "visits": row["visits"],
        "deals_won": row["deals_won"],
        "new_customers": row["new_customers"],
    }
    expected = {m: _pct(actual[m], Decimal(t)) for m, t in targets.items()} if targets else None
    assert d["attainment_by_metric_pct"] == expected, (targets, actual)


def _merge_reps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rep's events as one rep's; team spend and scope targets (no rep_id) unchanged."""
    return [{**e, "rep_id": "everyone"} if "rep_id" in e else e for e in events]


def _by_period(doc: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in doc["periods"]:
        out[(row["period"], row["start"])].append(row)
    return out


@PROPERTY
@given(events=f.event_sets())
def test_sum_over_reps_equals_the_whole_set_as_one_rep(events: list[dict[str, Any]]) -> None:
    per_rep = f.report(events)
    merged = f.report(_merge_reps(events))
    reps = _by_period(per_rep)
    whole = _by_period(merged)
    assert set(reps) <= set(whole)  # a period with data (or a target) for a rep has it for all
    for key, (group_row,) in whole.items():
        rows = reps.get(key, [])
        for name in COUNTS:
            assert group_row[name] == sum(r[name] for r in rows), (key, name)
        for name in SUMS:
            assert group_row[name] == sum(r[name] for r in rows), (key, name)
        for name in MONEY:
            total = sum((Decimal(r[name]) for r in rows), Decimal(0))
            assert Decimal(group_row[name]) == total, (key, name)
        revenue = Decimal(group_row["revenue"])
        leads: dict[str, int] = defaultdict(int)
        for r in rows:
            for channel, count in r["leads_by_channel"].items():
                leads[channel] += count
        assert group_row["leads_by_channel"] == {c: n for c, n in sorted(leads.items()) if n}, key
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
        assert_ratios_of_sums(group_row)
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


# ------------------------------------------------------------- (e) reps add up to the scopes

Key = tuple[str, str]  # (period, start)
Own = dict[tuple[str, str, str, str, str], Decimal]  # (scope, name, metric, period, start) -> own


def _num(value: Any) -> Decimal:
    return Decimal(str(value))


def _add(total: dict[str, Decimal], targets: dict[str, Any]) -> None:
    for metric, amount in targets.items():
        total[metric] = total.get(metric, Decimal(0)) + _num(amount)


@PROPERTY
@given(events=f.event_sets())
def test_reps_add_up_to_their_scopes_and_targets_decompose(events: list[dict[str, Any]]) -> None:
    """A team's figures are its reps' sums (plus its own spend), the company's its teams' and
    the one region's the company's; every scope ratio is a ratio of those sums. A scope's target
    of a metric is its own, else its members' sum; the allocation gap is its own minus that sum,
    the split gap a year's (quarter's) own minus its quarters' (months') own."""
    doc = f.report(events)
    reps = _by_period(doc)
    scopes: dict[tuple[str, str, str, str], dict[str, Any]] = {
        (r["scope"], r["name"], r["period"], r["start"]): r for r in doc["scopes"]
    }
    own: Own = {
        (t["scope"], t["name"], t["metric"], t["period"], t["start"]): _num(t["target"])
        for t in doc["targets"]
    }
    teams = sorted({r["team"] for r in doc["periods"]} | {n for (s, n, *_) in scopes if s == "team"})
    keys = set(reps) | {(p, st_) for (_, _, p, st_) in scopes}

    def team_target(team: str, key: Key) -> dict[str, Decimal]:
        total = _team_members(reps.get(key, []), team)
        total.update(_own(own, "team", team, key))
        return total

    def region_target(key: Key) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        members: dict[str, Decimal] = {}
        for team in teams:
            _add(members, team_target(team, key))
        total = dict(members)
        total.update(_own(own, "region", "emea", key))
        return members, total

    for key in keys:
        rows = reps.get(key, [])
        company = scopes.get(("company", "", *key))
        team_rows = [scopes[("team", t, *key)] for t in teams if ("team", t, *key) in scopes]
        for team_row in team_rows:
            members = [r for r in rows if r["team"] == team_row["name"]]
            for name in COUNTS:
                assert team_row[name] == sum(r[name] for r in members), (key, team_row["name"], name)
            for name in MONEY:
                total = sum((Decimal(r[name]) for r in members), Decimal(0))
                if name in SPEND:  # plus the team's own spend
                    assert Decimal(team_row[name]) >= total, (key, name)
                else:
                    assert Decimal(team_row[name]) == total, (key, team_row["name"], name)
            assert_ratios_of_sums(team_row)
            expected = team_target(team_row["name"], key)
            assert {m: _num(a) for m, a in team_row["metric_target"].items()} == expected, key
        if company is None:
            assert not rows, key
            continue
        for name in (*COUNTS, *MONEY):
            total = sum((_num(t[name]) for t in team_rows), Decimal(0))
            assert _num(company[name]) == total, (key, name)
        assert_ratios_of_sums(company)
        region = scopes.get(("region", "emea", *key))
        if region is not None:  # every generated rep and team is in emea
            for name in (*COUNTS, *MONEY):
                assert region[name] == company[name], (key, name)
            assert_ratios_of_sums(region)
            assert {m: _num(a) for m, a in region["metric_target"].items()} == region_target(key)[1]
        expected_company = dict(region_target(key)[1])
        expected_company.update(_own(own, "company", "", key))
        assert {m: _num(a) for m, a in company["metric_target"].items()} == expected_company, key

    for item in doc["targets"]:
        scope, name, metric, period, start = (item[k] for k in ("scope", "name", "metric", "period", "start"))
        key = (period, start)
        target_ = _num(item["target"])
        if scope == "rep":
            assert item["allocation_gap"] is None
        else:
            if scope == "team":
                below = _team_members(reps.get(key, []), name)
            elif scope == "region":
                below = region_target(key)[0]
            else:
                below = region_target(key)[1]
            assert _num(item["allocation_gap"]) == target_ - below.get(metric, Decimal(0)), item
        smaller = {"year": "quarter", "quarter": "month"}.get(period)
        parts = [
            a
            for (s, n, m, p, st_), a in own.items()
            if (s, n, m, p) == (scope, name, metric, smaller) and _within(st_, period, start)
        ]
        expected_split = target_ - sum(parts, Decimal(0)) if parts else None
        assert (None if item["split_gap"] is None else _num(item["split_gap"])) == expected_split, item


def _own(own: Own, scope: str, name: str, key: Key) -> dict[str, Decimal]:
    """The own targets of one scope for one period, by metric."""
    return {m: a for (s, n, m, p, st_), a in own.items() if (s, n, (p, st_)) == (scope, name, key)}


def _team_members(rows: list[dict[str, Any]], team: str) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    for r in rows:
        if r["team"] == team:
            _add(total, r["metric_target"])
    return total


def _within(start: str, period: str, outer: str) -> bool:
    """Whether the period starting at `start` lies in the `period` starting at `outer`."""
    months = {"year": 12, "quarter": 3}[period]
    y, m = int(outer[:4]), int(outer[5:7])
    sy, sm = int(start[:4]), int(start[5:7])
    return 0 <= (sy - y) * 12 + (sm - m) < months
