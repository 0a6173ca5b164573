"""kpi-monitor: live sales KPIs from CRM events in Kafka, exported to Prometheus and Grafana."""

__version__ = "0.1.0"
