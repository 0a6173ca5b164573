"""One valid example event per type, as JSON-ready dicts (docs, schema tests, smoke tests)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kpi_rules.models import Rules


def example_events(base_time: datetime, rules: Rules | None = None) -> list[dict[str, Any]]:
    """One valid event per type, as JSON-ready dicts (amounts as ints or decimal strings).

    `base_time` must be aware; with `rules`, the base currency and its first two stages are used
    (else GBP, `qualification` and `proposal`, as in the packaged rules file).
    """
    if base_time.utcoffset() is None:
        raise ValueError("base_time must be an aware datetime")
    currency = rules.currency if rules is not None else "GBP"
    stages = list(rules.stages) if rules is not None else ["qualification", "proposal"]
    first, second = stages[0], stages[1 if len(stages) > 1 else 0]

    def at(minutes: int) -> str:
        return (base_time + timedelta(minutes=minutes)).isoformat()

    common = {"rep_id": "rep-001", "team": "north", "region": "emea"}
    month_start = base_time.date().replace(day=1).isoformat()
    return [
        {
            "event_id": "ex-1",
            "type": "deal.created",
            "occurred_at": at(0),
            **common,
            "deal_id": "deal-1",
            "customer_id": "cust-1",
            "amount": 12000,
            "currency": currency,
            "stage": first,
            "channel": "phone",
        },
        {
            "event_id": "ex-2",
            "type": "deal.stage_changed",
            "occurred_at": at(60),
            **common,
            "deal_id": "deal-1",
            "customer_id": "cust-1",
            "stage": second,
            "amount": "11500.00",
            "currency": currency,
        },
        {
            "event_id": "ex-3",
            "type": "visit.completed",
            "occurred_at": at(90),
            **common,
            "visit_id": "visit-1",
            "customer_id": "cust-1",
            "deal_id": "deal-1",
            "duration_minutes": 45,
        },
        {
            "event_id": "ex-4",
            "type": "quote.sent",
            "occurred_at": at(120),
            **common,
            "quote_id": "quote-1",
            "deal_id": "deal-1",
            "customer_id": "cust-1",
            "amount": "11500.00",
            "currency": currency,
        },
        {
            "event_id": "ex-5",
            "type": "deal.won",
            "occurred_at": at(180),
            **common,
            "deal_id": "deal-1",
            "customer_id": "cust-1",
            "amount": "11250.50",
            "currency": currency,
            "channel": "phone",
            "deal_created_at": at(0),
        },
        {
            "event_id": "ex-6",
            "type": "deal.lost",
            "occurred_at": at(240),
            **common,
            "deal_id": "deal-2",
            "customer_id": "cust-2",
        },
        {
            "event_id": "ex-7",
            "type": "target.set",
            "occurred_at": at(-60),
            **common,
            "period": "month",
            "period_start": month_start,
            "amount": 150000,
            "currency": currency,
        },
        {
            "event_id": "ex-8",
            "type": "survey.completed",
            "occurred_at": at(300),
            **common,
            "survey_id": "survey-1",
            "customer_id": "cust-1",
            "deal_id": "deal-1",
            "kind": "csat",
            "score": 5,
        },
        {
            "event_id": "ex-9",
            "type": "lead.created",
            "occurred_at": at(30),
            **common,
            "lead_id": "lead-1",
            "channel": "web",
        },
        {
            "event_id": "ex-10",
            "type": "spend.recorded",
            "occurred_at": at(10),
            "team": "north",
            "region": "emea",
            "spend_id": "spend-1",
            "amount": "2500.00",
            "currency": currency,
            "category": "marketing",
            "channel": "web",
        },
    ]
