"""Memory of the customer side and of what reps keep of customers, per 100,000 customers.

`python -m benchmarks.customer_memory --customers 100000 --reps 200 --purchases 3`

Builds the customer-side states and the rep states through the core's batch drivers (the same
functions the worker runs), then measures, with tracemalloc, the Python memory each side holds,
and the size of the encoded parts the Redis store would keep (the worker holds them too, in its
write-back cache).
"""

from __future__ import annotations

import argparse
import gc
import random
import tracemalloc
from datetime import UTC, datetime, timedelta

import orjson

from kpi_core.clock import KpiClock
from kpi_core.codec import encode_all, encode_customer
from kpi_core.customers import CustomerState, CustomerSummary, summaries
from kpi_core.engine import KpiEngine, apply_customer_batch, apply_summaries
from kpi_core.events import Event, decode_event
from kpi_core.state import RepState
from kpi_rules import load_rules

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def purchases(customers: int, reps: int, per_customer: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for c in range(customers):
        rep = f"rep-{rng.randrange(reps):03d}"
        at = NOW - timedelta(days=rng.uniform(1, 300))
        for p in range(per_customer):
            if rng.random() < 0.05:
                rep = f"rep-{rng.randrange(reps):03d}"  # a customer now and then moves
            out.append(
                orjson.dumps(
                    {
                        "event_id": f"w-{c}-{p}",
                        "type": "deal.won",
                        "occurred_at": (at + timedelta(days=30 * p)).isoformat(),
                        "rep_id": rep,
                        "deal_id": f"d-{c}-{p}",
                        "customer_id": f"customer-{c:07d}",
                        "amount": "1500",
                        "currency": "GBP",
                    }
                )
            )
    return out


def traced(build: object) -> int:
    """Bytes tracemalloc attributes to what `build()` returns (kept alive while measuring)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()  # type: ignore[operator]
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return after - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--purchases", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rules = load_rules()
    engine = KpiEngine(rules, KpiClock(mode="event", wall=lambda: NOW + timedelta(hours=1)))
    lines = purchases(args.customers, args.reps, args.purchases, args.seed)
    events: list[Event] = [decode_event(line, rules) for line in lines]
    customers: dict[str, CustomerState] = {}
    reps: dict[str, RepState] = {}

    def customer_side() -> dict[str, CustomerState]:
        for start in range(0, len(events), 5000):
            outcome = apply_customer_batch(engine, events[start : start + 5000], customers, (1, start))
            apply_summaries(engine, outcome.summaries, reps)
        return customers

    # Both sides are built together (the rep side needs the summaries): measured together, then
    # the rep side alone by building it again from the final summaries.
    both = traced(customer_side)
    final = [(rep, s) for state in customers.values() for rep, s in _summaries(state)]
    fresh: dict[str, RepState] = {}
    rep_side = traced(lambda: apply_summaries(engine, final, fresh) and fresh)
    customer_bytes = sum(len(encode_customer(s)) for s in customers.values())
    rep_bytes = sum(
        len(v) for state in fresh.values() for k, v in encode_all(state).items() if k.startswith("c|")
    )
    scale = 100_000 / args.customers
    print(f"{args.customers:,} customers, {len(lines):,} purchases, {args.reps} reps")
    print(f"customer side + rep side, Python objects: {both / 2**20:,.1f} MiB")
    print(f"rep side alone (summaries + bucketed counts), Python objects: {rep_side / 2**20:,.1f} MiB")
    print(f"customer side alone (by difference): {(both - rep_side) / 2**20:,.1f} MiB")
    print(
        f"stored parts: customer side {customer_bytes / 2**20:,.1f} MiB, "
        f"rep side summaries {rep_bytes / 2**20:,.1f} MiB"
    )
    print(
        f"per 100,000 customers: {both * scale / 2**20:,.1f} MiB of Python objects, "
        f"{(customer_bytes + rep_bytes) * scale / 2**20:,.1f} MiB stored (kept in the worker's cache too)"
    )
    return 0


def _summaries(state: CustomerState) -> list[tuple[str, CustomerSummary]]:
    state.holders = set()
    return list(summaries(state, (9, 9)))


if __name__ == "__main__":
    raise SystemExit(main())
