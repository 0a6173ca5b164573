"""Apply routed micro-batches to the live rep states of a partition and stage their changes in the
store; exact under redelivery because the batch's offset is saved with the state it produced."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kpi_core.codec import decode_parts, encode_part, split_store_key, store_key
from kpi_core.engine import KpiEngine, observe_all
from kpi_core.events import Rejection, decode_event
from kpi_core.state import RepState
from streams.metrics import KpiMetrics
from streams.routing import Routed, decode_batch

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
    skipped: bool = False
    dead: list[DeadLetter] = field(default_factory=list)


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

    def owned(self) -> set[int]:
        """Partitions whose state the store currently holds (loaded on assignment)."""
        return set(self.store.partitions())

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
    ) -> None:
        self.engine = engine
        self.states = states
        self.metrics = metrics
        self.offset_tp = offset_tp  # callable partition -> TopicPartition of the routed topic
        self.prune_every_s = prune_every_s
        self._last_prune: dict[int, float] = {}
        # Applied but not yet staged in the store: the changed states and the newest applied
        # offset per partition (see `stage`).
        self._unstaged: dict[int, dict[str, RepState]] = {}
        self._unstaged_offsets: dict[int, int] = {}

    def apply_batch(self, partition: int, offset: int, value: bytes, stage: bool = True) -> BatchResult:
        """Apply one routed message; skipped when its offset is already applied.

        With `stage=False` the changes stay in memory until `stage()`: several messages then cost
        one encoding of each part they changed, not one per message."""
        result = BatchResult()
        tp = self.offset_tp(partition)
        applied = self._unstaged_offsets.get(partition)
        if applied is None:
            applied = self.states.store.persisted_offset(tp)
        if applied is not None and offset <= applied:
            result.skipped = True
            return result
        reps = self.states.reps(partition)
        engine = self.engine
        rules = engine.rules
        decoded: list[tuple[Routed, Any]] = []
        for item in decode_batch(value):
            try:
                decoded.append((item, decode_event(item.raw, rules)))
            except Rejection as rejection:
                result.dead.append(_dead(item, rejection))
        if engine.clock.mode == "event":
            # The batch's own events move the clock before any is applied, as `report` reads
            # the whole input first: otherwise the first batch of a worker that has seen no
            # event yet was applied at the wall clock, dropping buckets `report` keeps.
            observe_all(engine, (event for _, event in decoded))
        ctx = engine.context()
        touched: dict[str, RepState] = {}
        counts: Counter[tuple[str, str]] = Counter()
        for item, event in decoded:
            try:
                state = reps.get(event.rep_id)
                if state is None:
                    state = RepState(rep_id=event.rep_id)
                applied = engine.apply(state, event, ctx)
            except Rejection as rejection:
                result.dead.append(_dead(item, rejection))
                continue
            counts[(item.topic, event.type)] += 1
            if applied:
                reps[event.rep_id] = state
                touched[event.rep_id] = state
                result.applied += 1
            else:
                result.duplicates += 1
        for (topic, kind), count in counts.items():
            self.metrics.events_in.labels(topic, kind).inc(count)
        self._maybe_prune(partition, reps, touched)
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
        self._unstaged.clear()
        self._unstaged_offsets.clear()
        return staged

    def _maybe_prune(self, partition: int, reps: dict[str, RepState], touched: dict[str, RepState]) -> None:
        now = time.monotonic()
        if now - self._last_prune.get(partition, 0.0) < self.prune_every_s:
            return
        self._last_prune[partition] = now
        for rep_id, state in reps.items():
            self.engine.prune(state)
            if state.touched:
                touched[rep_id] = state


def _dead(item: Routed, rejection: Rejection) -> DeadLetter:
    return DeadLetter(item.raw, rejection.reason, rejection.error, item.topic, item.partition, item.offset)
