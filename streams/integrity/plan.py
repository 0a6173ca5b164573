"""Where a routed partition resumes on assignment, from the offset saved with its state in Redis,
the group's committed offset and the oldest offset Kafka still holds (pure)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ResumePlan", "plan_resume"]


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """What to do with one routed partition before its messages flow.

    ``start`` is the first offset to apply; ``seek`` is set when the consumer must go back to
    it (the group's commit is ahead of it). ``lost_writes``: Redis lacks messages Kafka says
    were processed (it was restored from an older snapshot, failed over, or emptied).
    ``rebuild``: the routed topic no longer holds every message the state lacks (retention), so
    the state is emptied, resumes at the oldest message kept, and the rest comes again from the
    input topics."""

    start: int
    seek: int | None
    lost_writes: bool
    rebuild: bool


def plan_resume(saved: int | None, committed: int | None, earliest: int) -> ResumePlan:
    """``saved``: the offset of the last routed message applied to the state in Redis (None:
    no state saved); ``committed``: the group's next offset to read (None: never committed);
    ``earliest``: the oldest offset the routed topic still holds."""
    start = 0 if saved is None else saved + 1
    lost_writes = committed is not None and committed > start
    rebuild = start < earliest
    if rebuild:
        start = earliest
    # Only ever back: with the commit behind the state (or none) the consumer starts at or
    # before `start` and the processor skips what the state already holds.
    seek = start if committed is not None and start < committed else None
    return ResumePlan(start, seek, lost_writes, rebuild)
