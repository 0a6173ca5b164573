"""Grafana dashboards (JSON model, provisioned from grafana/dashboards) built from plain dicts.

Every panel query reads a recording rule of `promrules` or a metric the worker exports; the
titles follow the rules file's locale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kpi_core.catalogue import BY_NAME, Unit
from kpi_rules.models import Rules

DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "prometheus"}
CURRENCY_UNITS = {
    "GBP": "currencyGBP",
    "USD": "currencyUSD",
    "EUR": "currencyEUR",
    "CNY": "currencyCNY",
    "JPY": "currencyJPY",
    "CHF": "currencyCHF",
    "INR": "currencyINR",
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
    "workers_up": ("Workers up", "运行中的节点"),
    "workers_ready": ("Workers ready", "就绪节点"),
    "store_healthy": ("Redis store healthy", "Redis 存储正常"),
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
}


def _t(rules: Rules, key: str) -> str:
    """A panel, row or board title: a KPI's from the catalogue (`name` or `name@suffix`), or TEXT."""
    name, _, suffix = key.partition("@")
    if name in BY_NAME:
        title = BY_NAME[name].title.get(rules.locale)
        if suffix:
            en, zh = SUFFIX[suffix]
            title += zh if rules.locale == "zh-CN" else en
        return title
    en, zh = TEXT[key]
    return zh if rules.locale == "zh-CN" else en


@dataclass
class Board:
    """Accumulates panels on a 24-column grid."""

    rules: Rules
    panels: list[dict[str, Any]] = field(default_factory=list)
    x: int = 0
    y: int = 0
    row_h: int = 0

    def _place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, key: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": _t(self.rules, key),
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def panel(
        self,
        key: str,
        targets: list[tuple[str, str]],
        *,
        kind: str = "timeseries",
        unit: str = "short",
        w: int = 12,
        h: int = 8,
    ) -> None:
        w, h = (w, h) if kind != "stat" else (min(w, 6), 4)
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": kind,
                "title": _t(self.rules, key),
                "datasource": DATASOURCE,
                "gridPos": self._place(w, h),
                "fieldConfig": {
                    "defaults": {"unit": unit, **({"decimals": 1} if unit == "percent" else {})},
                    "overrides": [],
                },
                "options": _options(kind),
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "datasource": DATASOURCE,
                        "expr": expr,
                        "legendFormat": legend,
                        "range": True,
                        "instant": False,
                    }
                    for i, (expr, legend) in enumerate(targets)
                ],
            }
        )


def _options(kind: str) -> dict[str, Any]:
    if kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    return {
        "legend": {
            "displayMode": "table",
            "placement": "bottom",
            "showLegend": True,
            "calcs": ["lastNotNull"],
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def _period_var(rules: Rules) -> dict[str, Any]:
    periods = rules.alerts.recorded_periods
    default = "month" if "month" in periods else periods[0]
    return {
        "name": "period",
        "label": _t(rules, "var_period"),
        "type": "custom",
        "query": ",".join(periods),
        "current": {"selected": True, "text": default, "value": default},
        "options": [{"selected": p == default, "text": p, "value": p} for p in periods],
        "hide": 0,
        "multi": False,
        "includeAll": False,
    }


def _query_var(rules: Rules, name: str, label_key: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": _t(rules, label_key),
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "hide": 0,
        "multi": False,
        "includeAll": False,
        "current": {},
    }


def _dashboard(
    rules: Rules, uid: str, key: str, board: Board, variables: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": _t(rules, key),
        "tags": ["kpi-monitor", "generated"],
        "description": "Generated by `kpi-monitor rules` from kpi_rules/rules.yaml; do not edit here.",
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-7d", "to": "now"},
        "timezone": "",
        "graphTooltip": 1,
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["kpi-monitor"], "asDropdown": True, "title": "KPI"}],
        "panels": board.panels,
    }


P = 'period="$period"'
CUR = f'{P},window="current"'
UNITS: dict[Unit, str] = {
    Unit.COUNT: "short",
    Unit.SECONDS: "s",
    Unit.DAYS: "d",
    Unit.HOURS: "h",
    Unit.PERCENT: "percent",
    Unit.RATIO: "short",
    Unit.TIMES: "x",
}


def series(level: str, name: str, selector: str = "") -> str:
    """The recording rule of a catalogue KPI at `level` (`team:sales_revenue:growth_pct{...}`)."""
    item = BY_NAME[name]
    metric, operation = item.record if item.record is not None else (item.name, "sum")
    return f"{level}:sales_{metric}:{operation}" + (f"{{{selector}}}" if selector else "")


def _unit(rules: Rules, name: str) -> str:
    unit = BY_NAME[name].unit
    return CURRENCY_UNITS.get(rules.currency, "short") if unit is Unit.MONEY else UNITS[unit]


def _kpi(b: Board, title: str, level: str, selector: str = "", legend: str = "", **kw: Any) -> None:
    """A panel of one catalogue KPI (`name` or `name@suffix` for the title) at `level`."""
    name = title.partition("@")[0]
    b.panel(title, [(series(level, name, selector), legend)], unit=_unit(b.rules, name), **kw)


def sales_overview(rules: Rules) -> dict[str, Any]:
    b = Board(rules)
    b.row("row_company")
    for title, selector in (
        ("revenue@to_date", CUR),
        ("target", CUR),
        ("attainment_pct", CUR),
        ("projected_attainment_pct", P),
        ("growth_pct@vs_ptd", P),
        ("win_rate_pct", CUR),
        ("quote_to_close_pct", CUR),
        ("visits", CUR),
        ("visits_growth_pct@vs_ptd", P),
        ("weighted_pipeline", ""),
        ("pipeline_coverage", P),
    ):
        _kpi(b, title, "company", selector, kind="stat")
    for level, row in (("team", "row_team"), ("region", "row_region")):
        b.row(row)
        lbl = f"{{{{{level}}}}}"
        b.panel(
            f"revenue_vs_target_{level}",
            [(series(level, "revenue", CUR), lbl), (series(level, "target", CUR), f"{lbl} target")],
            unit=_unit(rules, "revenue"),
        )
        for title, selector in (
            ("attainment_pct", CUR),
            ("projected_attainment_pct", P),
            ("growth_pct@vs_ptd", P),
            ("win_rate_pct", CUR),
            ("quote_to_close_pct", CUR),
            ("visits", CUR),
            ("visits_growth_pct@vs_ptd", P),
            ("weighted_pipeline", ""),
            ("pipeline_coverage", P),
        ):
            _kpi(b, title, level, selector, lbl)
    return _dashboard(rules, "kpi-sales-overview", "overview", b, [_period_var(rules)])


TEAM = 'team=~"$team"'


def rep_drilldown(rules: Rules) -> dict[str, Any]:
    b = Board(rules)
    r = f'rep="$rep",{P}'
    rc = f'rep="$rep",{CUR}'
    b.panel("by_window", [(series("rep", "revenue", r), "{{window}}")], unit=_unit(rules, "revenue"))
    _kpi(b, "target", "rep", r, "{{window}}")
    for title, selector in (
        ("attainment_pct", rc),
        ("projected_attainment_pct", r),
        ("growth_pct@vs_ptd", r),
        ("pipeline_coverage", r),
        ("win_rate_pct", rc),
        ("quote_to_close_pct", rc),
        ("lead_conversion_pct", rc),
        ("avg_deal_size", rc),
    ):
        _kpi(b, title, "rep", selector, kind="stat")
    b.panel(
        "visits_by_window",
        [(series("rep", "visits", f'rep="$rep",{P},window=~"current|previous_to_date"'), "{{window}}")],
    )
    _kpi(b, "visits_growth_pct@vs_ptd", "rep", r)
    for title, selector in (
        ("visits_per_win", rc),
        ("avg_cycle_days", rc),
        ("avg_first_response_hours", rc),
        ("open_deals", 'rep="$rep"'),
        ("open_pipeline", 'rep="$rep"'),
        ("weighted_pipeline", 'rep="$rep"'),
    ):
        _kpi(b, title, "rep", selector, kind="stat")
    _kpi(b, "channel_share_pct", "rep", rc, "{{channel}}")
    b.panel(
        "team_reps",
        [(series("rep", "attainment_pct", f'team=~"$team",{CUR}'), "{{rep}}")],
        unit="percent",
        w=24,
    )
    variables = [
        _period_var(rules),
        _query_var(rules, "team", "var_team", f"label_values({series('rep', 'revenue')}, team)"),
        _query_var(rules, "rep", "var_rep", f"label_values({series('rep', 'revenue', TEAM)}, rep)"),
    ]
    return _dashboard(rules, "kpi-rep-drilldown", "rep", b, variables)


def pipeline_health(rules: Rules) -> dict[str, Any]:
    b = Board(rules)
    for title, selector in (
        ("open_deals", ""),
        ("open_pipeline", ""),
        ("weighted_pipeline", ""),
        ("pipeline_coverage", P),
    ):
        _kpi(b, title, "company", selector, kind="stat")
    for level, row in (("team", "row_team"), ("region", "row_region")):
        b.row(row)
        lbl = f"{{{{{level}}}}}"
        b.panel(
            "open_pipeline",
            [
                (series(level, "open_pipeline"), f"{lbl} open"),
                (series(level, "weighted_pipeline"), f"{lbl} weighted"),
            ],
            unit=_unit(rules, "open_pipeline"),
        )
        for title, selector in (
            ("pipeline_coverage", P),
            ("open_deals", ""),
            ("avg_deal_size", CUR),
            ("lead_conversion_pct", CUR),
            ("avg_cycle_days", CUR),
        ):
            _kpi(b, title, level, selector, lbl)
    return _dashboard(rules, "kpi-pipeline-health", "pipeline", b, [_period_var(rules)])


def service_health(rules: Rules) -> dict[str, Any]:
    b = Board(rules)
    b.panel("workers_up", [('sum(up{job="kpi-worker"})', "")], kind="stat")
    b.panel("workers_ready", [("sum(kpi_worker_ready)", "")], kind="stat")
    b.panel("store_healthy", [("min(kpi_store_healthy)", "")], kind="stat")
    b.panel("owned_partitions", [("kpi_owned_partitions", "{{instance}}")], kind="stat")
    b.panel(
        "throughput", [("sum by (topic) (rate(kpi_events_processed_total[5m]))", "{{topic}}")], unit="ops"
    )
    b.panel("applied", [("sum(rate(kpi_events_applied_total[5m]))", "")], unit="ops")
    b.panel(
        "dead_letters", [("sum by (reason) (rate(kpi_events_rejected_total[5m]))", "{{reason}}")], unit="ops"
    )
    b.panel("dead_letters_total", [("sum by (reason) (kpi_events_rejected_total)", "{{reason}}")])
    b.panel(
        "consumer_lag",
        [
            ("sum by (topic) (max by (topic, partition) (kpi_consumer_lag_messages))", "{{topic}}"),
        ],
    )
    b.panel("event_lag", [("max by (instance) (kpi_event_time_lag_seconds)", "{{instance}}")], unit="s")
    b.panel(
        "latency",
        [
            (
                f"histogram_quantile({q}, sum by (le) (rate(kpi_batch_processing_seconds_bucket[5m])))",
                f"p{int(q * 100)}",
            )
            for q in (0.5, 0.95, 0.99)
        ],
        unit="s",
    )
    b.panel("recovery", [("max by (instance) (kpi_recovery_seconds)", "{{instance}}")], unit="s")
    b.panel("recovery_keys", [("sum by (instance) (kpi_recovery_keys_loaded)", "{{instance}}")])
    return _dashboard(rules, "kpi-service-health", "service", b, [])


def dashboards(rules: Rules) -> dict[str, dict[str, Any]]:
    """File stem -> dashboard JSON model."""
    return {
        "sales-overview": sales_overview(rules),
        "rep-drilldown": rep_drilldown(rules),
        "pipeline-health": pipeline_health(rules),
        "service-health": service_health(rules),
    }


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query of a dashboard."""
    return [
        (panel["title"], target["expr"]) for panel in board["panels"] for target in panel.get("targets", [])
    ]
