"""All Prometheus metrics of a worker, on an injected registry: `kpi_*` service metrics and the
`sales_*` KPI gauges, computed at scrape time from the states of the partitions this worker owns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kpi_core.aggregates import Agg
from kpi_core.engine import KpiEngine
from kpi_core.periods import shift
from kpi_core.state import RepState

ADDITIVE_GAUGES: tuple[tuple[str, str], ...] = (
    ("visits", "Completed sales visits (SVT)"),
    ("deals_created", "Deals created"),
    ("deals_won", "Deals won"),
    ("deals_lost", "Deals lost"),
    ("quotes_sent", "Quotes sent"),
    ("revenue", "Revenue of won deals, base currency"),
    ("cycle_seconds_sum", "Sum of won deals' cycle lengths, seconds"),
    ("cycle_seconds_count", "Won deals with a known cycle length"),
    ("first_response_seconds_sum", "Sum of first-response times, seconds"),
    ("first_response_seconds_count", "Deals with a first response"),
    ("target", "Latest target for the period, base currency"),
)
WINDOWS: tuple[str, ...] = ("current", "previous", "previous_to_date")


def _values(agg: Agg) -> dict[str, float]:
    return {
        "visits": agg.visits,
        "deals_created": agg.deals_created,
        "deals_won": agg.deals_won,
        "deals_lost": agg.deals_lost,
        "quotes_sent": agg.quotes_sent,
        "revenue": float(agg.revenue),
        "cycle_seconds_sum": agg.cycle_us_sum / 1e6,
        "cycle_seconds_count": agg.cycle_count,
        "first_response_seconds_sum": agg.first_response_us_sum / 1e6,
        "first_response_seconds_count": agg.first_response_count,
    }


class SalesCollector(Collector):
    """Yields `sales_*` gauges for the reps currently owned; a revoked partition's reps are simply
    absent from `states()`, so no stale series can remain after a rebalance."""

    def __init__(
        self,
        engine: KpiEngine,
        states: Callable[[], Iterable[RepState]],
        periods: tuple[str, ...],
    ) -> None:
        self.engine = engine
        self.states = states
        self.periods = periods

    def describe(self) -> Iterator[Any]:
        return iter(())  # computed at collect time; no fixed description

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["rep", "team", "region", "period", "window"]
        families = {
            name: GaugeMetricFamily(f"sales_{name}", help_text, labels=labels)
            for name, help_text in ADDITIVE_GAUGES
        }
        by_channel = GaugeMetricFamily(
            "sales_revenue_by_channel", "Revenue by the deal's contact method", labels=[*labels, "channel"]
        )
        snapshot = {
            "open_deals": GaugeMetricFamily("sales_open_deals", "Open deals", labels=labels[:3]),
            "open_pipeline": GaugeMetricFamily("sales_open_pipeline", "Open pipeline amount", labels=labels[:3]),
            "weighted_pipeline": GaugeMetricFamily(
                "sales_weighted_pipeline", "Open pipeline weighted by stage probability", labels=labels[:3]
            ),
        }
        elapsed = GaugeMetricFamily(
            "sales_period_elapsed_ratio", "Elapsed fraction of the current period", labels=["period"]
        )
        now = self.engine.clock.now()
        for kind in self.periods:
            start = self.engine.calendar.start_of(kind, now)
            done, length = self.engine.calendar.elapsed_fraction(kind, start, now)
            elapsed.add_metric([kind], done / length)
        for state in self.states():
            view = self.engine.view(state, now)
            rep = [state.rep_id, state.team, state.region]
            snapshot["open_deals"].add_metric(rep, state.open_deals)
            snapshot["open_pipeline"].add_metric(rep, float(state.open_pipeline))
            snapshot["weighted_pipeline"].add_metric(rep, float(state.weighted_pipeline))
            for kind in self.periods:
                current = self.engine.calendar.start_of(kind, now)
                previous = shift(kind, current, -1)
                windows = {
                    "current": (current, view.whole(kind, current)),
                    "previous": (previous, view.whole(kind, previous)),
                    "previous_to_date": (previous, view.to_date(kind, previous, view.cutoff(kind))),
                }
                for window, (start, agg) in windows.items():
                    if agg is None:
                        continue
                    key = [*rep, kind, window]
                    for name, value in _values(agg).items():
                        families[name].add_metric(key, value)
                    target = view.target(kind, start)
                    if target is not None:
                        families["target"].add_metric(key, float(target))
                    for channel, amount in agg.revenue_by_channel.items():
                        by_channel.add_metric([*key, channel], float(amount))
        yield from families.values()
        yield by_channel
        yield from snapshot.values()
        yield elapsed


class KpiMetrics:
    """The worker's metrics; the KPI code never touches Prometheus, the adapters call these."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # `_created` samples double the series count and no rule or board uses them.
        disable_created_metrics()
        self.registry = registry
        self.events_in = Counter(
            "kpi_events_processed", "Valid events accepted at ingest", ["topic", "type"], registry=registry
        )
        self.rejected = Counter(
            "kpi_events_rejected", "Events sent to the dead-letter topic", ["reason"], registry=registry
        )
        self.applied = Counter("kpi_events_applied", "Events applied to KPI state", registry=registry)
        self.duplicates = Counter(
            "kpi_events_duplicate", "Events ignored as repeats of an event_id", registry=registry
        )
        self.ingest_errors = Counter(
            "kpi_ingest_errors", "Ingest batches that failed and were retried", registry=registry
        )
        self.event_time_lag = Gauge(
            "kpi_event_time_lag_seconds", "Wall clock minus the newest applied event time", registry=registry
        )
        self.batch_seconds = Histogram(
            "kpi_batch_processing_seconds",
            "Time to apply and persist one routed micro-batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.batch_events = Histogram(
            "kpi_batch_events", "Events per routed micro-batch",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000), registry=registry,
        )
        self.consumer_lag = Gauge(
            "kpi_consumer_lag_messages", "Messages behind the end of each input partition",
            ["topic", "partition"], registry=registry,
        )
        self.recovery_keys = Gauge(
            "kpi_recovery_keys_loaded", "State keys loaded from Redis at the last assignment", registry=registry
        )
        self.recovery_seconds = Gauge(
            "kpi_recovery_seconds", "Seconds the last state recovery from Redis took", registry=registry
        )
        self.owned_partitions = Gauge(
            "kpi_owned_partitions", "KPI state partitions this worker owns", registry=registry
        )
        self.owned_reps = Gauge("kpi_owned_reps", "Reps whose state this worker owns", registry=registry)
        self.ready = Gauge("kpi_worker_ready", "1 once the worker has recovered and consumes", registry=registry)
        self.store_healthy = Gauge("kpi_store_healthy", "1 while Redis writes succeed", registry=registry)

    def observe_event_time(self, newest: datetime | None, wall: datetime) -> None:
        if newest is not None:
            self.event_time_lag.set(max((wall - newest).total_seconds(), 0.0))

    def add_sales(self, collector: SalesCollector) -> None:
        self.registry.register(collector)
