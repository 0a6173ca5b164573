"""`kpi-monitor rules`: Prometheus recording/alert rules, Alertmanager config and Grafana
dashboards, all generated from the rules file (`kpi_rules/rules.yaml`)."""

from kpi_monitor.rulesgen.writer import render_all, stale_files, write_all

__all__ = ["render_all", "stale_files", "write_all"]
