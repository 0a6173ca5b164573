"""Grafana board building blocks on the Grafana Foundation SDK: titles, units, panels, variables."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash

from kpi_core.catalogue import BY_NAME, Unit
from kpi_rules.models import Rules

# The datasource provisioned in grafana/provisioning/datasources/prometheus.yml.
DATASOURCE = dash.DataSourceRef(type_val="prometheus", uid="prometheus")
GRID_COLUMNS = 24
CURRENCY_UNITS = {
    "GBP": "currencyGBP",
    "USD": "currencyUSD",
    "EUR": "currencyEUR",
    "CNY": "currencyCNY",
    "JPY": "currencyJPY",
    "CHF": "currencyCHF",
    "INR": "currencyINR",
}
UNITS: dict[Unit, str] = {
    Unit.COUNT: "short",
    Unit.SECONDS: "s",
    Unit.DAYS: "d",
    Unit.HOURS: "h",
    Unit.PERCENT: "percent",
    Unit.RATIO: "short",
    Unit.TIMES: "x",
}

# key -> (en, zh-CN); simplified Chinese, like the alert texts.
TEXT: dict[str, tuple[str, str]] = {
    # dashboards
    "overview": ("Sales overview", "销售总览"),
    "rep": ("Rep drill-down", "销售代表明细"),
    "pipeline": ("Pipeline health", "商机健康度"),
    "service": ("Service health", "服务健康度"),
    # rows
    "row_company": ("Company", "公司"),
    "row_team": ("Teams", "团队"),
    "row_region": ("Regions", "区域"),
    "row_customers": ("Customers", "客户"),
    "row_satisfaction": ("Satisfaction", "客户满意度"),
    "row_leads_spend": ("Leads and spend", "线索与费用"),
    "row_targets": ("Targets by scope and metric", "各层级及各指标目标"),
    # variables
    "var_period": ("Period", "周期"),
    "var_team": ("Team", "团队"),
    "var_rep": ("Rep", "销售代表"),
    # panels
    "revenue_vs_target_team": ("Revenue vs target by team", "各团队收入与目标"),
    "revenue_vs_target_region": ("Revenue vs target by region", "各区域收入与目标"),
    "by_window": ("Revenue: this period, previous period, previous to date", "收入：本期、上期、上期同期"),
    "visits_by_window": ("Visits: this period, previous to date", "拜访：本期、上期同期"),
    "team_reps": ("Attainment of the team's reps %", "团队内各代表达成率 %"),
    "allocation_gaps": (
        "Target allocation gaps: a scope's own target minus its members'",
        "目标分解差额：本级目标减下级目标之和",
    ),
    "split_gaps": (
        "Target split gaps: a year's (quarter's) target minus its quarters' (months')",
        "目标拆分差额：年（季度）目标减其各季度（月）目标之和",
    ),
    "workers_up": ("Workers up", "运行中的节点"),
    "workers_ready": ("Workers ready", "就绪节点"),
    "store_healthy": ("Redis store healthy", "Redis 存储正常"),
    "store_rollbacks": ("Redis lost writes (repaired, last 24h)", "Redis 丢失写入（已修复，近 24 小时）"),
    "state_incomplete": ("Partitions with incomplete state", "状态不完整的分区"),
    "owned_partitions": ("Owned partitions by worker", "各节点持有分区"),
    "throughput": ("Events processed /s by topic", "每秒处理事件数（按主题）"),
    "applied": ("Events applied /s", "每秒应用事件数"),
    "dead_letters": ("Dead letters /s by reason", "每秒死信数（按原因）"),
    "dead_letters_total": ("Dead letters by reason (total)", "死信总数（按原因）"),
    "consumer_lag": ("Consumer lag (messages) by topic", "消费积压（消息数，按主题）"),
    "event_lag": ("Event-time lag (s)", "事件时间延迟（秒）"),
    "latency": ("Batch processing time p50 / p95 / p99 (s)", "批处理耗时 p50 / p95 / p99（秒）"),
    "recovery": ("Last state recovery (s)", "上次状态恢复耗时（秒）"),
    "recovery_keys": ("Keys loaded at last recovery", "上次恢复加载的键数"),
}

# Words added to a KPI's catalogue title on some panels: `revenue@to_date`.
SUFFIX: dict[str, tuple[str, str]] = {
    "to_date": (" (period to date)", "（本期至今）"),
    "vs_ptd": (" vs same point of previous period", "（较上期同期）"),
    "team_reps": (" of the team's reps", "（团队内各代表）"),
}


class Kind(StrEnum):
    """The panel visualisations the boards use."""

    STAT = "stat"
    TIMESERIES = "timeseries"


def title(rules: Rules, key: str) -> str:
    """A panel, row or board title: a KPI's from the catalogue (`name` or `name@suffix`), or TEXT."""
    name, _, suffix = key.partition("@")
    if name in BY_NAME:
        text = BY_NAME[name].title.get(rules.locale)
        if suffix:
            en, zh = SUFFIX[suffix]
            text += zh if rules.locale == "zh-CN" else en
        return text
    en, zh = TEXT[key]
    return zh if rules.locale == "zh-CN" else en


def series(level: str, name: str, selector: str = "") -> str:
    """The recording rule of a catalogue KPI at `level` (`team:sales_revenue:growth_pct{...}`)."""
    item = BY_NAME[name]
    metric, operation = item.record if item.record is not None else (item.name, "sum")
    return f"{level}:sales_{metric}:{operation}" + (f"{{{selector}}}" if selector else "")


def unit(rules: Rules, name: str) -> str:
    """The Grafana unit of a catalogue KPI (money in the rules file's base currency)."""
    kpi_unit = BY_NAME[name].unit
    return CURRENCY_UNITS.get(rules.currency, "short") if kpi_unit is Unit.MONEY else UNITS[kpi_unit]


def _query(ref: int, expr: str, legend: str) -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .ref_id(chr(ord("A") + ref))
        .datasource(DATASOURCE)
        .expr(expr)
        .legend_format(legend)
        .range()
    )


def _stat() -> stat.Panel:
    return (
        stat.Panel()
        .span(6)
        .height(4)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .text_mode(common.BigValueTextMode.AUTO)
    )


def _timeseries(w: int, h: int) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .span(w)
        .height(h)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull"])
        )
        .tooltip(
            common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)
        )
    )


class Board:
    """One dashboard: panels flow left to right on the 24-column grid (the SDK places them),
    wrapping to a new line when a line is full; a row starts a new line."""

    def __init__(self, rules: Rules, uid: str, key: str) -> None:
        self.rules = rules
        self.ids = 0
        self.builder = (
            dash_b.Dashboard(title(rules, key))
            .uid(uid)
            .tags(["kpi-monitor", "generated"])
            .description("Generated by `kpi-monitor rules` from kpi_rules/rules.yaml; do not edit here.")
            .readonly()  # provisioned: edits belong in the generator
            .version(1)
            .refresh("30s")
            .time("now-7d", "now")
            .timezone("")  # the viewer's browser
            .tooltip(dash.DashboardCursorSync.CROSSHAIR)
            .annotations([])
            .variables([])
            .link(
                dash_b.DashboardLink("KPI")
                .type(dash.DashboardLinkType.DASHBOARDS)
                .tags(["kpi-monitor"])
                .as_dropdown(True)
            )
        )

    def _id(self) -> int:
        self.ids += 1
        return self.ids

    def row(self, key: str) -> None:
        """An expanded row; the panels after it, up to the next row, sit under it."""
        self.builder.with_row(dash_b.Row(title(self.rules, key)).id(self._id()).collapsed(False))

    def panel(
        self,
        key: str,
        targets: list[tuple[str, str]],
        *,
        kind: Kind = Kind.TIMESERIES,
        unit: str = "short",
        w: int = 12,
        h: int = 8,
    ) -> None:
        """A panel titled `key` (see `title`) with one query per (expr, legend); stats are 6x4."""
        builder: stat.Panel | timeseries.Panel = _stat() if kind is Kind.STAT else _timeseries(w, h)
        builder.id(self._id()).title(title(self.rules, key)).datasource(DATASOURCE).unit(unit)
        if unit == "percent":
            builder.decimals(1)
        for ref, (expr, legend) in enumerate(targets):
            builder.with_target(_query(ref, expr, legend))
        self.builder.with_panel(builder)

    def kpi(self, key: str, level: str, selector: str = "", legend: str = "", **kw: Any) -> None:
        """A panel of one catalogue KPI (`name` or `name@suffix` for the title) at `level`."""
        name = key.partition("@")[0]
        self.panel(key, [(series(level, name, selector), legend)], unit=unit(self.rules, name), **kw)

    def variable(self, variable: Builder[dash.VariableModel]) -> None:
        self.builder.with_variable(variable)

    def to_dict(self) -> dict[str, Any]:
        """The dashboard's JSON model, as the SDK serializes it."""
        model: dict[str, Any] = json.loads(json.dumps(self.builder.build(), cls=JSONEncoder))
        return model


def period_variable(rules: Rules) -> dash_b.CustomVariable:
    """`$period`: the periods the recording rules cover, `month` by default."""
    periods = rules.alerts.recorded_periods
    default = "month" if "month" in periods else periods[0]
    return (
        dash_b.CustomVariable("period")
        .label(title(rules, "var_period"))
        .values(",".join(periods))
        .current(dash.VariableOption(selected=True, text=default, value=default))
        .options([dash.VariableOption(selected=p == default, text=p, value=p) for p in periods])
        .hide(dash.VariableHide.DONT_HIDE)
        .multi(False)
        .include_all(False)
    )


def query_variable(rules: Rules, name: str, label_key: str, query: str) -> dash_b.QueryVariable:
    """A variable whose values a PromQL `label_values(...)` query lists, refreshed with the time range."""
    return (
        dash_b.QueryVariable(name)
        .label(title(rules, label_key))
        .datasource(DATASOURCE)
        .query({"query": query, "refId": f"{name}-values"})
        .refresh(dash.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dash.VariableSort.ALPHABETICAL_ASC)
        .hide(dash.VariableHide.DONT_HIDE)
        .multi(False)
        .include_all(False)
    )
