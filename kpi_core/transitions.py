"""Apply one validated event to a rep's state: deduplicated, latest-by-event-time, order-free."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from kpi_core.aggregates import ZERO, Agg
from kpi_core.customers import BucketKey, CustomerSummary, bucket_contributions
from kpi_core.events import (
    DealCreated,
    DealLost,
    DealStageChanged,
    DealWon,
    Event,
    LeadCreated,
    QuoteSent,
    Rejection,
    SpendRecorded,
    SurveyCompleted,
    TargetSet,
    VisitCompleted,
)
from kpi_core.periods import Calendar, period_start
from kpi_core.state import (
    META_FIELD,
    DealState,
    Horizon,
    RepState,
    Won,
    _us,
    bucket_field,
    customer_field,
    deal_field,
    target_field,
)
from kpi_rules.vocabulary import Reason, SpendCategory, SurveyKind

Contribution = tuple[datetime, str, str | None, Any]
DealEvent = DealCreated | DealStageChanged | DealWon | DealLost | VisitCompleted | QuoteSent
# Events whose deal_id feeds the deal's facts (a survey may name a deal too: it does not).
DEAL_EVENTS = (DealCreated, DealStageChanged, DealWon, DealLost, VisitCompleted, QuoteSent)
SURVEY_MARK = "\x1fsurvey\x1f"  # survey ids share the seen-id memory; never equal an event id
CSAT_SATISFIED = 4  # CSAT 4-5 of 5 is satisfied
NPS_PROMOTER = 9  # NPS 9-10 promotes, 0-6 detracts
NPS_DETRACTOR = 6
Fact = TypeVar("Fact", bound=tuple[Any, ...])


@dataclass(frozen=True, slots=True)
class Context:
    """What a transition needs besides state and event: the calendar, rules and both clocks."""

    calendar: Calendar
    probabilities: dict[str, Decimal]
    horizon: Horizon
    wall: datetime
    max_future: timedelta
    wall_epoch: float = 0.0  # `wall` as epoch seconds, set once here rather than per event

    def __post_init__(self) -> None:
        object.__setattr__(self, "wall_epoch", self.wall.timestamp())


def check_time(event: Event, ctx: Context) -> None:
    """Reject events from the future (against the wall clock) or older than retained history."""
    at: datetime = event.occurred_at
    if at > ctx.wall + ctx.max_future:
        raise Rejection(
            Reason.FUTURE,
            f"occurred_at: {at.isoformat()} is more than {int(ctx.max_future.total_seconds())} s "
            f"ahead of the wall clock ({ctx.wall.astimezone(UTC).isoformat()})",
        )
    if isinstance(event, TargetSet):
        oldest = ctx.horizon.oldest[event.period]
        if target_start(event, ctx.calendar) < oldest:
            raise Rejection(
                Reason.TOO_LATE,
                f"period_start: {event.period_start} is older than the oldest retained "
                f"{event.period} ({oldest})",
            )
    elif at < ctx.horizon.earliest_instant:
        raise Rejection(
            Reason.TOO_LATE,
            f"occurred_at: {at.isoformat()} is older than the retained history, which starts "
            f"at {ctx.horizon.earliest_instant.isoformat()}",
        )


def apply_event(state: RepState, event: Event, ctx: Context) -> bool:
    """Apply `event`; False when it is a duplicate. Raises Rejection for too_late/future."""
    check_time(event, ctx)
    event_id: str = event.event_id
    if event_id in state.seen:
        return False
    deal_id: str | None = getattr(event, "deal_id", None)
    deal = state.deals.get(deal_id) if deal_id is not None else None
    if deal is not None and event_id in deal.ids:
        return False
    if isinstance(event, SurveyCompleted):
        # A repeated survey_id counts once, like an event_id (a CRM re-sending a response under
        # a new event id); remembered for the same horizon.
        survey = SURVEY_MARK + event.survey_id
        if survey in state.seen:
            # Not counted again, but still an event of the rep: its team and region count for
            # the rep's labels (else they would depend on which copy came first).
            if _relabel(state, event):
                state.touched.add(META_FIELD)
            return False
        state.remember(survey, ctx.wall_epoch)
    state.remember(event_id, ctx.wall_epoch)
    state.touched.add(META_FIELD)
    _relabel(state, event)
    at: datetime = event.occurred_at
    if isinstance(event, TargetSet):
        _apply_target(state, event, ctx.calendar)
        return True
    aggs = state._buckets_for(at, ctx.calendar, ctx.horizon)
    if isinstance(event, VisitCompleted):
        for agg in aggs:
            agg.visits += 1
    elif isinstance(event, QuoteSent):
        for agg in aggs:
            agg.quotes_sent += 1
    elif isinstance(event, DealCreated):
        for agg in aggs:
            agg.deals_created += 1
    elif isinstance(event, DealWon):
        amount: Decimal = event.amount
        for agg in aggs:
            agg.deals_won += 1
            agg.revenue += amount
        cost = event.cost
        if cost is not None:
            margin = amount - cost
            for agg in aggs:
                agg.gross_margin += margin
                agg.costed_revenue += amount
    elif isinstance(event, DealLost):
        for agg in aggs:
            agg.deals_lost += 1
    elif isinstance(event, SurveyCompleted):
        score = event.score
        if event.kind is SurveyKind.CSAT:
            for agg in aggs:
                agg.csat_responses += 1
                agg.csat_satisfied += score >= CSAT_SATISFIED
        else:
            for agg in aggs:
                agg.nps_responses += 1
                agg.nps_promoters += score >= NPS_PROMOTER
                agg.nps_detractors += score <= NPS_DETRACTOR
    elif isinstance(event, LeadCreated):
        channel = event.channel.value
        for agg in aggs:
            agg.leads += 1
            agg.leads_by_channel[channel] = agg.leads_by_channel.get(channel, 0) + 1
    elif isinstance(event, SpendRecorded):
        spent = event.amount
        if event.category is SpendCategory.MARKETING:
            for agg in aggs:
                agg.spend_marketing += spent
        else:
            for agg in aggs:
                agg.spend_sales += spent
    if deal_id is not None and isinstance(event, DEAL_EVENTS):
        if deal is None:
            deal = state.deals[deal_id] = DealState()
        _apply_deal(state, deal, event, ctx)
        state.touched.add(deal_field(deal_id))
    return True


def _relabel(state: RepState, event: Event) -> bool:
    """The rep's team and region are those of its latest event (by event time, then id)."""
    label_key = (event.occurred_at, event.event_id)
    if label_key <= state.label_key:
        return False
    state.label_key = label_key
    state.team = event.team
    state.region = event.region
    return True


def target_start(event: TargetSet, calendar: Calendar) -> date:
    """The start of the period a target is for: `period_start` may be any date inside it."""
    return period_start(event.period, event.period_start, calendar.fiscal_start_month)


def _apply_target(state: RepState, event: TargetSet, calendar: Calendar) -> None:
    key = (event.metric.value, event.period, target_start(event, calendar))
    fact = (event.occurred_at, event.event_id, event.amount)
    current = state.targets.get(key)
    if current is None or fact[:2] > current[:2]:
        state.targets[key] = fact
        state.touched.add(target_field(*key))


def _latest(current: Fact | None, candidate: Fact) -> Fact:
    """The fact with the later (event time, event id): latest by event time, ties by id."""
    return candidate if current is None or candidate[:2] > current[:2] else current


def _apply_deal(state: RepState, deal: DealState, event: DealEvent, ctx: Context) -> None:
    before = deal.contributions
    if before is None:  # first update since the deal was created or loaded
        before = _contributions(deal, ctx.probabilities)
    at: datetime = event.occurred_at
    event_id: str = event.event_id
    deal.ids.add(event_id)
    deal.last_at = max(deal.last_at, at)
    if isinstance(event, VisitCompleted | QuoteSent):
        insort(deal.touches, at)
    elif isinstance(event, DealCreated):
        deal.created_at = at if deal.created_at is None else min(deal.created_at, at)
        # Plain strings in state (the channel becomes a dict key of the stored buckets).
        deal.channel = _latest(deal.channel, (at, event_id, event.channel.value))
        deal.stage = _latest(deal.stage, (at, event_id, event.stage))
        deal.amount = _latest(deal.amount, (at, event_id, event.amount))
    elif isinstance(event, DealStageChanged):
        deal.stage = _latest(deal.stage, (at, event_id, event.stage))
        if event.amount is not None:
            deal.amount = _latest(deal.amount, (at, event_id, event.amount))
    elif isinstance(event, DealWon):
        channel = None if event.channel is None else event.channel.value
        deal.wons[event_id] = Won(at, event.amount, channel, event.deal_created_at)
    else:
        deal.lost[event_id] = at
    after = deal.contributions = _contributions(deal, ctx.probabilities)
    if before != after:
        _apply_difference(state, before, after, ctx)


def _contributions(deal: DealState, probabilities: dict[str, Decimal]) -> list[Contribution]:
    """What a deal adds to the KPIs that depend on several of its events."""
    out: list[Contribution] = []
    created_channel = deal.channel[2] if deal.channel is not None else None
    for won in deal.wons.values():
        out.append((won.at, "channel", won.channel or created_channel or "other", won.amount))
        created = deal.created_at or won.deal_created_at
        if created is not None and won.at >= created:
            out.append((won.at, "cycle", None, _us(won.at, created)))
    created_at = deal.first_created()
    if created_at is not None and deal.touches:
        index = bisect_left(deal.touches, created_at)
        if index < len(deal.touches):
            first = deal.touches[index]
            out.append((first, "first_response", None, _us(first, created_at)))
    if not deal.closed and (deal.stage is not None or deal.created_at is not None):
        amount = deal.amount[2] if deal.amount is not None else ZERO
        stage = deal.stage[2] if deal.stage is not None else ""
        weighted = amount * probabilities.get(stage, ZERO)
        out.append((_SNAPSHOT, "pipeline", None, (amount, weighted)))
    return out


# Pipeline contributions are a snapshot, not bucketed by time; they carry this fixed instant.
_SNAPSHOT = datetime(1970, 1, 1, tzinfo=UTC)


def _apply_difference(
    state: RepState, before: list[Contribution], after: list[Contribution], ctx: Context
) -> None:
    # Multiset difference of two short lists: retract what vanished, add what appeared.
    appeared = list(after)
    for item in before:
        try:
            appeared.remove(item)
        except ValueError:
            _add(state, item, -1, ctx)
    for item in appeared:
        _add(state, item, 1, ctx)


def _add(state: RepState, item: Contribution, sign: int, ctx: Context) -> None:
    at, what, label, value = item
    if what == "pipeline":
        amount, weighted = value
        state.open_deals += sign
        state.open_pipeline += sign * amount
        state.weighted_pipeline += sign * weighted
        return
    for agg in state._buckets_for(at, ctx.calendar, ctx.horizon):
        if what == "channel":
            assert label is not None
            total = agg.revenue_by_channel.get(label, ZERO) + sign * value
            if total:
                agg.revenue_by_channel[label] = total
            else:
                agg.revenue_by_channel.pop(label, None)
        elif what == "cycle":
            agg.cycle_us_sum += sign * value
            agg.cycle_count += sign
        else:
            agg.first_response_us_sum += sign * value
            agg.first_response_count += sign


def apply_summary(state: RepState, summary: CustomerSummary, ctx: Context) -> bool:
    """Replace what `state` keeps of a customer with a newer summary (contract section 3.1).

    The bucketed counts the customer adds (new, buying, returning, reactivated) are retracted
    for the old summary and added for the new one; a summary no newer than the kept one is
    ignored (redelivery, replay). Returns whether anything changed."""
    customer_id = summary.customer_id
    kept = state.customers.get(customer_id)
    if kept is not None and summary.version <= kept.version:
        return False
    churn_after = ctx.horizon.churn_after
    delta = Counter[BucketKey]()
    # The bucketed counts depend on the purchases only: a summary sent for a new visit or quote
    # (most of them) leaves them as they are, and computing them twice would find no change.
    if kept is None or kept.purchases != summary.purchases:
        if kept is not None:
            delta.subtract(bucket_contributions(kept, state.rep_id, ctx.calendar, churn_after))
        delta.update(bucket_contributions(summary, state.rep_id, ctx.calendar, churn_after))
    for (component, kind, start), change in delta.items():
        if change and start >= ctx.horizon.oldest[kind]:
            bucket = state.buckets[kind].get(start)
            if bucket is None:
                bucket = state.buckets[kind][start] = Agg()
            setattr(bucket, component, getattr(bucket, component) + change)
            state.touched.add(bucket_field(kind, start))
    if summary.purchases:
        state.customers[customer_id] = summary
    else:
        state.customers.pop(customer_id, None)
    state.customer_index = None
    state.touched.add(customer_field(customer_id))
    state.touched.add(META_FIELD)
    return True
