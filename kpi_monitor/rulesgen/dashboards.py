"""The four Grafana dashboards (provisioned from grafana/dashboards), built with `board.Board`.

Every panel query reads a recording rule of `promrules` or a metric the worker exports; the
titles follow the rules file's locale.
"""

from __future__ import annotations

from typing import Any

from kpi_monitor.rulesgen.board import Board, Kind, period_variable, query_variable, series, unit
from kpi_rules.models import Rules

P = 'period="$period"'
CUR = f'{P},window="current"'
TEAM = 'team=~"$team"'
STAT = Kind.STAT


def sales_overview(rules: Rules) -> dict[str, Any]:
    b = Board(rules, "kpi-sales-overview", "overview")
    b.variable(period_variable(rules))
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
        b.kpi(title, "company", selector, kind=STAT)
    for level, row in (("team", "row_team"), ("region", "row_region")):
        b.row(row)
        lbl = f"{{{{{level}}}}}"
        b.panel(
            f"revenue_vs_target_{level}",
            [(series(level, "revenue", CUR), lbl), (series(level, "target", CUR), f"{lbl} target")],
            unit=unit(rules, "revenue"),
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
            b.kpi(title, level, selector, lbl)
    return b.to_dict()


def rep_drilldown(rules: Rules) -> dict[str, Any]:
    b = Board(rules, "kpi-rep-drilldown", "rep")
    b.variable(period_variable(rules))
    teams = f"label_values({series('rep', 'revenue')}, team)"
    reps = f"label_values({series('rep', 'revenue', TEAM)}, rep)"
    b.variable(query_variable(rules, "team", "var_team", teams))
    b.variable(query_variable(rules, "rep", "var_rep", reps))
    r = f'rep="$rep",{P}'
    rc = f'rep="$rep",{CUR}'
    b.panel("by_window", [(series("rep", "revenue", r), "{{window}}")], unit=unit(rules, "revenue"))
    b.kpi("target", "rep", r, "{{window}}")
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
        b.kpi(title, "rep", selector, kind=STAT)
    b.panel(
        "visits_by_window",
        [(series("rep", "visits", f'rep="$rep",{P},window=~"current|previous_to_date"'), "{{window}}")],
    )
    b.kpi("visits_growth_pct@vs_ptd", "rep", r)
    for title, selector in (
        ("visits_per_win", rc),
        ("avg_cycle_days", rc),
        ("avg_first_response_hours", rc),
        ("open_deals", 'rep="$rep"'),
        ("open_pipeline", 'rep="$rep"'),
        ("weighted_pipeline", 'rep="$rep"'),
    ):
        b.kpi(title, "rep", selector, kind=STAT)
    b.kpi("channel_share_pct", "rep", rc, "{{channel}}")
    b.panel(
        "team_reps",
        [(series("rep", "attainment_pct", f'team=~"$team",{CUR}'), "{{rep}}")],
        unit="percent",
        w=24,
    )
    return b.to_dict()


def pipeline_health(rules: Rules) -> dict[str, Any]:
    b = Board(rules, "kpi-pipeline-health", "pipeline")
    b.variable(period_variable(rules))
    for title, selector in (
        ("open_deals", ""),
        ("open_pipeline", ""),
        ("weighted_pipeline", ""),
        ("pipeline_coverage", P),
    ):
        b.kpi(title, "company", selector, kind=STAT)
    for level, row in (("team", "row_team"), ("region", "row_region")):
        b.row(row)
        lbl = f"{{{{{level}}}}}"
        b.panel(
            "open_pipeline",
            [
                (series(level, "open_pipeline"), f"{lbl} open"),
                (series(level, "weighted_pipeline"), f"{lbl} weighted"),
            ],
            unit=unit(rules, "open_pipeline"),
        )
        for title, selector in (
            ("pipeline_coverage", P),
            ("open_deals", ""),
            ("avg_deal_size", CUR),
            ("lead_conversion_pct", CUR),
            ("avg_cycle_days", CUR),
        ):
            b.kpi(title, level, selector, lbl)
    return b.to_dict()


def service_health(rules: Rules) -> dict[str, Any]:
    b = Board(rules, "kpi-service-health", "service")
    b.panel("workers_up", [('sum(up{job="kpi-worker"})', "")], kind=STAT)
    b.panel("workers_ready", [("sum(kpi_worker_ready)", "")], kind=STAT)
    b.panel("store_healthy", [("min(kpi_store_healthy)", "")], kind=STAT)
    b.panel("store_rollbacks", [("sum(increase(kpi_store_rollbacks_total[24h]))", "")], kind=STAT)
    incomplete = "count(max by (partition) (kpi_state_incomplete) > 0) or vector(0)"
    b.panel("state_incomplete", [(incomplete, "")], kind=STAT)
    b.panel("owned_partitions", [("kpi_owned_partitions", "{{instance}}")], kind=STAT)
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
    return b.to_dict()


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
