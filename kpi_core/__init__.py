"""The pure KPI core: events, periods, state transitions, derived KPIs; no Kafka/Redis/Prometheus."""
