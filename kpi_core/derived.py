"""Derived KPIs of the catalogue: ratios of sums, undefined (None) unless the denominator is above 0."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from kpi_core.catalogue import DERIVED, Kpi, Shape, Surface, Term, Unit, kpi, on
from kpi_rules.vocabulary import TargetMetric

HUNDRED = Decimal(100)
_RATIO_PLACES = Decimal("0.0001")
_CENTS = Decimal("0.01")

#: Component values of one row: name -> exact number (None: not set, e.g. no target), and for a
#: labelled component (`revenue_by_channel`) a mapping label -> amount.
Values = Mapping[str, Any]


def ratio(
    numerator: Decimal | int, denominator: Decimal | int | None, scale: Fraction | int = 1
) -> Decimal | None:
    """numerator / denominator x scale, exact to Decimal's precision; None unless denominator > 0."""
    if denominator is None or denominator <= 0:
        return None
    scale = Fraction(scale)
    below = Decimal(denominator)
    if scale.denominator != 1:
        below *= scale.denominator
    return Decimal(numerator) * Decimal(scale.numerator) / below


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


def render(kpi_: Kpi, value: Decimal | None) -> str | float | None:
    """A derived value as the report and the API show it: money as a decimal string (cents)."""
    if value is None:
        return None
    if kpi_.unit is Unit.MONEY:
        return money(value.quantize(_CENTS))
    return number(value)


def _sum(terms: tuple[Term, ...], values: Values) -> Decimal | int | None:
    if len(terms) == 1 and terms[0].sign == 1:  # the common case, and exact whatever the digits
        value: Decimal | int | None = values.get(terms[0].component)
        return value
    total: Decimal | int = 0
    for term in terms:
        value = values.get(term.component)
        if value is None:
            return None
        total += term.sign * value
    return total


def evaluate(
    kpi_: Kpi,
    values: Values,
    compared: Values | None = None,
    elapsed: tuple[int, int] | None = None,
    trailing: Values | None = None,
) -> Decimal | None:
    """One unlabelled derived KPI of one row.

    `compared` holds the components of the compared window (GROWTH); `elapsed` is (elapsed,
    length) of the period (PROJECTED); `trailing` the sums of the trailing months (TRAILING)."""
    if kpi_.shape is Shape.TRAILING:
        values = trailing or {}
    numerator = _sum(kpi_.numerator, values)
    if kpi_.shape is Shape.GROWTH:
        before = None if compared is None else _sum(kpi_.numerator, compared)
        if numerator is None or before is None:
            return None
        return ratio(numerator - before, before, 100)
    denominator = _sum(kpi_.denominator, values)
    if numerator is None or denominator is None:
        return None
    if kpi_.shape is Shape.PROJECTED:
        if elapsed is None or elapsed[0] <= 0:
            return None
        return ratio(numerator * elapsed[1], elapsed[0] * denominator, kpi_.scale)
    return ratio(numerator, denominator, kpi_.scale)


#: The figure a target of each metric is compared with.
ACTUAL_OF_METRIC: dict[str, str] = {
    TargetMetric.REVENUE: "revenue",
    TargetMetric.GROSS_MARGIN: "gross_margin",
    TargetMetric.VISITS: "visits",
    TargetMetric.DEALS_WON: "deals_won",
    TargetMetric.NEW_CUSTOMERS: "new_customers",
}


def evaluate_labelled(
    kpi_: Kpi, values: Values, elapsed: tuple[int, int] | None = None
) -> dict[str, Decimal | None] | None:
    """A labelled derived KPI: `channel_share_pct` (channel -> share), or `attainment_by_metric_pct`
    and its projection (metric -> attainment of that metric's target); None when undefined."""
    if kpi_.shape in (Shape.PER_METRIC, Shape.PER_METRIC_PROJECTED):
        targets: Mapping[str, Decimal] = values.get("metric_target") or {}
        if not targets:
            return None
        out: dict[str, Decimal | None] = {}
        for metric, target in targets.items():
            actual = values.get(ACTUAL_OF_METRIC[metric], 0)
            if kpi_.shape is Shape.PER_METRIC:
                out[metric] = ratio(actual, target, kpi_.scale)
            elif elapsed is None or elapsed[0] <= 0:
                out[metric] = None
            else:
                out[metric] = ratio(actual * elapsed[1], elapsed[0] * target, kpi_.scale)
        return out
    (part,) = kpi_.numerator
    denominator = _sum(kpi_.denominator, values)
    if denominator is None or denominator <= 0:
        return None
    by_label: Mapping[str, Decimal] = values.get(part.component) or {}
    return {label: ratio(amount, denominator, kpi_.scale) for label, amount in sorted(by_label.items())}


ROW_KPIS: tuple[Kpi, ...] = on(Surface.REPORT, DERIVED)


def derived_kpis(
    values: Values,
    compared: Values | None,
    elapsed: tuple[int, int] | None,
    trailing: Values | None = None,
) -> dict[str, object]:
    """Every derived KPI of a report row, rendered, in catalogue order."""
    out: dict[str, object] = {}
    for item in ROW_KPIS:
        if item.label is not None:
            shares = evaluate_labelled(item, values, elapsed)
            out[item.name] = (
                None if shares is None else {k: render(item, v) for k, v in shares.items()}
            )
        else:
            out[item.name] = render(item, evaluate(item, values, compared, elapsed, trailing))
    return out


_COVERAGE = kpi("pipeline_coverage")


def pipeline_coverage(weighted: Decimal, target: Decimal | None, revenue: Decimal) -> Decimal | None:
    """weighted_pipeline / (target - revenue); undefined without a target or once it is met."""
    return evaluate(
        _COVERAGE, {"weighted_pipeline": weighted, "target": target, "revenue": revenue}
    )
