"""Derived KPIs of contract section 3: ratios of sums, undefined (None) when a denominator is 0."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from kpi_core.aggregates import Agg

HUNDRED = Decimal(100)
_RATIO_PLACES = Decimal("0.0001")
_CENTS = Decimal("0.01")


def ratio(
    numerator: Decimal | int, denominator: Decimal | int, scale: Decimal | int = 1
) -> Decimal | None:
    if not denominator:
        return None
    return Decimal(numerator) * Decimal(scale) / Decimal(denominator)


def money(value: Decimal) -> str:
    """Canonical decimal string: at least two places, no trailing noise, same for equal values."""
    normal = value.normalize()
    if normal.as_tuple().exponent >= -2:  # type: ignore[operator]
        normal = value.quantize(_CENTS)
    return f"{normal:f}"


def number(value: Decimal | None) -> float | None:
    """A derived ratio for JSON: rounded to 4 places; None stays None (undefined)."""
    if value is None:
        return None
    return float(value.quantize(_RATIO_PLACES, rounding=ROUND_HALF_EVEN))


def derived_kpis(
    agg: Agg,
    target: Decimal | None,
    compared_revenue: Decimal | None,
    elapsed: tuple[int, int] | None,
) -> dict[str, object]:
    """Every derived KPI for one row; `elapsed` is (elapsed, length) of the period."""
    projected = None
    if target and elapsed is not None and elapsed[0] > 0:
        projected = ratio(agg.revenue * elapsed[1], elapsed[0] * target, HUNDRED)
    avg_deal = ratio(agg.revenue, agg.deals_won)
    shares = None
    if agg.revenue:
        shares = {
            channel: number(ratio(amount, agg.revenue, HUNDRED))
            for channel, amount in sorted(agg.revenue_by_channel.items())
        }
    growth = None
    if compared_revenue is not None:
        growth = ratio(agg.revenue - compared_revenue, compared_revenue, HUNDRED)
    return {
        "growth_pct": number(growth),
        "quote_to_close_pct": number(ratio(agg.deals_won, agg.quotes_sent, HUNDRED)),
        "win_rate_pct": number(ratio(agg.deals_won, agg.deals_won + agg.deals_lost, HUNDRED)),
        "lead_conversion_pct": number(ratio(agg.deals_won, agg.deals_created, HUNDRED)),
        "avg_deal_size": None if avg_deal is None else money(avg_deal.quantize(_CENTS)),
        "avg_cycle_days": number(ratio(agg.cycle_us_sum, agg.cycle_count * 86_400_000_000)),
        "avg_first_response_hours": number(
            ratio(agg.first_response_us_sum, agg.first_response_count * 3_600_000_000)
        ),
        "channel_share_pct": shares,
        "attainment_pct": number(ratio(agg.revenue, target, HUNDRED)) if target else None,
        "projected_attainment_pct": number(projected),
        "visits_per_win": number(ratio(agg.visits, agg.deals_won)),
    }


def pipeline_coverage(
    weighted: Decimal, target: Decimal | None, revenue: Decimal
) -> Decimal | None:
    """weighted_pipeline / (target - revenue); undefined without a target or once it is met."""
    if target is None or target - revenue <= 0:
        return None
    return weighted / (target - revenue)
