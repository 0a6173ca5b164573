"""A part of a report document: one period kind, one scope (optionally by name), the last N periods.

`--scope` names the level a reader starts from; the selection keeps that level and everything
under it: `company` keeps every row, `region:emea` the emea region row, its teams and their
reps, `team:north` the north team row and its reps, `rep` rep rows only. The document keeps its
shape (periods, scopes, pipeline, targets, rejected), so every renderer reads it the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from kpi_core.periods import PERIOD_KINDS, shift
from kpi_rules.vocabulary import Scope

#: Scope rows and rep rows are ordered: the company, regions, teams, then reps.
SCOPE_ORDER: tuple[Scope, ...] = (Scope.COMPANY, Scope.REGION, Scope.TEAM, Scope.REP)
_LABELLED_EMPTY = ("revenue_by_channel", "leads_by_channel", "metric_target")
_NOT_FIGURES = frozenset({"rep_id", "team", "region", "scope", "name", "period", "start", "derived"})


class SelectionError(ValueError):
    """A selection that names nothing in the document, or no data in the chosen periods."""


@dataclass(frozen=True, slots=True)
class Selection:
    """What to keep: `period` None keeps every kind; `name` None every member of `scope`;
    `last` None every retained period (else the `last` periods up to the current one)."""

    period: str | None = None
    scope: Scope = Scope.COMPANY
    name: str | None = None
    last: int | None = None

    def __post_init__(self) -> None:
        if self.period is not None and self.period not in PERIOD_KINDS:
            raise SelectionError(f"period must be one of {', '.join(PERIOD_KINDS)}, got {self.period!r}")
        if self.last is not None and self.last < 1:
            raise SelectionError(f"--last must be 1 or more, got {self.last}")
        if self.scope is Scope.COMPANY and self.name:
            raise SelectionError("the company scope takes no name (use company, not company:NAME)")

    def describe(self) -> str:
        scope = f"{self.scope.value}:{self.name}" if self.name else self.scope.value
        return f"{self.period or 'every period'}, {scope}" + (f", last {self.last}" if self.last else "")


def parse_scope(text: str) -> tuple[Scope, str | None]:
    """`team`, `team:north`, `rep:rep-001`, `company` -> (scope, name or None)."""
    level, _, name = text.partition(":")
    try:
        scope = Scope(level.strip())
    except ValueError:
        allowed = ", ".join(s.value for s in SCOPE_ORDER)
        raise SelectionError(f"scope must be one of {allowed} (optionally :NAME), got {text!r}") from None
    name = name.strip()
    return scope, name or None


def is_empty(row: Mapping[str, Any]) -> bool:
    """A row with no activity and no target: every figure 0 or empty (derived KPIs follow)."""
    for key, value in row.items():
        if key in _NOT_FIGURES or value is None:
            continue
        if key in _LABELLED_EMPTY:
            if value:
                return False
        elif isinstance(value, str):
            if float(value) != 0:
                return False
        elif value:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Members:
    """Who belongs where in a document: rep -> (team, region), team -> regions."""

    rep_team: dict[str, str]
    rep_region: dict[str, str]
    team_regions: dict[str, set[str]]

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> Members:
        rep_team: dict[str, str] = {}
        rep_region: dict[str, str] = {}
        team_regions: dict[str, set[str]] = {}
        for row in (*document["periods"], *document["pipeline"]):
            rep_team[row["rep_id"]] = row["team"]
            rep_region[row["rep_id"]] = row["region"]
            team_regions.setdefault(row["team"], set()).add(row["region"])
        for row in document["scopes"]:  # a team with its own state only (a target, spend)
            if row["scope"] == Scope.TEAM:
                team_regions.setdefault(row["name"], set())
        return cls(rep_team, rep_region, team_regions)

    def names(self, scope: Scope, document: Mapping[str, Any]) -> set[str]:
        if scope is Scope.REP:
            return set(self.rep_team)
        return {row["name"] for row in document["scopes"] if row["scope"] == scope}


def _keep_start(kind: str, start: str, current: Mapping[str, date] | None, last: int | None) -> bool:
    if last is None:
        return True
    if current is None or kind not in current:
        raise SelectionError("--last needs the current period (the report's clock)")
    day = date.fromisoformat(start)
    return shift(kind, current[kind], -last) < day <= current[kind]


def select(
    document: Mapping[str, Any],
    selection: Selection,
    current: Mapping[str, date] | None = None,
    drop_empty: bool = False,
) -> dict[str, Any]:
    """The part of `document` that `selection` names, in the document's shape; `current` holds
    the current period's start of each kind (for `last`); `drop_empty` leaves out rows with no
    figure at all. Raises SelectionError when the selection names nothing that exists, or keeps
    no row of a document that has some."""
    members = Members.of(document)
    scope, name = selection.scope, selection.name
    if name is not None and name not in members.names(scope, document):
        known = sorted(members.names(scope, document))
        listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
        raise SelectionError(
            f"no {scope.value} named {name!r} in the report; {scope.value}s: {listed or 'none'}"
        )

    def rep_in(rep: str) -> bool:
        if scope is Scope.REP:
            return name is None or rep == name
        if scope is Scope.TEAM:
            return name is None or members.rep_team.get(rep) == name
        if scope is Scope.REGION:
            return name is None or members.rep_region.get(rep) == name
        return True

    def scope_in(level: str, who: str) -> bool:
        rank = SCOPE_ORDER.index(Scope(level))
        if rank < SCOPE_ORDER.index(scope):
            return False  # above the chosen level
        if name is None or level == scope:
            return name is None or who == name
        # a team under the named region
        return scope is Scope.REGION and name in members.team_regions.get(who, set())

    def period_in(row: Mapping[str, Any]) -> bool:
        kind = row["period"]
        if selection.period is not None and kind != selection.period:
            return False
        return _keep_start(kind, row["start"], current, selection.last)

    def wanted(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [row for row in rows if period_in(row) and not (drop_empty and is_empty(row))]

    periods = wanted(row for row in document["periods"] if rep_in(row["rep_id"]))
    scopes = wanted(row for row in document["scopes"] if scope_in(row["scope"], row["name"]))
    scopes.sort(key=lambda row: SCOPE_ORDER.index(Scope(row["scope"])))  # stable: keeps the rest
    if not periods and not scopes and (document["periods"] or document["scopes"]):
        what = f"{scope.value} {name!r}" if name else f"the {scope.value} scope"
        span = f"the last {selection.last} " if selection.last else "any "
        kinds = f"{selection.period} period" if selection.period else "period"
        hint = ""
        if selection.last and current is not None and selection.period is not None:
            hint = f" up to the current one starting {current[selection.period].isoformat()}"
        raise SelectionError(f"no data for {what} in {span}{kinds}{'s' if selection.last else ''}{hint}")

    def target_in(item: Mapping[str, Any]) -> bool:
        if not period_in(item):
            return False
        level, who = item["scope"], item["name"]
        return rep_in(who) if level == Scope.REP else scope_in(level, who)

    return {
        "periods": periods,
        "scopes": scopes,
        "pipeline": [row for row in document["pipeline"] if rep_in(row["rep_id"])],
        "targets": [item for item in document["targets"] if target_in(item)],
        "rejected": dict(document["rejected"]),
    }
