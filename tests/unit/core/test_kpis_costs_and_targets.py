"""Margin, leads, spend, satisfaction and targets by metric and scope (contract sections 1, 3, 3.3),
each from a small hand-computed event set; the docstring quotes the formula.

Fixed wall clock: Monday 2026-11-23 10:00 UTC, Europe/London (GMT in November).
"""

from __future__ import annotations

from typing import Any

import factories as f
import orjson
import pytest
from factories import deal_created, deal_won, lead, spend, survey, target

from kpi_core.events import Rejection, decode_event

NOV = "2026-11-01"


def month(doc: dict[str, Any], rep: str = "rep-1") -> dict[str, Any]:
    return f.row(doc, "month", NOV, rep)


def scope(
    doc: dict[str, Any], kind: str, name: str, period: str = "month", start: str = NOV
) -> dict[str, Any]:
    return f.scope_row(doc, kind, name, period, start)


def test_gross_margin_costed_revenue_margin_pct_and_cost_coverage() -> None:
    """`gross_margin`, `costed_revenue`: sums of `amount - cost` and of `amount` over won deals
    that carry a cost; `gross_margin_pct` = gross_margin / costed_revenue x 100;
    `cost_coverage_pct` = costed_revenue / revenue x 100."""
    doc = f.report(
        [
            deal_won("2026-11-02T09:00:00Z", "d-1", amount="1000", cost="600"),  # margin 400
            deal_won("2026-11-03T09:00:00Z", "d-2", amount="500"),  # no cost: not costed
            deal_won("2026-11-05T09:00:00Z", "d-3", amount="250", cost="300"),  # sold at a loss
        ]
    )
    row = month(doc)
    assert (row["revenue"], row["gross_margin"], row["costed_revenue"]) == ("1750.00", "350.00", "1250.00")
    assert row["derived"]["gross_margin_pct"] == 28.0  # 350 / 1250 x 100
    assert row["derived"]["cost_coverage_pct"] == 71.4286  # 1250 / 1750 x 100, 4 places


def test_a_cost_is_in_the_deals_currency_and_converted_with_it() -> None:
    """A cost in EUR (the deal's currency) converts at the rules file's rate, 0.86."""
    doc = f.report([deal_won("2026-11-02T09:00:00Z", "d-1", amount="100", currency="EUR", cost="50")])
    assert (month(doc)["gross_margin"], month(doc)["costed_revenue"]) == ("43.00", "86.00")


def test_leads_by_channel_lead_to_deal_and_cost_per_lead() -> None:
    """`leads`: count of `lead.created`; `lead_to_deal_pct` = deals_created / leads x 100;
    `cost_per_lead` = spend_marketing / leads."""
    doc = f.report(
        [
            lead("2026-11-02T09:00:00Z"),
            lead("2026-11-03T09:00:00Z"),
            lead("2026-11-04T09:00:00Z", channel="phone"),
            lead("2026-11-05T09:00:00Z"),
            deal_created("2026-11-06T09:00:00Z", "d-1"),
            deal_created("2026-11-07T09:00:00Z", "d-2"),
            spend("2026-11-02T00:00:00Z", "1000", "marketing"),
        ]
    )
    row = month(doc)
    assert row["leads"] == 4 and row["leads_by_channel"] == {"phone": 1, "web": 3}
    assert row["derived"]["lead_to_deal_pct"] == 50.0  # 2 / 4 x 100
    assert row["derived"]["cost_per_lead"] == "250.00"  # 1000 / 4


def test_cost_of_sales_and_cac() -> None:
    """`cost_of_sales_pct` = spend_sales / revenue x 100; `cac` = (spend_marketing + spend_sales)
    / new_customers."""
    doc = f.report(
        [
            deal_won("2026-11-02T09:00:00Z", "d-1", amount="600", customer="c-1"),
            deal_won("2026-11-03T09:00:00Z", "d-2", amount="400", customer="c-2"),
            deal_won("2026-11-04T09:00:00Z", "d-3", amount="200", customer="c-3"),
            spend("2026-11-02T00:00:00Z", "1000", "marketing"),
            spend("2026-11-02T00:00:00Z", "300", "sales"),
        ]
    )
    row = month(doc)
    assert (row["spend_marketing"], row["spend_sales"], row["new_customers"]) == ("1000.00", "300.00", 3)
    assert row["derived"]["cost_of_sales_pct"] == 25.0  # 300 / 1200 x 100
    assert row["derived"]["cac"] == "433.33"  # (1000 + 300) / 3


def test_csat_pct_counts_scores_4_and_5_and_a_survey_id_once() -> None:
    """`csat_pct` = csat_satisfied / csat_responses x 100 (scores 4-5 of 5 satisfied); a repeated
    `survey_id` counts once, like an event_id."""
    doc = f.report(
        [
            survey("2026-11-02T09:00:00Z", "csat", 5, survey_id="s-1"),
            survey("2026-11-03T09:00:00Z", "csat", 4, survey_id="s-2"),
            survey("2026-11-04T09:00:00Z", "csat", 3, survey_id="s-3"),
            survey("2026-11-05T09:00:00Z", "csat", 1, survey_id="s-4"),
            survey("2026-11-06T09:00:00Z", "csat", 5, survey_id="s-1"),  # re-sent, new event id
        ]
    )
    row = month(doc)
    assert (row["csat_responses"], row["csat_satisfied"]) == (4, 2)
    assert row["derived"]["csat_pct"] == 50.0


def test_nps_from_summed_counts_never_an_average_of_scores() -> None:
    """`nps` = (nps_promoters - nps_detractors) / nps_responses x 100 (9-10 promote, 0-6 detract);
    over the team it is computed from the summed counts, not averaged over reps."""
    doc = f.report(
        [
            # rep-1: 10, 10, 9, 3 -> (3 - 1) / 4 x 100 = 50
            *(survey(f"2026-11-0{d}T09:00:00Z", "nps", s) for d, s in ((2, 10), (3, 10), (4, 9), (5, 3))),
            # rep-2: 0 -> (0 - 1) / 1 x 100 = -100
            survey("2026-11-02T09:00:00Z", "nps", 0, rep="rep-2"),
        ]
    )
    assert month(doc)["derived"]["nps"] == 50.0
    assert month(doc, "rep-2")["derived"]["nps"] == -100.0
    team = scope(doc, "team", "north")
    assert (team["nps_promoters"], team["nps_detractors"], team["nps_responses"]) == (3, 2, 5)
    assert team["derived"]["nps"] == 20.0  # (3 - 2) / 5 x 100, not (50 - 100) / 2


def test_team_spend_counts_for_the_team_region_and_company_not_for_a_rep() -> None:
    """`spend.recorded` without `rep_id` belongs to the team (`team` names it)."""
    doc = f.report(
        [
            spend("2026-11-02T00:00:00Z", "700", "marketing", rep=None),
            spend("2026-11-02T00:00:00Z", "300", "marketing"),  # rep-1's own
        ]
    )
    assert month(doc)["spend_marketing"] == "300.00"
    assert [r["rep_id"] for r in f.rows(doc)] == ["rep-1"] * len(f.rows(doc))  # no row for the team state
    assert scope(doc, "team", "north")["spend_marketing"] == "1000.00"
    assert scope(doc, "region", "emea")["spend_marketing"] == "1000.00"
    assert scope(doc, "company", "")["spend_marketing"] == "1000.00"


def test_attainment_for_every_target_metric() -> None:
    """Attainment of each metric = its figure / its target x 100 (contract section 3.3)."""
    doc = f.report(
        [
            target("2026-10-30T09:00:00Z", "month", NOV, "10", metric="visits", currency=None),
            target("2026-10-30T09:00:00Z", "month", NOV, "4000"),
            target("2026-10-30T09:00:00Z", "month", NOV, "500", metric="gross_margin"),
            *(f.visit(f"2026-11-0{d}T09:00:00Z") for d in (2, 3, 4, 5)),
            deal_won("2026-11-02T09:00:00Z", "d-1", amount="1000", cost="800"),
        ]
    )
    row = month(doc)
    assert row["metric_target"] == {"gross_margin": "500.00", "revenue": "4000.00", "visits": 10}
    assert row["target"] == "4000.00"
    assert row["derived"]["attainment_by_metric_pct"] == {
        "gross_margin": 40.0,  # 200 / 500
        "revenue": 25.0,  # 1000 / 4000
        "visits": 40.0,  # 4 / 10
    }
    assert row["derived"]["attainment_pct"] == 25.0


def test_a_scopes_own_target_wins_else_its_members_and_the_gaps_are_reported() -> None:
    """A scope's attainment uses its own target when set, else the sum of its members'; the
    allocation gap is its own target minus its members' sum."""
    doc = f.report(
        [
            target("2026-10-30T09:00:00Z", "month", NOV, "2000", rep="rep-1"),
            target("2026-10-30T09:00:00Z", "month", NOV, "2500", rep="rep-2"),
            target("2026-10-30T09:00:00Z", "month", NOV, "5000", rep=None, scope="team"),
            target("2026-10-30T09:00:00Z", "month", NOV, "9000", rep=None, scope="company"),
            deal_won("2026-11-02T09:00:00Z", "d-1", amount="1000"),
            deal_won("2026-11-02T09:00:00Z", "d-2", rep="rep-2", amount="1500"),
        ]
    )
    team = scope(doc, "team", "north")
    assert team["target"] == "5000.00"  # its own, not 2000 + 2500
    assert team["derived"]["attainment_pct"] == 50.0  # 2500 / 5000
    region = scope(doc, "region", "emea")
    assert region["target"] == "5000.00"  # no own target: its team's (effective) target
    company = scope(doc, "company", "")
    assert company["target"] == "9000.00" and company["derived"]["attainment_pct"] == 27.7778
    gaps = {(t["scope"], t["name"]): t for t in doc["targets"] if t["period"] == "month"}
    assert gaps[("team", "north")]["allocation_gap"] == "500.00"  # 5000 - (2000 + 2500)
    assert gaps[("company", "")]["allocation_gap"] == "4000.00"  # 9000 - 5000 (its region)
    assert gaps[("rep", "rep-1")]["allocation_gap"] is None  # a rep has no members


def test_the_split_gap_of_a_year_and_a_quarter() -> None:
    """Split gap = a year's (quarter's) target minus the sum of its quarters' (months')."""
    events = [target("2026-01-02T09:00:00Z", "year", "2026-01-01", "24000", event_id="y")]
    events += [
        target("2026-01-02T09:00:00Z", "quarter", q, "5000", event_id=f"q{q}")
        for q in ("2026-01-01", "2026-04-01", "2026-07-01", "2026-10-01")
    ]
    events += [
        target("2026-01-02T09:00:00Z", "month", m, "1500", event_id=f"m{m}")
        for m in ("2026-10-01", "2026-11-01", "2026-12-01")
    ]
    doc = f.report(events)
    gaps = {(t["period"], t["start"]): t["split_gap"] for t in doc["targets"]}
    assert gaps[("year", "2026-01-01")] == "4000.00"  # 24000 - 4 x 5000
    assert gaps[("quarter", "2026-10-01")] == "500.00"  # 5000 - 3 x 1500
    assert gaps[("quarter", "2026-07-01")] is None  # no month targets in it: nothing to check
    assert gaps[("month", "2026-11-01")] is None  # a month is not split


@pytest.mark.parametrize(
    ("event", "reason", "needle"),
    [
        (survey("2026-11-02T09:00:00Z", "csat", 7), "schema", "score: 7 is off the csat scale 1-5"),
        (survey("2026-11-02T09:00:00Z", "nps", 11), "schema", "score: "),
        (survey("2026-11-02T09:00:00Z", "stars", 3), "schema", "kind: "),
        (
            deal_won("2026-11-02T09:00:00Z", "d-1", cost="5") | {"cost_currency": "EUR"},
            "currency_mismatch",
            "cost_currency: EUR is not the deal's currency GBP",
        ),
        (deal_won("2026-11-02T09:00:00Z", "d-1", cost="-5"), "negative_amount", "cost: "),
        (
            target("2026-10-30T09:00:00Z", "month", NOV, "5000", scope="team"),
            "schema",
            "rep_id: a team target names no rep",
        ),
        (
            target("2026-10-30T09:00:00Z", "month", NOV, "5000", rep=None),
            "schema",
            "rep_id: required for a rep target",
        ),
        (
            target("2026-10-30T09:00:00Z", "month", NOV, "5000", rep=None, scope="region", region=None),
            "schema",
            "region: required for a region target",
        ),
        (
            target("2026-10-30T09:00:00Z", "month", NOV, "12.5", metric="visits", currency=None),
            "schema",
            "amount: a visits target is a whole number",
        ),
        (
            target("2026-10-30T09:00:00Z", "month", NOV, "500", metric="gross_margin", currency=None),
            "schema",
            "currency: required for a gross_margin target",
        ),
        (
            target("2026-10-30T09:00:00Z", "month", NOV, "5", metric="profit"),
            "schema",
            "metric: ",
        ),
        (spend("2026-11-02T00:00:00Z", "10", rep=None, team=None), "schema", "team: required when rep_id"),
        (spend("2026-11-02T00:00:00Z", "10", "travel"), "schema", "category: "),
        (lead("2026-11-02T09:00:00Z", channel="fax"), "schema", "channel: "),
    ],
)
def test_each_bad_field_is_rejected_with_a_sentence_naming_it(
    event: dict[str, Any], reason: str, needle: str
) -> None:
    with pytest.raises(Rejection) as info:
        decode_event(orjson.dumps(event), f.rules())
    assert info.value.reason == reason
    assert info.value.error.startswith(needle), info.value.error
