"""Additive KPI components of one period bucket (the catalogue's additive KPIs), exact arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

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


@dataclass(slots=True)
class Agg:
    """Additive components of one rep's period; durations are kept in exact microseconds.

    The fields are written out (not generated) for speed on the hot path and for the type
    checker; `SLOTS` ties each to its catalogue KPI, and the generic methods below follow it."""

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

    SLOTS: ClassVar[tuple[Slot, ...]]

    def merge(self, other: Agg) -> None:
        for slot in Agg.SLOTS:
            if slot.labelled:
                mine: dict[str, Decimal] = getattr(self, slot.attr)
                for label, amount in getattr(other, slot.attr).items():
                    mine[label] = mine.get(label, ZERO) + amount
            else:
                setattr(self, slot.attr, getattr(self, slot.attr) + getattr(other, slot.attr))

    def components(self) -> dict[str, int | Decimal]:
        """The unlabelled additive KPIs by catalogue name, exact (durations in seconds)."""
        out: dict[str, int | Decimal] = {}
        for slot in Agg.SLOTS:
            if slot.labelled:
                continue
            value = getattr(self, slot.attr)
            out[slot.component] = Decimal(value).scaleb(-6) if slot.kind is KpiKind.DURATION else value
        return out

    def labelled(self, component: str) -> dict[str, Decimal]:
        """A labelled component (`revenue_by_channel`): label -> amount."""
        value: dict[str, Decimal] = getattr(self, _BY_COMPONENT[component].attr)
        return value

    def is_empty(self) -> bool:
        for slot in Agg.SLOTS:
            value = getattr(self, slot.attr)
            if (any(value.values()) if slot.labelled else value):
                return False
        return True

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for slot in Agg.SLOTS:
            value = getattr(self, slot.attr)
            if slot.labelled:
                out[slot.code] = {str(k): str(v) for k, v in value.items()}
            else:
                out[slot.code] = str(value) if slot.kind is KpiKind.MONEY else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Agg:
        agg = cls()
        for slot in Agg.SLOTS:
            raw = data.get(slot.code)
            if slot.labelled:
                items = raw if isinstance(raw, dict) else {}
                setattr(agg, slot.attr, {str(k): Decimal(str(v)) for k, v in items.items()})
            elif slot.kind is KpiKind.MONEY:
                setattr(agg, slot.attr, Decimal(str(raw)))
            else:
                setattr(agg, slot.attr, int(str(raw)))
        return agg


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
}
# Additive KPIs that are not bucket sums: a target is a fact of its own (RepState.targets).
NOT_IN_BUCKETS = frozenset({"target"})

Agg.SLOTS = tuple(
    Slot(kpi.name, *_LAYOUT[kpi.name], kind=kpi.kind, labelled=kpi.label is not None)
    for kpi in ADDITIVE
    if kpi.name not in NOT_IN_BUCKETS
)
_BY_COMPONENT = {slot.component: slot for slot in Agg.SLOTS}
