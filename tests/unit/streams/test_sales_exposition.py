"""The `sales_*` exposition the worker serves (hand-assembled text, per-rep cache) says exactly what
a prometheus_client collector would (the candidate of benchmarks/scrape_metrics.py): same families,
HELP, TYPE, labels and values once parsed, on states built from events; its cache follows the
state version."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
import factories as f  # noqa: E402

from benchmarks.scrape_metrics import SalesCollector  # noqa: E402
from kpi_core.engine import KpiEngine, replay  # noqa: E402
from kpi_core.events import decode_event  # noqa: E402
from kpi_core.state import RepState  # noqa: E402
from streams.app import DEFAULT_EXPORT_PERIODS  # noqa: E402
from streams.metrics import FAMILY_HELP, SalesExposition  # noqa: E402

# Label values the text format must escape (quote, backslash, newline), and a Chinese team.
ODD: dict[str, Any] = {"team": 'n\\"th', "region": "a\nb"}
EAST: dict[str, Any] = {"team": "华东", "region": "apac"}
AWKWARD = [
    f.deal_created(f.hours_before(f.FIXED, 50), "d-1", 'rep "q"', amount="1200.50", **ODD),
    f.deal_won(f.hours_before(f.FIXED, 20), "d-1", 'rep "q"', amount="1200.50", **ODD),
    f.visit(f.hours_before(f.FIXED, 3), "rep-2", **EAST),
    f.deal_created(f.hours_before(f.FIXED, 2), "d-2", "rep-2", amount="99999999.99", **EAST),
    f.target(f.hours_before(f.FIXED, 900), "month", "2026-11-01", "5000", "rep-2", **EAST),
]


def _states(events: list[dict[str, Any]]) -> tuple[KpiEngine, dict[str, RepState]]:
    engine = f.engine()
    states, _ = replay(engine, [decode_event(line, engine.rules) for line in f.lines(events)])
    return engine, states


def _parsed(body: bytes) -> dict[str, tuple[str, str, dict[tuple[tuple[str, str], ...], float]]]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        samples = {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        assert len(samples) == len(family.samples), f"{family.name}: a series appears twice"
        out[family.name] = (family.documentation, family.type, samples)
    return out


def _both(engine: KpiEngine, states: dict[str, RepState]) -> tuple[bytes, bytes]:
    text = SalesExposition(engine, states.values, DEFAULT_EXPORT_PERIODS, lambda rep: 1).render()
    registry = CollectorRegistry()
    registry.register(SalesCollector(engine, states.values, DEFAULT_EXPORT_PERIODS, lambda rep: 1))
    return text, generate_latest(registry)


def test_text_and_collector_expose_the_same_series_with_escaped_labels() -> None:
    engine, states = _states(AWKWARD)
    text, collected = _both(engine, states)
    parsed = _parsed(text)
    assert parsed == _parsed(collected)
    assert set(parsed) == {f"sales_{name}" for name in FAMILY_HELP}
    assert all(kind == "gauge" for _, kind, _ in parsed.values())
    assert {name: help_text for name, (help_text, _, _) in parsed.items()} == {
        f"sales_{name}": text for name, text in FAMILY_HELP.items()
    }
    revenue = parsed["sales_revenue"][2]
    key = {"rep": 'rep "q"', **ODD, "period": "month", "window": "current"}
    assert revenue[tuple(sorted(key.items()))] == 1200.5  # escaped on the way out, read back intact
    pipeline = parsed["sales_open_pipeline"][2]
    assert pipeline[tuple(sorted({"rep": "rep-2", **EAST}.items()))] == 99999999.99


@settings(max_examples=25, deadline=None)
@given(f.event_sets())
def test_text_and_collector_agree_on_generated_event_sets(events: list[dict[str, Any]]) -> None:
    text, collected = _both(*_states(events))
    assert _parsed(text) == _parsed(collected)


def test_the_per_rep_cache_follows_the_state_version() -> None:
    engine, states = _states(AWKWARD)
    versions = {rep: 1 for rep in states}
    sales = SalesExposition(engine, states.values, ("month",), versions.__getitem__)
    before = _parsed(sales.render())
    more = f.visit(f.hours_before(f.FIXED, 1), "rep-2", event_id="v-late", **EAST)
    states["rep-2"] = _states([*AWKWARD, more])[1]["rep-2"]  # the rep's state changed...
    assert _parsed(sales.render()) == before  # same version: served from the cache
    versions["rep-2"] = 2
    visits = _parsed(sales.render())["sales_visits"][2]
    key = (("period", "month"), ("region", "apac"), ("rep", "rep-2"), ("team", "华东"), ("window", "current"))
    assert (before["sales_visits"][2][key], visits[key]) == (1.0, 2.0)


def test_trailing_window_carries_the_clv_sums_of_the_report() -> None:
    """`window="trailing"` (period month) holds revenue and churned customers summed over the
    `clv_trailing_months` completed months (Sep and Oct here, at 23 Nov), the sums the report's
    clv divides; the other families have no trailing series and scope states none at all."""
    rules = f.rules(customers={"churn_after_days": 30, "at_risk_after_days": 10, "clv_trailing_months": 2})
    history = [
        f.deal_won("2026-08-05T09:00:00Z", "d-1", amount="300", customer="c-1"),  # churns Sep 4
        f.deal_won("2026-08-06T09:00:00Z", "d-2", amount="500", customer="c-2"),  # churns Sep 5
        f.deal_won("2026-09-10T09:00:00Z", "d-3", amount="1000", customer="c-3"),  # churns Oct 10
        f.deal_won("2026-10-20T09:00:00Z", "d-4", amount="800", customer="c-4"),  # churns Nov 19
        f.spend("2026-10-21T09:00:00Z", "50", rep=None),  # a team state: no trailing series
    ]
    engine = f.engine(rules)
    states, _ = replay(engine, [decode_event(line, engine.rules) for line in f.lines(history)])
    parsed = _parsed(SalesExposition(engine, states.values, DEFAULT_EXPORT_PERIODS, lambda rep: 1).render())
    trailing = {
        name: {dict(k)["rep"]: v for k, v in parsed[name][2].items() if dict(k).get("window") == "trailing"}
        for name in parsed
    }
    assert trailing["sales_revenue"] == {"rep-1": 1000.0 + 800.0}  # Sep + Oct
    assert trailing["sales_churned_customers"] == {"rep-1": 3.0}  # c-1, c-2 (Sep), c-3 (Oct)
    assert {name for name, reps in trailing.items() if reps} == {"sales_revenue", "sales_churned_customers"}
    key = next(k for k in parsed["sales_revenue"][2] if dict(k).get("window") == "trailing")
    assert dict(key)["period"] == "month"
    report = f.report(history, rules)
    assert f.row(report, "month", "2026-11-01", "rep-1")["derived"]["clv"] == "600.00"  # 1800 / 3
