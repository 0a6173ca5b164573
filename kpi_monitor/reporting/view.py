"""The view model of an HTML/PDF report: what the template shows, built from a selected report
document (one period kind), with every figure formatted and every chart drawn."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from matplotlib.figure import Figure

from kpi_monitor.reporting import charts
from kpi_monitor.reporting.alert_states import AlertState, Key
from kpi_monitor.reporting.charts import Series
from kpi_monitor.reporting.formatting import Formatter
from kpi_monitor.reporting.labels import (
    channel_name,
    kpi_title,
    period_adjective,
    reason_text,
    scope_word,
    text,
)

#: The figures table: (KPI path in a row, how it is formatted).
TABLE_KPIS: tuple[tuple[str, str], ...] = (
    ("revenue", "money"),
    ("target", "money"),
    ("derived.attainment_pct", "pct"),
    ("derived.growth_pct", "signed"),
    ("derived.projected_attainment_pct", "pct"),
    ("visits", "count"),
    ("deals_created", "count"),
    ("quotes_sent", "count"),
    ("deals_won", "count"),
    ("derived.win_rate_pct", "pct"),
    ("derived.quote_to_close_pct", "pct"),
    ("derived.avg_deal_size", "money"),
    ("derived.gross_margin_pct", "pct"),
    ("derived.churn_pct", "pct"),
)
FUNNEL = ("deals_created", "quotes_sent", "deals_won")
MAX_SERIES = 8  # lines/bar groups per chart: more are unreadable (the table has them all)


def value_at(row: Mapping[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Cell:
    kpi: str  # the row path (`revenue`, `derived.growth_pct`)
    raw: str  # the document's value as text ('' for null): the tests compare it with the JSON
    text: str  # formatted for the locale
    css: str = ""


@dataclass(frozen=True)
class TableRow:
    scope: str
    name: str
    label: str
    team: str
    period: str
    start: str
    cells: list[Cell]
    alerts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChartView:
    key: str
    title: str
    uri: str | None  # a data: URI of the SVG, None when there was nothing to draw
    note: str = ""


@dataclass(frozen=True)
class ReportView:
    lang: str
    title: str
    lines: list[str]
    summary_title: str
    summary: list[TableRow]
    charts: list[ChartView]
    notes: list[str]
    figures_title: str
    columns: list[str]
    rows: list[TableRow]
    rejected: list[tuple[str, str, str]]  # (code, text, count)
    rejected_total: str
    limits: list[str]
    css_fonts: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Meta:
    """What the document does not say: where it came from and when."""

    title_key: str  # `title` (a file) or `digest_title` (Prometheus)
    source: str  # `source_file` or `source_prometheus`, filled with `source_text`
    source_text: str
    generated: datetime
    limits: Sequence[str] = ()


class ViewBuilder:
    """Builds a ReportView from a selected document of one period kind."""

    def __init__(
        self,
        document: Mapping[str, Any],
        fmt: Formatter,
        scope_label: str,
        alerts: Mapping[Key, list[AlertState]],
        alert_texts: Callable[[AlertState], str],
    ) -> None:
        kinds = {row["period"] for row in (*document["periods"], *document["scopes"])}
        if len(kinds) != 1:
            raise ValueError(f"an HTML/PDF report shows one period kind, got {sorted(kinds) or 'none'}")
        self.doc = document
        self.kind = kinds.pop()
        self.fmt = fmt
        self.locale = fmt.locale
        self.scope_label = scope_label
        self.alerts = alerts
        self.alert_texts = alert_texts
        self.starts = sorted({row["start"] for row in (*document["periods"], *document["scopes"])})
        self.focus = self.starts[-1]  # the newest period selected: the current one, with data

    # ---------------------------------------------------------------------------------- rows
    def _top(self) -> list[dict[str, Any]]:
        """The rows of the highest level selected (company, a region, a team; else reps)."""
        for level in ("company", "region", "team"):
            rows = [r for r in self.doc["scopes"] if r["scope"] == level]
            if rows:
                return rows
        return [{**r, "scope": "rep", "name": r["rep_id"]} for r in self.doc["periods"]]

    def _entities(self) -> tuple[str, list[dict[str, Any]]]:
        """The rows the per-team charts show: teams, else reps."""
        teams = [r for r in self.doc["scopes"] if r["scope"] == "team"]
        if teams:
            return "team", teams
        return "rep", [{**r, "scope": "rep", "name": r["rep_id"]} for r in self.doc["periods"]]

    def _name(self, row: Mapping[str, Any]) -> str:
        if row["scope"] == "company":
            return scope_word("company", self.locale)
        return str(row["name"])

    def _label(self, row: Mapping[str, Any]) -> str:
        if row["scope"] == "company":
            return scope_word("company", self.locale)
        return f"{scope_word(row['scope'], self.locale)} {row['name']}"

    def _format(self, how: str, value: Any) -> str:
        if how == "money":
            return self.fmt.money(value)
        if how == "count":
            return self.fmt.count(value)
        return self.fmt.pct(value, signed=how == "signed")

    def _row(self, row: Mapping[str, Any], scope: str, name: str, team: str) -> TableRow:
        cells = []
        for path, how in TABLE_KPIS:
            value = value_at(row, path)
            css = ""
            if how == "signed" and value is not None:
                css = "down" if value < 0 else "up"
            cells.append(Cell(path, "" if value is None else str(value), self._format(how, value), css))
        alerts = [self.alert_texts(a) for a in self.alerts.get((scope, name), [])]
        label = scope_word("company", self.locale) if scope == "company" else name
        return TableRow(scope, name, label, team, row["period"], row["start"], cells, alerts)

    def table(self) -> list[TableRow]:
        """The focus period: scope rows first (company, regions, teams), then reps by team."""
        out = [
            self._row(r, r["scope"], r["name"], "") for r in self.doc["scopes"] if r["start"] == self.focus
        ]
        reps = sorted(
            (r for r in self.doc["periods"] if r["start"] == self.focus),
            key=lambda r: (r["team"], r["rep_id"]),
        )
        out += [self._row(r, "rep", r["rep_id"], r["team"]) for r in reps]
        return out

    # -------------------------------------------------------------------------------- charts
    def _periods(self) -> list[str]:
        return [self.fmt.period_short(self.kind, s) for s in self.starts]

    def _over_time(self, rows: Sequence[Mapping[str, Any]], path: str) -> list[Series]:
        by_name: dict[str, dict[str, float | None]] = {}
        for row in rows:
            by_name.setdefault(self._name(row), {})[row["start"]] = _float(value_at(row, path))
        names = sorted(by_name)[:MAX_SERIES]
        return [Series(n, [by_name[n].get(s) for s in self.starts]) for n in names]

    def _chart(self, key: str, title: str, height: float, draw: Callable[[Figure], None]) -> ChartView:
        svg = charts.render_svg(self.locale, height, draw, f"chart {key!r}")
        return ChartView(key, title, charts.data_uri(svg))

    def _missing(self, key: str, title: str, note: str | None = None) -> ChartView:
        return ChartView(key, title, None, note or text("no_chart", self.locale, chart=title))

    def charts(self) -> list[ChartView]:
        loc, fmt = self.locale, self.fmt
        period_name = fmt.period(self.kind, self.focus)
        level, entities = self._entities()
        who = scope_word(level, loc).lower() if loc == "en" else scope_word(level, loc)
        out: list[ChartView] = []

        title = text("chart_revenue_target", loc, who=who)
        revenue = self._over_time(entities, "revenue")
        targets = self._over_time(entities, "target")
        if any(v for s in revenue for v in s.values) or any(v for s in targets for v in s.values):
            draw = charts.grouped_bars(
                self._periods(), revenue, fmt.money_short, markers=targets,
                marker_label=text("target_marker", loc), title=title,
            )  # fmt: skip
            out.append(self._chart("revenue_target", title, 3.4, draw))
        else:
            out.append(self._missing("revenue_target", title))

        title = text("chart_attainment", loc, period=period_name)
        reps = [r for r in self.doc["periods"] if r["start"] == self.focus]
        ranked = sorted(
            ((r["rep_id"], r["team"], r["derived"]["attainment_pct"]) for r in reps
             if r["derived"]["attainment_pct"] is not None),
            key=lambda item: -item[2],
        )  # fmt: skip
        if ranked:
            teams = sorted({team for _, team, _ in ranked})
            color = {team: charts.COLORS[i % len(charts.COLORS)] for i, team in enumerate(teams)}
            draw = charts.ranked_bars(
                [rep for rep, _, _ in ranked], [float(v) for _, _, v in ranked],
                [color[team] for _, team, _ in ranked], lambda v: fmt.pct(v),
                reference=100.0, reference_label=text("full_target", loc), title=title,
                legend=[(f"{scope_word('team', loc)} {t}", color[t]) for t in teams][: 8 * (len(teams) > 1)],
            )  # fmt: skip
            out.append(self._chart("attainment", title, 0.6 + 0.22 * len(ranked), draw))
        else:
            out.append(self._missing("attainment", title))

        top = [r for r in self._top() if r["start"] == self.focus][:MAX_SERIES]
        title = text("chart_funnel", loc, period=period_name)
        funnel = [Series(self._name(r), [float(r[s]) for s in FUNNEL]) for r in top]
        if any(v for s in funnel for v in s.values):
            draw = charts.funnel(
                [kpi_title(s, loc) for s in FUNNEL], funnel, fmt.count,
                lambda a, b: fmt.pct(a / b * 100), title=title,
            )  # fmt: skip
            out.append(self._chart("funnel", title, 1.6 + 0.35 * len(funnel), draw))
        else:
            out.append(self._missing("funnel", title))

        title = text("chart_channel", loc, period=period_name)
        channels = sorted(
            {c for r in top for c in r["revenue_by_channel"]},
            key=lambda c: -sum(float(r["revenue_by_channel"].get(c, 0)) for r in top),
        )
        if channels:
            series = [
                Series(self._name(r), [_float(r["revenue_by_channel"].get(c)) for c in channels]) for r in top
            ]
            draw = charts.grouped_bars(
                [channel_name(c, loc) for c in channels], series, fmt.money_short, title=title
            )
            out.append(self._chart("channel", title, 3.0, draw))
        else:
            out.append(self._missing("channel", title))

        title = text("chart_visits", loc, who=who)
        visits = self._over_time(entities, "visits")
        if any(v for s in visits for v in s.values):
            draw = charts.lines(self._periods(), visits, fmt.count_short, title=title)
            out.append(self._chart("visits", title, 3.0, draw))
        else:
            out.append(self._missing("visits", title))

        top_all = self._top()
        title = text("chart_customers", loc)
        if any(r["active_customers_start"] for r in top_all):
            retention = self._over_time(top_all, "derived.retention_pct")
            churn = self._over_time(top_all, "derived.churn_pct")
            series = [Series(f"{s.name}: {kpi_title('retention_pct', loc)}", s.values) for s in retention]
            series += [Series(f"{s.name}: {kpi_title('churn_pct', loc)}", s.values) for s in churn]
            draw = charts.lines(
                self._periods(), series, lambda v: fmt.pct(v), title=title,
                dashed=[False] * len(retention) + [True] * len(churn),
            )  # fmt: skip
            out.append(self._chart("customers", title, 3.0, draw))
        else:
            out.append(self._missing("customers", title, text("no_customers", loc)))

        title = text("chart_margin", loc)
        if any(float(r["costed_revenue"]) for r in top_all):
            margin = self._over_time(top_all, "derived.gross_margin_pct")
            draw = charts.lines(self._periods(), margin, lambda v: fmt.pct(v), title=title)
            out.append(self._chart("margin", title, 3.0, draw))
        else:
            out.append(self._missing("margin", title, text("no_margin", loc)))
        return out

    # ---------------------------------------------------------------------------------- whole
    def build(self, meta: Meta) -> ReportView:
        loc, fmt = self.locale, self.fmt
        rejected = self.doc["rejected"]
        total = sum(rejected.values())
        source = text(meta.source, loc, source=meta.source_text)
        lines = [
            text(
                "period_line", loc, period=period_adjective(self.kind, loc), scope=self.scope_label,
                currency=fmt.currency,
            ),
            source,
            text("generated", loc, when=fmt.moment(meta.generated), zone=str(fmt.zone)),
        ]  # fmt: skip
        table = self.table()
        charts_ = self.charts()
        return ReportView(
            lang=loc,
            title=f"{text(meta.title_key, loc)} · {fmt.period(self.kind, self.focus)}",
            lines=lines,
            summary_title=text("summary", loc),
            summary=[row for row in table if row.scope != "rep"] or table,
            charts=[c for c in charts_ if c.uri is not None],
            notes=[c.note for c in charts_ if c.uri is None],
            figures_title=text("figures", loc, period=fmt.period(self.kind, self.focus)),
            columns=[_column_title(path, loc) for path, _ in TABLE_KPIS],
            rows=table,
            rejected=[(code, reason_text(code, loc), fmt.count(n)) for code, n in sorted(rejected.items())],
            rejected_total=text("rejected_total", loc, total=fmt.count(total))
            if total
            else text("rejected_none", loc),
            limits=list(meta.limits),
            css_fonts="",
            labels={
                key: text(key, loc)
                for key in (
                    "charts",
                    "rejected",
                    "reason",
                    "count",
                    "limits",
                    "alerts",
                    "scope",
                    "name",
                    "team",
                )
            },
        )


def _column_title(path: str, locale: str) -> str:
    return kpi_title(path.removeprefix("derived."), locale)
