"""A due-time index: keys with the instant at which something about them changes by time alone.

Stream processors' timers are wall-clock and not keyed (Faust's `@app.timer`), or per task and
advanced by records only (Kafka Streams' punctuators). Churn happens when NOTHING arrives: a
customer churns when the clock passes its last purchase + churn_after. The worker keeps one of
these per partition, fed with each rep's next such instant and driven by the worker's clock
(wall or event): `pop_due(now)` gives the reps whose figures changed because time passed.
"""

from __future__ import annotations

import heapq
from datetime import datetime


class DueIndex:
    """Keys by due instant (a heap with lazy deletion: rescheduling a key is O(log n))."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._due: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, key: str, due: datetime | None) -> None:
        """`key` is next due at `due` (None: never, as far as is known now)."""
        if due is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, key))

    def pop_due(self, now: datetime) -> list[str]:
        """The keys due at or before `now`, each once; they are unscheduled."""
        out: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, key = heapq.heappop(heap)
            if self._due.get(key) == due:  # else rescheduled or dropped since: a stale entry
                del self._due[key]
                out.append(key)
        return out

    def next_due(self) -> datetime | None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None
