"""Additive KPI components for one period bucket, and their exact arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(slots=True)
class Agg:
    """Additive components of one rep's period; durations are kept in exact microseconds."""

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

    def merge(self, other: Agg) -> None:
        self.visits += other.visits
        self.deals_created += other.deals_created
        self.deals_won += other.deals_won
        self.deals_lost += other.deals_lost
        self.quotes_sent += other.quotes_sent
        self.revenue += other.revenue
        for channel, amount in other.revenue_by_channel.items():
            self.revenue_by_channel[channel] = self.revenue_by_channel.get(channel, ZERO) + amount
        self.cycle_us_sum += other.cycle_us_sum
        self.cycle_count += other.cycle_count
        self.first_response_us_sum += other.first_response_us_sum
        self.first_response_count += other.first_response_count

    def components(self) -> dict[str, int | Decimal]:
        """The additive KPIs of contract section 3 by name, exact (durations in seconds)."""
        return {
            "visits": self.visits,
            "deals_created": self.deals_created,
            "deals_won": self.deals_won,
            "deals_lost": self.deals_lost,
            "quotes_sent": self.quotes_sent,
            "revenue": self.revenue,
            "cycle_seconds_sum": Decimal(self.cycle_us_sum).scaleb(-6),
            "cycle_seconds_count": self.cycle_count,
            "first_response_seconds_sum": Decimal(self.first_response_us_sum).scaleb(-6),
            "first_response_seconds_count": self.first_response_count,
        }

    def is_empty(self) -> bool:
        return (
            not (self.visits or self.deals_created or self.deals_won or self.deals_lost)
            and not (self.quotes_sent or self.cycle_count or self.first_response_count)
            and self.revenue == 0
            and not any(self.revenue_by_channel.values())
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "v": self.visits,
            "dc": self.deals_created,
            "dw": self.deals_won,
            "dl": self.deals_lost,
            "q": self.quotes_sent,
            "r": str(self.revenue),
            "rc": {k: str(v) for k, v in self.revenue_by_channel.items()},
            "cs": self.cycle_us_sum,
            "cc": self.cycle_count,
            "fs": self.first_response_us_sum,
            "fc": self.first_response_count,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Agg:
        rc = data.get("rc") or {}
        assert isinstance(rc, dict)
        return cls(
            visits=int(data["v"]),  # type: ignore[call-overload]
            deals_created=int(data["dc"]),  # type: ignore[call-overload]
            deals_won=int(data["dw"]),  # type: ignore[call-overload]
            deals_lost=int(data["dl"]),  # type: ignore[call-overload]
            quotes_sent=int(data["q"]),  # type: ignore[call-overload]
            revenue=Decimal(str(data["r"])),
            revenue_by_channel={str(k): Decimal(str(v)) for k, v in rc.items()},
            cycle_us_sum=int(data["cs"]),  # type: ignore[call-overload]
            cycle_count=int(data["cc"]),  # type: ignore[call-overload]
            first_response_us_sum=int(data["fs"]),  # type: ignore[call-overload]
            first_response_count=int(data["fc"]),  # type: ignore[call-overload]
        )
