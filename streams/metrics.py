"""All Prometheus metrics of a worker: `kpi_*` service metrics on an injected registry, and the
`sales_*` KPI gauges rendered at scrape time from the states of the partitions this worker owns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from kpi_core.aggregates import Agg
from kpi_core.engine import KpiEngine
from kpi_core.periods import SLOT_SECONDS, shift
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


def _values(agg: Agg) -> dict[str, float]:
    return {name: float(value) for name, value in agg.components().items()}


SNAPSHOT_GAUGES: tuple[tuple[str, str], ...] = (
    ("open_deals", "Open deals"),
    ("open_pipeline", "Open pipeline amount, base currency"),
    ("weighted_pipeline", "Open pipeline weighted by stage probability, base currency"),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


class SalesExposition:
    """Renders the `sales_*` gauges in the Prometheus text format for the reps currently owned.

    A revoked partition's reps are simply absent from `states()`, so no stale series can remain
    after a rebalance. Each rep's lines are cached until its state changes or the clock moves to
    another 15-minute slot, so a scrape costs little more than joining strings."""

    def __init__(
        self,
        engine: KpiEngine,
        states: Callable[[], Iterable[RepState]],
        periods: tuple[str, ...],
        version: Callable[[str], int],
    ) -> None:
        self.engine = engine
        self.states = states
        self.periods = periods
        self.version = version
        self._cache: dict[str, tuple[tuple[int, int], dict[str, list[str]]]] = {}

    def _rep_lines(self, state: RepState, now: datetime) -> dict[str, list[str]]:
        lines: dict[str, list[str]] = {}

        def add(name: str, labels: str, value: float) -> None:
            lines.setdefault(name, []).append(f"sales_{name}{labels} {value!r}\n")

        rep = (("rep", state.rep_id), ("team", state.team), ("region", state.region))
        rep_labels = _labels(rep)
        add("open_deals", rep_labels, float(state.open_deals))
        add("open_pipeline", rep_labels, float(state.open_pipeline))
        add("weighted_pipeline", rep_labels, float(state.weighted_pipeline))
        view = self.engine.view(state, now)
        calendar = self.engine.calendar
        for kind in self.periods:
            current = calendar.start_of(kind, now)
            previous = shift(kind, current, -1)
            windows = (
                ("current", current, view.whole(kind, current)),
                ("previous", previous, view.whole(kind, previous)),
                ("previous_to_date", previous, view.to_date(kind, previous, view.cutoff(kind))),
            )
            for window, start, agg in windows:
                if agg is None:
                    continue
                key = (*rep, ("period", kind), ("window", window))
                labels = _labels(key)
                for name, value in _values(agg).items():
                    add(name, labels, float(value))
                target = view.target(kind, start)
                if target is not None:
                    add("target", labels, float(target))
                for channel, amount in sorted(agg.revenue_by_channel.items()):
                    add("revenue_by_channel", _labels((*key, ("channel", channel))), float(amount))
        return lines

    def render(self) -> bytes:
        states = list(self.states())  # first: loading a partition's states advances the event clock
        now = self.engine.clock.now()
        slot = int(now.timestamp()) // SLOT_SECONDS
        families: dict[str, list[str]] = {name: [] for name in FAMILY_HELP}
        seen: set[str] = set()
        for state in states:
            seen.add(state.rep_id)
            stamp = (self.version(state.rep_id), slot)
            cached = self._cache.get(state.rep_id)
            if cached is None or cached[0] != stamp:
                cached = self._cache[state.rep_id] = (stamp, self._rep_lines(state, now))
            for name, lines in cached[1].items():
                families[name].extend(lines)
        for rep_id in [r for r in self._cache if r not in seen]:
            del self._cache[rep_id]  # moved to another worker
        out = []
        calendar = self.engine.calendar
        elapsed = []
        for kind in self.periods:
            done, length = calendar.elapsed_fraction(kind, calendar.start_of(kind, now), now)
            elapsed.append(f'sales_period_elapsed_ratio{{period="{kind}"}} {done / length!r}\n')
        families["period_elapsed_ratio"] = elapsed
        for name, help_text in FAMILY_HELP.items():
            out.append(f"# HELP sales_{name} {help_text}\n# TYPE sales_{name} gauge\n")
            out.extend(families[name])
        return "".join(out).encode()


FAMILY_HELP: dict[str, str] = {
    **dict(ADDITIVE_GAUGES),
    "revenue_by_channel": "Revenue by the deal's contact method, base currency",
    **dict(SNAPSHOT_GAUGES),
    "period_elapsed_ratio": "Elapsed fraction of the current period",
}


class KpiMetrics:
    """The worker's metrics; the KPI code never touches Prometheus, the adapters call these."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # `_created` samples double the series count and no rule or board uses them.
        disable_created_metrics()
        self.registry = registry
        self.events_in = Counter(
            "kpi_events_processed",
            "Valid events applied or found duplicate, by source topic",
            ["topic", "type"],
            registry=registry,
        )
        self.rejected = Counter(
            "kpi_events_rejected", "Events sent to the dead-letter topic", ["reason"], registry=registry
        )
        self.applied = Counter("kpi_events_applied", "Events applied to KPI state", registry=registry)
        self.duplicates = Counter(
            "kpi_events_duplicate", "Events ignored as repeats of an event_id", registry=registry
        )
        self.tombstones = Counter(
            "kpi_tombstones", "Null-value messages skipped (compaction deletes)", registry=registry
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
            "kpi_batch_events",
            "Events per routed micro-batch",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000),
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "kpi_consumer_lag_messages",
            "Messages behind the end of each input partition",
            ["topic", "partition"],
            registry=registry,
        )
        self.recovery_keys = Gauge(
            "kpi_recovery_keys_loaded",
            "State keys loaded from Redis at the last assignment",
            registry=registry,
        )
        self.recovery_seconds = Gauge(
            "kpi_recovery_seconds", "Seconds the last state recovery from Redis took", registry=registry
        )
        self.owned_partitions = Gauge(
            "kpi_owned_partitions", "KPI state partitions this worker owns", registry=registry
        )
        self.owned_reps = Gauge("kpi_owned_reps", "Reps whose state this worker owns", registry=registry)
        self.ready = Gauge(
            "kpi_worker_ready", "1 once the worker has recovered and consumes", registry=registry
        )
        self.store_healthy = Gauge("kpi_store_healthy", "1 while Redis writes succeed", registry=registry)
        self.store_rollbacks = Counter(
            "kpi_store_rollbacks",
            "Times Redis was found without writes it had acknowledged (restored from an older "
            "snapshot, failed over, emptied): the partition was rewritten from memory or replayed",
            registry=registry,
        )
        self.state_incomplete = Gauge(
            "kpi_state_incomplete",
            "1 when retained periods of the partition may miss events the input topics no longer hold",
            ["partition"],
            registry=registry,
        )
        self.state_rebuilding = Gauge(
            "kpi_state_rebuilding",
            "Partitions whose state is being rebuilt from the input topics",
            registry=registry,
        )

    def observe_event_time(self, newest: datetime | None, wall: datetime) -> None:
        if newest is not None:
            self.event_time_lag.set(max((wall - newest).total_seconds(), 0.0))

    def exposition(self, sales: SalesExposition | None) -> bytes:
        """The whole `/metrics` body: service metrics, then the KPI gauges."""
        body = generate_latest(self.registry)
        return body + sales.render() if sales is not None else body
