"""Alert states shown beside each scope: Prometheus' own (digest), or, from an event file, whether
each business alert's condition holds for the current period now (the rule's threshold and
guards, as the generated alert rules write them; not its `for:` wait)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from kpi_core.derived import pipeline_coverage
from kpi_core.periods import Calendar, shift
from kpi_rules.models import Rules

#: Alert state words: Prometheus' `firing` and `pending`, and `would_fire` from an event file.
STATES = ("firing", "pending", "would_fire")


@dataclass(frozen=True)
class AlertState:
    alert: str  # SalesRevenueDecline...
    scope: str  # rep | team | region
    name: str  # the rep id, team or region
    state: str  # one of STATES
    value: float | None = None
    summary: str = ""  # Prometheus' summary annotation, when it has one


Key = tuple[str, str]  # (scope, name): the rows an alert state is shown beside


def by_scope(states: Sequence[AlertState]) -> dict[Key, list[AlertState]]:
    out: dict[Key, list[AlertState]] = {}
    for item in states:
        out.setdefault((item.scope, item.name), []).append(item)
    return out


def _rows(document: Mapping[str, Any], scope: str, kind: str, start: date) -> dict[str, dict[str, Any]]:
    """The rows of one level and period, by name (a rep's by its id)."""
    day = start.isoformat()
    if scope == "rep":
        return {r["rep_id"]: r for r in document["periods"] if r["period"] == kind and r["start"] == day}
    return {
        r["name"]: r
        for r in document["scopes"]
        if r["scope"] == scope and r["period"] == kind and r["start"] == day
    }


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def file_states(document: Mapping[str, Any], rules: Rules, now: datetime) -> list[AlertState]:
    """The business alerts whose condition holds now, computed from a full report document."""
    calendar = Calendar(rules.zone, rules.fiscal_year_start_month)
    alerts = rules.alerts
    out: list[AlertState] = []

    def current(kind: str) -> date:
        return calendar.start_of(kind, now)

    decline = alerts.revenue_decline
    for name, row in _rows(document, decline.scope, decline.period, current(decline.period)).items():
        growth = row["derived"]["growth_pct"]
        if growth is None or growth <= -100:
            continue
        previous = _dec(row["revenue"]) / (1 + _dec(growth) / 100)  # the like-for-like figure
        if -growth >= decline.threshold_pct and previous >= decline.min_previous_revenue:
            out.append(AlertState("SalesRevenueDecline", decline.scope, name, "would_fire", growth))

    pace = alerts.target_pace_behind
    start = current(pace.period)
    done, length = calendar.elapsed_fraction(pace.period, start, now)
    if length and Decimal(done) * 100 / Decimal(length) >= pace.min_elapsed_pct:
        for name, row in _rows(document, pace.scope, pace.period, start).items():
            projected = row["derived"]["projected_attainment_pct"]
            if projected is not None and projected < pace.threshold_pct:
                out.append(AlertState("SalesTargetPaceBehind", pace.scope, name, "would_fire", projected))

    q2c = alerts.quote_to_close_low
    for name, row in _rows(document, q2c.scope, q2c.period, current(q2c.period)).items():
        value = row["derived"]["quote_to_close_pct"]
        if value is not None and row["quotes_sent"] >= q2c.min_quotes and value < q2c.threshold_pct:
            out.append(AlertState("SalesQuoteToCloseLow", q2c.scope, name, "would_fire", value))

    trend = alerts.down_trend
    latest = shift(trend.period, current(trend.period), -1)
    revenues: dict[str, list[Decimal | None]] = {}
    for back in range(trend.consecutive_periods + 1):
        rows = _rows(document, trend.scope, trend.period, shift(trend.period, latest, -back))
        for name in rows.keys() | revenues.keys():
            found = rows.get(name)
            revenues.setdefault(name, [None] * back).append(None if found is None else _dec(found["revenue"]))
    for name, values in revenues.items():
        values += [None] * (trend.consecutive_periods + 1 - len(values))
        falls = all(
            a is not None and b is not None and a < b for a, b in zip(values, values[1:], strict=False)
        )
        if falls and values[0] is not None:
            out.append(AlertState("SalesDownTrend", trend.scope, name, "would_fire", float(values[0])))

    coverage = alerts.pipeline_coverage_low
    weighted: dict[str, Decimal] = {}
    for pipe in document["pipeline"]:
        key = pipe["rep_id"] if coverage.scope == "rep" else pipe[coverage.scope]
        weighted[key] = weighted.get(key, Decimal(0)) + _dec(pipe["weighted_pipeline"])
    rows = _rows(document, coverage.scope, coverage.period, current(coverage.period))
    for name, amount in sorted(weighted.items()):
        scope_row = rows.get(name)
        if scope_row is None or scope_row["target"] is None:
            continue
        ratio = pipeline_coverage(amount, _dec(scope_row["target"]), _dec(scope_row["revenue"]))
        if ratio is not None and ratio < coverage.threshold:
            out.append(
                AlertState("SalesPipelineCoverageLow", coverage.scope, name, "would_fire", float(ratio))
            )
    return out
