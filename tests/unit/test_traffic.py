"""The synthetic CRM traffic: valid, seeded, business hours, and scenarios that do what they say."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine
from kpi_core.events import Rejection, decode_event
from kpi_core.report import build_report
from kpi_monitor.simulate import encode
from kpi_monitor.traffic import RAW, TrafficGenerator, messy
from kpi_rules import load_rules

NOW = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)


def _history(
    scenario: str, days: int = 28, per_hour: float = 200, seed: int = 3
) -> list[dict[str, object]]:
    gen = TrafficGenerator(load_rules(), reps=8, seed=seed, scenario=scenario)
    start = NOW - timedelta(days=days)
    out = []
    for event in gen.events(start, per_hour, origin=NOW - timedelta(days=days / 2)):
        if datetime.fromisoformat(str(event["occurred_at"])) > NOW:
            break
        out.append(event)
    return out


def test_every_generated_event_is_valid_and_in_business_hours() -> None:
    rules = load_rules()
    events = _history("steady", days=10)
    assert len(events) > 1000
    for event in events:
        decoded = decode_event(orjson.dumps(event), rules)
        if decoded.type != "target.set":
            local = decoded.occurred_at.astimezone(rules.zone)
            assert local.weekday() < 5 and 8 <= local.hour < 18


def test_same_seed_same_traffic_other_seed_other_traffic() -> None:
    assert _history("steady", days=3) == _history("steady", days=3)
    assert _history("steady", days=3) != _history("steady", days=3, seed=4)


def _revenue_by_team(events: list[dict[str, object]], since: datetime) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for event in events:
        if (
            event["type"] == "deal.won"
            and datetime.fromisoformat(str(event["occurred_at"])) >= since
        ):
            team = str(event["team"])
            totals[team] = totals.get(team, Decimal(0)) + Decimal(str(event["amount"]))
    return totals


def test_decline_scenario_weakens_only_the_declining_team() -> None:
    events = _history("decline")
    late = _revenue_by_team(events, NOW - timedelta(days=7))
    early = _revenue_by_team(
        [
            e
            for e in events
            if datetime.fromisoformat(str(e["occurred_at"])) < NOW - timedelta(days=21)
        ],
        NOW - timedelta(days=28),
    )
    # The declining team's share of revenue falls sharply; the others keep theirs.
    share_late = late.get("north", Decimal(0)) / sum(late.values())
    share_early = early["north"] / sum(early.values())
    assert share_late < share_early / 2


def test_messy_traffic_is_rejected_and_deduplicated_exactly() -> None:
    rules = load_rules()
    clean = _history("steady", days=5)
    mixed = list(messy(iter(clean), seed=7))
    assert len(mixed) > len(clean)
    assert any(RAW in e for e in mixed)
    engine = KpiEngine(rules, KpiClock(mode="event"))
    clean_report = build_report((orjson.dumps(e) for e in clean), engine)
    engine = KpiEngine(rules, KpiClock(mode="event"))
    messy_report = build_report((encode(e) for e in mixed), engine)
    # Duplicates, reordering and rejected lines change nothing in the figures.
    for part in ("periods", "scopes", "pipeline", "targets"):
        assert messy_report[part] == clean_report[part], part
    assert sum(messy_report["rejected"].values()) == sum(1 for e in mixed if _invalid(e, rules))


def _invalid(event: dict[str, object], rules: object) -> bool:
    try:
        decode_event(encode(event), rules)  # type: ignore[arg-type]
    except Rejection:
        return True
    # Too old to count (a target's timestamp is only its revision's: an old one is outdated).
    return event["type"] != "target.set" and str(event.get("occurred_at", "")).startswith("2001")


def test_unknown_scenario_is_refused_with_the_allowed_names() -> None:
    with pytest.raises(ValueError, match="steady, decline"):
        TrafficGenerator(load_rules(), scenario="boom")
    with pytest.raises(ValueError, match="'boom'.*churn"):
        TrafficGenerator(load_rules(), scenario="decline+boom")


def test_a_scenario_may_name_its_team() -> None:
    gen = TrafficGenerator(load_rules(), scenario="decline+churn:east")
    assert gen.effects == {"decline", "churn"}
    assert (gen.declining_team, gen.churning_team) == ("north", "east")
    for bad in ("steady:east", "churn:mars"):
        with pytest.raises(ValueError, match="only decline, visits-drop, churn name a team"):
            TrafficGenerator(load_rules(), scenario=bad)


def test_scenarios_combine_and_stay_deterministic() -> None:
    both = _history("decline+churn:east", days=3)
    assert both == _history("decline+churn:east", days=3)
    assert both != _history("decline+churn:east", days=3, seed=4)
    assert both != _history("steady", days=3)
    kinds = {str(e["type"]) for e in both}
    assert {"lead.created", "survey.completed", "spend.recorded", "deal.won"} <= kinds, kinds


def test_live_generator_yields_targets_then_activity() -> None:
    gen = TrafficGenerator(load_rules(), reps=3, seed=1)
    first = list(itertools.islice(gen.targets(NOW), 3))
    assert {e["type"] for e in first} == {"target.set"}
    activity = gen.next_activity(NOW, NOW)
    assert activity is not None and activity["type"] != "target.set"


def test_live_traffic_brings_its_leads_and_surveys_at_once() -> None:
    from kpi_monitor.simulate import _live

    rules = load_rules()
    gen = TrafficGenerator(rules, reps=3, seed=1)
    events = list(itertools.islice(_live(gen, NOW), 3000))
    kinds = {e["type"] for e in events}
    assert {"target.set", "deal.created", "lead.created", "deal.won", "survey.completed"} <= kinds
    for event in events:
        decode_event(orjson.dumps(event), rules)


# ------------------------------------------------------------------------ realistic proportions


def _funnel_figures(reps: int, per_hour: float) -> tuple[float, float, Decimal]:
    """(win rate, median days from created to closed, revenue / target) of a steady team over
    the completed months of four months of traffic at `per_hour`."""
    rules = load_rules()
    gen = TrafficGenerator(rules, reps=reps, seed=5, per_hour=per_hour)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    created: dict[str, datetime] = {}
    cycles: list[float] = []
    won = lost = 0
    revenue: dict[str, Decimal] = {}
    targets: dict[str, Decimal] = {}
    for event in gen.events(start):
        at = datetime.fromisoformat(str(event["occurred_at"]))
        if at >= datetime(2026, 9, 1, tzinfo=UTC):
            break
        month = at.astimezone(rules.zone).strftime("%Y-%m")
        if event["type"] == "deal.created":
            created[str(event["deal_id"])] = at
        elif event["type"] in ("deal.won", "deal.lost"):
            if event["type"] == "deal.won":
                won += 1
                revenue[month] = revenue.get(month, Decimal(0)) + Decimal(str(event["amount"]))
            else:
                lost += 1
            if str(event["deal_id"]) in created:
                cycles.append((at - created[str(event["deal_id"])]).total_seconds() / 86400)
        elif event["type"] == "target.set" and _rep_revenue_month(event):
            key = str(event["period_start"])[:7]
            targets[key] = targets.get(key, Decimal(0)) + Decimal(str(event["amount"]))
    cycles.sort()
    # The first month fills the pipeline from nothing; June to August are the steady state.
    months = ("2026-06", "2026-07", "2026-08")
    ratio = sum(revenue[m] for m in months) / sum(targets[m] for m in months)
    return won / (won + lost), cycles[len(cycles) // 2], ratio


def _rep_revenue_month(event: dict[str, object]) -> bool:
    """A rep's monthly revenue target (the plan also sets scope, quarter, year and other metrics)."""
    return (
        event.get("scope", "rep") == "rep"
        and event.get("metric", "revenue") == "revenue"
        and event["period"] == "month"
    )


@pytest.mark.parametrize(("reps", "per_hour"), [(40, 24.0), (12, 40.0)])
def test_targets_win_rates_and_cycles_are_in_proportion_at_any_pace(reps: int, per_hour: float) -> None:
    win_rate, median_cycle_days, attainment = _funnel_figures(reps, per_hour)
    assert 0.25 <= win_rate <= 0.45  # B2B win rates
    assert 14 <= median_cycle_days <= 40  # weeks, not hours, whatever the pace
    assert Decimal("0.7") <= attainment <= Decimal("1.3")  # targets of the order of sales


def _team_windows(scenario: str, now: datetime) -> dict[str, dict[str, Decimal]]:
    """Team sums of month revenue and week visits, current and previous to date, as the
    worker would expose them at `now` after the simulator's history (quick-start proportions)."""
    from kpi_core.engine import replay
    from kpi_monitor.simulate import history

    rules = load_rules()
    gen = TrafficGenerator(rules, reps=40, seed=1, scenario=scenario, per_hour=24)
    engine = KpiEngine(rules, KpiClock(wall=lambda: now))
    lines = (orjson.dumps(e) for e in history(gen, 62, now, gen.place(now)))
    states, _ = replay(engine, (decode_event(line, rules) for line in lines))
    teams: dict[str, dict[str, Decimal]] = {}
    for state in states.values():
        view = engine.view(state, now)
        month, week = view.windows("month"), view.windows("week")
        sums = teams.setdefault(state.team, {})
        for key, row, field in (
            ("revenue", month["current"], "revenue"),
            ("revenue_ptd", month["previous_to_date"], "revenue"),
            ("visits", week["current"], "visits"),
            ("visits_ptd", week["previous_to_date"], "visits"),
        ):
            sums[key] = sums.get(key, Decimal(0)) + Decimal(str((row or {}).get(field) or 0))
    return teams


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 30, 18, 12, tzinfo=UTC),  # a Monday, the month's last day
        datetime(2026, 12, 3, 11, 0, tzinfo=UTC),  # early in a month, mid-week
        datetime(2027, 3, 17, 15, 30, tzinfo=UTC),  # mid-month
        # An evening in a month's second week: had the visits fallen from the month's start, the
        # week compared with had fallen too (and the revenue comparison alone missed it).
        datetime(2027, 2, 10, 20, 5, tzinfo=UTC),
    ],
)
def test_the_declining_team_is_behind_last_period_to_date_from_the_first_event(now: datetime) -> None:
    teams = _team_windows("decline", now)
    north = teams["north"]
    revenue_drop = 1 - north["revenue"] / north["revenue_ptd"] if north["revenue_ptd"] >= 1000 else 0
    visits_drop = 1 - north["visits"] / north["visits_ptd"] if north["visits_ptd"] >= 10 else 0
    # What SalesRevenueDecline (20%) or SalesVisitsDrop (30%) of the packaged rules look for.
    assert revenue_drop > Decimal("0.2") or visits_drop > Decimal("0.3"), north
