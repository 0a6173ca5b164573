"""What keeping 15-minute slots longer costs (`keep.hour`: 72 before 2026-12-01, 768 since).

`python -m benchmarks.slot_retention --reps 40 --days 60 --per-hour 150`

Replays the same simulated history (the simulator's business hours) through the core's batch
driver with each `keep.hour`, on the event clock, and reports per setting: the slot buckets
kept, all buckets, the encoded size of the rep states (what Redis and the worker's write-back
cache hold), the Python memory of the states (tracemalloc) and the replay time, with the ratios
of the longer setting to the shorter one, taken in the same run.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import orjson

from kpi_core.clock import KpiClock
from kpi_core.codec import encode_all
from kpi_core.engine import KpiEngine, replay
from kpi_core.events import decode_event
from kpi_monitor.simulate import history
from kpi_monitor.traffic import TrafficGenerator
from kpi_rules import load_rules

NOW = datetime(2026, 11, 18, 16, 30, tzinfo=UTC)


def _lines(reps: int, days: int, per_hour: float) -> list[bytes]:
    gen = TrafficGenerator(load_rules(), reps=reps, seed=1, scenario="steady", per_hour=per_hour)
    return [orjson.dumps(e) for e in history(gen, days, NOW, gen.place(NOW))]


def measure(lines: list[bytes], hours: int) -> dict[str, float]:
    rules = load_rules()
    rules = rules.model_copy(update={"keep": rules.keep.model_copy(update={"hour": hours})})
    engine = KpiEngine(rules, KpiClock(wall=lambda: NOW + timedelta(minutes=1), mode="event"))
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    states, _ = replay(engine, (decode_event(line, rules) for line in lines))
    seconds = time.perf_counter() - started
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    slots = sum(len(s.buckets["slot"]) for s in states.values())
    buckets = sum(len(b) for s in states.values() for b in s.buckets.values())
    encoded = sum(len(v) for s in states.values() for v in encode_all(s).values())
    return {"slots": slots, "buckets": buckets, "encoded_mib": encoded / 2**20,
            "python_mib": held / 2**20, "seconds": seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-hour", type=float, default=150.0)
    args = parser.parse_args()
    lines = _lines(args.reps, args.days, args.per_hour)
    print(f"{len(lines)} events, {args.reps} reps, {args.days} days")
    results = {hours: measure(lines, hours) for hours in (72, 768)}
    for hours, r in results.items():
        print(f"keep.hour {hours:>4}: " + ", ".join(f"{k} {v:,.2f}" for k, v in r.items()))
    short, long = results[72], results[768]
    print("ratios 768/72: " + ", ".join(f"{k} {long[k] / short[k]:.2f}" for k in short))


if __name__ == "__main__":
    main()
