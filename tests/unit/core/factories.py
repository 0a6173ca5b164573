"""Builders of CRM event dicts (contract section 1) and small helpers to run them through the core.

Every builder returns a JSON-ready dict; `at` may be an aware datetime or an RFC 3339 string.
Amounts are given as strings (or ints) so money stays exact on the way in.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import strategies as st

from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine
from kpi_core.report import build_report
from kpi_rules import Rules, load_rules
from kpi_rules.loader import parse_rules

# A fixed wall clock: Monday 2026-11-23 10:00 UTC (= 10:00 in Europe/London, GMT in November).
FIXED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
BASE = "GBP"

_ids = itertools.count(1)


def _eid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def iso(at: datetime | str) -> str:
    return at if isinstance(at, str) else at.isoformat()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def _common(
    kind: str,
    at: datetime | str,
    rep: str,
    event_id: str | None,
    team: str | None,
    region: str | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event_id": event_id or _eid(kind.replace(".", "_")),
        "type": kind,
        "occurred_at": iso(at),
        "rep_id": rep,
    }
    if team is not None:
        out["team"] = team
    if region is not None:
        out["region"] = region
    return out


def deal_created(
    at: datetime | str,
    deal: str,
    rep: str = "rep-1",
    *,
    amount: Any = "1000",
    currency: str = BASE,
    stage: str = "qualification",
    channel: str = "phone",
    customer: str = "cust-1",
    event_id: str | None = None,
    team: str | None = "north",
    region: str | None = "emea",
) -> dict[str, Any]:
    return {
        **_common("deal.created", at, rep, event_id, team, region),
        "deal_id": deal,
        "customer_id": customer,
        "amount": amount,
        "currency": currency,
        "stage": stage,
        "channel": channel,
    }


def stage_changed(
    at: datetime | str,
    deal: str,
    stage: str,
    rep: str = "rep-1",
    *,
    amount: Any = None,
    currency: str | None = None,
    customer: str = "cust-1",
    event_id: str | None = None,
    team: str | None = "north",
    region: str | None = "emea",
) -> dict[str, Any]:
    out = {
        **_common("deal.stage_changed", at, rep, event_id, team, region),
        "deal_id": deal,
        "customer_id": customer,
        "stage": stage,
    }
    if amount is not None:
        out["amount"] = amount
    if currency is not None:
        out["currency"] = currency
    return out


def deal_won(
    at: datetime | str,
    deal: str,
    rep: str = "rep-1",
    *,
    amount: Any = "1000",
    currency: str = BASE,
    channel: str | None = None,
    deal_created_at: datetime | str | None = None,
    customer: str = "cust-1",
    event_id: str | None = None,
    team: str | None = "north",
    region: str | None = "emea",
    cost: Any = None,
) -> dict[str, Any]:
    out = {
        **_common("deal.won", at, rep, event_id, team, region),
        "deal_id": deal,
        "customer_id": customer,
        "amount": amount,
        "currency": currency,
    }
    if cost is not None:
        out["cost"] = cost
    if channel is not None:
        out["channel"] = channel
    if deal_created_at is not None:
        out["deal_created_at"] = iso(deal_created_at)
    return out


def deal_lost(
    at: datetime | str,
    deal: str,
    rep: str = "rep-1",
    *,
    customer: str = "cust-1",
    event_id: str | None = None,
    team: str | None = "north",
    region: str | None = "emea",
) -> dict[str, Any]:
    return {
        **_common("deal.lost", at, rep, event_id, team, region),
        "deal_id": deal,
        "customer_id": customer,
    }


def visit(
    at: datetime | str,
    rep: str = "rep-1",
    *,
    deal: str | None = None,
    customer: str = "cust-1",
    duration: int | None = None,
    event_id: str | None = None,
    team: str | None = "north",
    region: str | None = "emea",
) -> dict[str, Any]:
    out = {
        **_common("visit.completed", at, rep, event_id, team, region),
        "visit_id": _eid("v"),
        "customer_id": customer,
    }
    if deal is not None:
        out["deal_id"] = deal
    if duration is not None:
        out["duration_minutes"] = duration
    return out


def quote(
    at: datetime | str,
    deal: str,
    rep: str = "rep-1",
    *,
    amount: Any = "500",
    currency: str = BASE,
    customer: str = "cust-1",
    event_id: str | None = None,
    team: str | None = "north",
    region: str | None = "emea",
) -> dict[str, Any]:
    return {
        **_common("quote.sent", at, rep, event_id, team, region),
        "quote_id": _eid("q"),
        "deal_id": deal,
        "customer_id": customer,
        "amount": amount,
        "currency": currency,
    }


def target(
    at: datetime | str,
    period: str,
    period_start: date | str,
    amount: Any,
    rep: str | None = "rep-1",
    *,
    currency: str | None = BASE,
    event_id: str | None = None,
    team: str | None = "north",
    region: str | None = "emea",
    metric: str | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    out = {
        **_common("target.set", at, rep or "", event_id, team, region),
        "period": period,
        "period_start": period_start if isinstance(period_start, str) else period_start.isoformat(),
        "amount": amount,
    }
    if rep is None:
        del out["rep_id"]
    if currency is not None:
        out["currency"] = currency
    if metric is not None:
        out["metric"] = metric
    if scope is not None:
        out["scope"] = scope
    return out


def survey(
    at: datetime | str,
    kind: str,
    score: int,
    rep: str = "rep-1",
    *,
    survey_id: str | None = None,
    customer: str = "cust-1",
    event_id: str | None = None,
    team: str | None = "north",
    region: str | None = "emea",
) -> dict[str, Any]:
    return {
        **_common("survey.completed", at, rep, event_id, team, region),
        "survey_id": survey_id or _eid("survey"),
        "customer_id": customer,
        "kind": kind,
        "score": score,
    }


def lead(
    at: datetime | str,
    rep: str = "rep-1",
    *,
    channel: str = "web",
    event_id: str | None = None,
    team: str | None = "north",
    region: str | None = "emea",
) -> dict[str, Any]:
    return {
        **_common("lead.created", at, rep, event_id, team, region),
        "lead_id": _eid("lead"),
        "channel": channel,
    }


def spend(
    at: datetime | str,
    amount: Any,
    category: str = "marketing",
    rep: str | None = "rep-1",
    *,
    currency: str = BASE,
    event_id: str | None = None,
    team: str | None = "north",
    region: str | None = "emea",
) -> dict[str, Any]:
    out = {
        **_common("spend.recorded", at, rep or "", event_id, team, region),
        "spend_id": _eid("spend"),
        "amount": amount,
        "currency": currency,
        "category": category,
    }
    if rep is None:
        del out["rep_id"]
    return out


# ------------------------------------------------------------------------------ running the core


def rules(**overrides: Any) -> Rules:
    """The packaged rules, with top-level keys replaced (e.g. timezone="Asia/Shanghai")."""
    if not overrides:
        return load_rules()
    data = load_rules().model_dump(mode="json", by_alias=True)
    data.update(overrides)
    return parse_rules(data)


def fixed_clock(now: datetime = FIXED, mode: str = "wall") -> KpiClock:
    return KpiClock(mode=mode, wall=lambda: now)  # type: ignore[arg-type]


def engine(r: Rules | None = None, now: datetime = FIXED, mode: str = "wall") -> KpiEngine:
    return KpiEngine(r or rules(), fixed_clock(now, mode))


def lines(events: Iterable[dict[str, Any] | bytes]) -> list[bytes]:
    return [e if isinstance(e, bytes) else orjson.dumps(e) for e in events]


def report(
    events: Iterable[dict[str, Any] | bytes],
    r: Rules | None = None,
    now: datetime = FIXED,
    mode: str = "wall",
) -> dict[str, Any]:
    return build_report(lines(events), engine(r, now, mode))


def rows(
    doc: dict[str, Any],
    period: str | None = None,
    rep: str | None = None,
    start: str | None = None,
) -> list[dict[str, Any]]:
    return [
        row
        for row in doc["periods"]
        if (period is None or row["period"] == period)
        and (rep is None or row["rep_id"] == rep)
        and (start is None or row["start"] == start)
    ]


def row(doc: dict[str, Any], period: str, start: str, rep: str = "rep-1") -> dict[str, Any]:
    found = rows(doc, period, rep, start)
    assert len(found) == 1, f"expected one {period} row at {start} for {rep}, got {len(found)}"
    return found[0]


def scope_row(doc: dict[str, Any], kind: str, name: str, period: str, start: str) -> dict[str, Any]:
    """The one report row of a team, region or company (`name` "" for the company)."""
    found = [
        r
        for r in doc["scopes"]
        if (r["scope"], r["name"], r["period"], r["start"]) == (kind, name, period, start)
    ]
    assert len(found) == 1, (kind, name, period, start, len(found))
    return found[0]


def pipe(doc: dict[str, Any], rep: str = "rep-1") -> dict[str, Any]:
    found = [p for p in doc["pipeline"] if p["rep_id"] == rep]
    assert len(found) == 1, f"expected one pipeline entry for {rep}, got {len(found)}"
    return found[0]


def dec(text: str) -> Decimal:
    return Decimal(text)


def date_of(text: str) -> date:
    return date.fromisoformat(text)


def hours_before(now: datetime, hours: float) -> datetime:
    return now - timedelta(hours=hours)


# ------------------------------------------------------------------------------ hypothesis
# Generated CRM event sets: several reps, deal funnels (in any event-time order, won deals with or
# without a cost, for a few customers), visits, quotes, surveys, leads, rep and team spend, and
# targets of every metric for reps, teams, the region and the company, all inside the default
# retention at FIXED and before it (never `future`).

REPS = ("rep-a", "rep-b", "rep-c")
TEAMS = ("north", "south")
STAGES = ("qualification", "discovery", "proposal", "negotiation", "commit")
CHANNELS = ("phone", "email", "visit", "web", "referral", "event", "other")
# Event times: the last ~80 days before the fixed clock, on a coarse grid so ties happen.
_ORIGIN = FIXED - timedelta(days=80)
times = st.integers(min_value=0, max_value=80 * 24 - 1).map(
    lambda h: (_ORIGIN + timedelta(hours=h)).isoformat()
)
amounts = st.integers(min_value=0, max_value=500_000).map(lambda c: f"{c // 100}.{c % 100:02d}")
CUSTOMERS = ("cust-1", "cust-2", "cust-3", "cust-4")
METRICS = ("revenue", "gross_margin", "visits", "deals_won", "new_customers")
MONEY_METRIC_NAMES = ("revenue", "gross_margin")
# Target periods inside the default retention: months and quarters split a year and a quarter.
TARGET_PERIODS = (
    ("month", "2026-10-01"),
    ("month", "2026-11-01"),
    ("quarter", "2026-10-01"),
    ("year", "2026-01-01"),
)


@st.composite
def deal_events(draw: st.DrawFn, rep: str, deal: str) -> list[dict[str, Any]]:
    team = draw(st.sampled_from(TEAMS))
    out: list[dict[str, Any]] = []
    kw = {"team": team, "region": "emea"}
    if draw(st.booleans()):
        out.append(
            deal_created(
                draw(times),
                deal,
                rep,
                amount=draw(amounts),
                stage=draw(st.sampled_from(STAGES)),
                channel=draw(st.sampled_from(CHANNELS)),
                **kw,
            )
        )
    for _ in range(draw(st.integers(0, 2))):
        out.append(
            stage_changed(
                draw(times),
                deal,
                draw(st.sampled_from(STAGES)),
                rep,
                amount=draw(st.none() | amounts),
                **kw,
            )
        )
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            out.append(visit(draw(times), rep, deal=deal, **kw))
        else:
            out.append(quote(draw(times), deal, rep, amount=draw(amounts), **kw))
    ending = draw(st.sampled_from(("open", "won", "lost")))
    if ending == "won":
        out.append(
            deal_won(
                draw(times),
                deal,
                rep,
                amount=draw(amounts),
                channel=draw(st.none() | st.sampled_from(CHANNELS)),
                deal_created_at=draw(st.none() | times),
                customer=draw(st.sampled_from(CUSTOMERS)),
                cost=draw(st.none() | amounts),
                **kw,
            )
        )
    elif ending == "lost":
        out.append(deal_lost(draw(times), deal, rep, **kw))
    return out


@st.composite
def event_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 8))):
        rep = draw(st.sampled_from(REPS))
        events.extend(draw(deal_events(rep, f"deal-{i}")))
    for _ in range(draw(st.integers(0, 6))):
        rep = draw(st.sampled_from(REPS))
        events.append(visit(draw(times), rep, team=draw(st.sampled_from(TEAMS))))
    for _ in range(draw(st.integers(0, 3))):
        rep = draw(st.sampled_from(REPS))
        kind, start = draw(
            st.sampled_from([("month", "2026-10-01"), ("month", "2026-11-01"), ("quarter", "2026-10-01")])
        )
        events.append(target(draw(times), kind, start, draw(amounts), rep))
    events.extend(draw(issue13_events()))
    # Event ids must be unique in a generated set; make them so whatever the builders drew.
    for n, event in enumerate(events):
        event["event_id"] = f"e{n:04d}"
    return events


@st.composite
def target_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Targets of any metric (money with a currency, counts whole) for reps, teams, the region
    `emea` (where every generated rep is) and the company; several revisions of one may occur."""
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 6))):
        metric = draw(st.sampled_from(METRICS))
        kind, start = draw(st.sampled_from(TARGET_PERIODS))
        money_ = metric in MONEY_METRIC_NAMES
        amount = draw(amounts) if money_ else str(draw(st.integers(0, 60)))
        scope = draw(st.sampled_from(("rep", "team", "region", "company")))
        team = draw(st.sampled_from(TEAMS))
        out.append(
            target(
                draw(times),
                kind,
                start,
                amount,
                draw(st.sampled_from(REPS)) if scope == "rep" else None,
                currency=BASE if money_ else None,
                metric=metric,
                scope=scope,
                team=team if scope in ("rep", "team") else None,
                region="emea" if scope in ("rep", "team", "region") else None,
            )
        )
    return out


@st.composite
def issue13_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Surveys (a response may be re-sent under a new event id), leads, rep and team spend, and
    targets by scope and metric."""
    out: list[dict[str, Any]] = []
    surveys: list[dict[str, Any]] = []
    for n in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(("csat", "nps")))
        surveys.append(
            survey(
                draw(times),
                kind,
                draw(st.integers(1, 5) if kind == "csat" else st.integers(0, 10)),
                draw(st.sampled_from(REPS)),
                survey_id=f"s-{n}",
                customer=draw(st.sampled_from(CUSTOMERS)),
                team=draw(st.sampled_from(TEAMS)),
            )
        )
    # A CRM re-sending a response: the same answer under a new event id (given by event_sets).
    resent = [dict(e) for e in surveys if draw(st.booleans())] if surveys else []
    out.extend(surveys + resent)
    for _ in range(draw(st.integers(0, 5))):
        out.append(
            lead(
                draw(times),
                draw(st.sampled_from(REPS)),
                channel=draw(st.sampled_from(CHANNELS)),
                team=draw(st.sampled_from(TEAMS)),
            )
        )
    for _ in range(draw(st.integers(0, 4))):
        out.append(
            spend(
                draw(times),
                draw(amounts),
                draw(st.sampled_from(("marketing", "sales"))),
                draw(st.none() | st.sampled_from(REPS)),  # None: the team's spend
                team=draw(st.sampled_from(TEAMS)),
            )
        )
    out.extend(draw(target_events()))
    return out


__all__: Sequence[str] = [
    "BASE",
    "FIXED",
    "deal_created",
    "deal_lost",
    "deal_won",
    "engine",
    "fixed_clock",
    "iso",
    "lines",
    "pipe",
    "quote",
    "report",
    "row",
    "rows",
    "rules",
    "stage_changed",
    "target",
    "utc",
    "visit",
]
