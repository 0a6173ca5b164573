"""Routed messages are applied strictly in offset order, each partition only once its resume plan
is made: whatever Faust delivers out of turn is set aside and the consumer sent back.

Why: on assignment Faust resumes a partition's flow *before* it seeks to the committed offsets and
before the resume hook (`streams.integrity.resume`) seeks back to the offset saved with the state,
and Faust's own seeks and gap bookkeeping can let a fetched message pass undelivered. A processor
that applied whatever came would apply messages to a state that is not yet the right one (emptied
by Redis, then seeked back: the earlier messages then look "already applied") or apply a message
after a later one was lost. Our internal topics are written without transactions, so their
offsets have no holes: the next message to apply is always the saved offset plus one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["OffsetSequence", "Verdict"]


class Verdict(Enum):
    APPLY = "apply"  # the next message of the partition
    SKIP = "skip"  # already applied (a redelivery)
    OUT_OF_TURN = "out-of-turn"  # past the next one, or the partition is not planned yet


@dataclass
class OffsetSequence:
    """The next offset each partition may apply.

    ``strict=False`` (offline tools and unit tests, which feed offsets of their own): any offset
    past the applied one is applied, as before resume plans existed."""

    strict: bool = True
    retry_after_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    # partition -> the first offset to apply when nothing is applied yet (the resume plan's start)
    starts: dict[int, int] = field(default_factory=dict)
    # partition -> (offset the consumer was sent back to, when): one seek per hole, retried
    _sought: dict[int, tuple[int, float]] = field(default_factory=dict)
    # partition -> the next offset to apply at the last idle check
    _idle: dict[int, int] = field(default_factory=dict)

    def planned(self, starts: dict[int, int]) -> None:
        """The resume hook planned these partitions (start offsets) for the current assignment."""
        self.starts.update(starts)
        for partition in starts:
            self._sought.pop(partition, None)

    def forget(self, partitions: Iterable[int]) -> None:
        """Released partitions: their next owner plans them again."""
        for partition in partitions:
            self.starts.pop(partition, None)
            self._sought.pop(partition, None)
            self._idle.pop(partition, None)

    def expected(self, partition: int, applied: int | None) -> int | None:
        """The next offset to apply, None while the partition is not planned (strict mode)."""
        if self.strict and partition not in self.starts:
            return None
        if applied is not None:
            return applied + 1
        return self.starts.get(partition, 0)

    def judge(self, partition: int, offset: int, applied: int | None) -> Verdict:
        expected = self.expected(partition, applied)
        if expected is None:
            return Verdict.OUT_OF_TURN
        if offset < expected:
            return Verdict.SKIP
        if offset == expected or not self.strict:
            self._sought.pop(partition, None)
            return Verdict.APPLY
        return Verdict.OUT_OF_TURN

    def seek_due(self, partition: int, offset: int) -> bool:
        """Whether to send the consumer back to ``offset`` now: once per hole, and again after
        ``retry_after_s`` if the hole is still there (a later seek of Faust's overrode ours)."""
        now = self.clock()
        sought = self._sought.get(partition)
        if sought is not None and sought[0] == offset and now - sought[1] < self.retry_after_s:
            return False
        self._sought[partition] = (offset, now)
        return True

    def stalled(self, partition: int, applied: int | None, highwater: int | None) -> int | None:
        """Called every few seconds per planned partition: the offset to read again when the
        partition stood still since the last call while Kafka holds messages past it (a message
        lost at the end of a burst: no later one arrives to reveal the hole)."""
        expected = self.expected(partition, applied)
        if expected is None or highwater is None or expected >= highwater:
            self._idle.pop(partition, None)
            return None
        previous = self._idle.get(partition)
        self._idle[partition] = expected
        if previous != expected:  # it moved: still working through its messages
            return None
        return expected if self.seek_due(partition, expected) else None
