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

from kpi_core.aggregates import SLOTS as AGG_SLOTS
from kpi_core.aggregates import Agg, Slot
from kpi_core.catalogue import ADDITIVE, DERIVED, SNAPSHOT, Kpi, Shape, Surface, kpi, on
from kpi_core.engine import KpiEngine
from kpi_core.owners import parse_scope_key
from kpi_core.periods import SLOT_SECONDS, shift
from kpi_core.scopes import split_gaps
from kpi_core.state import REVENUE, RepState
from kpi_rules.vocabulary import Scope, Window

#: Windowed `sales_*` gauges: the catalogue's additive KPIs (a labelled one gets its label).
WINDOWED: tuple[Kpi, ...] = on(Surface.METRICS, ADDITIVE)
#: Per-rep gauges that are not windowed: the open pipeline.
SNAPSHOTS: tuple[Kpi, ...] = on(Surface.METRICS, SNAPSHOT)
#: Components of the trailing KPIs (clv: revenue, churned customers), also exported summed over the
#: trailing completed months (`period="month", window="trailing"`): the rules divide those sums.
TRAILING_COMPONENTS: tuple[str, ...] = tuple(
    dict.fromkeys(c for k in DERIVED if k.shape is Shape.TRAILING for c in k.components)
)
TRAILING_PERIOD = "month"


def _values(agg: Agg) -> dict[str, float]:
    return {name: float(value) for name, value in agg.components().items()}


Labels = tuple[tuple[str, str], ...]
Sample = tuple[Labels, float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


class SalesExposition:
    """Renders the `sales_*` gauges in the Prometheus text format for the reps currently owned.

    A revoked partition's reps are simply absent from `states()`, so no stale series can remain
    after a rebalance. Each rep's lines are cached until its state changes or the clock moves to
    another 15-minute slot, so a scrape costs little more than joining strings. (A prometheus_client
    collector with the same cache formats every sample at each scrape: 35x slower warm at 1,000
    reps, `python -m benchmarks.scrape_metrics`.)"""

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
        return {
            name: [f"sales_{name}{_labels(labels)} {value!r}\n" for labels, value in samples]
            for name, samples in self.rep_samples(state, now).items()
        }

    def rep_samples(self, state: RepState, now: datetime) -> dict[str, list[Sample]]:
        """Every `sales_*` sample of one rep (or scope state) at `now`, by family."""
        lines: dict[str, list[Sample]] = {}

        def add(name: str, labels: Labels, value: float) -> None:
            lines.setdefault(name, []).append((labels, value))

        rep, scope = owner_labels(state)
        rep_labels = rep
        if scope is Scope.REP:
            for item in SNAPSHOTS:
                add(item.name, rep_labels, float(getattr(state, item.name)))
        view = self.engine.view(state, now)
        calendar = self.engine.calendar
        for kind in self.periods:
            current = calendar.start_of(kind, now)
            previous = shift(kind, current, -1)
            windows = (
                (Window.CURRENT, current, view.whole(kind, current)),
                (Window.PREVIOUS, previous, view.whole(kind, previous)),
                (Window.PREVIOUS_TO_DATE, previous, view.to_date(kind, previous, view.cutoff(kind))),
            )
            for window, start, agg in windows:
                if agg is None:
                    continue
                key = (*rep, ("period", kind), ("window", window))
                labels = key
                for name, value in _values(agg).items():
                    add(name, labels, float(value))
                targets = view.targets(kind, start)
                if scope is Scope.REP and REVENUE in targets:  # rep-scope revenue targets
                    add("target", labels, float(targets[REVENUE]))
                for metric, amount in targets.items():  # every metric and scope
                    add("metric_target", (*key, ("metric", metric), ("scope", scope)), float(amount))
                for slot in LABELLED:
                    for label, amount in sorted(agg.labelled(slot.component).items()):
                        add(slot.component, (*key, (slot_label(slot), label)), float(amount))
            gaps = split_gaps(view, kind, current)
            for metric, gap in gaps.items():
                by = (*rep, ("period", kind), ("metric", metric), ("scope", scope))
                add("target_split_gap", by, float(gap))
        if scope is Scope.REP and TRAILING_PERIOD in self.periods:
            # The months the report's clv of the current period sums (customers live on reps only).
            trailing = view.trailing(TRAILING_PERIOD, calendar.start_of(TRAILING_PERIOD, now))
            labels = (*rep, ("period", TRAILING_PERIOD), ("window", Window.TRAILING))
            for name in TRAILING_COMPONENTS:
                add(name, labels, float(trailing[name]))
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


#: Every `sales_*` family with its HELP text, in exposition order.
FAMILY_HELP: dict[str, str] = {
    **{item.name: item.help.en for item in (*WINDOWED, *SNAPSHOTS)},
    "period_elapsed_ratio": "Elapsed fraction of the current period",
    "target_split_gap": "A year's (quarter's) own target minus the sum of its quarters' (months') "
    "targets, for the current period",
}


def owner_labels(state: RepState) -> tuple[tuple[tuple[str, str], ...], Scope]:
    """(rep, team, region) labels of a state and its scope: a team's, region's or the company's
    own state (team spend, scope targets) is exported with an empty `rep`, so that summing by
    team, region or over everything adds it in (contract section 3.3)."""
    key = parse_scope_key(state.rep_id)
    if key is None:
        return (("rep", state.rep_id), ("team", state.team), ("region", state.region)), Scope.REP
    scope, name = key
    if scope is Scope.TEAM:
        return (("rep", ""), ("team", name), ("region", state.region)), scope
    if scope is Scope.REGION:
        return (("rep", ""), ("team", ""), ("region", name)), scope
    return (("rep", ""), ("team", ""), ("region", "")), scope


LABELLED = tuple(slot for slot in AGG_SLOTS if slot.labelled)


def slot_label(slot: Slot) -> str:
    label = kpi(slot.component).label
    assert label is not None
    return label


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
        self.out_of_turn = Counter(
            "kpi_routed_out_of_turn",
            "Internal-topic messages delivered past the next offset to apply (set aside; the "
            "consumer is sent back), by topic",
            ["topic"],
            registry=registry,
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
        self.customer_routed = Counter(
            "kpi_customer_facts_routed",
            "Purchases, visits and quotes routed to the customer side by the ingest",
            registry=registry,
        )
        self.customer_facts = Counter(
            "kpi_customer_facts",
            "Routed customer facts handled by the customer side (applied, known or not kept)",
            registry=registry,
        )
        self.customer_summaries_received = Counter(
            "kpi_customer_summaries_received",
            "Customer summaries received by the rep side (applied, or older than the kept one)",
            registry=registry,
        )
        self.customer_summaries = Counter(
            "kpi_customer_summaries_sent",
            "Customer summaries sent to the reps that sold to the customer",
            registry=registry,
        )
        self.customer_batch_seconds = Histogram(
            "kpi_customer_batch_seconds",
            "Time to apply customer facts, send the summaries and persist one round",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
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
