"""The simulated target plan: each rep's months summed into quarters and a year, reps into teams,
teams into regions, regions into the company; one team deliberately planned above its reps."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from kpi_core.periods import shift
from kpi_rules.vocabulary import Scope

#: The team whose own target exceeds the sum of its reps' (a manager's plan that was never fully
#: handed out), and by how much: the one allocation gap of the simulated plan.
GAP_TEAM = "south"
GAP_FACTOR = Decimal("1.08")
ROUND_TO = Decimal(500)


@dataclass(frozen=True, slots=True)
class Seat:
    """Who holds a rep's targets: its id, team and region."""

    rep_id: str
    team: str
    region: str


@dataclass(frozen=True, slots=True)
class PlanTarget:
    """One target of the plan: whose (scope and name), of what, for which period."""

    scope: Scope
    name: str  # rep id, team, region, or "" for the company
    team: str
    region: str
    metric: str
    period: str
    start: date
    amount: Decimal


def year_plan(
    seats: Iterable[Seat],
    year_start: date,
    monthly: Callable[[Seat, date], Decimal],
    metric: str = "revenue",
    gap_team: str | None = GAP_TEAM,
) -> list[PlanTarget]:
    """Revenue targets of a fiscal year for every rep, team, region and the company, by month,
    quarter and year. Every sum adds up (a quarter is its months, a team its reps, a region its
    teams, the company its regions) except `gap_team`, whose own targets are GAP_FACTOR above
    its reps' (rounded to ROUND_TO)."""
    months = [shift("month", year_start, n) for n in range(12)]
    seats = list(seats)
    by_rep = {seat: {m: monthly(seat, m) for m in months} for seat in seats}
    teams: dict[str, dict[date, Decimal]] = {}
    regions: dict[str, dict[date, Decimal]] = {}
    region_of: dict[str, str] = {}
    for seat, amounts in by_rep.items():
        region_of[seat.team] = seat.region
        team_sums = teams.setdefault(seat.team, dict.fromkeys(months, Decimal(0)))
        for month, amount in amounts.items():
            team_sums[month] += amount
    for name, amounts in teams.items():
        if name == gap_team:
            for month in months:
                amounts[month] = (amounts[month] * GAP_FACTOR / ROUND_TO).to_integral_value() * ROUND_TO
        region_sums = regions.setdefault(region_of[name], dict.fromkeys(months, Decimal(0)))
        for month in months:
            region_sums[month] += amounts[month]
    company = {m: sum((r[m] for r in regions.values()), Decimal(0)) for m in months}
    owners: list[tuple[Scope, str, str, str, dict[date, Decimal]]] = [
        (Scope.COMPANY, "", "", "", company),
        *((Scope.REGION, r, "", r, regions[r]) for r in sorted(regions)),
        *((Scope.TEAM, t, t, region_of[t], teams[t]) for t in sorted(teams)),
        *((Scope.REP, s.rep_id, s.team, s.region, by_rep[s]) for s in seats),
    ]
    out: list[PlanTarget] = []
    for scope, name, team, region, amounts in owners:
        out.append(
            PlanTarget(
                scope, name, team, region, metric, "year", year_start, sum(amounts.values(), Decimal(0))
            )
        )
        for q in range(4):
            quarter = months[3 * q : 3 * q + 3]
            total = sum((amounts[m] for m in quarter), Decimal(0))
            out.append(PlanTarget(scope, name, team, region, metric, "quarter", quarter[0], total))
        out.extend(PlanTarget(scope, name, team, region, metric, "month", m, amounts[m]) for m in months)
    return out


def month_plan(
    seats: Iterable[Seat], month: date, metric: str, monthly: Callable[[Seat, date], Decimal], teams: bool
) -> list[PlanTarget]:
    """One month's targets of `metric` for every rep and, with `teams`, each team (the sum of its
    reps': no gap)."""
    out: list[PlanTarget] = []
    sums: dict[tuple[str, str], Decimal] = {}
    for seat in seats:
        amount = monthly(seat, month)
        out.append(PlanTarget(Scope.REP, seat.rep_id, seat.team, seat.region, metric, "month", month, amount))
        sums[(seat.team, seat.region)] = sums.get((seat.team, seat.region), Decimal(0)) + amount
    if teams:
        out.extend(
            PlanTarget(Scope.TEAM, team, team, region, metric, "month", month, amount)
            for (team, region), amount in sorted(sums.items())
        )
    return out
