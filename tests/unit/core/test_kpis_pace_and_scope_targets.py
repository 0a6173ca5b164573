"""Attainment and pace of count targets, split and allocation gaps of scope targets, repurchase and
retention with non-trivial ratios (contract sections 3.1, 3.3), each from a hand-computed event set.

Europe/London is GMT in November: November runs from 2026-11-01T00:00Z, 30 days.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import factories as f
import pytest
from factories import deal_won, target, visit

NOV = "2026-11-01"
SET = "2026-10-30T09:00:00Z"  # when the targets were set


def scope(
    doc: dict[str, Any], kind: str, name: str, period: str = "month", start: str = NOV
) -> dict[str, Any]:
    return f.scope_row(doc, kind, name, period, start)


def gaps(doc: dict[str, Any]) -> dict[tuple[str, str, str, str, str], dict[str, Any]]:
    return {(t["scope"], t["name"], t["metric"], t["period"], t["start"]): t for t in doc["targets"]}


# rep-1 in November: 4 deals won (customers c-1, c-2, c-1 again, c-3: 3 new customers) and 2
# visits, against targets of 8 deals won, 5 new customers and 9 visits.
COUNT_TARGETS = [
    target(SET, "month", NOV, "8", metric="deals_won", currency=None),
    target(SET, "month", NOV, "5", metric="new_customers", currency=None),
    target(SET, "month", NOV, "9", metric="visits", currency=None),
    deal_won("2026-11-02T09:00:00Z", "d-1", customer="c-1"),
    deal_won("2026-11-03T09:00:00Z", "d-2", customer="c-2"),
    deal_won("2026-11-05T09:00:00Z", "d-3", customer="c-1"),  # c-1 again: not new
    deal_won("2026-11-10T09:00:00Z", "d-4", customer="c-3"),
    visit("2026-11-04T09:00:00Z"),
    visit("2026-11-06T09:00:00Z"),
]


def test_attainment_of_deals_won_and_new_customers_targets() -> None:
    """`attainment_by_metric_pct{metric}` = the metric's figure / its target x 100:
    deals_won 4 / 8 = 50%, new_customers 3 / 5 = 60%, visits 2 / 9 = 22.2222%."""
    doc = f.report(COUNT_TARGETS)
    row = f.row(doc, "month", NOV)
    assert (row["deals_won"], row["new_customers"], row["visits"]) == (4, 3, 2)
    assert row["metric_target"] == {"deals_won": 8, "new_customers": 5, "visits": 9}
    assert row["target"] is None  # no revenue target: `target` and `attainment_pct` stay empty
    assert row["derived"]["attainment_pct"] is None
    assert row["derived"]["attainment_by_metric_pct"] == {
        "deals_won": 50.0,
        "new_customers": 60.0,
        "visits": 22.2222,
    }


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Nov 16 00:00: 15 of 30 days gone, fraction 1/2: figure x 2 / target x 100
        (datetime(2026, 11, 16, tzinfo=UTC), {"deals_won": 100.0, "new_customers": 120.0, "visits": 44.4444}),
        # Nov 11 00:00: 10 of 30 days gone, fraction 1/3: figure x 3 / target x 100
        (datetime(2026, 11, 11, tzinfo=UTC), {"deals_won": 150.0, "new_customers": 180.0, "visits": 66.6667}),
        # Nov 1 00:00: nothing of the period gone yet: no pace (undefined, not infinite)
        (datetime(2026, 11, 1, tzinfo=UTC), {"deals_won": None, "new_customers": None, "visits": None}),
    ],
)
def test_projected_by_metric_at_a_known_elapsed_fraction(now: datetime, expected: dict[str, Any]) -> None:
    """`projected_by_metric_pct{metric}` = figure / (elapsed fraction of the period) / target x 100:
    deals_won 4, new_customers 3, visits 2 against 8, 5, 9."""
    events = [e for e in COUNT_TARGETS if e["occurred_at"] <= now.isoformat() or e["type"] == "target.set"]
    doc = f.report(events, now=now)
    row = f.row(doc, "month", NOV)
    if now.day > 1:
        assert (row["deals_won"], row["new_customers"], row["visits"]) == (4, 3, 2)
    assert row["derived"]["projected_by_metric_pct"] == expected


def test_the_split_gap_of_team_region_and_company_targets() -> None:
    """Split gap = a year's (quarter's) own target minus the sum of its quarters' (months'), for
    each scope on its own: team north revenue, region emea visits, the company's gross margin."""
    team = {"rep": None, "scope": "team"}
    region = {"rep": None, "scope": "region", "team": None, "metric": "visits", "currency": None}
    company = {"rep": None, "scope": "company", "team": None, "region": None, "metric": "gross_margin"}
    events = [
        # team north, revenue: year 24000 vs 4 x 5000; Q4 5000 vs Oct 1500 + Nov 1500 (no Dec)
        target(SET, "year", "2026-01-01", "24000", **team),
        *(
            target(SET, "quarter", q, "5000", **team)
            for q in ("2026-01-01", "2026-04-01", "2026-07-01", "2026-10-01")
        ),
        *(target(SET, "month", m, "1500", **team) for m in ("2026-10-01", "2026-11-01")),
        # region emea, visits: year 100 vs Q3 20 + Q4 30; Q4 30 vs 10 + 10 + 12 (over-allocated)
        target(SET, "year", "2026-01-01", "100", **region),
        target(SET, "quarter", "2026-07-01", "20", **region),
        target(SET, "quarter", "2026-10-01", "30", **region),
        *(
            target(SET, "month", m, n, **region)
            for m, n in (("2026-10-01", "10"), ("2026-11-01", "10"), ("2026-12-01", "12"))
        ),
        # the company, gross margin: year 10000 vs Q4 3000; Q4 3000 vs Nov 1000
        target(SET, "year", "2026-01-01", "10000", **company),
        target(SET, "quarter", "2026-10-01", "3000", **company),
        target(SET, "month", NOV, "1000", **company),
        # a rep's revenue target of Q4 does not enter the team's split
        target(SET, "quarter", "2026-10-01", "777", rep="rep-1"),
    ]
    found = {k: v["split_gap"] for k, v in gaps(f.report(events)).items()}
    assert found[("team", "north", "revenue", "year", "2026-01-01")] == "4000.00"  # 24000 - 20000
    assert found[("team", "north", "revenue", "quarter", "2026-10-01")] == "2000.00"  # 5000 - 3000
    assert found[("team", "north", "revenue", "quarter", "2026-07-01")] is None  # no months in it
    assert found[("region", "emea", "visits", "year", "2026-01-01")] == 50  # 100 - (20 + 30)
    assert found[("region", "emea", "visits", "quarter", "2026-10-01")] == -2  # 30 - 32
    assert found[("company", "", "gross_margin", "year", "2026-01-01")] == "7000.00"  # 10000 - 3000
    assert found[("company", "", "gross_margin", "quarter", "2026-10-01")] == "2000.00"  # 3000 - 1000
    assert found[("company", "", "gross_margin", "month", NOV)] is None  # a month is not split
    assert found[("rep", "rep-1", "revenue", "quarter", "2026-10-01")] is None


def test_a_regions_own_target_wins_over_its_members_and_its_allocation_gap() -> None:
    """Region emea: team north (own target 5000; its rep-1 2000) and team south (no own target;
    rep-3 2000 + rep-4 3000 = 5000): members' sum 10000, its own 12000 wins, allocation gap 2000.
    Region apac: rep-5 1000, no own target. The company has none: 12000 + 1000 = 13000."""
    south = {"team": "south"}
    apac = {"team": "west", "region": "apac"}
    events = [
        target(SET, "month", NOV, "5000", rep=None, scope="team"),
        target(SET, "month", NOV, "2000", rep="rep-1"),
        target(SET, "month", NOV, "2000", rep="rep-3", **south),
        target(SET, "month", NOV, "3000", rep="rep-4", **south),
        target(SET, "month", NOV, "12000", rep=None, scope="region", team=None),
        target(SET, "month", NOV, "1000", rep="rep-5", **apac),
        deal_won("2026-11-02T09:00:00Z", "d-1", "rep-1", amount="1000"),
        deal_won("2026-11-02T09:00:00Z", "d-3", "rep-3", amount="2000", **south),
        deal_won("2026-11-02T09:00:00Z", "d-5", "rep-5", amount="300", **apac),
    ]
    doc = f.report(events)
    emea = scope(doc, "region", "emea")
    assert (emea["revenue"], emea["target"]) == ("3000.00", "12000.00")
    assert emea["derived"]["attainment_pct"] == 25.0  # 3000 / 12000 (its members' would be 30%)
    assert emea["derived"]["attainment_by_metric_pct"] == {"revenue": 25.0}
    assert scope(doc, "team", "south")["target"] == "5000.00"  # its reps' sum
    assert scope(doc, "region", "apac")["target"] == "1000.00"
    company = scope(doc, "company", "")
    assert (company["revenue"], company["target"]) == ("3300.00", "13000.00")
    assert company["derived"]["attainment_pct"] == 25.3846  # 3300 / 13000 x 100
    found = gaps(doc)
    assert found[("region", "emea", "revenue", "month", NOV)]["allocation_gap"] == "2000.00"
    assert found[("team", "north", "revenue", "month", NOV)]["allocation_gap"] == "3000.00"
    assert ("region", "apac", "revenue", "month", NOV) not in found  # no own target: no gap row
    assert ("company", "", "revenue", "month", NOV) not in found


def test_repurchase_pct_one_of_three() -> None:
    """`repurchase_pct` = returning_customers / buying_customers x 100: in November c-1 buys again
    (first bought in September), c-2 and c-3 buy for the first time: 1 / 3 = 33.3333%."""
    doc = f.report(
        [
            deal_won("2026-09-20T09:00:00Z", "d-0", customer="c-1"),
            deal_won("2026-11-03T09:00:00Z", "d-1", customer="c-1"),
            deal_won("2026-11-04T09:00:00Z", "d-2", customer="c-2"),
            deal_won("2026-11-05T09:00:00Z", "d-3", customer="c-3"),
            deal_won("2026-11-06T09:00:00Z", "d-4", customer="c-3"),  # twice: still one customer
        ]
    )
    row = f.row(doc, "month", NOV)
    assert (row["buying_customers"], row["returning_customers"], row["new_customers"]) == (3, 1, 2)
    assert row["derived"]["repurchase_pct"] == 33.3333
    assert f.row(doc, "month", "2026-09-01")["derived"]["repurchase_pct"] == 0.0  # 0 / 1


def test_retention_pct_three_of_four() -> None:
    """`retention_pct` = retained / active at start x 100, `churn_pct` = 100 - retention_pct, with
    churn_after_days 30 and now Nov 23 10:00. Active on Nov 1: c-a (churns Nov 9 09:00), c-b
    (churns Nov 24: after now), c-c (Nov 27), c-d (would churn Nov 14, buys again Nov 5): 4;
    retained 3: 75%; churned in November 1."""
    rules = f.rules(customers={"churn_after_days": 30, "at_risk_after_days": 10, "clv_trailing_months": 2})
    doc = f.report(
        [
            deal_won("2026-10-10T09:00:00Z", "d-a", customer="c-a"),
            deal_won("2026-10-25T09:00:00Z", "d-b", customer="c-b"),
            deal_won("2026-10-28T09:00:00Z", "d-c", customer="c-c"),
            deal_won("2026-10-15T09:00:00Z", "d-d", customer="c-d"),
            deal_won("2026-11-05T09:00:00Z", "d-d2", customer="c-d"),
        ],
        rules,
    )
    row = f.row(doc, "month", NOV)
    assert (row["active_customers_start"], row["retained_customers"], row["churned_customers"]) == (4, 3, 1)
    assert (row["derived"]["retention_pct"], row["derived"]["churn_pct"]) == (75.0, 25.0)
