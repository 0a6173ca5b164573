"""The KPI engine: rules bound to a calendar, applying events to per-rep states at a given clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kpi_core.clock import KpiClock
from kpi_core.events import Event, Rejection
from kpi_core.owners import owner_key
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

    def apply(self, state: RepState, event: Event, ctx: Context) -> bool:
        """Apply one event (raises Rejection for too_late / future); False for a duplicate."""
        applied = apply_event(state, event, ctx)
        if applied:
            self.clock.observe(event.occurred_at)
        return applied

    def is_future(self, event: Event, wall: datetime) -> bool:
        return bool(event.occurred_at > wall + self.max_future)

    def view(self, state: RepState, now: datetime | None = None) -> RepView:
        horizon = Horizon.at(now or self.clock.now(), self.calendar, self.keep)
        return RepView(
            state,
            self.calendar,
            horizon,
            self.rules.alerts.pipeline_coverage_low.period,
            self.rules.customers.clv_trailing_months,
        )

    def prune(self, state: RepState, now: datetime | None = None) -> None:
        state.prune(
            self.horizon(now or self.clock.now()),
            self.clock.wall().timestamp(),
            self.dedupe_seconds,
        )


def observe_all(engine: KpiEngine, events: Iterable[Event]) -> None:
    """Set the event clock to the highest (non-future) event time of a whole input."""
    wall = engine.clock.wall()
    for event in events:
        if not engine.is_future(event, wall):
            engine.clock.observe(event.occurred_at)


@dataclass(slots=True)
class BatchOutcome:
    """What applying one batch did: counts, rejections by input position, the states changed."""

    applied: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, Rejection]] = field(default_factory=list)
    touched: dict[str, RepState] = field(default_factory=dict)


def apply_batch(
    engine: KpiEngine,
    events: Sequence[Event],
    states: MutableMapping[str, RepState],
    prune: bool = False,
) -> BatchOutcome:
    """THE way events reach rep states, for `report` and the worker alike: the clock moves first
    (with KPI_CLOCK=event, to the batch's newest event, as if the input were read before any is
    applied), then every event is applied at that one clock, then (when asked) every state in
    `states` drops what fell out of retention. A state is created on its rep's first applied event."""
    if engine.clock.mode == "event":
        observe_all(engine, events)
    ctx = engine.context()
    outcome = BatchOutcome()
    touched = outcome.touched
    for index, event in enumerate(events):
        rep_id = owner_key(event)
        state = states.get(rep_id)
        if state is None:
            state = RepState(rep_id=rep_id)
        try:
            applied = engine.apply(state, event, ctx)
        except Rejection as rejection:
            outcome.rejected.append((index, rejection))
            continue
        if applied:
            states[rep_id] = touched[rep_id] = state
            outcome.applied += 1
        else:
            outcome.duplicates += 1
    if prune:
        for rep_id, state in states.items():
            engine.prune(state)
            if state.touched:
                touched[rep_id] = state
    return outcome


def replay(
    engine: KpiEngine, events: Iterable[Event], observed: bool = False, chunk: int = 10_000
) -> tuple[dict[str, RepState], Counter[str]]:
    """Apply a finite input (the embedded report mode) in batches through `apply_batch`.

    With KPI_CLOCK=event the clock is the newest event of the WHOLE input before anything is
    applied, so the order of lines is irrelevant: the input is held and observed first, unless the
    caller already observed it (`observed`: `report` reads its file twice instead)."""
    if engine.clock.mode == "event" and not observed:
        events = list(events)
        observe_all(engine, events)
    states: dict[str, RepState] = {}
    rejected: Counter[str] = Counter()
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) >= chunk:
            _count(apply_batch(engine, batch, states), rejected)
            batch = []
    _count(apply_batch(engine, batch, states, prune=True), rejected)
    return states, rejected


def _count(outcome: BatchOutcome, rejected: Counter[str]) -> None:
    for _, rejection in outcome.rejected:
        rejected[rejection.reason.value] += 1
