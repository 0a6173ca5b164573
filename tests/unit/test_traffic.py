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
    assert messy_report["periods"] == clean_report["periods"]
    assert messy_report["pipeline"] == clean_report["pipeline"]
    assert sum(messy_report["rejected"].values()) == sum(1 for e in mixed if _invalid(e, rules))


def _invalid(event: dict[str, object], rules: object) -> bool:
    try:
        decode_event(encode(event), rules)  # type: ignore[arg-type]
    except Rejection:
        return True
    return str(event.get("occurred_at", "")).startswith("2001")


def test_unknown_scenario_is_refused_with_the_allowed_names() -> None:
    with pytest.raises(ValueError, match="steady, decline"):
        TrafficGenerator(load_rules(), scenario="boom")


def test_live_generator_yields_targets_then_activity() -> None:
    gen = TrafficGenerator(load_rules(), reps=3, seed=1)
    first = list(itertools.islice(gen.targets(NOW), 3))
    assert {e["type"] for e in first} == {"target.set"}
    activity = gen.next_activity(NOW, NOW)
    assert activity is not None and activity["type"] != "target.set"
