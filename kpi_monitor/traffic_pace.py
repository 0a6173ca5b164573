"""What the simulated reps should make and what selling costs at the simulator's pace: the target
plan (see traffic_plan) and the weekly spend, as contract events."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from kpi_core.periods import Calendar, shift
from kpi_monitor.traffic_extras import BUSINESS_HOURS
from kpi_monitor.traffic_funnel import (
    NOMINAL_NEW_PER_DEAL,
    NOMINAL_VISIT_SHARE,
    NOMINAL_WIN_RATE,
    NOMINAL_WINS_PER_DEAL,
    Funnel,
    Rep,
)
from kpi_monitor.traffic_plan import PlanTarget, Seat, month_plan, year_plan
from kpi_rules import Rules
from kpi_rules.vocabulary import MONEY_METRICS, Channel, Scope, TargetMetric

#: Marketing spend per expected lead: the team's campaigns, and a rep's own where it runs some.
TEAM_COST_PER_LEAD = Decimal(60)
REP_COST_PER_LEAD = Decimal(45)
#: Metrics that get monthly targets besides the revenue plan: (metric, also for teams).
MONTHLY_METRICS: tuple[tuple[TargetMetric, bool], ...] = (
    (TargetMetric.GROSS_MARGIN, True),
    (TargetMetric.DEALS_WON, True),
    (TargetMetric.NEW_CUSTOMERS, True),
    (TargetMetric.VISITS, False),
)


@dataclass
class Pace:
    """Targets and spend of `reps` working at `per_hour` activity events per business hour (all
    reps together) with `funnel`'s proportions; `new_id` names events, `rng` adds noise."""

    rules: Rules
    reps: list[Rep]
    per_hour: float
    funnel: Funnel
    calendar: Calendar
    new_id: Callable[[str], str]
    rng: random.Random
    _planned: set[tuple[str, date]] = field(default_factory=set)  # (kind, start) of plans sent

    def _events_per_rep(self, hours: float) -> Decimal:
        """A rep's activity events in `hours` business hours at the generator's pace."""
        return Decimal(str(hours)) * Decimal(str(self.per_hour)) / len(self.reps)

    def _month_hours(self, month: date) -> int:
        next_month = shift("month", month, 1)
        days = (next_month - month).days
        return BUSINESS_HOURS * sum(1 for n in range(days) if (month + timedelta(days=n)).weekday() < 5)

    def monthly_target(self, rep: Rep | Seat, month: date) -> Decimal:
        """What `rep` should sell in `month` at the generator's pace: business hours of the
        month x events per rep-hour x deals created per event x revenue per deal created, with
        some reps given stretch targets; rounded to 500."""
        deals = self._events_per_rep(self._month_hours(month)) * Decimal(str(self.funnel.create))
        expected = deals * NOMINAL_WIN_RATE * self.funnel.mean_amount
        stretch = Decimal("0.85") + Decimal(int(rep.rep_id[-3:]) % 4) / 10  # 85% .. 115%
        return (expected * stretch / 500).to_integral_value() * 500

    def _monthly(self, metric: TargetMetric) -> Callable[[Seat, date], Decimal]:
        """A rep's target of `metric` for a month, in proportion to its pace (whole numbers for
        counts, money rounded to 100)."""
        reps = {rep.rep_id: rep for rep in self.reps}

        def target(seat: Seat, month: date) -> Decimal:
            events = self._events_per_rep(self._month_hours(month))
            deals = events * Decimal(str(self.funnel.create))
            if metric is TargetMetric.GROSS_MARGIN:
                rep = reps[seat.rep_id]
                margin = self.monthly_target(seat, month) * Decimal(str(round(rep.margin, 3)))
                margin *= Decimal(str(self.funnel.cost_coverage))
                return (margin / 100).to_integral_value() * 100
            count = {
                TargetMetric.VISITS: events * NOMINAL_VISIT_SHARE,
                TargetMetric.DEALS_WON: deals * NOMINAL_WINS_PER_DEAL,
                TargetMetric.NEW_CUSTOMERS: deals * NOMINAL_NEW_PER_DEAL,
            }[metric]
            return max(Decimal(1), count.to_integral_value())

        return target

    def targets(self, at: datetime) -> Iterator[dict[str, Any]]:
        """The plan of the fiscal year of `at` (revenue of every rep, team, region and the company
        by month, quarter and year), unless already sent, and this month's targets of the other
        metrics (gross margin, deals won, new customers for reps and teams; visits for reps)."""
        seats = [rep.seat for rep in self.reps]
        year = self.calendar.start_of("year", at)
        if ("year", year) not in self._planned:
            self._planned.add(("year", year))
            for target in year_plan(seats, year, self.monthly_target):
                yield self._target(target, at)
        month = self.calendar.start_of("month", at)
        if ("month", month) not in self._planned:
            self._planned.add(("month", month))
            for metric, teams in MONTHLY_METRICS:
                for target in month_plan(seats, month, metric, self._monthly(metric), teams):
                    yield self._target(target, at)

    def _target(self, target: PlanTarget, at: datetime) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": self.new_id("ev"),
            "type": "target.set",
            "occurred_at": at.isoformat(timespec="seconds"),
        }
        if target.scope is Scope.REP:
            event |= {"rep_id": target.name, "team": target.team, "region": target.region}
        elif target.scope is Scope.TEAM:
            event |= {"team": target.team, "region": target.region}
        elif target.scope is Scope.REGION:
            event |= {"region": target.region}
        event |= {
            "scope": target.scope.value,
            "metric": target.metric,
            "period": target.period,
            "period_start": target.start.isoformat(),
            "amount": str(target.amount),
        }
        if target.metric in MONEY_METRICS:
            event["currency"] = self.rules.currency
        return event

    def spend(self, at: datetime) -> Iterator[dict[str, Any]]:
        """A week's spend, recorded at `at`: each team's marketing (no rep), the marketing of reps
        that run campaigns of their own, and every rep's sales spend, in proportion to the leads
        and revenue the pace brings (with some noise)."""
        rng = self.rng
        week = self._events_per_rep(5 * BUSINESS_HOURS) * Decimal(str(self.funnel.create))
        team_leads: dict[tuple[str, str], Decimal] = {}
        for rep in self.reps:
            leads = week / Decimal(str(round(rep.lead_to_deal, 3)))
            key = (rep.team, rep.region)
            team_leads[key] = team_leads.get(key, Decimal(0)) + leads
            revenue = week * NOMINAL_WIN_RATE * self.funnel.mean_amount
            yield self._spend(rep, at, "sales", revenue * Decimal(str(round(rep.cost_of_sales, 3))))
            if rep.campaigns:
                channel = rng.choice((Channel.EVENT, Channel.WEB, Channel.EMAIL))
                yield self._spend(rep, at, "marketing", leads * REP_COST_PER_LEAD, channel)
        for (team, region), leads in team_leads.items():
            yield self._spend((team, region), at, "marketing", leads * TEAM_COST_PER_LEAD)

    def _spend(
        self,
        owner: Rep | tuple[str, str],
        at: datetime,
        category: str,
        amount: Decimal,
        channel: str | None = None,
    ) -> dict[str, Any]:
        """A spend of a rep, or of a (team, region) with no rep, about `amount` (+-15%)."""
        noisy = amount * Decimal(str(round(self.rng.uniform(0.85, 1.15), 3)))
        event: dict[str, Any] = {
            "event_id": self.new_id("ev"),
            "type": "spend.recorded",
            "occurred_at": at.isoformat(timespec="seconds"),
        }
        if isinstance(owner, Rep):
            event |= {"rep_id": owner.rep_id, "team": owner.team, "region": owner.region}
        else:
            event |= {"team": owner[0], "region": owner[1]}
        event |= {
            "spend_id": self.new_id("spend"),
            "amount": str(noisy.quantize(Decimal("0.01"))),
            "currency": self.rules.currency,
            "category": category,
        }
        if channel is not None:
            event["channel"] = str(channel)
        return event
