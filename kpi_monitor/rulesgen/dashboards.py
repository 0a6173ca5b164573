"""The four Grafana dashboards (provisioned from grafana/dashboards), built with `board.Board`.

Every panel query reads a recording rule of `promrules` or a metric the worker exports; the
titles follow the rules file's locale.
"""

from __future__ import annotations

from typing import Any

from kpi_monitor.rulesgen.board import Board, Kind, period_variable, query_variable, series, unit
from kpi_rules.models import Rules
from kpi_rules.vocabulary import Window

P = 'period="$period"'
CUR = f'{P},window="current"'
TEAM = 'team=~"$team"'
# clv: the trailing completed months, whatever the period shown (the worker exports them apart)
TRAILING = f'window="{Window.TRAILING}"'
STAT = Kind.STAT
# The scope's own label of a gap, for legends: `team north`, `region apac`, `company`.
GAP_LEGEND = "{{scope}} {{rep}}{{team}}{{region}} {{metric}}"


def sales_overview(rules: Rules) -> dict[str, Any]:
    b = Board(rules, "kpi-sales-overview", "overview")
    b.variable(period_variable(rules))
    b.row("row_company")
    for title, selector in (
        ("revenue@to_date", CUR),
        ("gross_margin_pct", CUR),
        ("cost_coverage_pct", CUR),
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
        b.kpi("gross_margin_pct", level, CUR, lbl)  # next to revenue
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
    _customers(b)
    _satisfaction(b)
    _leads_and_spend(b)
    _targets(b, rules)
    return b.to_dict()


def _by_scope(b: Board, names: tuple[str, ...], selector: str = CUR) -> None:
    """One panel per KPI for the teams, then for the regions."""
    for level in ("team", "region"):
        for name in names:
            b.kpi(name, level, selector, f"{{{{{level}}}}}")


def _customers(b: Board) -> None:
    b.row("row_customers")
    for title, selector in (
        ("new_customers", CUR),
        ("active_customers_start", CUR),
        ("churned_customers", CUR),
        ("reactivated_customers", CUR),
        ("retention_pct", CUR),
        ("churn_pct", CUR),
        ("repurchase_pct", CUR),
        ("clv", TRAILING),
    ):
        b.kpi(title, "company", selector, kind=STAT)
    _by_scope(b, ("churn_pct", "new_customers"))
    for level in ("team", "region"):
        b.kpi("clv", level, TRAILING, f"{{{{{level}}}}}")


def _satisfaction(b: Board) -> None:
    b.row("row_satisfaction")
    for title in ("csat_pct", "nps", "csat_responses", "nps_responses"):
        b.kpi(title, "company", CUR, kind=STAT)
    _by_scope(b, ("csat_pct", "nps"))


def _leads_and_spend(b: Board) -> None:
    b.row("row_leads_spend")
    for title in (
        "leads",
        "cost_per_lead",
        "lead_to_deal_pct",
        "cac",
        "spend_marketing",
        "spend_sales",
        "cost_of_sales_pct",
    ):
        b.kpi(title, "company", CUR, kind=STAT)
    b.kpi("leads_by_channel", "company", CUR, "{{channel}}", kind=STAT)
    _by_scope(b, ("cost_per_lead", "cac", "cost_of_sales_pct"))


def _targets(b: Board, rules: Rules) -> None:
    """Targets in force by metric (a scope's own, else its members'), attainment against them,
    and the gaps of the decomposition (contract section 3.3)."""
    b.row("row_targets")
    b.kpi("metric_target", "company", CUR, "{{metric}}")
    b.kpi("attainment_by_metric_pct", "company", CUR, "{{metric}}")
    b.kpi("projected_by_metric_pct", "company", P, "{{metric}}")
    for level in ("team", "region"):
        b.kpi("attainment_by_metric_pct", level, CUR, f"{{{{{level}}}}} {{{{metric}}}}")
    money = unit(rules, "target")
    b.panel("allocation_gaps", [(f"sales_target_allocation_gap{{{P}}}", GAP_LEGEND)], unit=money)
    split = "sum by (scope, rep, team, region, metric, period) (sales_target_split_gap)"
    b.panel("split_gaps", [(split, f"{GAP_LEGEND} {{{{period}}}}")], unit=money)


def rep_drilldown(rules: Rules) -> dict[str, Any]:
    b = Board(rules, "kpi-rep-drilldown", "rep")
    b.variable(period_variable(rules))
    teams = f"label_values({series('rep', 'revenue')}, team)"
    reps = f"label_values({series('rep', 'revenue', TEAM)}, rep)"
    b.variable(query_variable(rules, "team", "var_team", teams))
    b.variable(query_variable(rules, "rep", "var_rep", reps))
    r = f'rep="$rep",{P}'
    rc = f'rep="$rep",{CUR}'
    # the rep's revenue by window (the trailing one is clv's, shown with it)
    windows = f'{r},window!="{Window.TRAILING}"'
    b.panel("by_window", [(series("rep", "revenue", windows), "{{window}}")], unit=unit(rules, "revenue"))
    b.kpi("gross_margin_pct", "rep", r, "{{window}}")  # next to revenue
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
    b.kpi("cost_coverage_pct", "rep", r, "{{window}}")
    b.panel(
        "team_reps",
        [(series("rep", "attainment_pct", f'team=~"$team",{CUR}'), "{{rep}}")],
        unit="percent",
        w=24,
    )
    b.row("row_customers")
    for title, selector in (
        ("new_customers", rc),
        ("active_customers_start", rc),
        ("churned_customers", rc),
        ("reactivated_customers", rc),
        ("retention_pct", rc),
        ("churn_pct", rc),
        ("repurchase_pct", rc),
        ("clv", f'rep="$rep",{TRAILING}'),
    ):
        b.kpi(title, "rep", selector, kind=STAT)
    b.kpi("churn_pct", "rep", r, "{{window}}")
    b.kpi("churn_pct@team_reps", "rep", f'team=~"$team",{CUR}', "{{rep}}")
    b.row("row_satisfaction")
    for title in ("csat_pct", "nps", "csat_responses", "nps_responses"):
        b.kpi(title, "rep", rc, kind=STAT)
    b.row("row_leads_spend")
    for title in ("leads", "cost_per_lead", "lead_to_deal_pct", "cac", "cost_of_sales_pct"):
        b.kpi(title, "rep", rc, kind=STAT)
    b.kpi("leads_by_channel", "rep", rc, "{{channel}}", kind=STAT)
    b.row("row_targets")
    b.kpi("attainment_by_metric_pct", "rep", rc, "{{metric}}")
    b.kpi("projected_by_metric_pct", "rep", r, "{{metric}}")
    b.kpi("metric_target", "rep", r, "{{metric}} {{window}}")
    b.panel(
        "split_gaps",
        [('sum by (metric, period) (sales_target_split_gap{rep="$rep"})', "{{metric}} {{period}}")],
        unit=unit(rules, "target"),
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
