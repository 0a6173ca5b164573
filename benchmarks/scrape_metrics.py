"""Scrape time of a worker's whole `/metrics` body: the hand-assembled `sales_*` text the worker
serves (`streams.metrics.SalesExposition`) vs a prometheus_client collector (`SalesCollector`
below), same states, same run.

    python -m benchmarks.scrape_metrics [--reps 1000] [--days 400] [--per-hour 60] [--repeat 7]

The states come from the simulator's history (`kpi-monitor simulate`'s generator) replayed by the
KPI core with the event clock, as a worker holds them. Each repetition renders the body (service
metrics from `generate_latest` plus the `sales_*` gauges) with an empty per-rep cache (cold: the
first scrape after a start or a 15-minute slot change) and then again (warm: every later scrape),
alternating the two implementations; the median and best of each are printed, with their ratio.
Both bodies are parsed and compared first, so the figures compare like for like.

The collector is the candidate of issue 11, kept here and not in the worker: it was to replace the
text only if its warm scrape stayed within 1.5x of the text's. Its per-rep cache holds `Sample`s,
but `generate_latest` still formats every sample (sorted, escaped labels, Go float syntax) on every
scrape, where the text renderer joins cached lines. Measured with the defaults (1,000 reps, 185,224
events, 173,870 series, a 17.3 MiB body; 2 shared cores, load ~3), medians of 7 cold / 35 warm:
cold 414 ms (text) vs 1,760 ms (collector), 4.3x; warm 32 ms vs 1,136 ms, 35x. So the text stays.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine, replay
from kpi_core.events import Event, Rejection, decode_event
from kpi_core.periods import SLOT_SECONDS
from kpi_core.state import RepState
from kpi_monitor.simulate import history
from kpi_monitor.traffic import TrafficGenerator
from kpi_rules import load_rules
from streams.app import DEFAULT_EXPORT_PERIODS as PERIODS
from streams.metrics import FAMILY_HELP, KpiMetrics, SalesExposition

END = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)


class SalesCollector(Collector):
    """The `sales_*` gauges as a prometheus_client collector, with the text renderer's per-rep
    cache (samples, kept until the rep's state version or the 15-minute slot changes)."""

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
        self._cache: dict[str, tuple[tuple[int, int], dict[str, list[Sample]]]] = {}
        self._samples = SalesExposition(engine, states, periods, version)

    def describe(self) -> Iterable[Metric]:
        return ()  # registering must not load every rep's state (collect would)

    def _rep_samples(self, state: RepState, now: datetime) -> dict[str, list[Sample]]:
        # The samples themselves are the worker's (one definition); only their rendering differs.
        return {
            name: [Sample(f"sales_{name}", dict(labels), value) for labels, value in samples]
            for name, samples in self._samples.rep_samples(state, now).items()
        }

    def collect(self) -> Iterator[Metric]:
        states = list(self.states())  # first: loading a partition's states advances the event clock
        now = self.engine.clock.now()
        slot = int(now.timestamp()) // SLOT_SECONDS
        families = {name: GaugeMetricFamily(f"sales_{name}", text) for name, text in FAMILY_HELP.items()}
        seen: set[str] = set()
        for state in states:
            seen.add(state.rep_id)
            stamp = (self.version(state.rep_id), slot)
            cached = self._cache.get(state.rep_id)
            if cached is None or cached[0] != stamp:
                cached = self._cache[state.rep_id] = (stamp, self._rep_samples(state, now))
            for name, samples in cached[1].items():
                families[name].samples.extend(samples)
        for rep_id in [r for r in self._cache if r not in seen]:
            del self._cache[rep_id]  # moved to another worker
        calendar = self.engine.calendar
        elapsed = families["period_elapsed_ratio"] = GaugeMetricFamily(
            "sales_period_elapsed_ratio", FAMILY_HELP["period_elapsed_ratio"], labels=["period"]
        )
        for kind in self.periods:
            done, length = calendar.elapsed_fraction(kind, calendar.start_of(kind, now), now)
            elapsed.add_metric([kind], done / length)
        yield from families.values()


def build_states(reps: int, days: int, per_hour: float) -> tuple[KpiEngine, dict[str, RepState], int]:
    """(engine at the history's end, rep states, events applied)."""
    rules = load_rules()
    engine = KpiEngine(rules, KpiClock(mode="event"))
    generator = TrafficGenerator(rules, reps=reps, seed=1, per_hour=per_hour)

    def events() -> Iterator[Event]:
        for raw in history(generator, days, END, END):
            try:
                yield decode_event(orjson.dumps(raw), rules)
            except Rejection:
                continue

    decoded = list(events())
    states, _ = replay(engine, decoded)
    return engine, states, len(decoded)


def text_body(engine: KpiEngine, states: dict[str, RepState]) -> Callable[[], bytes]:
    """A fresh (cold) renderer of the body with the hand-assembled `sales_*` text."""
    metrics = KpiMetrics(CollectorRegistry())
    sales = SalesExposition(engine, states.values, PERIODS, lambda rep: 1)
    return lambda: metrics.exposition(sales)


def collector_body(engine: KpiEngine, states: dict[str, RepState]) -> Callable[[], bytes]:
    """A fresh (cold) renderer of the body with the `sales_*` collector on the registry."""
    registry = CollectorRegistry()
    KpiMetrics(registry)
    registry.register(SalesCollector(engine, states.values, PERIODS, lambda rep: 1))
    return lambda: generate_latest(registry)


def families(body: bytes) -> dict[str, Any]:
    """name -> (help, type, {sorted labels: value}): what Prometheus stores of a body."""
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        samples = {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        out[family.name] = (family.documentation, family.type, samples)
    return out


def timed(render: Callable[[], bytes]) -> tuple[float, int]:
    gc.collect()
    started = time.perf_counter()
    body = render()
    return time.perf_counter() - started, len(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--days", type=int, default=400, help="days of simulated history")
    parser.add_argument("--per-hour", type=float, default=60.0, help="history events per business hour")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--warm", type=int, default=5, help="warm scrapes per repetition")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    engine, states, count = build_states(args.reps, args.days, args.per_hour)
    print(
        f"{len(states)} reps from {count:,} events over {args.days} days "
        f"({time.perf_counter() - started:.1f} s to build); periods {', '.join(PERIODS)}"
    )
    implementations = {"text": text_body, "collector": collector_body}
    bodies = {name: make(engine, states)() for name, make in implementations.items()}
    parsed = {name: families(body) for name, body in bodies.items()}
    if parsed["text"] != parsed["collector"]:
        raise SystemExit("the two bodies differ: the comparison would be meaningless")
    series = sum(len(samples) for _, _, samples in parsed["text"].values())
    sizes = ", ".join(f"{name} {len(body) / 2**20:.1f} MiB" for name, body in bodies.items())
    print(f"identical after parsing: {len(parsed['text'])} families, {series:,} series; {sizes}")

    cold: dict[str, list[float]] = {name: [] for name in implementations}
    warm: dict[str, list[float]] = {name: [] for name in implementations}
    for _ in range(args.repeat):
        for name, make in implementations.items():  # alternated: drifts hit both alike
            render = make(engine, states)
            cold[name].append(timed(render)[0])
            warm[name].extend(timed(render)[0] for _ in range(args.warm))

    print(f"\n{'scrape':<8} {'implementation':<14} {'median ms':>10} {'best ms':>9}  runs")
    for label, runs in (("cold", cold), ("warm", warm)):
        for name, times in runs.items():
            print(
                f"{label:<8} {name:<14} {statistics.median(times) * 1e3:>10.1f} "
                f"{min(times) * 1e3:>9.1f}  {len(times)}"
            )
    print()
    for label, runs in (("cold", cold), ("warm", warm)):
        ratio = statistics.median(runs["collector"]) / statistics.median(runs["text"])
        best = min(runs["collector"]) / min(runs["text"])
        print(f"collector / text, {label}: {ratio:.2f}x (medians), {best:.2f}x (best)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
