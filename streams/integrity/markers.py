"""The bookkeeping fields a partition's state carries in Redis about its own completeness (pure)."""

from __future__ import annotations

from datetime import datetime

__all__ = ["INCOMPLETE", "REBUILD", "parse_instant"]

# Set, with the time it was decided, while the partition's state is being rebuilt from the
# input topics: a worker that takes the partition over finishes the rebuild.
REBUILD = "rebuild"
# An instant: the input topics no longer held every event before it when the state was rebuilt,
# so the retained periods up to it may miss events (see kpi_core.coverage).
INCOMPLETE = "incomplete_before"


def parse_instant(text: str | None) -> datetime | None:
    """An ISO 8601 instant written by this package, or None (absent or unreadable)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
