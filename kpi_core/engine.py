"""The KPI engine: rules bound to a calendar, applying events to per-rep states at a given clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kpi_core.clock import KpiClock
from kpi_core.customers import (
    CustomerState,
    CustomerSummary,
    Version,
    at_risk,
    purchase,
    quote,
    summaries,
    visit,
)
from kpi_core.events import DealWon, Event, QuoteSent, Rejection, VisitCompleted
from kpi_core.owners import owner_key
from kpi_core.periods import Calendar, slot_of
from kpi_core.state import Horizon, RepState
from kpi_core.transitions import Context, apply_event, apply_summary, check_time
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
        self.churn_after = timedelta(days=rules.customers.churn_after_days)
        self.customer_keep = timedelta(days=rules.customers.customer_keep_days)
        self.at_risk_after = timedelta(days=rules.customers.at_risk_after_days)
        self._horizon: Horizon | None = None

    def horizon(self, now: datetime) -> Horizon:
        cached = self._horizon
        # Retention moves only at period boundaries, which are local midnights and so always
        # 15-minute slot boundaries (every UTC offset is a multiple of 15 minutes): recompute
        # when `now` enters another slot.
        if cached is None or slot_of(now) != slot_of(cached.now):
            cached = self._horizon = Horizon.at(now, self.calendar, self.keep, self.churn_after)
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
        horizon = Horizon.at(now or self.clock.now(), self.calendar, self.keep, self.churn_after)
        return RepView(
            state,
            self.calendar,
            horizon,
            self.rules.alerts.pipeline_coverage_low.period,
            self.rules.customers.clv_trailing_months,
        )

    def at_risk(self, state: RepState, now: datetime | None = None) -> dict[str, object]:
        """The rep's active customers with no purchase and no visit for `at_risk_after_days`, the
        longest untouched first (contract section 3.1), as the HTTP API answers it."""
        view = self.view(state, now)
        items = at_risk(view.customers(), view.now, self.at_risk_after)
        return {
            "rep_id": state.rep_id,
            "as_of": view.now.isoformat(),
            "at_risk_after_days": self.rules.customers.at_risk_after_days,
            "customers": [
                {
                    "customer_id": item.customer_id,
                    "last_purchase": item.last_purchase.isoformat(),
                    "last_visit": None if item.last_visit is None else item.last_visit.isoformat(),
                    "days_untouched": (view.now - item.last_touch).days,
                    "churns_at": item.churns_at.isoformat(),
                }
                for item in items
            ],
        }

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
    customers: dict[str, CustomerState] = {}
    rejected: Counter[str] = Counter()
    batch: list[Event] = []
    batches = 0

    def run(last: bool) -> None:
        nonlocal batches
        batches += 1
        _count(apply_batch(engine, batch, states, prune=last), rejected)
        # The customer side as the worker runs it, one version per batch (the newest wins).
        outcome = apply_customer_batch(engine, batch, customers, (0, batches), prune=last)
        apply_summaries(engine, outcome.summaries, states)

    for event in events:
        batch.append(event)
        if len(batch) >= chunk:
            run(last=False)
            batch = []
    run(last=True)
    return states, rejected


def _count(outcome: BatchOutcome, rejected: Counter[str]) -> None:
    for _, rejection in outcome.rejected:
        rejected[rejection.reason.value] += 1


# --------------------------------------------------------------------------- customers


@dataclass(slots=True)
class CustomerOutcome:
    """What one batch did on the customer side: the summaries to send to reps."""

    changed: dict[str, CustomerState] = field(default_factory=dict)
    summaries: list[tuple[str, CustomerSummary]] = field(default_factory=list)
    ignored: int = 0  # facts the customer side does not keep (too old or from the future)


def customer_key(event: Event) -> str | None:
    """The customer an event is a fact of, for the customer side (purchases, visits, quotes)."""
    if isinstance(event, DealWon | VisitCompleted | QuoteSent):
        return event.customer_id
    return None


def apply_customer_batch(
    engine: KpiEngine,
    events: Sequence[Event],
    customers: MutableMapping[str, CustomerState],
    version: Version,
    prune: bool = False,
) -> CustomerOutcome:
    """THE way facts reach customer states, for `report` and the worker alike: the clock moves
    first (as in `apply_batch`), facts are judged by the same time rules as on the rep side (and
    older than `customer_keep_days` are not kept), applied idempotently, and every changed
    customer's summary is produced, versioned `version`, for each rep that holds it."""
    if engine.clock.mode == "event":
        observe_all(engine, events)
    ctx = engine.context()
    keep_from = ctx.wall - engine.customer_keep
    outcome = CustomerOutcome()
    for event in events:
        customer_id = customer_key(event)
        if customer_id is None:
            continue
        try:
            check_time(event, ctx)
        except Rejection:
            outcome.ignored += 1  # the rep side dead-letters it; here it is simply not kept
            continue
        at = event.occurred_at
        if at < keep_from:
            outcome.ignored += 1
            continue
        state = customers.get(customer_id)
        if state is None:
            state = CustomerState(customer_id)
        if isinstance(event, DealWon):
            changed = purchase(state, event.event_id, at, event.rep_id)
        elif isinstance(event, VisitCompleted):
            changed = visit(state, at)
        else:
            changed = quote(state, at)
        if changed:
            customers[customer_id] = outcome.changed[customer_id] = state
    for state in outcome.changed.values():
        if state.purchases or state.holders:
            outcome.summaries.extend(summaries(state, version))
    if prune:
        for customer_id in [c for c, s in customers.items() if _forgotten(s, keep_from)]:
            del customers[customer_id]
    return outcome


def _forgotten(state: CustomerState, keep_from: datetime) -> bool:
    """No purchase, visit or quote within `customer_keep_days`: the customer is forgotten."""
    times = [state.last_purchase(), state.last_visit, state.last_quote]
    return all(t is None or t < keep_from for t in times)


def apply_summaries(
    engine: KpiEngine,
    items: Iterable[tuple[str, CustomerSummary]],
    states: MutableMapping[str, RepState],
) -> dict[str, RepState]:
    """THE way customer summaries reach rep states (report and worker): a newer version
    replaces the kept one and its bucketed counts. Returns the states changed."""
    ctx = engine.context()
    touched: dict[str, RepState] = {}
    for rep_id, summary in items:
        state = states.get(rep_id)
        if state is None:
            if not summary.purchases:
                continue
            state = RepState(rep_id=rep_id)
        if apply_summary(state, summary, ctx):
            states[rep_id] = touched[rep_id] = state
    return touched
