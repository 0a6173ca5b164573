"""The stages of `benchmarks.hot_path`, run in a child process against one tree's code.

    python -P benchmarks/hot_path_stages.py EVENTS.jsonl     # with PYTHONPATH=<tree>, cwd=<tree>

Self-contained on purpose: it imports only the project's packages (kpi_core, kpi_rules, streams)
and the standard library, never `benchmarks` or `kpi_testkit`, because the tree it measures may
be an older commit without them (or with another layout). It is run as a file, not with `-m`, so
that this checkout's version of the stages runs; `-P` keeps its directory off sys.path, so the
project's packages come from PYTHONPATH (the measured tree), ahead of the installed ones."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

WALL = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # an hour after the generated history ends


def stages(events_file: Path, partitions: int = 4) -> dict[str, float]:
    """Seconds per event of each stage, with the project's packages of the tree being measured
    (and its KPI core as KPI_CORE says, for trees that have the compiled core)."""
    try:
        from kpi_monitor import compiled_core
    except ImportError:  # an earlier tree: pure Python only
        pass
    else:
        compiled_core.select(os.environ)
    try:  # the garbage collector as that tree's worker sets it (from issue 16 on)
        from streams.app import tune_gc
    except ImportError:
        pass
    else:
        tune_gc()
    import orjson
    from prometheus_client import CollectorRegistry

    from kpi_core.clock import KpiClock
    from kpi_core.engine import KpiEngine
    from kpi_core.events import Rejection, decode_event
    from kpi_core.state import RepState
    from kpi_rules import load_rules
    from streams.metrics import KpiMetrics
    from streams.processor import BatchProcessor, PartitionedStates
    from streams.routing import Routed, encode_batch, partition_for

    raws = events_file.read_bytes().splitlines()
    count = len(raws)
    rules = load_rules()

    def engine() -> KpiEngine:
        return KpiEngine(rules, KpiClock(mode="event", wall=lambda: WALL))

    out: dict[str, float] = {}
    started = time.perf_counter()
    for raw in raws:
        json.loads(raw)
    out["json"] = time.perf_counter() - started

    started = time.perf_counter()
    for raw in raws:
        decode_event(raw, rules)
    out["decode"] = time.perf_counter() - started

    kpi = engine()
    ctx = kpi.context()
    states: dict[str, RepState] = {}
    started = time.perf_counter()
    for raw in raws:
        try:
            event = decode_event(raw, rules)
            # (a team's spend or target has no rep: kept under "None"; older trees have no owner keys)
            rep_id = str(event.rep_id)
            state = states.get(rep_id)
            if state is None:
                state = states[rep_id] = RepState(rep_id=rep_id)
            kpi.apply(state, event, ctx)
        except Rejection:
            pass
    out["decode+apply"] = time.perf_counter() - started

    started = time.perf_counter()
    routed: dict[int, list[Routed]] = defaultdict(list)
    for offset, raw in enumerate(raws):
        rep_id = orjson.loads(raw).get("rep_id") or ""  # a team's spend or target: none
        routed[partition_for(rep_id, partitions)].append(Routed(raw, "t", 0, offset))
    batches = [
        (partition, encode_batch(items[i : i + 1250]))
        for partition, items in routed.items()
        for i in range(0, len(items), 1250)
    ]
    out["route"] = time.perf_counter() - started

    store = _MemoryStore(partitions)
    processor = BatchProcessor(
        engine(), PartitionedStates(store), KpiMetrics(CollectorRegistry()), lambda p: p
    )
    started = time.perf_counter()
    for offset, (partition, value) in enumerate(batches):
        processor.apply_batch(partition, offset, value)
    out["worker path offline"] = time.perf_counter() - started
    customers = _with_customers(raws, partitions, engine)
    if customers is not None:
        out["worker path offline, customer side included"] = customers
    return {name: seconds / count for name, seconds in out.items()}


def _with_customers(raws: list[bytes], partitions: int, engine: Any) -> float | None:
    """Seconds of the whole offline path of a worker with the customer side (trees that have it):
    per poll of 5,000 events, the ingest's keys and framing (rep- and customer-partitioned), the
    rep side applying and staging, the customer side applying, its summaries framed and applied
    on the rep side, everything staged (no Kafka, no Redis)."""
    try:
        from streams.customer_side import CustomerProcessor, PartitionedCustomers
        from streams.ingest import _chunks, _keys_of
        from streams.routing import (
            Routed,
            encode_batch,
            encode_summaries,
            partition_for,
            summaries_by_partition,
        )
    except ImportError:
        return None
    from prometheus_client import CollectorRegistry

    from streams.metrics import KpiMetrics
    from streams.processor import BatchProcessor, PartitionedStates

    kpi = engine()
    states = PartitionedStates(_MemoryStore(partitions))
    states.churn_after = kpi.churn_after
    states.clock_now = kpi.clock.now
    reps = BatchProcessor(kpi, states, KpiMetrics(CollectorRegistry()), lambda p: ("r", p))
    customers = CustomerProcessor(
        kpi, PartitionedCustomers(_MemoryStore(partitions)), lambda p: ("c", p), lambda: 1, partitions
    )
    offsets: dict[Any, int] = defaultdict(int)
    started = time.perf_counter()
    for first in range(0, len(raws), 5000):
        routed: dict[int, list[Any]] = defaultdict(list)
        by_customer: dict[int, list[Any]] = defaultdict(list)
        for offset, raw in enumerate(raws[first : first + 5000], first):
            keys = _keys_of(raw, 1 << 20)
            if keys is None:
                continue
            item = tuple.__new__(Routed, (raw, "t", 0, offset))
            routed[partition_for(keys[0], partitions)].append(item)
            if keys[1] is not None:
                by_customer[partition_for(keys[1], partitions)].append(item)
        for partition, items in routed.items():
            for chunk in _chunks(items):
                offsets[partition] += 1
                reps.apply_batch(partition, offsets[partition], encode_batch(chunk), stage=False)
        reps.stage()
        summaries: list[Any] = []
        for partition, items in by_customer.items():
            for chunk in _chunks(items):
                offsets["c", partition] += 1
                result = customers.apply_batch(partition, offsets["c", partition], encode_batch(chunk))
                summaries.extend(result.summaries)
        customers.stage()
        for partition, sent in summaries_by_partition(summaries, partitions):
            offsets[partition] += 1
            reps.apply_batch(partition, offsets[partition], encode_summaries(sent), stage=False)
        reps.stage()
    return time.perf_counter() - started


class _MemoryStore:
    """The part of the store the processor uses, in a dict: the offline stage has no Redis.
    Defined here, not imported, because `stages` also runs against earlier commits' code."""

    def __init__(self, partitions: int) -> None:
        self.data: dict[int, dict[bytes, bytes]] = {p: {} for p in range(partitions)}
        self.offsets: dict[Any, int] = {}

    def partitions(self) -> set[int]:
        return set(self.data)

    def get_in(self, partition: int, key: bytes) -> bytes | None:
        return self.data[partition].get(key)

    def set_in(self, partition: int, key: bytes, value: bytes) -> None:
        self.data[partition][key] = value

    def delete_in(self, partition: int, key: bytes) -> None:
        self.data[partition].pop(key, None)

    def items_in(self, partition: int) -> Any:
        return iter(list(self.data[partition].items()))

    def persisted_offset(self, tp: Any) -> int | None:
        return self.offsets.get(tp)

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.offsets[tp] = offset


if __name__ == "__main__":
    print(json.dumps(stages(Path(sys.argv[1]))))
