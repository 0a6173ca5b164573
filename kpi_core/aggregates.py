"""Additive KPI components of one period bucket (the catalogue's additive KPIs), exact arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter
from typing import Any

from kpi_core.catalogue import ADDITIVE, KpiKind

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one additive component lives in an `Agg`: its attribute and its short stored name."""

    component: str  # the catalogue name
    attr: str
    code: str  # key in the stored JSON (kept short: one per bucket, millions of buckets)
    kind: KpiKind
    labelled: bool = False


# Catalogue name -> (attribute, stored code). Stored codes never change: they are in Redis.
_LAYOUT: dict[str, tuple[str, str]] = {
    "visits": ("visits", "v"),
    "deals_created": ("deals_created", "dc"),
    "deals_won": ("deals_won", "dw"),
    "deals_lost": ("deals_lost", "dl"),
    "quotes_sent": ("quotes_sent", "q"),
    "revenue": ("revenue", "r"),
    "revenue_by_channel": ("revenue_by_channel", "rc"),
    "cycle_seconds_sum": ("cycle_us_sum", "cs"),
    "cycle_seconds_count": ("cycle_count", "cc"),
    "first_response_seconds_sum": ("first_response_us_sum", "fs"),
    "first_response_seconds_count": ("first_response_count", "fc"),
    "gross_margin": ("gross_margin", "gm"),
    "costed_revenue": ("costed_revenue", "cr"),
    "leads": ("leads", "l"),
    "leads_by_channel": ("leads_by_channel", "lc"),
    "spend_marketing": ("spend_marketing", "sm"),
    "spend_sales": ("spend_sales", "ss"),
    "csat_responses": ("csat_responses", "ct"),
    "csat_satisfied": ("csat_satisfied", "cs4"),
    "nps_responses": ("nps_responses", "nr"),
    "nps_promoters": ("nps_promoters", "np"),
    "nps_detractors": ("nps_detractors", "nd"),
    "new_customers": ("new_customers", "nc"),
    "buying_customers": ("buying_customers", "bc"),
    "returning_customers": ("returning_customers", "rtc"),
    "reactivated_customers": ("reactivated_customers", "rac"),
    "churned_customers": ("churned_customers", "chc"),
    "active_customers_start": ("active_customers_start", "acs"),
    "retained_customers": ("retained_customers", "ret"),
}
# Additive KPIs that are not bucket sums: a target is a fact of its own (RepState.targets).
NOT_IN_BUCKETS = frozenset({"target", "metric_target"})

# Where each additive component lives in an `Agg` (a module constant: a compiled `Agg`, mypyc,
# cannot take class attributes).
SLOTS: tuple[Slot, ...] = tuple(
    Slot(kpi.name, *_LAYOUT[kpi.name], kind=kpi.kind, labelled=kpi.label is not None)
    for kpi in ADDITIVE
    if kpi.name not in NOT_IN_BUCKETS
)

@dataclass(slots=True)
class Agg:
    """Additive components of one rep's period; durations are kept in exact microseconds.

    The fields are written out (not generated) for speed on the hot path and for the type
    checker; `SLOTS` (module level) ties each to its catalogue KPI, and the generic methods below
    follow it."""

    visits: int = 0
    deals_created: int = 0
    deals_won: int = 0
    deals_lost: int = 0
    quotes_sent: int = 0
    revenue: Decimal = ZERO
    revenue_by_channel: dict[str, Decimal] = field(default_factory=dict)
    cycle_us_sum: int = 0
    cycle_count: int = 0
    first_response_us_sum: int = 0
    first_response_count: int = 0
    gross_margin: Decimal = ZERO
    costed_revenue: Decimal = ZERO
    leads: int = 0
    leads_by_channel: dict[str, int] = field(default_factory=dict)
    spend_marketing: Decimal = ZERO
    spend_sales: Decimal = ZERO
    csat_responses: int = 0
    csat_satisfied: int = 0
    nps_responses: int = 0
    nps_promoters: int = 0
    nps_detractors: int = 0
    # Customer counts (distinct customers, see kpi_core.customers); period buckets only.
    new_customers: int = 0
    buying_customers: int = 0
    returning_customers: int = 0
    reactivated_customers: int = 0
    churned_customers: int = 0
    active_customers_start: int = 0
    retained_customers: int = 0

    def merge(self, other: Agg) -> None:
        for slot in SLOTS:
            if slot.labelled:
                mine: dict[str, Any] = getattr(self, slot.attr)
                for label, amount in getattr(other, slot.attr).items():
                    mine[label] = mine.get(label, 0) + amount
            else:
                setattr(self, slot.attr, getattr(self, slot.attr) + getattr(other, slot.attr))

    def copy(self) -> Agg:
        """An independent copy (the labelled mappings copied too)."""
        out = Agg()
        out.merge(self)
        return out

    def components(self) -> dict[str, int | Decimal]:
        """The unlabelled additive KPIs by catalogue name, exact (durations in seconds)."""
        out: dict[str, int | Decimal] = {}
        for slot in SLOTS:
            if slot.labelled:
                continue
            value = getattr(self, slot.attr)
            out[slot.component] = Decimal(value).scaleb(-6) if slot.kind is KpiKind.DURATION else value
        return out

    def labelled(self, component: str) -> dict[str, Any]:
        """A labelled component (`revenue_by_channel`, `leads_by_channel`): label -> value."""
        value: dict[str, Any] = getattr(self, _BY_COMPONENT[component].attr)
        return value

    def is_empty(self) -> bool:
        for slot in SLOTS:
            value = getattr(self, slot.attr)
            if (any(value.values()) if slot.labelled else value):
                return False
        return True

    def to_dict(self) -> dict[str, object]:
        """The stored form: short codes, money as decimal strings; zeros left out (a bucket holds
        a few of some thirty components), so the stored form grows only with what happens.

        Written out field by field, in `SLOTS` order, because every bucket an event changes is
        encoded (compiled, a field read is a load; a generic loop over `SLOTS` took ~1.4 us a
        bucket); `stored_form` is the generic version, and the unit tests hold them equal."""
        out: dict[str, object] = {}
        if self.visits:
            out["v"] = self.visits
        if self.deals_created:
            out["dc"] = self.deals_created
        if self.deals_won:
            out["dw"] = self.deals_won
        if self.deals_lost:
            out["dl"] = self.deals_lost
        if self.quotes_sent:
            out["q"] = self.quotes_sent
        if self.revenue:
            out["r"] = str(self.revenue)
        if self.revenue_by_channel:
            out["rc"] = {str(k): str(v) for k, v in self.revenue_by_channel.items()}
        if self.cycle_us_sum:
            out["cs"] = self.cycle_us_sum
        if self.cycle_count:
            out["cc"] = self.cycle_count
        if self.first_response_us_sum:
            out["fs"] = self.first_response_us_sum
        if self.first_response_count:
            out["fc"] = self.first_response_count
        if self.gross_margin:
            out["gm"] = str(self.gross_margin)
        if self.costed_revenue:
            out["cr"] = str(self.costed_revenue)
        if self.leads:
            out["l"] = self.leads
        if self.leads_by_channel:
            out["lc"] = {str(k): v for k, v in self.leads_by_channel.items()}
        if self.spend_marketing:
            out["sm"] = str(self.spend_marketing)
        if self.spend_sales:
            out["ss"] = str(self.spend_sales)
        if self.csat_responses:
            out["ct"] = self.csat_responses
        if self.csat_satisfied:
            out["cs4"] = self.csat_satisfied
        if self.nps_responses:
            out["nr"] = self.nps_responses
        if self.nps_promoters:
            out["np"] = self.nps_promoters
        if self.nps_detractors:
            out["nd"] = self.nps_detractors
        if self.new_customers:
            out["nc"] = self.new_customers
        if self.buying_customers:
            out["bc"] = self.buying_customers
        if self.returning_customers:
            out["rtc"] = self.returning_customers
        if self.reactivated_customers:
            out["rac"] = self.reactivated_customers
        if self.churned_customers:
            out["chc"] = self.churned_customers
        if self.active_customers_start:
            out["acs"] = self.active_customers_start
        if self.retained_customers:
            out["ret"] = self.retained_customers
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Agg:
        agg = cls()
        for slot in SLOTS:
            raw = data.get(slot.code)
            if raw is None:
                continue  # zero (left out when stored)
            if slot.labelled:
                items = raw if isinstance(raw, dict) else {}
                setattr(agg, slot.attr, {str(k): _load(slot, v) for k, v in items.items()})
            else:
                setattr(agg, slot.attr, _load(slot, raw))
        return agg


_BY_COMPONENT = {slot.component: slot for slot in SLOTS}


def stored_form(agg: Agg) -> dict[str, object]:
    """`Agg.to_dict` driven by `SLOTS` (the layout's single statement): the reference the
    written-out `to_dict` is tested against."""
    out: dict[str, object] = {}
    for slot, value in zip(SLOTS, _VALUES(agg), strict=True):
        if not value:
            continue
        if slot.labelled:
            out[slot.code] = {str(k): _store(slot, v) for k, v in value.items()}
        else:
            out[slot.code] = _store(slot, value)
    return out
_VALUES = attrgetter(*(slot.attr for slot in SLOTS))  # all values at once, in C


def _store(slot: Slot, value: Any) -> object:
    return str(value) if slot.kind is KpiKind.MONEY else value


def _load(slot: Slot, raw: object) -> Any:
    return Decimal(str(raw)) if slot.kind is KpiKind.MONEY else int(str(raw))
