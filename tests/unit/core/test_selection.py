"""`report --period --scope --last`: the part of a report document a reader asked for."""

from __future__ import annotations

from datetime import date
from typing import Any

import factories as f
import pytest
from factories import deal_created, deal_won, target, visit

from kpi_core.selection import Selection, SelectionError, is_empty, parse_scope, select
from kpi_rules.vocabulary import Scope

# now = 2026-11-23 (f.FIXED): months Sep, Oct, Nov 2026; three teams in two regions.
PEOPLE = {
    "ann": ("north", "emea"),
    "bob": ("north", "emea"),
    "cat": ("south", "emea"),
    "dan": ("east", "apac"),
}
CURRENT = {"day": date(2026, 11, 23), "week": date(2026, 11, 23), "month": date(2026, 11, 1),
           "quarter": date(2026, 10, 1), "year": date(2026, 1, 1)}  # fmt: skip


def _events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for n, (rep, (team, region)) in enumerate(PEOPLE.items()):
        for month in (9, 10, 11):
            at = f"2026-{month:02d}-1{n}T10:00:00Z"
            deal = f"{rep}-{month}"
            events.append(deal_created(at, deal, rep, amount="1000", team=team, region=region))
            events.append(deal_won(at.replace("T10", "T12"), deal, rep, amount=str(1000 * (n + 1)),
                                   team=team, region=region))  # fmt: skip
            events.append(visit(at, rep, team=team, region=region))
        events.append(
            target("2026-10-28T09:00:00Z", "month", "2026-11-01", "5000", rep, team=team, region=region)
        )
    # a target for next month: a future period that --last must not count as the current one
    events.append(
        target("2026-11-20T09:00:00Z", "month", "2026-12-01", "5000", "ann", team="north", region="emea")
    )
    return events


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return f.report(_events())


def _names(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["scope"], r["name"]) for r in rows]


def test_parse_scope() -> None:
    assert parse_scope("company") == (Scope.COMPANY, None)
    assert parse_scope("team:north") == (Scope.TEAM, "north")
    assert parse_scope("rep:rep-1:x") == (Scope.REP, "rep-1:x")  # only the first colon splits
    with pytest.raises(SelectionError, match="scope must be one of company, region, team, rep"):
        parse_scope("squad:north")
    with pytest.raises(SelectionError, match="company scope takes no name"):
        Selection(scope=Scope.COMPANY, name="acme")
    with pytest.raises(SelectionError, match="--last must be 1 or more"):
        Selection(last=0)


def test_company_keeps_every_row_totals_first(doc: dict[str, Any]) -> None:
    out = select(doc, Selection(period="month"), CURRENT)
    months = [r for r in out["scopes"] if r["start"] == "2026-11-01"]
    assert _names(months) == [
        ("company", ""), ("region", "apac"), ("region", "emea"),
        ("team", "east"), ("team", "north"), ("team", "south"),
    ]  # fmt: skip
    assert {r["rep_id"] for r in out["periods"]} == set(PEOPLE)
    assert {r["period"] for r in (*out["periods"], *out["scopes"])} == {"month"}
    assert set(out) == {"periods", "scopes", "pipeline", "targets", "rejected"}
    assert {t["period"] for t in out["targets"]} == {"month"}


def test_team_by_name_keeps_the_team_and_its_reps(doc: dict[str, Any]) -> None:
    out = select(doc, Selection(period="month", scope=Scope.TEAM, name="north"), CURRENT)
    assert set(_names(out["scopes"])) == {("team", "north")}
    assert {r["rep_id"] for r in out["periods"]} == {"ann", "bob"}
    assert {t["name"] for t in out["targets"]} == {"ann", "bob"}
    nov = next(r for r in out["scopes"] if r["start"] == "2026-11-01")
    assert nov["revenue"] == "3000.00"  # ann 1000 + bob 2000: the document's own figure


def test_region_keeps_its_teams_and_their_reps(doc: dict[str, Any]) -> None:
    out = select(doc, Selection(period="month", scope=Scope.REGION, name="emea"), CURRENT)
    assert set(_names(out["scopes"])) == {("region", "emea"), ("team", "north"), ("team", "south")}
    assert {r["rep_id"] for r in out["periods"]} == {"ann", "bob", "cat"}
    all_regions = select(doc, Selection(period="month", scope=Scope.REGION), CURRENT)
    assert ("company", "") not in _names(all_regions["scopes"])
    assert {n for s, n in _names(all_regions["scopes"]) if s == "region"} == {"emea", "apac"}


def test_rep_scope_has_no_totals(doc: dict[str, Any]) -> None:
    out = select(doc, Selection(period="month", scope=Scope.REP, name="dan"), CURRENT)
    assert out["scopes"] == []
    assert {r["rep_id"] for r in out["periods"]} == {"dan"}
    assert [p["rep_id"] for p in out["pipeline"]] == []  # dan's deals are all won


def test_last_counts_back_from_the_current_period(doc: dict[str, Any]) -> None:
    everything = select(doc, Selection(period="month"), CURRENT)
    assert "2026-12-01" in {r["start"] for r in everything["scopes"]}  # ann's target for December
    last2 = select(doc, Selection(period="month", last=2), CURRENT)
    assert {r["start"] for r in (*last2["periods"], *last2["scopes"])} == {"2026-10-01", "2026-11-01"}
    last1 = select(doc, Selection(period="quarter", last=1), CURRENT)
    assert {r["start"] for r in last1["scopes"]} == {"2026-10-01"}
    with pytest.raises(SelectionError, match="needs the current period"):
        select(doc, Selection(period="month", last=2))


def test_empty_rows_are_left_out_on_request(doc: dict[str, Any]) -> None:
    out = select(doc, Selection(period="day"), CURRENT)
    assert out["periods"] and not any(is_empty(r) for r in out["periods"])
    # December has a target only: not empty (a target is a figure)
    december = [r for r in doc["periods"] if r["start"] == "2026-12-01" and r["period"] == "month"]
    assert december and not is_empty(december[0])
    quiet = {**december[0], "target": None, "metric_target": {}}
    assert is_empty(quiet)
    kept = select({**doc, "periods": [quiet], "scopes": []}, Selection(period="month"), CURRENT)
    assert kept["periods"] == [quiet]
    with pytest.raises(SelectionError, match="no data for the company scope"):
        select({**doc, "periods": [quiet], "scopes": []}, Selection(period="month"), CURRENT, drop_empty=True)


def test_unknown_names_and_empty_selections_are_named(doc: dict[str, Any]) -> None:
    with pytest.raises(
        SelectionError, match=r"no team named 'nort' in the report; teams: east, north, south"
    ):
        select(doc, Selection(period="month", scope=Scope.TEAM, name="nort"), CURRENT)
    with pytest.raises(SelectionError, match=r"no rep named 'eve'.*reps: ann, bob, cat, dan"):
        select(doc, Selection(scope=Scope.REP, name="eve"), CURRENT)
    later = {**CURRENT, "month": date(2027, 6, 1)}
    with pytest.raises(SelectionError, match="no data for team 'north' in the last 2 month periods up to the "
                       "current one starting 2027-06-01"):  # fmt: skip
        select(doc, Selection(period="month", scope=Scope.TEAM, name="north", last=2), later)
    empty = {"periods": [], "scopes": [], "pipeline": [], "targets": [], "rejected": {}}
    assert select(empty, Selection(period="month"), CURRENT)["periods"] == []  # an empty file: no error
