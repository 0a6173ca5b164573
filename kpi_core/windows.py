"""Rows of KPIs per period and the current / previous / previous_to_date windows of a rep."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from kpi_core.aggregates import SLOTS as AGG_SLOTS
from kpi_core.aggregates import Agg
from kpi_core.catalogue import ADDITIVE, Kpi, KpiKind, Surface, on
from kpi_core.customers import CustomerIndex
from kpi_core.derived import derived_kpis, money, number, pipeline_coverage
from kpi_core.periods import Calendar, shift, slot_of
from kpi_core.state import REVENUE, Horizon, RepState
from kpi_rules.vocabulary import MONEY_METRICS, TargetMetric


def seconds(value: Decimal) -> int | float:
    """A duration in seconds for JSON: an int when whole, else a float."""
    whole = int(value)
    return whole if whole == value else float(value)


def row_values(agg: Agg, targets: dict[str, Decimal]) -> dict[str, Any]:
    """The exact component values of a row (what the derived KPIs are computed from); `targets`
    holds the period's target of each metric that has one."""
    values: dict[str, Any] = dict(agg.components())
    for slot in AGG_SLOTS:
        if slot.labelled:
            values[slot.component] = agg.labelled(slot.component)
    values["target"] = targets.get(REVENUE)
    values["metric_target"] = targets
    return values


def _target_value(metric: str, amount: Decimal) -> str | int:
    """A money target as a decimal string, a count target (visits...) as a whole number."""
    return money(amount) if metric in MONEY_METRICS else int(amount)


def additive_values(values: dict[str, Any]) -> dict[str, Any]:
    """The additive KPIs of a report row (contract section 4), rendered, in catalogue order."""
    out: dict[str, Any] = {}
    for item in ROW_ADDITIVE:
        value = values[item.name]
        if value is None:
            out[item.name] = None
        elif item.label == "metric":
            out[item.name] = {k: _target_value(k, v) for k, v in sorted(value.items())}
        elif item.label is not None:
            render = money if item.kind is KpiKind.MONEY else int
            out[item.name] = {k: render(v) for k, v in sorted(value.items()) if v}
        elif item.kind is KpiKind.MONEY:
            out[item.name] = money(value)
        elif item.kind is KpiKind.DURATION:
            out[item.name] = seconds(value)
        else:
            out[item.name] = value
    return out


ROW_ADDITIVE: tuple[Kpi, ...] = on(Surface.REPORT, ADDITIVE)


def build_row(
    head: dict[str, Any],
    agg: Agg,
    targets: dict[str, Decimal],
    compared: Agg | None,
    elapsed: tuple[int, int] | None,
    trailing: dict[str, Any],
) -> dict[str, Any]:
    """A report row (a rep's or a scope's): `head`, the additive KPIs, and the derived ones
    computed from these sums (a ratio over a group is a ratio of sums)."""
    values = row_values(agg, targets)
    row = dict(head)
    row.update(additive_values(values))
    row["derived"] = derived_kpis(
        values, None if compared is None else compared.components(), elapsed, trailing
    )
    return row


class RepView:
    """Read-only KPI rows of one rep at one `now` (the same code serves report and HTTP)."""

    def __init__(
        self,
        state: RepState,
        calendar: Calendar,
        horizon: Horizon,
        coverage_period: str = "month",
        trailing_months: int = 6,
    ):
        self.trailing_months = trailing_months
        self.state = state
        self.calendar = calendar
        self.horizon = horizon
        self.now: datetime = horizon.now
        self.coverage_period = coverage_period

    # -- building blocks ---------------------------------------------------------------------
    def target(self, kind: str, start: date, metric: str = REVENUE) -> Decimal | None:
        fact = self.state.targets.get((metric, kind, start))
        return None if fact is None else fact[2]

    def targets(self, kind: str, start: date) -> dict[str, Decimal]:
        """The period's target of every metric that has one, in the vocabulary's order."""
        found = {m: f[2] for (m, k, s), f in self.state.targets.items() if k == kind and s == start}
        return {m.value: found[m.value] for m in TargetMetric if m.value in found}

    def trailing(self, kind: str, start: date) -> dict[str, Any]:
        """Sums of the completed months before the row's end (or now), for trailing KPIs (clv):
        the last `trailing_months` months wholly before min(now, end of the period)."""
        end = min(self.now, self.calendar.bounds(kind, start)[1])
        last = self.calendar.start_of("month", end)  # not complete unless `end` is its start
        total = Agg()
        month = last
        for _ in range(self.trailing_months):
            month = shift("month", month, -1)
            if not self.retained("month", month):
                break
            total.merge(self.complete("month", month))
        return dict(total.components())

    def retained(self, kind: str, start: date) -> bool:
        return bool(start >= self.horizon.oldest[kind])

    def whole(self, kind: str, start: date) -> Agg | None:
        if not self.retained(kind, start):
            return None
        return self.complete(kind, start)

    def customers(self) -> CustomerIndex:
        """The rep's customers arranged for counting (built once per change of them)."""
        index = self.state.customer_index
        if index is None:
            index = self.state.customer_index = CustomerIndex.build(
                self.state.rep_id, self.state.customers.values(), self.horizon.churn_after
            )
        return index

    def complete(self, kind: str, start: date) -> Agg:
        """A whole period: its bucket, with the customer counts that depend on the clock
        (churned, active at the start, retained) as they are at `now`. A copy: safe to change."""
        agg = (self.state.buckets[kind].get(start) or Agg()).copy()
        if self.state.customers:
            begin, end = self.calendar.bounds(kind, start)
            for name, value in self.customers().read_time(begin, end, self.now).items():
                setattr(agg, name, value)
        return agg

    def to_date(self, kind: str, start: date, cutoff: timedelta) -> Agg | None:
        """The period from `start` up to the elapsed point `cutoff` (see `cutoff`).

        Sums of buckets, except the customer counts: distinct customers do not add up across
        buckets, so they are counted customer by customer over the window."""
        total = self._to_date(kind, start, cutoff)
        if total is not None and self.state.customers:
            begin, _ = self.calendar.bounds(kind, start)
            stop = self.point(kind, start, cutoff)
            for name, value in self.customers().window(begin, stop, self.now).items():
                setattr(total, name, value)
        return total

    def _cut(self, kind: str, start: date, cutoff: timedelta) -> tuple[date, date | None, datetime]:
        """Where the window from `start` of a week, month, quarter or year ends: (the end of the
        whole local days read from day buckets (exclusive), the day read from its 15-minute
        slots up to the stop, or None, the stop instant). The day `cutoff` ends inside is read
        to the same time of day as now while its slots are kept, else whole (more than the
        current period has had of its own day); a shorter period (February) ends whole."""
        end = shift(kind, start, 1)
        whole = min(start + timedelta(days=cutoff.days), end)
        if whole == end:
            return whole, None, self.calendar.bounds(kind, start)[1]
        begin, day_end = self.calendar.bounds("day", whole)
        oldest: int = self.horizon.oldest["slot"]
        if slot_of(begin) >= oldest:
            return whole, whole, min(begin + (cutoff - timedelta(days=cutoff.days)), day_end)
        return whole + timedelta(days=1), None, day_end

    def point(self, kind: str, start: date, cutoff: timedelta) -> datetime:
        """The instant the window from `start` up to `cutoff` ends at."""
        if kind == "day":
            begin, end = self.calendar.bounds("day", start)
            return min(begin + cutoff, end)
        return self._cut(kind, start, cutoff)[2]

    def _slots(self, begin: datetime, stop: datetime) -> Agg:
        """The slots from `begin` up to `stop`: at most a day's 96, looked up, not scanned."""
        total = Agg()
        slots = self.state.buckets["slot"]
        for slot in range(slot_of(begin), slot_of(stop - timedelta(microseconds=1)) + 1):
            agg = slots.get(slot)
            if agg is not None:
                total.merge(agg)
        return total

    def _to_date(self, kind: str, start: date, cutoff: timedelta) -> Agg | None:
        if kind == "day":
            begin, _ = self.calendar.bounds("day", start)
            if slot_of(begin) < self.horizon.oldest["slot"]:
                return None
            return self._slots(begin, self.point(kind, start, cutoff))
        total = Agg()
        last, partial, stop = self._cut(kind, start, cutoff)
        first_day = start
        if kind in ("quarter", "year"):
            # Whole months from their month buckets, so a year's like-for-like needs only the
            # days of one month a year ago, not a year of day buckets (the months before the
            # day `cutoff` ends in, even when that day counts whole).
            months_end = min(start + timedelta(days=cutoff.days), last)
            while shift("month", first_day, 1) <= months_end:
                if first_day < self.horizon.oldest["month"]:
                    return None
                month = self.state.buckets["month"].get(first_day)
                if month is not None:
                    total.merge(month)
                first_day = shift("month", first_day, 1)
        if first_day < last:
            if first_day < self.horizon.oldest["day"]:
                return None
            for day, agg in self.state.buckets["day"].items():
                if first_day <= day < last:
                    total.merge(agg)
        if partial is not None:  # the same day to the same time, from slots
            total.merge(self._slots(self.calendar.bounds("day", partial)[0], stop))
        return total

    def cutoff(self, kind: str) -> timedelta:
        """How far into the current period `now` is, in the unit like-for-like uses."""
        current = self.calendar.start_of(kind, self.now)
        if kind == "day":
            return self.now - self.calendar.bounds("day", current)[0]
        # The whole local days before today, and the time of day: "last month through the same
        # day, to the same time" (the days part counts days, the rest is the time into today).
        today = self.calendar.local_date(self.now)
        into_today = self.now - self.calendar.bounds("day", today)[0]
        # (at most a day less a microsecond: the 25-hour day of a clock change)
        into_today = min(into_today, timedelta(days=1, microseconds=-1))
        return timedelta(days=(today - current).days) + into_today

    def row(
        self,
        kind: str,
        start: date,
        agg: Agg,
        compared: Agg | None,
        elapsed: tuple[int, int] | None,
    ) -> dict[str, Any]:
        head: dict[str, Any] = {
            "rep_id": self.state.rep_id,
            "team": self.state.team,
            "region": self.state.region,
            "period": kind,
            "start": start.isoformat(),
        }
        return build_row(
            head, agg, self.targets(kind, start), compared, elapsed, self.trailing(kind, start)
        )

    def compared(self, kind: str, start: date) -> Agg | None:
        """What a period is compared with: the previous period to the same point for the current
        one (like-for-like), the whole previous period for a completed one."""
        previous = shift(kind, start, -1)
        if start == self.calendar.start_of(kind, self.now):
            return self.to_date(kind, previous, self.cutoff(kind))
        return self.whole(kind, previous)

    # -- public rows -------------------------------------------------------------------------
    def period_row(self, kind: str, start: date) -> dict[str, Any]:
        """A retained period: complete ones compare with the whole previous period, the
        current one with the previous period to date (like-for-like)."""
        agg = self.complete(kind, start)
        elapsed = self.calendar.elapsed_fraction(kind, start, self.now)
        return self.row(kind, start, agg, self.compared(kind, start), elapsed)

    def previous_to_date_row(self, kind: str) -> dict[str, Any] | None:
        cutoff = self.cutoff(kind)
        previous = shift(kind, self.calendar.start_of(kind, self.now), -1)
        agg = self.to_date(kind, previous, cutoff)
        if agg is None:
            return None
        compared = self.to_date(kind, shift(kind, previous, -1), cutoff)
        elapsed = self.calendar.elapsed_fraction(kind, previous, self.point(kind, previous, cutoff))
        return self.row(kind, previous, agg, compared, elapsed)

    def starts(self, kind: str) -> list[date]:
        """Retained periods of `kind` with any data or a target, oldest first."""
        keys = {k for k, agg in self.state.buckets[kind].items() if not agg.is_empty()}
        if self.state.customers:
            # A quiet period has a row too when a customer churned in it, or when the rep had
            # active customers at its start (its retention is a figure).
            index = self.customers()
            keys.update(self.calendar.start_of(kind, c) for c in index.churns if c <= self.now)
            oldest = self.horizon.oldest[kind]
            for begin, end, _ in index.intervals:
                start = self.calendar.start_of(kind, begin)
                if start < oldest:
                    start = oldest
                while True:
                    instant = self.calendar.bounds(kind, start)[0]
                    if instant >= end or instant > self.now:
                        break
                    if instant >= begin:
                        keys.add(start)
                    start = shift(kind, start, 1)
        keys.update(start for (_, k, start) in self.state.targets if k == kind)
        return sorted(k for k in keys if self.retained(kind, k))

    def windows(self, kind: str) -> dict[str, Any]:
        current = self.calendar.start_of(kind, self.now)
        previous = shift(kind, current, -1)
        history_starts = [s for s in self.starts(kind) if s <= current]
        return {
            "rep_id": self.state.rep_id,
            "team": self.state.team,
            "region": self.state.region,
            "period": kind,
            "current": self.period_row(kind, current),
            "previous": self.period_row(kind, previous) if self.retained(kind, previous) else None,
            "previous_to_date": self.previous_to_date_row(kind),
            "history": [self.period_row(kind, s) for s in history_starts],
            "pipeline": self.pipeline(),
        }

    def pipeline(self) -> dict[str, Any]:
        kind = self.coverage_period
        current = self.calendar.start_of(kind, self.now)
        agg = self.state.buckets[kind].get(current) or Agg()
        coverage = pipeline_coverage(self.state.weighted_pipeline, self.target(kind, current), agg.revenue)
        return {
            "rep_id": self.state.rep_id,
            "team": self.state.team,
            "region": self.state.region,
            "open_deals": self.state.open_deals,
            "open_pipeline": money(self.state.open_pipeline),
            "weighted_pipeline": money(self.state.weighted_pipeline),
            "pipeline_coverage": number(coverage),
        }
