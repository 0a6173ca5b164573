"""The simulated business in proportion, measured by the core's report over the simulator's own
history at the quick start's pace (40 reps, 24 activity events per business hour, 160 days):
targets of the order of sales for every metric, margins, satisfaction, leads and spend, repeat
customers who mostly stay and a `churn` team whose customers go, a target plan that adds up
everywhere but at its one deliberate gap."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from statistics import median
from typing import Any

import orjson
import pytest

from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine, replay
from kpi_core.events import decode_event
from kpi_core.report import build_report
from kpi_monitor.simulate import history
from kpi_monitor.traffic import TrafficGenerator
from kpi_monitor.traffic_plan import GAP_FACTOR, GAP_TEAM
from kpi_rules import load_rules
from kpi_rules.vocabulary import DealType, EventType, Scope, TargetMetric, values

NOW = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
#: Whole months of the steady state (the history starts in June with customers the report has
#: not seen buy yet: their first purchase in it counts as new, so the first months are skipped).
STEADY_MONTHS = ("2026-09-01", "2026-10-01")
PREVIOUS, CURRENT = "2026-10-01", "2026-11-01"
TEAMS = ("east", "north", "south", "west")


def _simulate(scenario: str, seed: int = 1) -> tuple[list[dict[str, Any]], dict[str, Any], KpiEngine]:
    rules = load_rules()
    gen = TrafficGenerator(rules, reps=40, seed=seed, scenario=scenario, per_hour=24)
    events = list(history(gen, 160, NOW, gen.place(NOW)))
    engine = KpiEngine(rules, KpiClock(wall=lambda: NOW))
    return events, build_report((orjson.dumps(e) for e in events), engine), engine


@pytest.fixture(scope="module")
def steady() -> tuple[list[dict[str, Any]], dict[str, Any], KpiEngine]:
    return _simulate("steady")


@pytest.fixture(scope="module")
def churn() -> tuple[list[dict[str, Any]], dict[str, Any], KpiEngine]:
    return _simulate("churn")


def _row(document: dict[str, Any], scope: str, name: str, start: str) -> dict[str, Any]:
    return next(
        r
        for r in document["scopes"]
        if (r["scope"], r["name"], r["period"], r["start"]) == (scope, name, "month", start)
    )


# ------------------------------------------------------------------------------- every event


def test_every_event_type_and_variant_is_generated_and_decodes(steady: Any) -> None:
    events, document, engine = steady
    rules = engine.rules
    seen: Counter[str] = Counter()
    for event in events:
        decoded = decode_event(orjson.dumps(event), rules)  # raises on anything invalid
        kind = decoded.type
        seen[kind] += 1
        if kind == EventType.DEAL_WON:
            seen[f"won:{event['deal_type']}"] += 1
            seen["won:costed" if "cost" in event else "won:uncosted"] += 1
        elif kind == EventType.SURVEY_COMPLETED:
            seen[f"survey:{event['kind']}"] += 1
        elif kind == EventType.SPEND_RECORDED:
            seen[f"spend:{event['category']}:{'rep' if 'rep_id' in event else 'team'}"] += 1
        elif kind == EventType.TARGET_SET:
            seen[f"target:{event['scope']}"] += 1
            seen[f"target:{event['metric']}"] += 1
        if kind != EventType.TARGET_SET:  # a plan is set when the year starts, at any hour
            local = decoded.occurred_at.astimezone(rules.zone)
            assert local.weekday() < 5 and 8 <= local.hour < 18, event
    assert set(values(EventType)) <= set(seen), seen
    variants = {f"won:{t}" for t in values(DealType)} | {"won:costed", "won:uncosted"}
    variants |= {"survey:csat", "survey:nps", "spend:marketing:team", "spend:marketing:rep"}
    variants |= {"spend:sales:rep"} | {f"target:{s}" for s in values(Scope)}
    variants |= {f"target:{m}" for m in values(TargetMetric)}
    assert variants <= set(seen), variants - set(seen)
    assert document["rejected"] == {}


def test_customers_buy_again_mostly_from_one_rep(steady: Any) -> None:
    events, _, _ = steady
    won = [e for e in events if e["type"] == "deal.won"]
    kinds = Counter(e["deal_type"] for e in won)
    # Repeat business (renewals and expansions) is most of what is won; new business a part.
    assert 0.05 <= kinds["new_business"] / len(won) <= 0.3, kinds
    assert kinds["renewal"] > kinds["expansion"] > kinds["new_business"] / 2, kinds
    sellers: dict[str, set[str]] = defaultdict(set)
    purchases: Counter[str] = Counter()
    for event in won:
        sellers[event["customer_id"]].add(event["rep_id"])
        purchases[event["customer_id"]] += 1
    shared = sum(1 for reps in sellers.values() if len(reps) > 1)
    assert 0 < shared / len(sellers) < 0.1  # a customer moves to another rep now and then
    repeat = sum(1 for n in purchases.values() if n >= 3)
    assert repeat / len(purchases) > 0.3, purchases.most_common(3)  # bought three times or more
    # Visits and quotes are about the reps' own customers and prospects, not random companies.
    visited = Counter(e["customer_id"] for e in events if e["type"] == "visit.completed")
    assert sum(n for c, n in visited.items() if c in sellers) / visited.total() > 0.5


def test_some_active_customers_are_at_risk(steady: Any) -> None:
    events, document, engine = steady
    rules = engine.rules
    states, _ = replay(engine, (decode_event(orjson.dumps(e), rules) for e in events))
    at_risk = sum(len(engine.at_risk(state, NOW)["customers"]) for state in states.values())  # type: ignore[arg-type]
    active = _row(document, "company", "", CURRENT)["active_customers_start"]
    # A follow-up list, not the whole book: the customers their rep rarely visits.
    assert 0.02 * active < at_risk < 0.4 * active, (at_risk, active)


# ------------------------------------------------------------------------------- proportions


def test_targets_are_of_the_order_of_what_is_sold(steady: Any) -> None:
    _, document, _ = steady
    for start in STEADY_MONTHS:
        company = _row(document, "company", "", start)["derived"]["attainment_by_metric_pct"]
        assert 75 <= company["revenue"] <= 125, (start, company)  # a month's luck: 10-20%
        for metric in ("gross_margin", "deals_won", "visits"):
            assert 70 <= company[metric] <= 140, (start, metric, company)
        # Few (20-60 a month), and a customer's first purchase in the history counts as new.
        assert 40 <= company["new_customers"] <= 200, (start, company)
        reps = [
            Decimal(r["revenue"]) / Decimal(r["target"])
            for r in document["periods"]
            if r["period"] == "month" and r["start"] == start
        ]
        assert len(reps) == 40 and Decimal("0.7") <= median(reps) <= Decimal("1.3")


def test_margin_satisfaction_leads_and_spend_are_plausible(steady: Any) -> None:
    _, document, _ = steady
    for start in STEADY_MONTHS:
        d = _row(document, "company", "", start)["derived"]
        assert 25 <= d["gross_margin_pct"] <= 45, d  # B2B distribution margins
        assert 80 <= d["cost_coverage_pct"] < 100, d  # most won deals carry a cost, not all
        assert 70 <= d["csat_pct"] <= 95, d
        assert -20 <= d["nps"] <= 70, d
        assert 20 <= d["lead_to_deal_pct"] <= 40, d
        assert 40 <= Decimal(d["cost_per_lead"]) <= 200, d
        assert 4 <= d["cost_of_sales_pct"] <= 15, d
        assert 1000 <= Decimal(d["cac"]) <= 40000, d  # of the order of a deal or two
        assert 60 <= d["repurchase_pct"] <= 95, d
        assert 0.25 <= d["win_rate_pct"] / 100 <= 0.45, d
        margins = [_row(document, "team", team, start)["derived"]["gross_margin_pct"] for team in TEAMS]
        assert max(margins) - min(margins) > 0.5  # margins vary by rep (and so by team)


def test_steady_teams_keep_most_customers(steady: Any) -> None:
    _, document, _ = steady
    for team in TEAMS:
        for start in (PREVIOUS, CURRENT):
            row = _row(document, "team", team, start)
            assert row["active_customers_start"] >= 50, row
            assert row["derived"]["churn_pct"] <= 20, (team, start, row["derived"]["churn_pct"])
        # Some churn naturally (the previous whole month).
        assert _row(document, "team", team, PREVIOUS)["churned_customers"] > 0


def test_the_churn_scenario_team_loses_its_customers_the_others_do_not(churn: Any) -> None:
    _, document, _ = churn
    for start, least in ((PREVIOUS, 25), (CURRENT, 15)):  # a whole month; 20 days of one
        north = _row(document, "team", "north", start)
        others = [_row(document, "team", team, start) for team in ("east", "south", "west")]
        churn_pct = north["derived"]["churn_pct"]
        assert churn_pct >= least and north["active_customers_start"] >= 30, (start, north)
        for row in others:
            assert row["derived"]["churn_pct"] <= 20, (row["name"], start, row["derived"]["churn_pct"])
            assert churn_pct > row["derived"]["churn_pct"], (row["name"], start)
        # Its customers rarely buy again: it sells mostly to new ones.
        assert north["derived"]["repurchase_pct"] < min(r["derived"]["repurchase_pct"] for r in others) / 2


# ------------------------------------------------------------------------------- the plan


def test_the_plan_adds_up_everywhere_but_at_its_one_gap(steady: Any) -> None:
    _, document, _ = steady
    targets = document["targets"]
    scopes = Counter(t["scope"] for t in targets)
    assert scopes["company"] and scopes["region"] == 3 * 17 and scopes["rep"] > 40 * 17, scopes
    gaps = []
    for target in targets:
        if target["split_gap"] is not None:
            assert Decimal(str(target["split_gap"])) == 0, target  # quarters and years add up
        if target["allocation_gap"] is not None and Decimal(str(target["allocation_gap"])) != 0:
            gaps.append(target)
    # The deliberate gap: team south's revenue target above its reps' in every period of the
    # year (12 months, 4 quarters, the year), by a clearly visible amount; nowhere else.
    assert {(t["scope"], t["name"], t["metric"]) for t in gaps} == {("team", GAP_TEAM, "revenue")}
    assert Counter(t["period"] for t in gaps) == {"month": 12, "quarter": 4, "year": 1}
    for gap in gaps:
        share = Decimal(str(gap["allocation_gap"])) / Decimal(str(gap["target"]))
        assert Decimal("0.05") <= share <= GAP_FACTOR - 1 + Decimal("0.01"), gap


def test_a_plan_is_set_per_year_and_the_other_metrics_per_month() -> None:
    gen = TrafficGenerator(load_rules(), reps=8, seed=2)
    start = datetime(2026, 11, 30, 9, tzinfo=UTC)
    targets = [e for e in _until(gen, start, start + timedelta(days=40)) if e["type"] == "target.set"]
    years = Counter(e["period_start"] for e in targets if e["period"] == "year")
    assert set(years) == {"2026-01-01", "2027-01-01"}  # the next year's plan when it starts
    months = {e["period_start"] for e in targets if e["metric"] == "visits"}
    assert months == {"2026-11-01", "2026-12-01", "2027-01-01"}


def _until(gen: TrafficGenerator, start: datetime, end: datetime) -> list[dict[str, Any]]:
    out = []
    for event in gen.events(start):
        if datetime.fromisoformat(event["occurred_at"]) > end:
            return out
        out.append(event)
    raise AssertionError("unreachable")  # pragma: no cover


# ------------------------------------------------------------------ every KPI counts something


def _nonzero(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_nonzero(v) for v in value.values())
    return value is not None and Decimal(str(value)) != 0


def test_every_additive_kpi_of_the_catalogue_is_counted_by_some_event(churn: Any) -> None:
    """A KPI added to the catalogue without the transition that counts it would read 0 for ever
    and pass every other test: the simulator's history (every event type, customers who buy
    again, return and churn) must move each additive KPI of the report somewhere."""
    from kpi_core.catalogue import ROW_COMPONENTS

    _, document, _ = churn
    rows = document["scopes"]
    never = [name for name in ROW_COMPONENTS if not any(_nonzero(row.get(name)) for row in rows)]
    assert never == []
