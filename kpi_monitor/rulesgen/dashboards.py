"""Grafana dashboards (JSON model, provisioned from grafana/dashboards) built from plain dicts.

Every panel query reads a recording rule of `promrules` or a metric the worker exports; the
titles follow the rules file's locale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    "revenue": ("Revenue (period to date)", "收入（本期至今）"),
    "target": ("Target", "目标"),
    "attainment": ("Target attainment %", "目标达成率 %"),
    "projected": ("Projected attainment %", "预计达成率 %"),
    "growth": ("Revenue growth % vs same point of previous period", "收入较上期同期增长 %"),
    "win_rate": ("Win rate %", "赢单率 %"),
    "q2c": ("Quote-to-close %", "报价成交率 %"),
    "lead_conv": ("Lead conversion %", "线索转化率 %"),
    "visits": ("Sales visits (SVT)", "销售拜访次数（SVT）"),
    "visits_growth": ("Visits growth % vs same point of previous period", "拜访量较上期同期增长 %"),
    "visits_per_win": ("Visits per won deal", "每单拜访次数"),
    "weighted": ("Weighted pipeline", "加权商机金额"),
    "open_pipeline": ("Open pipeline", "在途商机金额"),
    "open_deals": ("Open deals", "在途商机数"),
    "coverage": ("Pipeline coverage (weighted / remaining target)", "商机覆盖率（加权商机 / 剩余目标）"),
    "revenue_vs_target_team": ("Revenue vs target by team", "各团队收入与目标"),
    "revenue_vs_target_region": ("Revenue vs target by region", "各区域收入与目标"),
    "by_window": ("Revenue: this period, previous period, previous to date", "收入：本期、上期、上期同期"),
    "visits_by_window": ("Visits: this period, previous to date", "拜访：本期、上期同期"),
    "avg_deal": ("Average deal size", "平均成交金额"),
    "cycle": ("Average sales cycle (days)", "平均销售周期（天）"),
    "first_response": ("Average first response (hours)", "平均首次响应（小时）"),
    "channel_share": ("Revenue share by channel %", "各渠道收入占比 %"),
    "team_reps": ("Attainment of the team's reps %", "团队内各代表达成率 %"),
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


def _t(rules: Rules, key: str) -> str:
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


def _money(rules: Rules) -> str:
    return CURRENCY_UNITS.get(rules.currency, "short")


def sales_overview(rules: Rules) -> dict[str, Any]:
    b, money = Board(rules), _money(rules)
    b.row("row_company")
    b.panel("revenue", [(f"company:sales_revenue:sum{{{CUR}}}", "")], kind="stat", unit=money)
    b.panel("target", [(f"company:sales_target:sum{{{CUR}}}", "")], kind="stat", unit=money)
    b.panel(
        "attainment", [(f"company:sales_revenue:attainment_pct{{{CUR}}}", "")], kind="stat", unit="percent"
    )
    b.panel(
        "projected",
        [(f"company:sales_revenue:projected_attainment_pct{{{P}}}", "")],
        kind="stat",
        unit="percent",
    )
    b.panel("growth", [(f"company:sales_revenue:growth_pct{{{P}}}", "")], kind="stat", unit="percent")
    b.panel("win_rate", [(f"company:sales_deals:win_rate_pct{{{CUR}}}", "")], kind="stat", unit="percent")
    b.panel("q2c", [(f"company:sales_deals:quote_to_close_pct{{{CUR}}}", "")], kind="stat", unit="percent")
    b.panel("visits", [(f"company:sales_visits:sum{{{CUR}}}", "")], kind="stat")
    b.panel("visits_growth", [(f"company:sales_visits:growth_pct{{{P}}}", "")], kind="stat", unit="percent")
    b.panel("weighted", [("company:sales_weighted_pipeline:sum", "")], kind="stat", unit=money)
    b.panel("coverage", [(f"company:sales_pipeline:coverage_ratio{{{P}}}", "")], kind="stat", unit="x")
    for level, row in (("team", "row_team"), ("region", "row_region")):
        b.row(row)
        lbl = f"{{{{{level}}}}}"
        b.panel(
            f"revenue_vs_target_{level}",
            [
                (f"{level}:sales_revenue:sum{{{CUR}}}", lbl),
                (f"{level}:sales_target:sum{{{CUR}}}", f"{lbl} target"),
            ],
            unit=money,
        )
        b.panel("attainment", [(f"{level}:sales_revenue:attainment_pct{{{CUR}}}", lbl)], unit="percent")
        b.panel(
            "projected", [(f"{level}:sales_revenue:projected_attainment_pct{{{P}}}", lbl)], unit="percent"
        )
        b.panel("growth", [(f"{level}:sales_revenue:growth_pct{{{P}}}", lbl)], unit="percent")
        b.panel("win_rate", [(f"{level}:sales_deals:win_rate_pct{{{CUR}}}", lbl)], unit="percent")
        b.panel("q2c", [(f"{level}:sales_deals:quote_to_close_pct{{{CUR}}}", lbl)], unit="percent")
        b.panel("visits", [(f"{level}:sales_visits:sum{{{CUR}}}", lbl)])
        b.panel("visits_growth", [(f"{level}:sales_visits:growth_pct{{{P}}}", lbl)], unit="percent")
        b.panel("weighted", [(f"{level}:sales_weighted_pipeline:sum", lbl)], unit=money)
        b.panel("coverage", [(f"{level}:sales_pipeline:coverage_ratio{{{P}}}", lbl)], unit="x")
    return _dashboard(rules, "kpi-sales-overview", "overview", b, [_period_var(rules)])


def rep_drilldown(rules: Rules) -> dict[str, Any]:
    b, money = Board(rules), _money(rules)
    r = f'rep="$rep",{P}'
    rc = f'rep="$rep",{CUR}'
    b.panel("by_window", [(f"rep:sales_revenue:sum{{{r}}}", "{{window}}")], unit=money)
    b.panel("target", [(f"rep:sales_target:sum{{{r}}}", "{{window}}")], unit=money)
    b.panel("attainment", [(f"rep:sales_revenue:attainment_pct{{{rc}}}", "")], kind="stat", unit="percent")
    b.panel(
        "projected", [(f"rep:sales_revenue:projected_attainment_pct{{{r}}}", "")], kind="stat", unit="percent"
    )
    b.panel("growth", [(f"rep:sales_revenue:growth_pct{{{r}}}", "")], kind="stat", unit="percent")
    b.panel("coverage", [(f"rep:sales_pipeline:coverage_ratio{{{r}}}", "")], kind="stat", unit="x")
    b.panel("win_rate", [(f"rep:sales_deals:win_rate_pct{{{rc}}}", "")], kind="stat", unit="percent")
    b.panel("q2c", [(f"rep:sales_deals:quote_to_close_pct{{{rc}}}", "")], kind="stat", unit="percent")
    b.panel("lead_conv", [(f"rep:sales_deals:lead_conversion_pct{{{rc}}}", "")], kind="stat", unit="percent")
    b.panel("avg_deal", [(f"rep:sales_revenue:avg_deal_size{{{rc}}}", "")], kind="stat", unit=money)
    b.panel(
        "visits_by_window",
        [
            (f'rep:sales_visits:sum{{rep="$rep",{P},window=~"current|previous_to_date"}}', "{{window}}"),
        ],
    )
    b.panel("visits_growth", [(f"rep:sales_visits:growth_pct{{{r}}}", "")], unit="percent")
    b.panel("visits_per_win", [(f"rep:sales_visits:per_win{{{rc}}}", "")], kind="stat")
    b.panel("cycle", [(f"rep:sales_cycle:avg_days{{{rc}}}", "")], kind="stat", unit="d")
    b.panel("first_response", [(f"rep:sales_first_response:avg_hours{{{rc}}}", "")], kind="stat", unit="h")
    b.panel("open_deals", [('rep:sales_open_deals:sum{rep="$rep"}', "")], kind="stat")
    b.panel("open_pipeline", [('rep:sales_open_pipeline:sum{rep="$rep"}', "")], kind="stat", unit=money)
    b.panel("weighted", [('rep:sales_weighted_pipeline:sum{rep="$rep"}', "")], kind="stat", unit=money)
    b.panel(
        "channel_share", [(f"rep:sales_revenue_by_channel:share_pct{{{rc}}}", "{{channel}}")], unit="percent"
    )
    b.panel(
        "team_reps",
        [(f'rep:sales_revenue:attainment_pct{{team=~"$team",{CUR}}}', "{{rep}}")],
        unit="percent",
        w=24,
    )
    variables = [
        _period_var(rules),
        _query_var(rules, "team", "var_team", "label_values(rep:sales_revenue:sum, team)"),
        _query_var(rules, "rep", "var_rep", 'label_values(rep:sales_revenue:sum{team=~"$team"}, rep)'),
    ]
    return _dashboard(rules, "kpi-rep-drilldown", "rep", b, variables)


def pipeline_health(rules: Rules) -> dict[str, Any]:
    b, money = Board(rules), _money(rules)
    b.panel("open_deals", [("company:sales_open_deals:sum", "")], kind="stat")
    b.panel("open_pipeline", [("company:sales_open_pipeline:sum", "")], kind="stat", unit=money)
    b.panel("weighted", [("company:sales_weighted_pipeline:sum", "")], kind="stat", unit=money)
    b.panel("coverage", [(f"company:sales_pipeline:coverage_ratio{{{P}}}", "")], kind="stat", unit="x")
    for level, row in (("team", "row_team"), ("region", "row_region")):
        b.row(row)
        lbl = f"{{{{{level}}}}}"
        b.panel(
            "open_pipeline",
            [
                (f"{level}:sales_open_pipeline:sum", f"{lbl} open"),
                (f"{level}:sales_weighted_pipeline:sum", f"{lbl} weighted"),
            ],
            unit=money,
        )
        b.panel("coverage", [(f"{level}:sales_pipeline:coverage_ratio{{{P}}}", lbl)], unit="x")
        b.panel("open_deals", [(f"{level}:sales_open_deals:sum", lbl)])
        b.panel("avg_deal", [(f"{level}:sales_revenue:avg_deal_size{{{CUR}}}", lbl)], unit=money)
        b.panel("lead_conv", [(f"{level}:sales_deals:lead_conversion_pct{{{CUR}}}", lbl)], unit="percent")
        b.panel("cycle", [(f"{level}:sales_cycle:avg_days{{{CUR}}}", lbl)], unit="d")
    return _dashboard(rules, "kpi-pipeline-health", "pipeline", b, [_period_var(rules)])


def service_health(rules: Rules) -> dict[str, Any]:
    b = Board(rules)
    b.panel("workers_up", [('sum(up{job="kpi-worker"})', "")], kind="stat")
    b.panel("workers_ready", [("sum(kpi_worker_ready)", "")], kind="stat")
    b.panel("store_healthy", [("min(kpi_store_healthy)", "")], kind="stat")
    b.panel("store_rollbacks", [("sum(increase(kpi_store_rollbacks_total[24h]))", "")], kind="stat")
    incomplete = "count(max by (partition) (kpi_state_incomplete) > 0) or vector(0)"
    b.panel("state_incomplete", [(incomplete, "")], kind="stat")
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
