"""Who owns an event's state: its rep, or a team, region or the company (scope states).

Team-level spend and team, region and company targets name no rep. Each such scope keeps its
own state, keyed by a scope key that no rep id can equal (rep ids hold no control characters,
scope keys start with one), so it is routed, stored and owned by one worker like a rep's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kpi_core.events import Event, SpendRecorded, TargetSet
from kpi_rules.vocabulary import EventType, Scope, TargetMetric

_MARK = "\x1f"  # ASCII unit separator: never in a rep id (see events.fields.RepId)


def scope_key(scope: Scope, name: str = "") -> str:
    """The state key of a team, region or company: `\\x1fteam\\x1fnorth`."""
    if scope is Scope.REP:
        raise ValueError("a rep's state is keyed by its rep id")
    return f"{_MARK}{scope.value}{_MARK}{name}"


def parse_scope_key(key: str) -> tuple[Scope, str] | None:
    """(scope, name) of a scope key; None for a rep id."""
    if not key.startswith(_MARK):
        return None
    scope, _, name = key[1:].partition(_MARK)
    return Scope(scope), name


def owner_key(event: Event) -> str:
    """The key of the state an event is applied to (and routed by)."""
    rep_id = event.rep_id
    if rep_id is not None:
        return rep_id
    if isinstance(event, TargetSet):
        scope = event.scope
        if scope is Scope.TEAM:
            return scope_key(scope, event.team)
        if scope is Scope.REGION:
            return scope_key(scope, event.region)
        return scope_key(Scope.COMPANY)
    assert isinstance(event, SpendRecorded)  # the only other type without a rep
    return scope_key(Scope.TEAM, event.team)


def route_key(obj: Mapping[str, Any]) -> str | None:
    """`owner_key` of a parsed but not yet validated event (the ingest routes before validating);
    equal to `owner_key(decoded)` for every event that passes validation; None when it cannot
    belong to anyone (the ingest then dead-letters it with the decoder's reason)."""
    rep_id = obj.get("rep_id")
    if type(rep_id) is str and 0 < len(rep_id) <= 128 and rep_id.strip():
        return rep_id
    kind = obj.get("type")
    if kind == EventType.TARGET_SET:
        scope = obj.get("scope")
        if type(scope) is not str:  # any JSON may come in: never hash an object or a list
            return None
        if scope == Scope.COMPANY:
            return scope_key(Scope.COMPANY)
        if scope in (Scope.TEAM, Scope.REGION):
            name = obj.get(scope)
            if type(name) is str and name.strip():
                return scope_key(Scope(scope), name)
    elif kind == EventType.SPEND_RECORDED:
        team = obj.get("team")
        if type(team) is str and team.strip():
            return scope_key(Scope.TEAM, team)
    return None


def target_message_key(obj: Mapping[str, Any]) -> str | None:
    """The Kafka message key of a `target.set` on the compacted targets topic (contract section 1):
    its scope, owner, metric, period and start, e.g. `rep:r-li|revenue|month|2026-09-01` or
    `team:north|visits|quarter|2026-10-01`, so compaction keeps every target's latest revision.
    A target with invalid fields still gets a key (the broker refuses keyless messages on a
    compacted topic; the worker dead-letters the target with the reason). None for other types."""
    if obj.get("type") != EventType.TARGET_SET:
        return None
    scope = obj.get("scope") or Scope.REP.value
    owners: dict[str, object] = {
        Scope.REP.value: obj.get("rep_id"),
        Scope.TEAM.value: obj.get("team"),
        Scope.REGION.value: obj.get("region"),
        Scope.COMPANY.value: "",
    }
    owner = owners.get(scope, "") if type(scope) is str else ""
    metric = obj.get("metric") or TargetMetric.REVENUE.value
    parts = (scope, owner, metric, obj.get("period"), obj.get("period_start"))
    scope_, owner_, metric_, period, start = ("" if v is None else str(v) for v in parts)
    return f"{scope_}:{owner_}|{metric_}|{period}|{start}"
