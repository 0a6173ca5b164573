"""Per-rep KPI state and the transition that applies one event to it, exact in any arrival order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from kpi_core.aggregates import ZERO, Agg
from kpi_core.customers import CustomerIndex, CustomerSummary
from kpi_core.periods import (
    PERIOD_KINDS,
    SLOT_SECONDS,
    Calendar,
    period_start,
    shift,
    slot_of,
    slot_start,
)
from kpi_rules.vocabulary import TargetMetric

BUCKET_KINDS: tuple[str, ...] = ("slot", *PERIOD_KINDS)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(a: datetime, b: datetime) -> int:
    delta = a - b
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(slots=True)
class Won:
    at: datetime
    amount: Decimal
    channel: str | None
    deal_created_at: datetime | None


@dataclass(slots=True)
class DealState:
    """What is known of one deal; each attribute is latest-by-event-time or a set: order-free."""

    created_at: datetime | None = None
    channel: tuple[datetime, str, str] | None = None  # (at, event_id, channel) of deal.created
    stage: tuple[datetime, str, str] | None = None  # (at, event_id, stage)
    amount: tuple[datetime, str, Decimal] | None = None  # (at, event_id, amount)
    wons: dict[str, Won] = field(default_factory=dict)
    lost: dict[str, datetime] = field(default_factory=dict)
    touches: list[datetime] = field(default_factory=list)  # sorted visit/quote times
    ids: set[str] = field(default_factory=set)
    last_at: datetime = _EPOCH
    # What the deal currently adds to the KPIs (see `transitions._contributions`): kept so an
    # update computes only the new contributions, not the old ones again. Derived, never stored.
    contributions: list[Any] | None = field(default=None, compare=False, repr=False)

    @property
    def closed(self) -> bool:
        return bool(self.wons or self.lost)

    def first_created(self) -> datetime | None:
        if self.created_at is not None:
            return self.created_at
        hints = [w.deal_created_at for w in self.wons.values() if w.deal_created_at is not None]
        return min(hints) if hints else None


@dataclass(frozen=True, slots=True)
class Horizon:
    """The oldest retained bucket key of each kind at one `now`; older data is not kept."""

    now: datetime
    oldest: dict[str, Any]
    earliest_instant: datetime
    churn_after: timedelta = timedelta(days=90)

    @classmethod
    def at(
        cls,
        now: datetime,
        calendar: Calendar,
        keep: dict[str, int],
        churn_after: timedelta = timedelta(days=90),
    ) -> Horizon:
        oldest: dict[str, Any] = {"slot": slot_of(now) - keep["hour"] * 3600 // SLOT_SECONDS + 1}
        earliest = slot_start(oldest["slot"])
        for kind in PERIOD_KINDS:
            oldest[kind] = shift(kind, calendar.start_of(kind, now), -(keep[kind] - 1))
            earliest = min(earliest, calendar.bounds(kind, oldest[kind])[0])
        return cls(now=now, oldest=oldest, earliest_instant=earliest, churn_after=churn_after)


@dataclass(slots=True)
class RepState:
    """Everything one rep's KPIs need; a Faust table value (see `codec` for its wire form)."""

    rep_id: str
    team: str = "unknown"
    region: str = "unknown"
    label_key: tuple[datetime, str] = (_EPOCH, "")  # event time and id of the latest event
    buckets: dict[str, dict[Any, Agg]] = field(
        default_factory=lambda: {k: {} for k in BUCKET_KINDS}
    )
    # (metric, period kind, period start) -> (event time, event id, amount): latest by event time.
    targets: dict[tuple[str, str, date], tuple[datetime, str, Decimal]] = field(default_factory=dict)
    deals: dict[str, DealState] = field(default_factory=dict)
    # event_id -> wall-clock hour (epoch // 3600) it was first seen. The ids are stored in
    # append-only chunks per hour (`seen_field`), so a save rewrites at most one small chunk.
    seen: dict[str, int] = field(default_factory=dict)
    seen_chunks: dict[int, list[list[str]]] = field(default_factory=dict)
    open_deals: int = 0
    open_pipeline: Decimal = ZERO
    weighted_pipeline: Decimal = ZERO
    # The latest summary of each customer the rep ever sold to (kpi_core.customers).
    customers: dict[str, CustomerSummary] = field(default_factory=dict)
    # Derived from `customers` on first read, dropped on every change of them; never stored.
    customer_index: CustomerIndex | None = field(default=None, compare=False, repr=False)
    # Names of the parts changed since the last save (see `codec`): a store writes only these.
    touched: set[str] = field(default_factory=set)

    # -- bucket arithmetic -------------------------------------------------------------------
    def _buckets_for(self, at: datetime, calendar: Calendar, horizon: Horizon) -> list[Agg]:
        """The retained buckets `at` falls into, marked touched (the hot path: keep it lean)."""
        out: list[Agg] = []
        touched = self.touched
        buckets = self.buckets
        oldest = horizon.oldest
        slot = int(at.timestamp()) // SLOT_SECONDS
        slot_name, keys = slot_plan(slot, calendar.zone, calendar.fiscal_start_month)
        if slot >= oldest["slot"]:
            out.append(_bucket(buckets["slot"], slot))
            touched.add(slot_name)
        for kind, key, name in keys:
            if key >= oldest[kind]:
                kind_buckets = buckets[kind]
                agg = kind_buckets.get(key)
                if agg is None:
                    agg = kind_buckets[key] = Agg()
                out.append(agg)
                touched.add(name)
        return out

    def prune(self, horizon: Horizon, wall: float, dedupe_seconds: float) -> None:
        """Drop buckets, targets, closed deals, customers and remembered ids that fell out of
        retention (a customer once its last purchase is older than the oldest retained instant
        by more than `churn_after`: it no longer changes any retained figure)."""
        touched = self.touched
        for kind, buckets in self.buckets.items():
            oldest = horizon.oldest[kind]
            for key in [k for k in buckets if k < oldest]:
                del buckets[key]
                touched.add(bucket_field(kind, key))
        for tkey in [k for k in self.targets if k[2] < horizon.oldest[k[1]]]:
            del self.targets[tkey]
            touched.add(target_field(*tkey))
        for deal_id in [
            d for d, s in self.deals.items() if s.closed and s.last_at < horizon.earliest_instant
        ]:
            del self.deals[deal_id]
            touched.add(deal_field(deal_id))
        for customer_id in [
            c for c, summary in self.customers.items() if _forgettable(summary, horizon)
        ]:
            del self.customers[customer_id]
            self.customer_index = None
            touched.add(customer_field(customer_id))
        cutoff = int(wall - dedupe_seconds) // 3600
        for hour in [h for h in self.seen_chunks if h < cutoff]:
            chunks = self.seen_chunks.pop(hour)
            for index, chunk in enumerate(chunks):
                for event_id in chunk:
                    self.seen.pop(event_id, None)
                touched.add(seen_field(hour, index))

    def remember(self, event_id: str, wall_epoch: float) -> None:
        """Record a first sighting of `event_id` (for the CRM-retry dedupe horizon)."""
        hour = int(wall_epoch) // 3600
        self.seen[event_id] = hour
        chunks = self.seen_chunks.get(hour)
        if chunks is None:
            chunks = self.seen_chunks[hour] = [[]]
        elif len(chunks[-1]) >= SEEN_CHUNK:
            chunks.append([])
        chunks[-1].append(event_id)
        self.touched.add(seen_field(hour, len(chunks) - 1))


# Names of the independently stored parts of a rep's state (the codec encodes each one).
META_FIELD = "m"


@lru_cache(maxsize=8192)
def period_keys(local: date, fiscal_start_month: int) -> tuple[tuple[str, date, str], ...]:
    """(kind, period start, part name) of every period kind containing local date `local`."""
    out = []
    for kind in PERIOD_KINDS:
        key = period_start(kind, local, fiscal_start_month)
        out.append((kind, key, bucket_field(kind, key)))
    return tuple(out)


@lru_cache(maxsize=65536)
def slot_plan(
    slot: int, zone: ZoneInfo, fiscal_start_month: int
) -> tuple[str, tuple[tuple[str, date, str], ...]]:
    """The slot's part name and the periods of every kind containing it, cached per slot.

    The local date is the same at every instant of a 15-minute UTC slot, because every UTC
    offset in use is a multiple of 15 minutes (tests/unit/core/test_periods.py checks it), so
    the hot path converts an event time to its local date once per slot, not once per event."""
    local = slot_start(slot).astimezone(zone).date()
    return bucket_field("slot", slot), period_keys(local, fiscal_start_month)


def bucket_field(kind: str, key: Any) -> str:
    return f"b|{kind}|{key}"


def target_field(metric: str, kind: str, start: date) -> str:
    """A revenue target keeps the name it had before targets had metrics: `t|month|2026-03-01`."""
    if metric == REVENUE:
        return f"t|{kind}|{start}"
    return f"t|{kind}|{start}|{metric}"


REVENUE = TargetMetric.REVENUE.value


def deal_field(deal_id: str) -> str:
    return f"d|{deal_id}"


def customer_field(customer_id: str) -> str:
    return f"c|{customer_id}"


def _forgettable(summary: CustomerSummary, horizon: Horizon) -> bool:
    """No retained period can see the customer any more (its whole history is older)."""
    if not summary.purchases:
        return True
    last = summary.purchases[-1][0]
    return last + horizon.churn_after < horizon.earliest_instant


SEEN_CHUNK = 256


@lru_cache(maxsize=4096)
def seen_field(hour: int, index: int) -> str:
    """The part holding one chunk of the event ids first seen during a wall-clock hour."""
    return f"s|{hour}|{index}"


def _bucket(buckets: dict[Any, Agg], key: Any) -> Agg:
    agg = buckets.get(key)
    if agg is None:
        agg = buckets[key] = Agg()
    return agg
