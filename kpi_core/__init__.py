"""The pure KPI core: events, calendar periods, state transitions, derived KPIs; no Kafka, Redis or Prometheus."""
