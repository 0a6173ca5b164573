"""Customer KPIs (contract section 3.1) from hand-computed histories; each test quotes its formula.

`churn_after_days` 30 and `at_risk_after_days` 10 (the rules file's `customers`) keep the dates
short. Fixed wall clock: Monday 2026-11-23 10:00 UTC, Europe/London (DST ends 2026-10-25).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import factories as f
from factories import deal_won, visit
from hypothesis import given, settings
from hypothesis import strategies as st

from kpi_core.customers import CustomerState, purchase, summaries
from kpi_core.engine import apply_summaries
from kpi_core.state import RepState

RULES = f.rules(customers={"churn_after_days": 30, "at_risk_after_days": 10, "clv_trailing_months": 2})
COUNTS = (
    "new_customers",
    "buying_customers",
    "returning_customers",
    "reactivated_customers",
    "churned_customers",
    "active_customers_start",
    "retained_customers",
)


def buy(at: str, rep: str, customer: str = "c-1", amount: str = "100") -> dict[str, Any]:
    return deal_won(at, f"d-{customer}-{at}", rep, amount=amount, customer=customer)


def counts(doc: dict[str, Any], rep: str, start: str, period: str = "month") -> dict[str, int]:
    rows = f.rows(doc, period, rep, start)
    return {k: rows[0][k] for k in COUNTS} if rows else dict.fromkeys(COUNTS, 0)


# C-1 buys from rep-1 on Aug 3 and Aug 20 (one streak); 56 days pass, so it churns on Sep 19 at
# 09:00 (Aug 20 + 30 days), owned by rep-1; rep-2 sells to it again on Oct 15 (a reactivation)
# and Nov 10 (the same streak: 26 days later). Now (Nov 23) it is active until Dec 10.
HISTORY = [
    buy("2026-08-03T09:00:00Z", "rep-1"),
    buy("2026-08-20T09:00:00Z", "rep-1"),
    buy("2026-10-15T09:00:00Z", "rep-2"),
    buy("2026-11-10T09:00:00Z", "rep-2"),
]


def test_new_buying_returning_and_reactivated() -> None:
    """`new_customers`: first purchase in the period, for its rep. `buying_customers`: a purchase
    in the period, for the rep of the latest one in it. `returning_customers`: buying customers
    whose first purchase was before the period. `reactivated_customers`: a purchase in the period
    that follows a churn, for the rep of that purchase."""
    doc = f.report(HISTORY, RULES)
    assert counts(doc, "rep-1", "2026-08-01") | {} == {
        **dict.fromkeys(COUNTS, 0), "new_customers": 1, "buying_customers": 1,
    }  # fmt: skip
    oct_ = counts(doc, "rep-2", "2026-10-01")
    assert (oct_["new_customers"], oct_["buying_customers"], oct_["returning_customers"]) == (0, 1, 1)
    assert oct_["reactivated_customers"] == 1
    nov = counts(doc, "rep-2", "2026-11-01")
    assert (nov["buying_customers"], nov["returning_customers"], nov["reactivated_customers"]) == (1, 1, 0)
    assert f.row(doc, "month", "2026-10-01", "rep-2")["derived"]["repurchase_pct"] == 100.0


def test_churned_active_at_start_and_retained() -> None:
    """`churned_customers`: churned in the period (clock past the instant), for the owner at the
    churn. `active_customers_start`: active at the period's first instant, for the owner then.
    `retained_customers`: of those, no churn in the period up to now. `retention_pct` =
    retained / active at start x 100; `churn_pct` = 100 - retention_pct."""
    doc = f.report(HISTORY, RULES)
    sep = counts(doc, "rep-1", "2026-09-01")
    assert (sep["active_customers_start"], sep["retained_customers"], sep["churned_customers"]) == (1, 0, 1)
    derived = f.row(doc, "month", "2026-09-01", "rep-1")["derived"]
    assert (derived["retention_pct"], derived["churn_pct"]) == (0.0, 100.0)
    assert counts(doc, "rep-2", "2026-10-01")["active_customers_start"] == 0  # churned on Sep 19
    nov = counts(doc, "rep-2", "2026-11-01")  # active on Nov 1 (Oct 15 + 30 = Nov 14), rep-2's
    assert (nov["active_customers_start"], nov["retained_customers"], nov["churned_customers"]) == (1, 1, 0)
    # The churn day is a row of its own for rep-1 (no event that day).
    assert counts(doc, "rep-1", "2026-09-19", "day")["churned_customers"] == 1


def test_the_owner_is_the_rep_of_the_latest_purchase_and_reps_add_up_to_the_company() -> None:
    """A customer belongs to the rep of its latest purchase; counts per rep add up."""
    doc = f.report([*HISTORY, buy("2026-11-12T09:00:00Z", "rep-3", "c-2")], RULES)
    company = next(
        r
        for r in doc["scopes"]
        if r["scope"] == "company" and r["period"] == "month" and r["start"] == "2026-11-01"
    )
    for name in COUNTS:
        assert company[name] == sum(
            counts(doc, rep, "2026-11-01")[name] for rep in ("rep-1", "rep-2", "rep-3")
        )
    assert company["buying_customers"] == 2 and company["new_customers"] == 1


def test_a_churn_before_it_happens_is_not_counted_and_time_alone_counts_it() -> None:
    """A churn counts once the clock has passed it: at Sep 19 08:00 not yet, at 09:00 it has."""
    before = f.report(HISTORY[:2], RULES, now=datetime(2026, 9, 19, 8, 59, tzinfo=UTC))
    after = f.report(HISTORY[:2], RULES, now=datetime(2026, 9, 19, 9, 0, tzinfo=UTC))
    assert counts(before, "rep-1", "2026-09-01")["churned_customers"] == 0
    assert counts(before, "rep-1", "2026-09-01")["retained_customers"] == 1
    assert counts(after, "rep-1", "2026-09-01")["churned_customers"] == 1
    assert counts(after, "rep-1", "2026-09-01")["retained_customers"] == 0


def test_a_late_purchase_retracts_a_churn_already_counted() -> None:
    """The rep side replaces a customer's summary with a newer one: a purchase dated before the
    churn instant, arriving after the churn was counted, takes the churn back."""
    engine = f.engine(RULES)
    states: dict[str, RepState] = {}
    customer = CustomerState("c-1")
    purchase(customer, "p-1", datetime(2026, 9, 1, 9, tzinfo=UTC), "rep-1")
    apply_summaries(engine, summaries(customer, (1, 1)), states)
    view = engine.view(states["rep-1"])
    sept = view.complete("month", f.date_of("2026-10-01"))  # churn on Oct 1 09:00
    assert sept.churned_customers == 1
    purchase(customer, "p-late", datetime(2026, 9, 20, 9, tzinfo=UTC), "rep-1")  # arrives late
    apply_summaries(engine, summaries(customer, (1, 2)), states)
    view = engine.view(states["rep-1"])
    assert view.complete("month", f.date_of("2026-10-01")).churned_customers == 1  # now Oct 20
    assert view.complete("day", f.date_of("2026-10-01")).churned_customers == 0  # retracted
    assert view.complete("day", f.date_of("2026-10-20")).churned_customers == 1
    # An older version arriving last changes nothing.
    stale = summaries(CustomerState("c-1", {"p-1": (datetime(2026, 9, 1, 9, tzinfo=UTC), "rep-1")}), (1, 1))
    apply_summaries(engine, stale, states)
    assert engine.view(states["rep-1"]).complete("day", f.date_of("2026-10-20")).churned_customers == 1


def test_a_churn_crossing_the_dst_change_falls_in_the_local_period() -> None:
    """Churn instant = last purchase + 30 days, placed in the period of the business time zone:
    2026-10-01T23:30Z (00:30 BST, Oct 2) + 30 days = 2026-10-31T23:30Z, 23:30 GMT on Oct 31 after
    the clocks went back on Oct 25 (with the purchase's BST offset it would be Nov 1)."""
    doc = f.report([buy("2026-10-01T23:30:00Z", "rep-1")], RULES)
    assert counts(doc, "rep-1", "2026-10-01")["churned_customers"] == 1
    assert counts(doc, "rep-1", "2026-11-01")["churned_customers"] == 0
    assert counts(doc, "rep-1", "2026-10-31", "day")["churned_customers"] == 1
    assert counts(doc, "rep-1", "2026-11-01")["active_customers_start"] == 0


def test_clv_is_revenue_over_churned_customers_of_the_trailing_completed_months() -> None:
    """`clv` = revenue / churned customers over the last `clv_trailing_months` (2) completed
    months: Sep and Oct for November's row."""
    doc = f.report(
        [
            buy("2026-08-05T09:00:00Z", "rep-1", "c-1", "300"),  # churns Sep 4
            buy("2026-08-06T09:00:00Z", "rep-1", "c-2", "500"),  # churns Sep 5
            buy("2026-09-10T09:00:00Z", "rep-1", "c-3", "1000"),  # churns Oct 10
            buy("2026-10-20T09:00:00Z", "rep-1", "c-4", "800"),  # churns Nov 19: not in Sep-Oct
        ],
        RULES,
    )
    assert f.row(doc, "month", "2026-11-01", "rep-1")["derived"]["clv"] == "600.00"  # 1800 / 3
    assert f.row(doc, "month", "2026-08-01", "rep-1")["derived"]["clv"] is None  # no churn yet


def test_the_at_risk_list() -> None:
    """Active customers of the rep with no purchase and no visit for 10 days, oldest first."""
    events = [
        buy("2026-11-01T09:00:00Z", "rep-1", "c-quiet"),  # untouched 22 days: at risk
        buy("2026-11-05T09:00:00Z", "rep-1", "c-later"),  # untouched 18 days: at risk, second
        buy("2026-11-01T09:00:00Z", "rep-1", "c-visited"),
        visit("2026-11-20T09:00:00Z", "rep-4") | {"customer_id": "c-visited"},  # anyone's visit
        buy("2026-11-20T09:00:00Z", "rep-1", "c-recent"),
        buy("2026-10-01T09:00:00Z", "rep-1", "c-churned"),  # churned Oct 31
        buy("2026-11-01T09:00:00Z", "rep-1", "c-moved"),
        buy("2026-11-03T09:00:00Z", "rep-2", "c-moved"),  # now rep-2's
    ]
    engine = f.engine(RULES)
    from kpi_core.engine import replay
    from kpi_core.events import decode_event

    states, _ = replay(engine, [decode_event(line, engine.rules) for line in f.lines(events)])
    listed = engine.at_risk(states["rep-1"])
    assert [c["customer_id"] for c in listed["customers"]] == ["c-quiet", "c-later"]
    assert listed["customers"][0]["days_untouched"] == 22
    assert [c["customer_id"] for c in engine.at_risk(states["rep-2"])["customers"]] == ["c-moved"]


# ----------------------------------------------------------------------------- properties

_START = f.FIXED - timedelta(days=200)


@st.composite
def customer_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Purchases and visits of a few customers by a few reps over 200 days."""
    events = []
    for n in range(draw(st.integers(1, 20))):
        customer = f"c-{draw(st.integers(0, 5))}"
        rep = draw(st.sampled_from(("rep-1", "rep-2", "rep-3")))
        at = _START + timedelta(hours=draw(st.integers(0, 200 * 24 - 1)))
        if draw(st.booleans()):
            events.append(deal_won(at, f"d-{n}", rep, customer=customer, event_id=f"w-{n}"))
        else:
            events.append(visit(at, rep, event_id=f"v-{n}") | {"customer_id": customer})
    return events


@settings(max_examples=60, deadline=None)
@given(customer_histories(), st.randoms(use_true_random=False))
def test_any_order_and_duplicates_give_the_same_customer_figures(
    events: list[dict[str, Any]], rng: Any
) -> None:
    shuffled = events + [e for e in events if rng.random() < 0.3]  # duplicates
    rng.shuffle(shuffled)
    assert f.report(shuffled, RULES) == f.report(events, RULES)


@settings(max_examples=60, deadline=None)
@given(customer_histories())
def test_the_reps_add_up_to_the_company(events: list[dict[str, Any]]) -> None:
    doc = f.report(events, RULES)
    for row in doc["scopes"]:
        if row["scope"] != "company":
            continue
        reps = f.rows(doc, row["period"], start=row["start"])
        for name in COUNTS:
            assert row[name] == sum(r[name] for r in reps), (row["period"], row["start"], name)
