"""`kpi-monitor digest`: the report document of a running deployment, read from its Prometheus.

The recording rules `<level>:sales_<component>:sum{period, window}` (rep, team, region, company;
one per additive KPI of the catalogue, so new KPIs come with them) give every component of the
current period, the previous one and the previous one to date. The rows are then built by the
same core function as the file report (`build_row`: derived KPIs as ratios of these sums), so
both paths print the same figures for the same events. Older periods are the `previous` window
as Prometheus recorded it at the end of the following period: as deep as Prometheus' history.
Scope targets come from the workers' `sales_metric_target{scope}` (own where set, else the
members'), the elapsed fraction from `company:sales_period_elapsed_ratio:max`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from kpi_core.aggregates import SLOTS as AGG_SLOTS
from kpi_core.aggregates import Agg, Slot
from kpi_core.catalogue import KpiKind
from kpi_core.derived import number
from kpi_core.periods import Calendar, shift
from kpi_core.windows import build_row
from kpi_monitor.reporting.alert_states import AlertState
from kpi_monitor.reporting.prometheus import Prometheus, PrometheusError, Sample
from kpi_rules.models import Rules

LEVELS: tuple[str, ...] = ("rep", "team", "region", "company")
SLOTS: dict[str, Slot] = {slot.component: slot for slot in AGG_SLOTS}
ELAPSED = "company:sales_period_elapsed_ratio:max"
LABEL_OF = {"revenue_by_channel": "channel", "leads_by_channel": "channel"}
BEFORE_END = timedelta(minutes=1)  # how long before a period's end its last view is read
Key = tuple[str, str]  # (level, name): ("team", "north"), ("rep", "rep-001"), ("company", "")


@dataclass
class Snapshot:
    """What one instant's rules say of one window: each scope's components, and who is where."""

    aggs: dict[Key, Agg] = field(default_factory=dict)
    places: dict[str, tuple[str, str]] = field(default_factory=dict)  # rep -> (team, region)


def _name(level: str, labels: dict[str, str]) -> str:
    return "" if level == "company" else labels.get(level, "")


def _money(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal("0.01"))


def _set(agg: Agg, component: str, value: float, label: str | None) -> None:
    slot = SLOTS[component]
    if slot.kind is KpiKind.MONEY:
        amount: Any = _money(value)
    elif slot.kind is KpiKind.DURATION:
        amount = round(value * 1_000_000)  # the worker exports exact microseconds as seconds
    else:
        amount = round(value)
    if slot.labelled:
        if label is not None and amount:
            getattr(agg, slot.attr)[label] = amount
    else:
        setattr(agg, slot.attr, amount)


class Digest:
    """Reads one period kind from Prometheus and builds the report document's rows."""

    def __init__(self, prometheus: Prometheus, rules: Rules, kind: str, now: datetime) -> None:
        if kind not in rules.alerts.recorded_periods:
            recorded = ", ".join(rules.alerts.recorded_periods)
            raise ValueError(
                f"Prometheus records the periods {recorded} (alerts.record_periods of the rules "
                f"file, plus each alert's period), not {kind!r}"
            )
        self.prom = prometheus
        self.rules = rules
        self.kind = kind
        self.now = now
        self.calendar = Calendar(rules.zone, rules.fiscal_year_start_month)
        self.current = self.calendar.start_of(kind, now)
        self.places: dict[str, tuple[str, str]] = {}  # rep -> (team, region), from the rep rules

    # ------------------------------------------------------------------------------ queries
    def _levels(self, at: datetime | None) -> dict[str, dict[Key, Agg]]:
        """window -> scope -> components, every level, from the `:sum` rules at `at`."""
        out: dict[str, dict[Key, Agg]] = defaultdict(dict)
        for level in LEVELS:
            expr = f'{{__name__=~"{level}:sales_.+:sum", period="{self.kind}"}}'
            for labels, value in self.prom.query(expr, at):
                component = labels["__name__"].split(":")[1].removeprefix("sales_")
                if component not in SLOTS:
                    continue  # target, metric_target: the targets come from the workers' gauges
                name = _name(level, labels)
                if level == "rep":
                    if not name:
                        continue  # a team's, region's or the company's own state (rep="")
                    self.places[name] = (labels.get("team", ""), labels.get("region", ""))
                agg = out[labels["window"]].setdefault((level, name), Agg())
                _set(agg, component, value, labels.get(LABEL_OF.get(component, ""), None))
        return out

    def _targets(self, at: datetime | None) -> dict[str, dict[Key, dict[str, Decimal]]]:
        """window -> scope -> metric -> target: a scope's own where set, else its members'."""
        expr = (
            f'sum by (rep, team, region, window, metric, scope) (sales_metric_target{{period="{self.kind}"}})'
        )
        own: dict[str, dict[Key, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
        team_regions: dict[str, set[str]] = defaultdict(set)
        rep_team: dict[str, str] = {}
        for labels, value in self.prom.query(expr, at):
            scope = labels.get("scope", "rep")
            name = labels.get(scope, "") if scope != "company" else ""
            own[labels["window"]][(scope, name)][labels["metric"]] = Decimal(repr(value))
            if scope in ("rep", "team") and labels.get("team"):
                team_regions[labels["team"]].add(labels.get("region", ""))
            if scope == "rep":
                rep_team[name] = labels.get("team", "")
        for rep, (team, region) in self.places.items():
            team_regions[team].add(region)
            rep_team.setdefault(rep, team)
        out: dict[str, dict[Key, dict[str, Decimal]]] = {}
        for window, targets in own.items():
            out[window] = _effective(targets, rep_team, team_regions)
        return out

    def _elapsed(self) -> tuple[int, int] | None:
        found = self.prom.query(f'{ELAPSED}{{period="{self.kind}"}}')
        if not found:
            return None
        ratio = Fraction(found[0][1]).limit_denominator(10**12)
        return ratio.numerator, ratio.denominator

    # --------------------------------------------------------------------------------- rows
    def rows(self, last: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        """(rep rows, scope rows, periods found): the current and previous periods from now,
        older ones from the history of the `previous` window, up to `last` periods."""
        now_levels = self._levels(None)
        if not any(now_levels.values()):
            raise PrometheusError(
                f"Prometheus at {self.prom.url} has no {self.kind} series of the kpi-monitor recording "
                "rules (<level>:sales_<kpi>:sum): does it load the rules `kpi-monitor rules` writes "
                "(prometheus/rules/) and scrape a worker, and has the worker seen events?"
            )
        now_targets = self._targets(None)
        elapsed = self._elapsed()
        previous = shift(self.kind, self.current, -1)
        # period start -> (components by scope, targets by scope)
        periods: dict[date, tuple[dict[Key, Agg], dict[Key, dict[str, Decimal]]]] = {
            self.current: (now_levels.get("current", {}), now_targets.get("current", {})),
            previous: (now_levels.get("previous", {}), now_targets.get("previous", {})),
        }
        # older periods (and one more, what the oldest is compared with)
        for back in range(2, last + 2):
            start = shift(self.kind, self.current, -back)
            end = self.calendar.bounds(self.kind, shift(self.kind, start, 1))[1]
            at = end - BEFORE_END
            levels = self._levels(at)
            if not levels.get("previous"):
                break
            periods[start] = (levels["previous"], self._targets(at).get("previous", {}))
        found = min(len([s for s, (aggs, _) in periods.items() if aggs]), last)
        rep_rows: list[dict[str, Any]] = []
        scope_rows: list[dict[str, Any]] = []
        for start in sorted(periods, reverse=True)[:last]:
            aggs, targets = periods[start]
            if start == self.current:
                compared = now_levels.get("previous_to_date", {})
                fraction = elapsed
            else:
                compared = periods.get(shift(self.kind, start, -1), ({}, {}))[0]
                fraction = (1, 1)
            for key in sorted(aggs.keys() | targets.keys(), key=_order):
                agg = aggs.get(key, Agg())
                row = build_row(
                    self._head(key, start), agg, targets.get(key, {}), compared.get(key), fraction, {}
                )
                (rep_rows if key[0] == "rep" else scope_rows).append(row)
        return rep_rows, scope_rows, found

    def _head(self, key: Key, start: date) -> dict[str, Any]:
        level, name = key
        if level == "rep":
            team, region = self.places.get(name, ("", ""))
            return {
                "rep_id": name, "team": team, "region": region, "period": self.kind,
                "start": start.isoformat(),
            }  # fmt: skip
        return {"scope": level, "name": name, "period": self.kind, "start": start.isoformat()}

    def pipeline(self) -> list[dict[str, Any]]:
        values: dict[str, dict[str, Any]] = {}
        for name in ("open_deals", "open_pipeline", "weighted_pipeline"):
            for labels, value in self.prom.query(f"rep:sales_{name}:sum"):
                rep = labels.get("rep", "")
                if not rep:
                    continue
                item = values.setdefault(
                    rep, {"rep_id": rep, "team": labels.get("team", ""), "region": labels.get("region", "")}
                )
                item[name] = round(value) if name == "open_deals" else str(_money(value))
        for labels, value in self.prom.query("rep:sales_pipeline:coverage_ratio"):
            if labels.get("rep") in values:
                values[labels["rep"]]["pipeline_coverage"] = number(Decimal(repr(value)))
        out = []
        for rep in sorted(values):
            item = values[rep]
            item.setdefault("pipeline_coverage", None)
            if item.get("open_deals"):
                out.append(item)
        return out

    def rejected(self) -> dict[str, int]:
        found = self.prom.query("sum by (reason) (kpi_events_rejected_total)")
        return {labels.get("reason", "?"): round(v) for labels, v in sorted(found, key=_reason) if v > 0}

    def alert_states(self) -> list[AlertState]:
        out = []
        for alert in self.prom.alerts():
            labels = alert.get("labels", {})
            name = labels.get("alertname", "")
            if not name.startswith("Sales") or alert.get("state") not in ("firing", "pending"):
                continue
            scope = next((s for s in ("rep", "team", "region") if labels.get(s)), None)
            if scope is None:
                continue
            try:
                value: float | None = float(alert.get("value", ""))
            except ValueError:
                value = None
            summary = alert.get("annotations", {}).get("summary", "")
            out.append(AlertState(name, scope, labels[scope], alert["state"], value, summary))
        return out


def _reason(sample: Sample) -> str:
    return sample[0].get("reason", "")


def _order(key: Key) -> tuple[int, str]:
    return (("company", "region", "team", "rep").index(key[0]), key[1])


def _effective(
    own: dict[Key, dict[str, Decimal]], rep_team: dict[str, str], team_regions: dict[str, set[str]]
) -> dict[Key, dict[str, Decimal]]:
    """Each scope's target per metric: its own when set, else the sum of its members' (a team's
    reps, a region's teams, the company's regions), as the file report's ScopeBook does."""
    out: dict[Key, dict[str, Decimal]] = {k: dict(v) for k, v in own.items() if k[0] == "rep"}

    def add(into: dict[str, Decimal], part: dict[str, Decimal]) -> None:
        for metric, amount in part.items():
            into[metric] = into.get(metric, Decimal(0)) + amount

    teams: dict[str, dict[str, Decimal]] = {}
    for team in team_regions:
        members: dict[str, Decimal] = {}
        for rep, rep_team_name in rep_team.items():
            if rep_team_name == team:
                add(members, own.get(("rep", rep), {}))
        teams[team] = {**members, **own.get(("team", team), {})}
    regions: dict[str, dict[str, Decimal]] = {}
    for region in {r for rs in team_regions.values() for r in rs}:
        members = {}
        for team, in_regions in team_regions.items():
            if region in in_regions:
                add(members, teams.get(team, {}))
        regions[region] = {**members, **own.get(("region", region), {})}
    company: dict[str, Decimal] = {}
    for targets in regions.values():
        add(company, targets)
    company.update(own.get(("company", ""), {}))
    out.update({("team", t): v for t, v in teams.items() if v})
    out.update({("region", r): v for r, v in regions.items() if v})
    if company:
        out[("company", "")] = company
    return out


def digest_document(
    prometheus: Prometheus, rules: Rules, kind: str, last: int, now: datetime
) -> tuple[dict[str, Any], list[AlertState], int]:
    """(the report document of one period kind, the alert states, the periods Prometheus had)."""
    digest = Digest(prometheus, rules, kind, now)
    rep_rows, scope_rows, found = digest.rows(last)
    document = {
        "periods": rep_rows,
        "scopes": scope_rows,
        "pipeline": digest.pipeline(),
        "targets": [],
        "rejected": digest.rejected(),
    }
    return document, digest.alert_states(), found
