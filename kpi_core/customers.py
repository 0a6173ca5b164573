"""Customer KPIs (contract section 3.1): the customer side's state and what a customer adds to a rep.

Two sides, as the worker runs them (the embedded report runs the same functions in one process):

* The customer side, keyed by customer: `CustomerState` collects a customer's purchases (every
  `deal.won`, by event id: idempotent), its latest visit and quote (a max: idempotent). After a
  change it sends a `CustomerSummary` to every rep that ever sold to the customer: the purchase
  timeline (instant and rep of each purchase) and the latest visit.
* The rep side keeps the latest summary of each of its customers (a newer version replaces it:
  redelivery and replay are harmless) and derives from the summaries, never from the arrival
  order or the clock history, what the customer adds to the rep's figures:
  - `bucket_contributions`: new, buying, returning and reactivated customers per whole period
    (they do not depend on the clock), added to the period buckets and retracted when a newer
    summary replaces the old one (as deal contributions are);
  - `CustomerIndex`: churned, active at the start and retained customers, which depend on "now"
    (a churn counts once the clock has passed it), evaluated when read; and the counts of a
    partial window (previous to date), where distinct customers do not add up across buckets.

Streaks: a customer is active from a purchase until `churn_after` passes without another one,
then churns at that instant (last purchase + churn_after). A purchase at or after that instant
starts a new streak (a reactivation). The owner at an instant is the rep of the latest purchase
at or before it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from kpi_core.periods import PERIOD_KINDS, Calendar

#: Bucketed customer components (whole periods; clock-independent).
BUCKETED: tuple[str, ...] = (
    "new_customers",
    "buying_customers",
    "returning_customers",
    "reactivated_customers",
)
#: Customer components evaluated when read (they depend on the clock, or are instants/intervals).
READ_TIME: tuple[str, ...] = ("churned_customers", "active_customers_start", "retained_customers")
CUSTOMER_COMPONENTS: tuple[str, ...] = BUCKETED + READ_TIME

Version = tuple[int, int]  # (consumer group generation, sequence within it)
Purchase = tuple[datetime, str]  # (instant, rep) of one purchase, in (instant, event id) order
BucketKey = tuple[str, str, date]  # (component, period kind, period start)


# --------------------------------------------------------------------------- customer side


@dataclass(slots=True)
class CustomerState:
    """What the customer side knows of one customer; every update is idempotent."""

    customer_id: str
    # event id -> (instant, rep, team, region) of each purchase (deal.won)
    purchases: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    last_visit: datetime | None = None
    last_quote: datetime | None = None
    # Reps that hold a summary of this customer (so none is left behind stale).
    holders: set[str] = field(default_factory=set)

    def timeline(self) -> tuple[Purchase, ...]:
        ordered = sorted(self.purchases.items(), key=lambda item: (item[1][0], item[0]))
        return tuple(value for _, value in ordered)

    def last_purchase(self) -> datetime | None:
        return max((at for at, _ in self.purchases.values()), default=None)


def purchase(state: CustomerState, event_id: str, at: datetime, rep_id: str) -> bool:
    """Record a purchase; False when it was already known (a redelivery)."""
    if event_id in state.purchases:
        return False
    state.purchases[event_id] = (at, rep_id)
    return True


def visit(state: CustomerState, at: datetime) -> bool:
    if state.last_visit is not None and state.last_visit >= at:
        return False
    state.last_visit = at
    return True


def quote(state: CustomerState, at: datetime) -> bool:
    if state.last_quote is not None and state.last_quote >= at:
        return False
    state.last_quote = at
    return True


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    """What a rep keeps of a customer: the purchase timeline and the latest visit; `version`
    orders summaries (a newer one replaces the older, a stale one is ignored)."""

    customer_id: str
    version: Version
    purchases: tuple[Purchase, ...]
    last_visit: datetime | None = None
    last_quote: datetime | None = None


def summaries(state: CustomerState, version: Version) -> list[tuple[str, CustomerSummary]]:
    """(rep, summary) for every rep that sold to the customer; `holders` is updated. A rep that
    no longer appears (it cannot, as purchases are never removed) would get an empty summary."""
    timeline = state.timeline()
    summary = CustomerSummary(
        state.customer_id, version, timeline, state.last_visit, state.last_quote
    )
    reps = {rep for _, rep in timeline}
    out = [(rep, summary) for rep in sorted(reps)]
    gone = CustomerSummary(state.customer_id, version, ())
    out += [(rep, gone) for rep in sorted(state.holders - reps)]
    state.holders = reps
    return out


# --------------------------------------------------------------------------- streaks


@dataclass(frozen=True, slots=True)
class Streak:
    """An uninterrupted stretch of activity: from its first purchase to its churn instant."""

    purchases: tuple[Purchase, ...]
    churn: datetime  # last purchase + churn_after (a churn once the clock has passed it)

    @property
    def start(self) -> datetime:
        return self.purchases[0][0]

    def owners(self) -> Iterator[tuple[datetime, datetime, str]]:
        """[from, to) and the owning rep: the rep of the latest purchase at or before."""
        at, rep = self.purchases[0]
        for later, next_rep in self.purchases[1:]:
            if next_rep != rep:
                yield at, later, rep
                at, rep = later, next_rep
        yield at, self.churn, rep


def streaks(purchases: tuple[Purchase, ...], churn_after: timedelta) -> list[Streak]:
    out: list[Streak] = []
    current: list[Purchase] = []
    for item in purchases:
        if current and item[0] >= current[-1][0] + churn_after:
            out.append(Streak(tuple(current), current[-1][0] + churn_after))
            current = []
        current.append(item)
    if current:
        out.append(Streak(tuple(current), current[-1][0] + churn_after))
    return out


# --------------------------------------------------------------------------- rep side: buckets


def bucket_contributions(
    summary: CustomerSummary, rep_id: str, calendar: Calendar, churn_after: timedelta
) -> Counter[BucketKey]:
    """What the customer adds to `rep_id`'s whole-period buckets (clock-independent)."""
    out: Counter[BucketKey] = Counter()
    purchases = summary.purchases
    if not purchases:
        return out
    first_at, first_rep = purchases[0]
    starts = {streak.start for streak in streaks(purchases, churn_after)[1:]}
    for kind in PERIOD_KINDS:
        if first_rep == rep_id:
            out[("new_customers", kind, calendar.start_of(kind, first_at))] += 1
        latest: dict[date, Purchase] = {}
        reactivation: dict[date, Purchase] = {}
        for item in purchases:
            period = calendar.start_of(kind, item[0])
            latest[period] = item  # in timeline order: the last one wins
            if item[0] in starts:
                reactivation[period] = item
        for period, (_, rep) in latest.items():
            if rep != rep_id:
                continue
            out[("buying_customers", kind, period)] += 1
            if first_at < calendar.bounds(kind, period)[0]:
                out[("returning_customers", kind, period)] += 1
        for period, (_, rep) in reactivation.items():
            if rep == rep_id:
                out[("reactivated_customers", kind, period)] += 1
    return out


# --------------------------------------------------------------------------- rep side: index


@dataclass(slots=True)
class CustomerIndex:
    """A rep's customers, arranged for the clock-dependent counts and partial windows."""

    rep_id: str
    churns: list[datetime]  # sorted churn instants of the streaks the rep owns at the churn
    # Owned intervals [start, end) with their streak's churn instant, sorted by start.
    intervals: list[tuple[datetime, datetime, datetime]]
    starts: list[datetime]  # interval starts, sorted
    ends: list[datetime]  # interval ends, sorted
    summaries: list[CustomerSummary]
    churn_after: timedelta

    @classmethod
    def build(
        cls, rep_id: str, summaries: Iterable[CustomerSummary], churn_after: timedelta
    ) -> CustomerIndex:
        churns: list[datetime] = []
        intervals: list[tuple[datetime, datetime, datetime]] = []
        kept = []
        for summary in summaries:
            if not summary.purchases:
                continue
            kept.append(summary)
            for streak in streaks(summary.purchases, churn_after):
                if streak.purchases[-1][1] == rep_id:
                    churns.append(streak.churn)
                for begin, end, rep in streak.owners():
                    if rep == rep_id:
                        intervals.append((begin, end, streak.churn))
        intervals.sort()
        return cls(
            rep_id,
            sorted(churns),
            intervals,
            [i[0] for i in intervals],
            sorted(i[1] for i in intervals),
            kept,
            churn_after,
        )

    def churned(self, begin: datetime, end: datetime, now: datetime) -> int:
        """Churns owned by the rep in [begin, end) that the clock has passed (at or before now)."""
        stop = bisect_right(self.churns, now) if now < end else bisect_left(self.churns, end)
        return max(stop - bisect_left(self.churns, begin), 0)

    def active_at(self, instant: datetime) -> int:
        """Customers the rep owns and who are active at `instant`."""
        return bisect_right(self.starts, instant) - bisect_right(self.ends, instant)

    def retained(self, begin: datetime, end: datetime, now: datetime) -> int:
        """Of those active at `begin`, owned by the rep then, the ones with no churn in [begin,
        min(end, now)] (a churn counts once the clock has passed it)."""
        count = 0
        for start, stop, churn in self.intervals[: bisect_right(self.starts, begin)]:
            if start <= begin < stop and not (churn < end and churn <= now):
                count += 1
        return count

    def read_time(self, begin: datetime, end: datetime, now: datetime) -> dict[str, int]:
        """The clock-dependent counts of the period [begin, end)."""
        return {
            "churned_customers": self.churned(begin, end, now),
            "active_customers_start": self.active_at(begin),
            "retained_customers": self.retained(begin, end, now),
        }

    def window(self, begin: datetime, end: datetime, now: datetime) -> dict[str, int]:
        """Every customer count of a partial window [begin, end) (previous period to date):
        distinct customers, evaluated customer by customer."""
        counts = dict.fromkeys(BUCKETED, 0)
        for summary in self.summaries:
            purchases = summary.purchases
            first_at, first_rep = purchases[0]
            if first_rep == self.rep_id and begin <= first_at < end:
                counts["new_customers"] += 1
            inside = [p for p in purchases if begin <= p[0] < end]
            if inside and inside[-1][1] == self.rep_id:
                counts["buying_customers"] += 1
                if first_at < begin:
                    counts["returning_customers"] += 1
            starts = [s.purchases[0] for s in streaks(purchases, self.churn_after)[1:]]
            again = [p for p in starts if begin <= p[0] < end]
            if again and again[-1][1] == self.rep_id:
                counts["reactivated_customers"] += 1
        return counts | self.read_time(begin, end, now)

    def next_due(self, now: datetime) -> datetime | None:
        """The next instant after `now` at which a read-time count changes (a churn)."""
        at = bisect_right(self.churns, now)
        return self.churns[at] if at < len(self.churns) else None


@dataclass(frozen=True, slots=True)
class AtRisk:
    """An active customer of the rep with no purchase and no visit for `at_risk_after_days`."""

    customer_id: str
    last_purchase: datetime
    last_visit: datetime | None
    churns_at: datetime

    @property
    def last_touch(self) -> datetime:
        return max(self.last_purchase, self.last_visit or self.last_purchase)


def at_risk(index: CustomerIndex, now: datetime, after: timedelta) -> list[AtRisk]:
    """The rep's at-risk customers, the longest untouched first (the follow-up list)."""
    out = []
    for summary in index.summaries:
        past = [p for p in summary.purchases if p[0] <= now]
        if not past or past[-1][1] != index.rep_id:
            continue  # owned by another rep now
        last_at = past[-1][0]
        churn = last_at + index.churn_after
        if now >= churn:
            continue  # churned, no longer active
        visit_at = summary.last_visit if summary.last_visit and summary.last_visit <= now else None
        item = AtRisk(summary.customer_id, last_at, visit_at, churn)
        if item.last_touch <= now - after:
            out.append(item)
    out.sort(key=lambda item: (item.last_touch, item.customer_id))
    return out


__all__ = [
    "BUCKETED",
    "CUSTOMER_COMPONENTS",
    "READ_TIME",
    "AtRisk",
    "CustomerIndex",
    "CustomerState",
    "CustomerSummary",
    "Streak",
    "at_risk",
    "bucket_contributions",
    "purchase",
    "quote",
    "streaks",
    "summaries",
    "visit",
]
