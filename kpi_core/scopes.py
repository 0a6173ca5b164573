"""Scope rows (team, region, company) and target decomposition (contract sections 3.3 and 4).

A scope's additive KPIs are the sums of its members' (reps, plus the scope's own state: team
spend, scope targets); its derived KPIs are ratios of those sums. A scope's target of a metric
is its own when one is set, else the sum of its members' (team: its reps'; region: its teams';
company: its regions'). The allocation gap is a scope's own target minus the sum of its
members'; the split gap a year's (quarter's) own target minus the sum of its quarters' (months').
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from kpi_core.aggregates import Agg
from kpi_core.owners import parse_scope_key
from kpi_core.periods import PERIOD_KINDS, shift
from kpi_core.windows import RepView, build_row
from kpi_rules.vocabulary import Scope, TargetMetric

Targets = dict[str, Decimal]
#: The period kind a target of each kind is split into (a year into quarters, a quarter into months).
SPLIT_INTO: dict[str, str] = {"year": "quarter", "quarter": "month"}


@dataclass(slots=True)
class Unit:
    """One scope: its member views (whose figures it sums) and its own state's view, if any."""

    scope: Scope
    name: str
    members: list[RepView] = field(default_factory=list)  # reps (whose figures are summed)
    own: RepView | None = None  # the scope's own state: spend, its targets
    children: list[Unit] = field(default_factory=list)  # teams of a region, regions of the company

    def views(self) -> list[RepView]:
        return self.members + ([self.own] if self.own is not None else [])


class ScopeBook:
    """The teams, regions and company of a set of rep and scope states, at one `now`."""

    def __init__(self, views: Iterable[RepView]) -> None:
        self.teams: dict[str, Unit] = {}
        self.regions: dict[str, Unit] = {}
        self.company = Unit(Scope.COMPANY, "")
        team_regions: dict[str, set[str]] = defaultdict(set)
        for view in views:
            key = parse_scope_key(view.state.rep_id)
            state = view.state
            if key is None:
                self._team(state.team).members.append(view)
                self._region(state.region).members.append(view)
                self.company.members.append(view)
                team_regions[state.team].add(state.region)
                continue
            scope, name = key
            if scope is Scope.TEAM:
                self._team(name).own = view
                # Team spend counts in its region and the company; the team's own target is
                # used for the team, and through it for the region.
                self._region(state.region).members.append(view)
                self.company.members.append(view)
                team_regions[name].add(state.region)
            elif scope is Scope.REGION:
                self._region(name).own = view
                self.company.members.append(view)
            else:
                self.company.own = view
        for team, regions in team_regions.items():
            for region in regions:
                self._region(region).children.append(self.teams[team])
        self.company.children = list(self.regions.values())

    def _team(self, name: str) -> Unit:
        return self.teams.setdefault(name, Unit(Scope.TEAM, name))

    def _region(self, name: str) -> Unit:
        return self.regions.setdefault(name, Unit(Scope.REGION, name))

    def units(self) -> list[Unit]:
        """Every scope, the company first, then regions and teams by name."""
        return [
            self.company,
            *(self.regions[n] for n in sorted(self.regions)),
            *(self.teams[n] for n in sorted(self.teams)),
        ]

    # -- targets -------------------------------------------------------------------------------
    def members_targets(self, unit: Unit, kind: str, start: date) -> Targets:
        """The sum of the members' targets: reps' for a team, children's effective otherwise."""
        total: Targets = {}
        parts = (
            [view.targets(kind, start) for view in unit.members if not _is_scope(view)]
            if unit.scope is Scope.TEAM
            else [self.effective(child, kind, start) for child in unit.children]
        )
        for targets in parts:
            for metric, amount in targets.items():
                total[metric] = total.get(metric, Decimal(0)) + amount
        return total

    def effective(self, unit: Unit, kind: str, start: date) -> Targets:
        """A scope's target of each metric: its own when set, else the sum of its members'."""
        own = unit.own.targets(kind, start) if unit.own is not None else {}
        out = self.members_targets(unit, kind, start)
        out.update(own)
        return {m.value: out[m.value] for m in TargetMetric if m.value in out}

    def gaps(self) -> list[dict[str, Any]]:
        """Every own target of a scope (or a rep, for the split) with its allocation and split
        gaps: the decomposition checked both ways."""
        out: list[dict[str, Any]] = []
        owners: list[tuple[Unit | None, RepView]] = [
            (unit, unit.own) for unit in self.units() if unit.own is not None
        ]
        owners += [(None, view) for view in self.company.members if not _is_scope(view)]
        for unit, view in owners:
            for (metric, kind, start), fact in sorted(view.state.targets.items()):
                if not view.retained(kind, start):
                    continue
                own = fact[2]
                item: dict[str, Any] = {
                    "scope": (unit.scope if unit is not None else Scope.REP).value,
                    "name": unit.name if unit is not None else view.state.rep_id,
                    "metric": metric,
                    "period": kind,
                    "start": start.isoformat(),
                    "target": own,
                    "allocation_gap": None,
                    "split_gap": None,
                }
                if unit is not None:
                    members = self.members_targets(unit, kind, start).get(metric, Decimal(0))
                    item["allocation_gap"] = own - members
                item["split_gap"] = split_gaps(view, kind, start).get(metric)
                out.append(item)
        return out

    # -- rows ----------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """Every scope's row for every retained period with data, company first."""
        out: list[dict[str, Any]] = []
        for unit in self.units():
            views = unit.views()
            if not views:
                continue
            sample = views[0]
            for kind in PERIOD_KINDS:
                starts: set[date] = set()
                for view in views:
                    starts.update(view.starts(kind))
                if unit.own is None:  # the members' targets make periods too (their sums)
                    for child in unit.children:
                        if child.own is not None:
                            starts.update(s for (_, k, s) in child.own.state.targets if k == kind)
                for start in sorted(s for s in starts if sample.retained(kind, s)):
                    out.append(self.row(unit, kind, start))
        return out

    def row(self, unit: Unit, kind: str, start: date) -> dict[str, Any]:
        views = unit.views()
        sample = views[0]
        agg = Agg()
        trailing: dict[str, Any] = {}
        for view in views:
            agg.merge(view.complete(kind, start))
            for name, value in view.trailing(kind, start).items():
                trailing[name] = trailing.get(name, 0) + value
        compared: Agg | None = Agg()
        for view in views:
            part = view.compared(kind, start)
            if part is None or compared is None:
                compared = None
            else:
                compared.merge(part)
        head = {
            "scope": unit.scope.value,
            "name": unit.name,
            "period": kind,
            "start": start.isoformat(),
        }
        elapsed = sample.calendar.elapsed_fraction(kind, start, sample.now)
        return build_row(head, agg, self.effective(unit, kind, start), compared, elapsed, trailing)


def split_gaps(view: RepView, kind: str, start: date) -> dict[str, Decimal]:
    """A year's (quarter's) own target minus the sum of its quarters' (months'), per metric, for
    the period of `kind` starting at `start`; only where the state sets both."""
    smaller = SPLIT_INTO.get(kind)
    if smaller is None:
        return {}
    out: dict[str, Decimal] = {}
    end = shift(kind, start, 1)
    for metric, own in view.targets(kind, start).items():
        parts = [
            fact[2]
            for (m, k, s), fact in view.state.targets.items()
            if m == metric and k == smaller and start <= s < end
        ]
        if parts:
            out[metric] = own - sum(parts, Decimal(0))
    return out


def _is_scope(view: RepView) -> bool:
    return parse_scope_key(view.state.rep_id) is not None
