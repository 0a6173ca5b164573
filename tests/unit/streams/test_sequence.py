"""Routed messages apply strictly in offset order and only once their partition is planned: what
Faust delivers early or past a lost message is set aside with where to resume, so no later
redelivery can look "already applied"; the resume hook plans before it seeks."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
import factories as f  # noqa: E402
from test_processor import MemoryStore, messages  # noqa: E402

from streams.integrity.resume import ResumeFromStore  # noqa: E402
from streams.metrics import KpiMetrics  # noqa: E402
from streams.processor import BatchProcessor, PartitionedStates  # noqa: E402
from streams.sequence import OffsetSequence, Verdict  # noqa: E402


def strict_processor(store: MemoryStore, sequence: OffsetSequence) -> BatchProcessor:
    engine = f.engine(now=datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
    return BatchProcessor(
        engine, PartitionedStates(store), KpiMetrics(CollectorRegistry()), lambda p: p, sequence=sequence
    )


def test_a_partition_applies_nothing_until_planned_then_from_its_start() -> None:
    sequence = OffsetSequence()
    assert sequence.judge(0, 5, None) is Verdict.OUT_OF_TURN  # Faust let it flow before the hook
    sequence.planned({0: 3})
    assert sequence.judge(0, 2, None) is Verdict.SKIP
    assert sequence.judge(0, 4, None) is Verdict.OUT_OF_TURN
    assert sequence.expected(0, None) == 3
    assert sequence.judge(0, 3, None) is Verdict.APPLY
    assert sequence.judge(0, 4, 3) is Verdict.APPLY
    assert sequence.judge(0, 6, 4) is Verdict.OUT_OF_TURN and sequence.expected(0, 4) == 5
    sequence.forget({0})
    assert sequence.judge(0, 5, 4) is Verdict.OUT_OF_TURN  # released: planned again by its owner


def test_the_lenient_sequence_applies_anything_past_the_applied_offset() -> None:
    sequence = OffsetSequence(strict=False)
    assert sequence.judge(1, 7, None) is Verdict.APPLY
    assert sequence.judge(1, 9, 7) is Verdict.APPLY
    assert sequence.judge(1, 7, 7) is Verdict.SKIP


def test_the_consumer_is_sent_back_once_per_hole_and_again_if_it_stays() -> None:
    now = [100.0]
    sequence = OffsetSequence(retry_after_s=1.0, clock=lambda: now[0])
    assert sequence.seek_due(0, 12)
    assert not sequence.seek_due(0, 12)  # the rest of the batch past the hole
    assert sequence.seek_due(0, 13)  # another hole
    now[0] += 1.5
    assert sequence.seek_due(0, 13)  # still there: a later seek of Faust's overrode ours
    assert sequence.seek_due(1, 13)  # partitions are independent


def test_a_partition_standing_still_short_of_the_end_is_read_again() -> None:
    now = [0.0]
    sequence = OffsetSequence(retry_after_s=1.0, clock=lambda: now[0])
    sequence.planned({0: 0, 1: 0})
    assert sequence.stalled(0, 9, 10) is None  # at the end: nothing to read
    assert sequence.stalled(0, 7, 10) is None  # first sight: maybe still working
    assert sequence.stalled(0, 8, 10) is None  # it moved
    assert sequence.stalled(0, 8, 10) == 9  # it stood still with a message left
    assert sequence.stalled(0, 8, 10) is None  # sought already, within the retry time
    now[0] += 2
    assert sequence.stalled(0, 8, 10) == 9
    assert sequence.stalled(1, None, None) is None  # nothing fetched yet
    assert sequence.stalled(2, 3, 10) is None  # not planned here


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_whatever_order_faust_delivers_in_the_store_equals_applying_in_order(data: Any) -> None:
    """Deliveries with holes, repeats, early messages and jumps back; after each delivery the
    worker seeks back where told. The store ends equal to in-order application."""
    batches = [m for m in messages() if m[0] == 0]
    reference = MemoryStore()
    in_order = strict_processor(reference, OffsetSequence())
    in_order.sequence.planned({0: 0})
    for partition, offset, value in batches:
        assert in_order.apply_batch(partition, offset, value).applied > 0

    store = MemoryStore()
    sequence = OffsetSequence()
    proc = strict_processor(store, sequence)
    position, planned = 0, False
    for step_number in range(600):
        # the hook runs once Faust has sought (messages may flow before it)
        if not planned and (step_number >= 8 or data.draw(st.booleans(), label="plan now")):
            sequence.planned({0: 0})
            planned, position = True, 0  # the hook seeks every planned partition to its start
        if position >= len(batches):
            if not planned:
                position = 0
                continue
            applied = store.persisted_offset(0)
            if applied == batches[-1][1]:
                break
            # the idle check: nothing left to fetch, the applied offset short of the end
            position = sequence.expected(0, applied) or 0
            continue
        # Faust delivers the message at `position`, or drops it, or jumps ahead.
        step = data.draw(st.sampled_from(["deliver", "deliver", "deliver", "drop", "jump"]), label="how")
        if step == "drop":
            position += 1
            continue
        if step == "jump":
            position = min(len(batches) - 1, position + data.draw(st.integers(1, 3), label="by"))
        partition, offset, value = batches[position]
        result = proc.apply_batch(partition, offset, value)
        position += 1
        if result.resume_at is not None:
            position = result.resume_at  # the agent's seek_wait
    else:
        raise AssertionError("the deliveries never caught up")
    assert store.data == reference.data and store.offsets == reference.offsets


class FakeStore:
    def __init__(self, saved: dict[int, int | None]) -> None:
        self.saved = saved

    def partitions(self) -> set[int]:
        return set(self.saved)

    def persisted_offset(self, tp: Any) -> int | None:
        return self.saved[tp.partition]

    def meta(self, partition: int) -> dict[str, str]:
        return {}

    def set_meta(self, partition: int, name: str, value: str | None) -> bool:
        return True

    def reset_partition(self, partition: int, offsets: Any) -> None:
        raise AssertionError("no rebuild expected")

    def record_lost_writes(self, partition: int, evidence: str, action: str) -> None:
        self.lost = (partition, evidence)

    async def flush(self, partitions: Any = None) -> int:
        return 0


class FakeConsumer:
    def __init__(self, topic: str, committed: dict[int, int], sequence: OffsetSequence) -> None:
        from faust.types import TP

        self.tps = {TP(topic, p) for p in committed}
        self._committed_offset = {TP(topic, p): o for p, o in committed.items()}
        self.sequence = sequence
        self.sought: dict[int, int] = {}

    def assignment(self) -> set[Any]:
        return set(self.tps)

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        return {tp: 0 for tp in tps}

    async def seek_wait(self, seeks: dict[Any, int]) -> None:
        # planned before the seek: a message delivered during the seek is judged by the plan
        assert all(tp.partition in self.sequence.starts for tp in seeks)
        self.sought.update({tp.partition: offset for tp, offset in seeks.items()})


def test_the_hook_plans_every_partition_then_seeks_each_to_its_start() -> None:
    sequence = OffsetSequence()
    store = FakeStore({0: None, 1: 41, 2: 9})
    hook = ResumeFromStore(
        lambda: store, "app.events-by-rep", lambda _: None, lambda _: None, sequence.planned
    )
    consumer = FakeConsumer("app.events-by-rep", {0: 5, 1: 30, 2: 10}, sequence)
    asyncio.run(hook(consumer))
    # emptied Redis: from 0 (not the commit); state ahead of the commit: past what it holds
    assert sequence.starts == {0: 0, 1: 42, 2: 10}
    assert consumer.sought == {0: 0, 1: 42, 2: 10}
    assert store.lost[0] == 0
