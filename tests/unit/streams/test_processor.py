"""The batch processor: changes of several routed messages staged once give exactly the store of
staging each message; nothing (data or offset) reaches the store before `stage()`; redeliveries
are skipped; a partition released before staging keeps neither its changes nor its offset."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
import factories as f  # noqa: E402

from streams.metrics import KpiMetrics  # noqa: E402
from streams.processor import BatchProcessor, PartitionedStates  # noqa: E402
from streams.routing import Routed, encode_batch, partition_for  # noqa: E402

PARTITIONS = 2


class MemoryStore:
    def __init__(self) -> None:
        self.data: dict[int, dict[bytes, bytes]] = {p: {} for p in range(PARTITIONS)}
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


def processor(store: MemoryStore) -> BatchProcessor:
    engine = f.engine(now=datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
    return BatchProcessor(engine, PartitionedStates(store), KpiMetrics(CollectorRegistry()), lambda p: p)


def messages() -> list[tuple[int, int, bytes]]:
    """(partition, offset, routed value): 6 messages per partition of visits, deals and wins."""
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    for i in range(120):
        rep, at = f"rep-{i % 7}", start + timedelta(minutes=3 * i)
        events.append(f.visit(at, rep, deal=f"d-{i % 11}"))
        if i % 5 == 0:
            events.append(f.deal_created(at, f"d-{i % 11}", rep))
        if i % 13 == 0:
            events.append(f.deal_won(at + timedelta(minutes=1), f"d-{i % 11}", rep))
    routed: dict[int, list[Routed]] = {p: [] for p in range(PARTITIONS)}
    for offset, event in enumerate(events):
        routed[partition_for(event["rep_id"], PARTITIONS)].append(
            Routed(orjson.dumps(event), "crm.x", 0, offset)
        )
    out = []
    for partition, items in routed.items():
        for number, i in enumerate(range(0, len(items), 25)):
            out.append((partition, number, encode_batch(items[i : i + 25])))
    return out


def test_staging_once_equals_staging_every_message() -> None:
    each, once = MemoryStore(), MemoryStore()
    one_by_one, together = processor(each), processor(once)
    results = []
    for partition, offset, value in messages():
        one_by_one.apply_batch(partition, offset, value)
        results.append(together.apply_batch(partition, offset, value, stage=False))
    assert once.data == {p: {} for p in range(PARTITIONS)} and once.offsets == {}
    assert together.stage() == {0, 1}
    assert once.data == each.data and once.offsets == each.offsets
    assert sum(r.applied for r in results) > 100 and not any(r.skipped for r in results)


def test_a_redelivered_message_is_skipped_before_and_after_staging() -> None:
    store = MemoryStore()
    proc = processor(store)
    partition, offset, value = messages()[0]
    assert proc.apply_batch(partition, offset, value, stage=False).applied > 0
    assert proc.apply_batch(partition, offset, value, stage=False).skipped
    proc.stage()
    assert proc.apply_batch(partition, offset, value).skipped


def test_a_partition_released_before_staging_keeps_nothing() -> None:
    store = MemoryStore()
    proc = processor(store)
    batches = messages()
    for partition, offset, value in batches:
        proc.apply_batch(partition, offset, value, stage=False)
    del store.data[1]  # revoked: the store no longer holds it
    proc.states.release({1})
    assert proc.stage() == {0}
    assert 1 not in store.offsets and store.offsets[0] == max(o for p, o, _ in batches if p == 0)


def test_the_first_batch_runs_at_its_own_event_clock_as_report_does() -> None:
    """With KPI_CLOCK=event and no event seen yet, a batch's events set the clock before any is
    applied (as `report` reads its input first), not the wall clock: 410-day-old history keeps
    its day buckets (400 days are kept) and gives report's figures."""
    wall = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    old = wall - timedelta(days=410)
    events = [f.visit(old + timedelta(hours=h), "rep-1") for h in range(5)]
    routed = [Routed(orjson.dumps(e), "crm.visits", 0, i) for i, e in enumerate(events)]
    store = MemoryStore()
    engine = f.engine(now=wall, mode="event")
    proc = BatchProcessor(engine, PartitionedStates(store), KpiMetrics(CollectorRegistry()), lambda p: p)
    partition = partition_for("rep-1", PARTITIONS)
    assert proc.apply_batch(partition, 0, encode_batch(routed)).applied == 5
    state = proc.states.reps(partition)["rep-1"]
    assert state.buckets["day"][old.date()].visits == 5
    report = f.report(events, now=wall, mode="event")
    assert f.row(report, "day", old.date().isoformat())["visits"] == 5
