"""Unit tests of the rule, alert, Alertmanager and dashboard builders."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from kpi_core.periods import shift
from kpi_monitor.rulesgen.alertmanager import alertmanager_config
from kpi_monitor.rulesgen.dashboards import dashboards, panel_queries
from kpi_monitor.rulesgen.promrules import (
    LEVELS,
    alert_groups,
    recorded_names,
    recording_groups,
    service_groups,
    trend_lookback,
)
from kpi_rules import RulesError, load_rules
from kpi_rules.loader import parse_rules
from kpi_rules.models import Rules
from streams.metrics import FAMILY_HELP, KpiMetrics

KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
}
SCOPED = {  # raised per the scope label of the rules file's section (team by default)
    "SalesRevenueDecline",
    "SalesDownTrend",
    "SalesVisitsDrop",
    "SalesTargetPaceBehind",
    "SalesQuoteToCloseLow",
    "SalesPipelineCoverageLow",
    "SalesChurnRising",
    "SalesMarginDrop",
    "SalesSatisfactionLow",
}
BUSINESS = SCOPED | {"SalesTargetAllocationGap"}  # per team, region, company (and rep: split)
SERVICE = {"KpiWorkerDown", "KpiConsumerLagHigh", "KpiDeadLetterRising", "KpiNoEvents", "KpiStateIncomplete"}


def exported_names() -> set[str]:
    """Every series name a worker's /metrics can have, from the worker's own code."""
    names = {f"sales_{name}" for name in FAMILY_HELP} | {"up"}
    for family in KpiMetrics(CollectorRegistry()).registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        else:
            names.add(family.name)
    return names


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression reads (functions, keywords, labels and strings removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\boffset\s+\d+[smhdwy]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group(0) in KEYWORDS:
            continue
        names.add(match.group(0))
    return names


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules("kpi_rules/rules.yaml")


def test_metric_names_parser() -> None:
    assert metric_names('histogram_quantile(0.95, sum by (le) (rate(kpi_x_bucket{a="b"}[5m])))') == {
        "kpi_x_bucket"
    }
    assert metric_names('a:b:c{x="$y"} / on (team) group_right () (d > 0) or vector(0)') == {"a:b:c", "d"}


def test_every_dashboard_query_reads_known_series(rules: Rules) -> None:
    known = recorded_names(rules) | exported_names()
    unknown = []
    for name, board in dashboards(rules).items():
        queries = panel_queries(board)
        assert len(queries) >= 8, name
        for title, expr in queries:
            names = metric_names(expr)
            assert names, (name, title, expr)
            unknown += [f"{name} / {title}: {n}" for n in sorted(names - known)]
    assert not unknown, "panels read series no rule records and no worker exports:\n" + "\n".join(unknown)


def test_alert_and_rule_exprs_read_known_series(rules: Rules) -> None:
    known = recorded_names(rules) | exported_names()
    for group in recording_groups(rules) + alert_groups(rules) + service_groups(rules):
        for rule in group["rules"]:
            assert metric_names(rule["expr"]) <= known, rule


def test_recording_rule_names_and_levels(rules: Rules) -> None:
    names = recorded_names(rules)
    for level in LEVELS:
        for op in (
            "sales_revenue:sum",
            "sales_revenue:growth_pct",
            "sales_revenue:attainment_pct",
            "sales_revenue:projected_attainment_pct",
            "sales_deals:win_rate_pct",
            "sales_deals:quote_to_close_pct",
            "sales_deals:lead_conversion_pct",
            "sales_revenue:avg_deal_size",
            "sales_visits:growth_pct",
            "sales_pipeline:coverage_ratio",
        ):
            assert f"{level}:{op}" in names
    # and the contract's own name for the allocation gap (section 3.3)
    assert all(
        re.fullmatch(r"(rep|team|region|company):sales_[a-z_]+:[a-z_]+", n)
        or n == "sales_target_allocation_gap"
        for n in names
    )


def test_every_ratio_filters_its_denominator(rules: Rules) -> None:
    for group in recording_groups(rules):
        for rule in group["rules"]:
            expr = rule["expr"]
            if "/" in expr:
                # every division's right-hand side is a `(... > 0)` filter
                for rhs in re.findall(
                    r"/ (?:on \([^)]*\) group_\w+ \(\) |ignoring \([^)]*\) group_\w+ \(\) )?(.*)",
                    expr,
                    re.DOTALL,
                ):
                    if rhs.startswith(("86400", "3600")):
                        continue
                    assert rhs.startswith("(") and "> 0)" in rhs, (rule["record"], rhs)


def test_alerts_have_severity_scope_and_texts(rules: Rules) -> None:
    alerts = [r for g in alert_groups(rules) + service_groups(rules) for r in g["rules"]]
    assert {a["alert"] for a in alerts} == BUSINESS | SERVICE
    for alert in alerts:
        assert alert["labels"]["severity"] in ("info", "warning", "critical", "page")
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        assert "[[" not in str(alert["annotations"])
        if alert["alert"] in SCOPED:
            assert alert["labels"]["scope"] == "team"
            assert "$labels.team" in alert["annotations"]["summary"]
            assert "$value" in alert["annotations"]["description"]
        elif alert["alert"] in BUSINESS:  # the gap: the scope's own label names it
            scope = alert["labels"]["scope"]
            assert scope in ("rep", "team", "region", "company") and alert["labels"]["gap"]
            assert scope == "company" or f"$labels.{scope}" in alert["annotations"]["summary"]
            assert "$value" in alert["annotations"]["description"]
    gaps = [
        (a["labels"]["gap"], a["labels"]["scope"]) for a in alerts if a["alert"] == "SalesTargetAllocationGap"
    ]
    assert sorted(gaps) == sorted(
        [("allocation", s) for s in ("team", "region", "company")]
        + [("split", s) for s in ("rep", "team", "region", "company")]
    )
    surveys = {a["labels"]["survey"] for a in alerts if a["alert"] == "SalesSatisfactionLow"}
    assert surveys == {"csat", "nps"}
    decline = next(a for a in alerts if a["alert"] == "SalesRevenueDecline")
    assert decline["for"] == "30m" and "> 20" in decline["expr"] and ">= 1000" in decline["expr"]
    worker_down = next(a for a in alerts if a["alert"] == "KpiWorkerDown")
    assert worker_down["expr"] == 'up{job="kpi-worker"} == 0'


def test_scope_setting_changes_level_and_label() -> None:
    base = load_rules("kpi_rules/rules.yaml").model_dump(by_alias=True, mode="json")
    base["alerts"]["revenue_decline"]["scope"] = "region"
    rules = parse_rules(base)
    decline = next(r for r in alert_groups(rules)[0]["rules"] if r["alert"] == "SalesRevenueDecline")
    assert "region:sales_revenue:growth_pct" in decline["expr"] and "on (region, period)" in decline["expr"]
    assert decline["labels"]["scope"] == "region" and "$labels.region" in decline["annotations"]["summary"]


def test_customer_alert_settings_reach_the_rules() -> None:
    base = load_rules("kpi_rules/rules.yaml").model_dump(by_alias=True, mode="json")
    base["alerts"]["churn_rising"] |= {"scope": "region", "threshold_pct": 15, "min_active_customers": 7}
    base["alerts"]["margin_drop"] |= {"threshold_points": 2.5, "min_costed_revenue": 500, "period": "quarter"}
    base["alerts"]["satisfaction_low"] |= {
        "nps_threshold": None,
        "csat_threshold_pct": 80,
        "min_responses": 3,
    }
    base["alerts"]["target_allocation_gap"] |= {"severity": "warning", "for": "2h"}
    base["targets"] = {"allocation_tolerance_pct": 2.5}
    rules = parse_rules(base)
    alerts = {}
    for rule in alert_groups(rules)[0]["rules"]:
        alerts.setdefault(rule["alert"], []).append(rule)
    [churn] = alerts["SalesChurnRising"]
    assert "region:sales_customers:churn_pct" in churn["expr"] and "> 15" in churn["expr"]
    assert ">= 7" in churn["expr"] and churn["labels"]["scope"] == "region"
    [margin] = alerts["SalesMarginDrop"]
    assert '{period="quarter",window="current"}) >= 500' in margin["expr"] and "> 2.5" in margin["expr"]
    [csat] = alerts["SalesSatisfactionLow"]  # NPS turned off
    assert csat["labels"]["survey"] == "csat" and "< 80" in csat["expr"] and ">= 3" in csat["expr"]
    for gap in alerts["SalesTargetAllocationGap"]:
        assert gap["for"] == "2h" and gap["labels"]["severity"] == "warning"
        assert "* 0.025, 0.005)" in gap["expr"] and "2.5%" in gap["annotations"]["description"]
    assert rules.alerts.recorded_periods == ("week", "month", "quarter")


def test_new_rules_keys_are_validated() -> None:
    base = load_rules("kpi_rules/rules.yaml").model_dump(by_alias=True, mode="json")
    for path, value, message in (
        (("notify", "webhook_url"), "not a url", "webhook_url"),
        (("record_periods",), ["month", "month"], "twice"),
        (("record_periods",), ["fortnight"], "record_periods"),
        (("down_trend", "for"), "soon", "down_trend.for"),
        (("quote_to_close_low", "scope"), "company", "scope"),
        (("churn_rising", "min_active_customers"), 0, "churn_rising.min_active_customers"),
        (("churn_rising", "threshold_pct"), 120, "churn_rising.threshold_pct"),
        (("margin_drop", "scope"), "company", r"margin_drop.scope: .*'rep', 'team' or 'region'"),
        (("margin_drop", "min_costed_revenue"), -1, "margin_drop.min_costed_revenue"),
        (("satisfaction_low", "nps_threshold"), -100, "satisfaction_low.nps_threshold"),
        (("satisfaction_low", "csat_threshold_pct"), None, None),  # one may be off...
        (
            ("target_allocation_gap", "period"),
            "month",
            "target_allocation_gap.period: unknown key; allowed here: for, severity",
        ),
        (("target_allocation_gap", "severity"), "urgent", "target_allocation_gap.severity"),
    ):
        data = {**base, "alerts": {**base["alerts"]}}
        node = data["alerts"]
        for key in path[:-1]:
            node[key] = dict(node[key])
            node = node[key]
        node[path[-1]] = value
        if message is None:
            parse_rules(data)
            continue
        with pytest.raises(RulesError, match=message):
            parse_rules(data)
    data = {**base, "alerts": {**base["alerts"]}}
    data["alerts"]["satisfaction_low"] = {"csat_threshold_pct": None, "nps_threshold": None}
    with pytest.raises(RulesError, match="satisfaction_low: .*set csat_threshold_pct or nps_threshold"):
        parse_rules(data)  # ...not both


def test_alert_periods_are_always_recorded() -> None:
    base = load_rules("kpi_rules/rules.yaml").model_dump(by_alias=True, mode="json")
    base["alerts"]["record_periods"] = ["quarter"]
    base["alerts"]["visits_drop"]["period"] = "day"
    rules = parse_rules(base)
    assert rules.alerts.recorded_periods == ("day", "month", "quarter")
    assert 'period=~"day|month|quarter"' in recording_groups(rules)[0]["rules"][0]["expr"]


def test_alertmanager_routes_groups_and_inhibits(rules: Rules) -> None:
    config = alertmanager_config(rules)
    route = config["route"]
    assert {"alertname", "team", "region"} <= set(route["group_by"])
    receivers = {r["name"]: r for r in config["receivers"]}
    assert {m["receiver"] for m in route["routes"]} <= set(receivers)
    assert all(r["webhook_configs"][0]["url"] == rules.alerts.notify.webhook_url for r in receivers.values())
    [inhibit] = config["inhibit_rules"]
    assert inhibit["source_matchers"] == ['alertname="KpiWorkerDown"']
    assert inhibit["target_matchers"] == ['alertname=~"Sales.*"']
    assert (
        alertmanager_config(rules, "http://x:1/h")["receivers"][0]["webhook_configs"][0]["url"]
        == "http://x:1/h"
    )


@pytest.mark.parametrize("kind", ["day", "week", "month", "quarter", "year"])
@pytest.mark.parametrize("n", [2, 3, 6])
def test_trend_lookback_lands_in_each_earlier_period(kind: str, n: int) -> None:
    """Inside the gated part of a period, `offset j*L` lands in the j-th period before, for a
    sample of calendar dates (an independent check of the search)."""
    look = trend_lookback(kind, n)
    assert 0 <= look.min_elapsed < look.max_elapsed <= 1
    start = date(2024, 1, 1) if kind != "week" else date(2024, 1, 1)  # a Monday
    for _ in range(40 if kind != "day" else 400):
        length = (shift(kind, start, 1) - start).days * 24
        for ratio in (look.min_elapsed, (look.min_elapsed + look.max_elapsed) / 2, look.max_elapsed):
            t = datetime(start.year, start.month, start.day) + timedelta(hours=ratio * length)
            for j in range(1, n + 1):
                back = t - timedelta(hours=j * look.offset_hours)
                lo = shift(kind, start, -j)
                hi = shift(kind, start, -j + 1)
                assert datetime(lo.year, lo.month, lo.day) <= back < datetime(hi.year, hi.month, hi.day), (
                    kind,
                    n,
                    start,
                    ratio,
                    j,
                )
        start = shift(kind, start, 1)
