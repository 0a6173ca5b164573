"""Apply routed micro-batches to the live rep states of a partition and stage their changes in the
store; exact under redelivery because the batch's offset is saved with the state it produced."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from kpi_core.codec import decode_parts, encode_part, split_store_key, store_key
from kpi_core.customers import CustomerIndex
from kpi_core.due import DueIndex
from kpi_core.engine import KpiEngine, apply_batch, apply_summaries
from kpi_core.events import Event, Rejection, decode_event
from kpi_core.state import RepState
from streams.metrics import KpiMetrics
from streams.routing import Routed, decode_batch, decode_summaries, is_summaries
from streams.sequence import OffsetSequence, Verdict

log = logging.getLogger(__name__)


class PartitionStore(Protocol):
    """The part of the Redis store the processor needs (see `streams.store.faust_store.RedisStore`)."""

    def partitions(self) -> set[int]: ...
    def get_in(self, partition: int, key: bytes) -> bytes | None: ...
    def set_in(self, partition: int, key: bytes, value: bytes) -> None: ...
    def delete_in(self, partition: int, key: bytes) -> None: ...
    def items_in(self, partition: int) -> Iterator[tuple[bytes, bytes]]: ...
    def persisted_offset(self, tp: Any) -> int | None: ...
    def set_persisted_offset(self, tp: Any, offset: int) -> None: ...


@dataclass(slots=True)
class DeadLetter:
    raw: bytes
    reason: str
    error: str
    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    summaries: int = 0  # customer summaries received (applied, or older than the kept one)
    skipped: bool = False  # already applied, or out of turn (not applied)
    resume_at: int | None = None  # out of turn: the offset the consumer must go back to
    dead: list[DeadLetter] = field(default_factory=list)


class OncePerPartition:
    """True at most once every `every_s` seconds per partition: retention is enforced once a
    minute per partition (it moves only at slot boundaries), not on every batch."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self._last: dict[int, float] = {}

    def __call__(self, partition: int) -> bool:
        now = self.clock()
        if now - self._last.get(partition, 0.0) < self.every_s:
            return False
        self._last[partition] = now
        return True


class PartitionedStates:
    """Decoded rep states per owned partition, built from the store when a partition is first used."""

    def __init__(self, store: PartitionStore, observe: Callable[[datetime], None] | None = None) -> None:
        self.store = store
        # Called with each loaded rep's newest event time: the event clock (KPI_CLOCK=event)
        # must not restart from nothing after a restart or a rebalance.
        self.observe = observe
        self.partitions: dict[int, dict[str, RepState]] = {}
        # Bumped on every save: lets readers (the metrics exposition) cache per rep.
        self.versions: dict[str, int] = {}
        # Per partition: the reps whose figures next change by time alone (a customer churning),
        # driven by the worker's clock in `tick` (kpi_core.due).
        self.due: dict[int, DueIndex] = {}
        self.churn_after: timedelta | None = None
        self.clock_now: Callable[[], datetime] | None = None

    def reps(self, partition: int) -> dict[str, RepState]:
        reps = self.partitions.get(partition)
        if reps is None:
            reps = self.partitions[partition] = self._load(partition)
        return reps

    def _load(self, partition: int) -> dict[str, RepState]:
        grouped: dict[str, list[tuple[str, bytes]]] = {}
        for key, value in self.store.items_in(partition):
            rep_id, part = split_store_key(key)
            grouped.setdefault(rep_id, []).append((part, value))
        states = {rep_id: decode_parts(rep_id, parts) for rep_id, parts in grouped.items()}
        if self.clock_now is not None:
            for state in states.values():
                self.schedule(partition, state, self.clock_now())
        for rep_id in states:
            # A (re)loaded state may hold changes made by another worker meanwhile: a new version,
            # so no reader serves what it cached before the partition went away and came back.
            self.versions[rep_id] = self.versions.get(rep_id, 0) + 1
        if self.observe is not None:
            for state in states.values():
                if state.label_key[1]:  # an event was applied (not the empty default)
                    self.observe(state.label_key[0])
        return states

    def release(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.partitions.pop(partition, None)
            self.due.pop(partition, None)

    def schedule(self, partition: int, state: RepState, now: datetime) -> None:
        """Put the rep in its partition's due index at the next instant its figures change by
        time alone (its next customer churn), if any."""
        if self.churn_after is None:
            return
        index = self.due.setdefault(partition, DueIndex())
        if not state.customers:
            index.schedule(state.rep_id, None)
            return
        customers = state.customer_index or CustomerIndex.build(
            state.rep_id, state.customers.values(), self.churn_after
        )
        state.customer_index = customers
        index.schedule(state.rep_id, customers.next_due(now))

    def tick(self, now: datetime) -> list[str]:
        """Reps whose figures changed because the clock passed a due instant: their versions are
        bumped (readers recompute), and they are scheduled at their next due instant."""
        changed: list[str] = []
        for partition, index in list(self.due.items()):
            reps = self.partitions.get(partition, {})
            for rep_id in index.pop_due(now):
                self.versions[rep_id] = self.versions.get(rep_id, 0) + 1
                changed.append(rep_id)
                state = reps.get(rep_id)
                if state is not None:
                    self.schedule(partition, state, now)
        return changed

    def owned(self) -> set[int]:
        """Partitions whose state the store currently holds (loaded on assignment)."""
        return set(self.store.partitions())

    def current(self, now: datetime) -> Iterator[RepState]:
        """Every owned state, after the due index moved to `now` (what a scrape must see)."""
        self.tick(now)
        return self.all_states()

    def all_states(self) -> Iterator[RepState]:
        for partition in sorted(self.owned()):
            yield from list(self.reps(partition).values())

    def find(self, rep_id: str) -> RepState | None:
        for partition in self.owned():
            self.reps(partition)
        for reps in self.partitions.values():
            state = reps.get(rep_id)
            if state is not None:
                return state
        return None

    def save(self, partition: int, state: RepState) -> None:
        """Stage the touched parts of `state` in the store (written at the next flush)."""
        self.versions[state.rep_id] = self.versions.get(state.rep_id, 0) + 1
        for part in state.touched:
            key = store_key(state.rep_id, part)
            encoded = encode_part(state, part)
            if encoded is None:
                self.store.delete_in(partition, key)
            else:
                self.store.set_in(partition, key, encoded)
        state.touched.clear()


class BatchProcessor:
    """The streaming side of the KPI core: same engine and transitions as `kpi-monitor report`."""

    def __init__(
        self,
        engine: KpiEngine,
        states: PartitionedStates,
        metrics: KpiMetrics,
        offset_tp: Any,
        prune_every_s: float = 60.0,
        sequence: OffsetSequence | None = None,
    ) -> None:
        self.engine = engine
        self.states = states
        self.metrics = metrics
        self.offset_tp = offset_tp  # callable partition -> TopicPartition of the routed topic
        self._prune_due = OncePerPartition(prune_every_s)
        self.sequence = sequence if sequence is not None else OffsetSequence(strict=False)
        # Applied but not yet staged in the store: the changed states and the newest applied
        # offset per partition (see `stage`).
        self._unstaged: dict[int, dict[str, RepState]] = {}
        self._unstaged_offsets: dict[int, int] = {}

    def apply_batch(self, partition: int, offset: int, value: bytes, stage: bool = True) -> BatchResult:
        """Apply one routed message if it is the partition's next one (`streams.sequence`);
        skipped when already applied, set aside (with where to resume) when out of turn.

        With `stage=False` the changes stay in memory until `stage()`: several messages then cost
        one encoding of each part they changed, not one per message."""
        result = BatchResult()
        tp = self.offset_tp(partition)
        applied = self._unstaged_offsets.get(partition)
        if applied is None:
            applied = self.states.store.persisted_offset(tp)
        verdict = self.sequence.judge(partition, offset, applied)
        if verdict is not Verdict.APPLY:
            result.skipped = True
            if verdict is Verdict.OUT_OF_TURN:
                result.resume_at = self.sequence.expected(partition, applied)
            return result
        reps = self.states.reps(partition)
        if is_summaries(value):  # from the customer side: what customers add to these reps
            summaries = decode_summaries(value)
            touched = apply_summaries(self.engine, summaries, reps)
            result.summaries = len(summaries)
            self._unstaged.setdefault(partition, {}).update(touched)
            self._unstaged_offsets[partition] = offset
            if stage:
                self.stage()
            return result
        rules = self.engine.rules
        items: list[Routed] = []
        events: list[Event] = []
        for item in decode_batch(value):
            try:
                events.append(decode_event(item.raw, rules))
            except Rejection as rejection:
                result.dead.append(_dead(item, rejection))
                continue
            items.append(item)
        outcome = apply_batch(self.engine, events, reps, prune=self._prune_due(partition))
        result.applied, result.duplicates = outcome.applied, outcome.duplicates
        rejected = {index for index, _ in outcome.rejected}
        for index, refused in outcome.rejected:
            result.dead.append(_dead(items[index], refused))
        counts: Counter[tuple[str, str]] = Counter(
            (item.topic, event.type) for index, (item, event) in enumerate(zip(items, events, strict=True))
            if index not in rejected
        )
        for (topic, kind), count in counts.items():
            self.metrics.events_in.labels(topic, kind).inc(count)
        touched = outcome.touched
        self._unstaged.setdefault(partition, {}).update(touched)
        self._unstaged_offsets[partition] = offset
        if stage:
            self.stage()
        return result

    def stage(self) -> set[int]:
        """Put every change applied since the last call in the store, with its partition's offset
        (the next flush writes both in one transaction); returns the partitions staged.

        A partition released meanwhile is dropped, changes and offset alike: its next owner
        applies those messages again from the offset the store last persisted."""
        owned = self.states.owned()
        staged: set[int] = set()
        for partition, offset in self._unstaged_offsets.items():
            if partition not in owned:
                continue
            for state in self._unstaged.get(partition, {}).values():
                self.states.save(partition, state)
            self.states.store.set_persisted_offset(self.offset_tp(partition), offset)
            staged.add(partition)
            for state in self._unstaged.get(partition, {}).values():
                if state.customers:
                    self.states.schedule(partition, state, self.engine.clock.now())
        self._unstaged.clear()
        self._unstaged_offsets.clear()
        return staged

def _dead(item: Routed, rejection: Rejection) -> DeadLetter:
    return DeadLetter(item.raw, rejection.reason, rejection.error, item.topic, item.partition, item.offset)
