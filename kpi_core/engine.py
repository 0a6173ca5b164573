"""The KPI engine: rules bound to a calendar, applying events to per-rep states at a given clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from kpi_core.clock import KpiClock
from kpi_core.events import Rejection
from kpi_core.periods import Calendar, slot_of
from kpi_core.state import Horizon, RepState
from kpi_core.transitions import Context, apply_event
from kpi_core.windows import RepView
from kpi_rules import Rules


class KpiEngine:
    """Pure KPI processing over rep states (a dict in `report`, the Redis-backed table in a worker)."""

    def __init__(self, rules: Rules, clock: KpiClock | None = None):
        self.rules = rules
        self.clock = clock or KpiClock()
        self.calendar = Calendar(rules.zone, rules.fiscal_year_start_month)
        self.keep = rules.keep.model_dump()
        self.probabilities = dict(rules.stages)
        self.max_future = timedelta(seconds=rules.max_future_skew_seconds)
        self.dedupe_seconds = rules.dedupe_horizon_hours * 3600.0
        self._horizon: Horizon | None = None

    def horizon(self, now: datetime) -> Horizon:
        cached = self._horizon
        # Retention moves only at period boundaries, which are local midnights and so always
        # 15-minute slot boundaries (every UTC offset is a multiple of 15 minutes): recompute
        # when `now` enters another slot.
        if cached is None or slot_of(now) != slot_of(cached.now):
            cached = self._horizon = Horizon.at(now, self.calendar, self.keep)
        return cached

    def context(self, now: datetime | None = None, wall: datetime | None = None) -> Context:
        return Context(
            calendar=self.calendar,
            probabilities=self.probabilities,
            horizon=self.horizon(now or self.clock.now()),
            wall=wall or self.clock.wall(),
            max_future=self.max_future,
        )

    def apply(self, state: RepState, event: Any, ctx: Context) -> bool:
        """Apply one event (raises Rejection for too_late / future); False for a duplicate."""
        applied = apply_event(state, event, ctx)
        if applied:
            self.clock.observe(event.occurred_at)
        return applied

    def is_future(self, event: Any, wall: datetime) -> bool:
        return bool(event.occurred_at > wall + self.max_future)

    def view(self, state: RepState, now: datetime | None = None) -> RepView:
        horizon = Horizon.at(now or self.clock.now(), self.calendar, self.keep)
        return RepView(
            state, self.calendar, horizon, self.rules.alerts.pipeline_coverage_low.period
        )

    def prune(self, state: RepState, now: datetime | None = None) -> None:
        state.prune(
            self.horizon(now or self.clock.now()),
            self.clock.wall().timestamp(),
            self.dedupe_seconds,
        )


def observe_all(engine: KpiEngine, events: Iterable[Any]) -> None:
    """Set the event clock to the highest (non-future) event time of a whole input."""
    wall = engine.clock.wall()
    for event in events:
        if not engine.is_future(event, wall):
            engine.clock.observe(event.occurred_at)


def apply_all(engine: KpiEngine, events: Iterable[Any]) -> tuple[dict[str, RepState], Counter[str]]:
    """Apply events in one pass at the engine's current clock (streams: constant memory)."""
    ctx = engine.context(engine.clock.now(), engine.clock.wall())
    states: dict[str, RepState] = {}
    rejected: Counter[str] = Counter()
    for event in events:
        state = states.get(event.rep_id)
        if state is None:
            state = RepState(rep_id=event.rep_id)
        try:
            apply_event(state, event, ctx)
        except Rejection as rejection:
            rejected[rejection.reason] += 1
            continue
        states[event.rep_id] = state
    return states, rejected


def replay(engine: KpiEngine, events: Iterable[Any]) -> tuple[dict[str, RepState], Counter[str]]:
    """Apply a finite set of events in one go (the embedded report mode)."""
    if engine.clock.mode == "event":
        # The clock is the highest event time of the whole input: the order of lines is irrelevant.
        events = list(events)
        observe_all(engine, events)
    return apply_all(engine, events)
