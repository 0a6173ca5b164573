"""One test per KPI of contract section 3, from small hand-computed event sets.

Fixed wall clock: Monday 2026-11-23 10:00 UTC; business zone Europe/London (GMT in November),
so the current day, week and month start on 2026-11-23, 2026-11-23 and 2026-11-01.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import factories as f
import orjson
import pytest
from factories import deal_created, deal_lost, deal_won, quote, stage_changed, target, visit

NOV = "2026-11-01"
OCT = "2026-10-01"


def month(doc: dict[str, Any], start: str = NOV, rep: str = "rep-1") -> dict[str, Any]:
    return f.row(doc, "month", start, rep)


def derived(doc: dict[str, Any], start: str = NOV, rep: str = "rep-1") -> dict[str, Any]:
    return month(doc, start, rep)["derived"]


# ---------------------------------------------------------------------------- additive components


def test_visits() -> None:
    """`visits`: count of `visit.completed` (SVT, sales visit times)."""
    doc = f.report(
        [
            visit("2026-11-02T09:00:00Z"),
            visit("2026-11-02T15:00:00Z"),
            visit("2026-11-20T09:00:00Z", deal="d-1"),
            visit("2026-10-30T09:00:00Z"),
        ]
    )
    assert month(doc)["visits"] == 3
    assert month(doc, OCT)["visits"] == 1
    assert f.row(doc, "day", "2026-11-02")["visits"] == 2
    assert f.row(doc, "week", "2026-11-02")["visits"] == 2  # ISO week from Monday 2026-11-02
    assert f.row(doc, "week", "2026-10-26")["visits"] == 1
    assert f.row(doc, "quarter", "2026-10-01")["visits"] == 4
    assert f.row(doc, "year", "2026-01-01")["visits"] == 4


def test_deals_created() -> None:
    """`deals_created`: count of `deal.created` events."""
    doc = f.report(
        [
            deal_created("2026-11-03T09:00:00Z", "d-1"),
            deal_created("2026-11-04T09:00:00Z", "d-2"),
            deal_created("2026-10-04T09:00:00Z", "d-3"),
        ]
    )
    assert month(doc)["deals_created"] == 2
    assert month(doc, OCT)["deals_created"] == 1
    assert month(doc)["deals_won"] == month(doc)["deals_lost"] == 0


def test_deals_won() -> None:
    """`deals_won`: count of `deal.won` events."""
    doc = f.report(
        [
            deal_won("2026-11-03T09:00:00Z", "d-1"),
            deal_won("2026-11-05T09:00:00Z", "d-2"),
            deal_won("2026-11-06T09:00:00Z", "d-3"),
        ]
    )
    assert month(doc)["deals_won"] == 3
    assert f.row(doc, "day", "2026-11-05")["deals_won"] == 1


def test_deals_lost() -> None:
    """`deals_lost`: count of `deal.lost` events."""
    doc = f.report(
        [
            deal_created("2026-11-01T09:00:00Z", "d-1"),
            deal_lost("2026-11-03T09:00:00Z", "d-1"),
            deal_lost("2026-11-04T09:00:00Z", "d-2"),
        ]
    )
    assert month(doc)["deals_lost"] == 2
    assert doc["pipeline"] == []  # a lost deal is no longer open


def test_quotes_sent(run_report: Callable[..., dict[str, Any]]) -> None:
    """`quotes_sent`: count of `quote.sent`."""
    doc = run_report([quote("2026-11-03T09:00:00Z", "d-1") for _ in range(4)])
    assert month(doc)["quotes_sent"] == 4


def test_revenue() -> None:
    """`revenue`: sum of `amount` of `deal.won` (money as decimal strings)."""
    doc = f.report(
        [
            deal_won("2026-11-03T09:00:00Z", "d-1", amount="1200.50"),
            deal_won("2026-11-04T09:00:00Z", "d-2", amount=300),
            deal_won("2026-10-04T09:00:00Z", "d-3", amount="99.999"),
        ]
    )
    assert month(doc)["revenue"] == "1500.50"
    assert month(doc, OCT)["revenue"] == "99.999"
    assert f.row(doc, "quarter", "2026-10-01")["revenue"] == "1600.499"


def test_revenue_by_channel() -> None:
    """`revenue_by_channel{channel}`: revenue split by the deal's contact method
    (the won's `channel`, else the `created` one, else `other`)."""
    doc = f.report(
        [
            deal_created("2026-11-01T09:00:00Z", "d-1", channel="web"),
            deal_won("2026-11-03T09:00:00Z", "d-1", amount="100"),  # created channel: web
            deal_created("2026-11-01T09:00:00Z", "d-2", channel="web"),
            deal_won("2026-11-03T09:00:00Z", "d-2", amount="200", channel="referral"),  # won wins
            deal_won("2026-11-04T09:00:00Z", "d-3", amount="50"),  # nothing known: other
            deal_won("2026-11-05T09:00:00Z", "d-4", amount="25", channel="web"),
        ]
    )
    assert month(doc)["revenue_by_channel"] == {
        "other": "50.00",
        "referral": "200.00",
        "web": "125.00",
    }
    assert month(doc)["revenue"] == "375.00"
    empty = f.report([visit("2026-11-03T09:00:00Z")])
    assert month(empty)["revenue_by_channel"] == {}


def test_cycle_seconds() -> None:
    """`cycle_seconds_sum` / `_count`: won_at - created_at, for deals won in the period
    (created event time, else the won's `deal_created_at`)."""
    doc = f.report(
        [
            deal_created("2026-10-30T09:00:00Z", "d-1"),
            deal_won("2026-11-02T21:00:00Z", "d-1"),  # 3.5 days, counted in November
            deal_won(
                "2026-11-10T12:00:00Z", "d-2", deal_created_at="2026-11-09T12:00:00Z"
            ),  # 1 day, from the won's hint
            deal_created("2026-11-01T09:00:00Z", "d-3"),  # open: no cycle yet
        ]
    )
    nov = month(doc)
    assert nov["cycle_seconds_sum"] == 3.5 * 86400 + 86400
    assert nov["cycle_seconds_count"] == 2
    assert month(doc, OCT)["cycle_seconds_count"] == 0
    # The created event's own time beats the hint on the won event.
    hinted = f.report(
        [
            deal_created("2026-11-01T00:00:00Z", "d-1"),
            deal_won("2026-11-02T00:00:00Z", "d-1", deal_created_at="2026-10-01T00:00:00Z"),
        ]
    )
    assert month(hinted)["cycle_seconds_sum"] == 86400


def test_first_response_seconds() -> None:
    """`first_response_seconds_sum` / `_count`: first visit or quote on a deal - deal
    created_at, in the period of the first touch."""
    doc = f.report(
        [
            # d-1: touch before creation is ignored; first touch 2.5 h after creation.
            visit("2026-11-10T07:00:00Z", deal="d-1"),
            deal_created("2026-11-10T08:00:00Z", "d-1"),
            visit("2026-11-10T10:30:00Z", deal="d-1"),
            quote("2026-11-10T12:00:00Z", "d-1"),
            # d-2: created in October, first touch (a quote) in November: counted in November.
            deal_created("2026-10-31T22:00:00Z", "d-2"),
            quote("2026-11-02T10:00:00Z", "d-2"),
            # d-3: never touched.
            deal_created("2026-11-11T08:00:00Z", "d-3"),
        ]
    )
    nov = month(doc)
    assert nov["first_response_seconds_count"] == 2
    assert nov["first_response_seconds_sum"] == 2.5 * 3600 + 36 * 3600
    assert month(doc, OCT)["first_response_seconds_count"] == 0
    assert f.row(doc, "day", "2026-11-02")["first_response_seconds_sum"] == 36 * 3600


def test_target() -> None:
    """`target`: latest `target.set` amount for the period; null where none was set."""
    doc = f.report(
        [
            target("2026-10-20T09:00:00Z", "month", NOV, "9000"),
            target("2026-10-25T09:00:00Z", "month", NOV, "10000"),  # latest by event time
            target("2026-10-01T09:00:00Z", "quarter", "2026-10-01", "30000"),
            target("2026-01-01T09:00:00Z", "year", "2026-01-01", "120000.5"),
            visit("2026-10-03T09:00:00Z"),
        ]
    )
    assert month(doc)["target"] == "10000.00"
    assert f.row(doc, "quarter", "2026-10-01")["target"] == "30000.00"
    assert f.row(doc, "year", "2026-01-01")["target"] == "120000.50"
    assert month(doc, OCT)["target"] is None
    assert f.row(doc, "day", "2026-10-03")["target"] is None


def test_target_period_start_inside_the_period() -> None:
    """`target.set` `period_start` may be any date inside the period: the target applies to the
    period of kind `period` that contains it (here November, and the fiscal quarter from
    October when the fiscal year starts in April)."""
    doc = f.report(
        [
            target("2026-10-25T09:00:00Z", "month", "2026-11-15", "1000"),
            visit("2026-11-02T09:00:00Z"),
        ]
    )
    assert [(r["start"], r["target"]) for r in f.rows(doc, "month")] == [(NOV, "1000.00")]
    fiscal = f.report(
        [target("2026-10-25T09:00:00Z", "quarter", NOV, "3000")],
        f.rules(fiscal_year_start_month=4),
    )
    assert [(r["period"], r["start"], r["target"]) for r in fiscal["periods"]] == [
        ("quarter", "2026-10-01", "3000.00")
    ]


# ---------------------------------------------------------------------------- derived


def test_growth_pct() -> None:
    """`growth_pct`: (revenue - revenue of the compared period) / that revenue x 100; a
    complete period compares with the whole previous one."""
    doc = f.report(
        [
            deal_won("2026-09-10T09:00:00Z", "d-1", amount="800"),
            deal_won("2026-10-10T09:00:00Z", "d-2", amount="1000"),
            deal_won("2026-10-31T22:00:00Z", "d-3", amount="0"),
        ]
    )
    assert derived(doc, OCT)["growth_pct"] == 25.0
    assert derived(doc, "2026-09-01")["growth_pct"] is None  # August had no revenue: undefined


def test_growth_pct_negative_and_rounded() -> None:
    """`growth_pct` rounds to 4 places: (200 - 300) / 300 x 100 = -33.3333."""
    doc = f.report(
        [
            deal_won("2026-09-10T09:00:00Z", "d-1", amount="300"),
            deal_won("2026-10-10T09:00:00Z", "d-2", amount="200"),
        ]
    )
    assert derived(doc, OCT)["growth_pct"] == -33.3333


def test_quote_to_close_pct() -> None:
    """`quote_to_close_pct`: deals_won / quotes_sent x 100; undefined without quotes."""
    doc = f.report(
        [quote("2026-11-03T09:00:00Z", f"d-{i}") for i in range(4)]
        + [deal_won("2026-11-04T09:00:00Z", "d-0")]
        + [deal_won("2026-10-04T09:00:00Z", "d-9")]
    )
    assert derived(doc)["quote_to_close_pct"] == 25.0
    assert derived(doc, OCT)["quote_to_close_pct"] is None  # no quotes: undefined, not 0


def test_win_rate_pct() -> None:
    """`win_rate_pct`: deals_won / (deals_won + deals_lost) x 100."""
    doc = f.report(
        [deal_won("2026-11-04T09:00:00Z", f"d-{i}") for i in range(3)]
        + [deal_lost("2026-11-05T09:00:00Z", "d-9")]
        + [visit("2026-10-05T09:00:00Z")]
    )
    assert derived(doc)["win_rate_pct"] == 75.0
    assert derived(doc, OCT)["win_rate_pct"] is None
    lost_only = f.report([deal_lost("2026-11-05T09:00:00Z", "d-9")])
    assert derived(lost_only)["win_rate_pct"] == 0.0  # defined (denominator 1), and 0


def test_lead_conversion_pct() -> None:
    """`lead_conversion_pct`: deals_won / deals_created x 100."""
    doc = f.report(
        [deal_created("2026-11-02T09:00:00Z", f"d-{i}") for i in range(3)]
        + [deal_won("2026-11-04T09:00:00Z", "d-0")]
        + [deal_won("2026-10-04T09:00:00Z", "d-old")]
    )
    assert derived(doc)["lead_conversion_pct"] == 33.3333
    assert derived(doc, OCT)["lead_conversion_pct"] is None


def test_avg_deal_size() -> None:
    """`avg_deal_size`: revenue / deals_won, as money."""
    doc = f.report(
        [
            deal_won("2026-11-04T09:00:00Z", "d-1", amount="100"),
            deal_won("2026-11-05T09:00:00Z", "d-2", amount="50.50"),
            visit("2026-10-05T09:00:00Z"),
        ]
    )
    assert derived(doc)["avg_deal_size"] == "75.25"
    assert derived(doc, OCT)["avg_deal_size"] is None


def test_avg_cycle_days() -> None:
    """`avg_cycle_days`: cycle_seconds_sum / cycle_seconds_count, in days."""
    doc = f.report(
        [
            deal_created("2026-11-01T00:00:00Z", "d-1"),
            deal_won("2026-11-04T12:00:00Z", "d-1"),  # 3.5 days
            deal_created("2026-11-02T00:00:00Z", "d-2"),
            deal_won("2026-11-03T00:00:00Z", "d-2"),  # 1 day
            deal_won("2026-11-05T00:00:00Z", "d-3"),  # creation unknown: no cycle
            visit("2026-10-05T09:00:00Z"),
        ]
    )
    assert derived(doc)["avg_cycle_days"] == 2.25
    assert derived(doc, OCT)["avg_cycle_days"] is None


def test_avg_first_response_hours() -> None:
    """`avg_first_response_hours`: first_response_seconds_sum / _count, in hours."""
    doc = f.report(
        [
            deal_created("2026-11-02T08:00:00Z", "d-1"),
            visit("2026-11-02T09:30:00Z", deal="d-1"),  # 1.5 h
            deal_created("2026-11-03T08:00:00Z", "d-2"),
            quote("2026-11-03T11:30:00Z", "d-2"),  # 3.5 h
            visit("2026-10-05T09:00:00Z"),
        ]
    )
    assert derived(doc)["avg_first_response_hours"] == 2.5
    assert derived(doc, OCT)["avg_first_response_hours"] is None


def test_channel_share_pct() -> None:
    """`channel_share_pct{channel}`: revenue_by_channel / revenue x 100."""
    doc = f.report(
        [
            deal_won("2026-11-04T09:00:00Z", "d-1", amount="300", channel="phone"),
            deal_won("2026-11-05T09:00:00Z", "d-2", amount="100", channel="web"),
            deal_won("2026-10-05T09:00:00Z", "d-3", amount="0", channel="web"),
        ]
    )
    assert derived(doc)["channel_share_pct"] == {"phone": 75.0, "web": 25.0}
    assert derived(doc, OCT)["channel_share_pct"] is None  # revenue 0: undefined


def test_attainment_pct() -> None:
    """`attainment_pct`: revenue / target x 100; undefined without a target (or a 0 target)."""
    doc = f.report(
        [
            target("2026-10-25T09:00:00Z", "month", NOV, "10000"),
            deal_won("2026-11-04T09:00:00Z", "d-1", amount="5380"),
            deal_won("2026-10-04T09:00:00Z", "d-2", amount="100"),
            target("2026-09-25T09:00:00Z", "month", "2026-09-01", "0"),
            deal_won("2026-09-04T09:00:00Z", "d-3", amount="100"),
        ]
    )
    assert derived(doc)["attainment_pct"] == 53.8
    assert month(doc, OCT)["target"] is None
    assert derived(doc, OCT)["attainment_pct"] is None
    assert month(doc, "2026-09-01")["target"] == "0.00"
    assert derived(doc, "2026-09-01")["attainment_pct"] is None


def test_projected_attainment_pct() -> None:
    """`projected_attainment_pct`: revenue / elapsed fraction of the period / target x 100.

    At 2026-11-23 10:00 (GMT) 22 days 10 hours = 538 of November's 720 hours have elapsed:
    5380 / (538 / 720) / 10000 x 100 = 72. A complete period has elapsed fraction 1."""
    doc = f.report(
        [
            target("2026-10-25T09:00:00Z", "month", NOV, "10000"),
            deal_won("2026-11-04T09:00:00Z", "d-1", amount="5380"),
            target("2026-09-25T09:00:00Z", "month", OCT, "1000"),
            deal_won("2026-10-04T09:00:00Z", "d-2", amount="500"),
        ]
    )
    assert derived(doc)["projected_attainment_pct"] == 72.0
    assert derived(doc, OCT)["projected_attainment_pct"] == 50.0  # complete: = attainment
    assert derived(doc, OCT)["attainment_pct"] == 50.0


def test_projected_attainment_counts_real_hours_across_dst() -> None:
    """October 2026 in London has 745 hours (clocks go back on the 25th). At 2026-10-31 00:00
    GMT, 721 hours have elapsed: 721 / (721 / 745) / 745 x 100 = 100."""
    now = datetime(2026, 10, 31, 0, 0, tzinfo=UTC)
    doc = f.report(
        [
            target("2026-09-25T09:00:00Z", "month", OCT, "745"),
            deal_won("2026-10-04T09:00:00Z", "d-1", amount="721"),
        ],
        now=now,
    )
    assert derived(doc, OCT)["projected_attainment_pct"] == 100.0


def test_projected_attainment_undefined_without_target() -> None:
    """`projected_attainment_pct` is undefined without a target."""
    doc = f.report([deal_won("2026-11-04T09:00:00Z", "d-1", amount="5380")])
    assert derived(doc)["projected_attainment_pct"] is None


def test_visits_per_win() -> None:
    """`visits_per_win`: visits / deals_won."""
    doc = f.report(
        [visit("2026-11-02T09:00:00Z") for _ in range(5)]
        + [deal_won("2026-11-04T09:00:00Z", "d-1"), deal_won("2026-11-05T09:00:00Z", "d-2")]
        + [visit("2026-10-02T09:00:00Z")]
    )
    assert derived(doc)["visits_per_win"] == 2.5
    assert derived(doc, OCT)["visits_per_win"] is None  # no wins: undefined, not infinity


# ---------------------------------------------------------------------------- snapshot


def _pipeline_events() -> list[dict[str, Any]]:
    return [
        # open: qualification 1000 then proposal (0.4) at 2000 -> weighted 800
        deal_created("2026-11-01T09:00:00Z", "d-a", amount="1000", stage="qualification"),
        stage_changed("2026-11-05T09:00:00Z", "d-a", "proposal", amount="2000"),
        # open: negotiation (0.7) 500 -> 350
        deal_created("2026-11-02T09:00:00Z", "d-b", amount="500", stage="negotiation"),
        # open, known only from a stage change: commit (0.9) 100 -> 90
        stage_changed("2026-11-03T09:00:00Z", "d-e", "commit", amount="100"),
        # closed: not open
        deal_created("2026-11-02T09:00:00Z", "d-c", amount="700", stage="proposal"),
        deal_won("2026-11-06T09:00:00Z", "d-c", amount="2000"),
        deal_created("2026-11-02T09:00:00Z", "d-d", amount="900", stage="proposal"),
        deal_lost("2026-11-06T09:00:00Z", "d-d"),
        # a visit on an unknown deal does not open it
        visit("2026-11-07T09:00:00Z", deal="d-x"),
    ]


def test_open_deals() -> None:
    """`open_deals`: deals with a known stage or creation and no won/lost."""
    assert f.pipe(f.report(_pipeline_events()))["open_deals"] == 3


def test_open_pipeline() -> None:
    """`open_pipeline`: sum of open deal amounts (the latest amount by event time)."""
    assert f.pipe(f.report(_pipeline_events()))["open_pipeline"] == "2600.00"


def test_weighted_pipeline() -> None:
    """`weighted_pipeline`: sum of amount x stage probability (probabilities from the rules)."""
    assert f.pipe(f.report(_pipeline_events()))["weighted_pipeline"] == "1240.00"


def test_pipeline_coverage() -> None:
    """`pipeline_coverage`: weighted_pipeline / (target - revenue) of the current period:
    1240 / (10000 - 2000) = 0.155; undefined without a target or once it is met."""
    events = _pipeline_events()
    assert f.pipe(f.report(events))["pipeline_coverage"] is None
    with_target = [*events, target("2026-10-25T09:00:00Z", "month", NOV, "10000")]
    assert f.pipe(f.report(with_target))["pipeline_coverage"] == 0.155
    met = [*events, target("2026-10-25T09:00:00Z", "month", NOV, "2000")]
    assert f.pipe(f.report(met))["pipeline_coverage"] is None


# ---------------------------------------------------------------------------- money and labels


def test_fx_converts_into_base_currency() -> None:
    """Another currency is converted with the rules' fixed rate (EUR 0.86, USD 0.79) or rejected
    `currency_mismatch`."""
    doc = f.report(
        [
            deal_won("2026-11-04T09:00:00Z", "d-1", amount="100", currency="EUR"),
            deal_won("2026-11-04T10:00:00Z", "d-2", amount="10.00", currency="GBP"),
            target("2026-10-25T09:00:00Z", "month", NOV, "1000", currency="USD"),
            deal_won("2026-11-04T11:00:00Z", "d-3", amount="100", currency="JPY"),
        ]
    )
    nov = month(doc)
    assert nov["revenue"] == "96.00"
    assert nov["target"] == "790.00"
    assert nov["deals_won"] == 2
    assert doc["rejected"] == {"currency_mismatch": 1}


def test_decimal_exactness() -> None:
    """Money is exact (decimal, not float) from JSON to state: 0.1 + 0.2 == 0.30."""
    raw = [
        orjson.dumps(deal_won("2026-11-04T09:00:00Z", "d-1", amount=0.1)),
        orjson.dumps(deal_won("2026-11-04T10:00:00Z", "d-2", amount=0.2)),
        orjson.dumps(deal_won("2026-10-04T10:00:00Z", "d-3", amount=12345678901234.56)),
        orjson.dumps(deal_won("2026-10-05T10:00:00Z", "d-4", amount="0.01")),
    ]
    assert b'"amount":0.1' in raw[0]  # a JSON number, not a string
    doc = f.report(raw)
    assert month(doc)["revenue"] == "0.30"
    assert month(doc)["revenue_by_channel"] == {"other": "0.30"}
    assert month(doc, OCT)["revenue"] == "12345678901234.57"


@pytest.mark.parametrize(
    ("events", "team", "region"),
    [
        (
            [
                visit("2026-11-02T09:00:00Z", team="south", region="apac"),
                visit("2026-11-01T09:00:00Z", team="north", region="emea"),
            ],
            "south",
            "apac",
        ),
        ([visit("2026-11-02T09:00:00Z", team=None, region=None)], "unknown", "unknown"),
    ],
)
def test_team_and_region_of_latest_event(events: list[dict[str, Any]], team: str, region: str) -> None:
    """A rep's `team` and `region` are those of its latest event by event time; missing means
    `unknown`."""
    doc = f.report(events)
    assert {(r["team"], r["region"]) for r in doc["periods"]} == {(team, region)}
