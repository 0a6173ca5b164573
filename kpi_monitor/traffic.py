"""Synthetic CRM traffic: reps in teams and regions working deal funnels, visits, quotes and
targets during business hours, seeded and pure (time is an argument); named scenarios."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from kpi_core.periods import Calendar, period_start
from kpi_rules import Rules
from kpi_rules.vocabulary import Channel, values

SCENARIOS: tuple[str, ...] = ("steady", "decline", "visits-drop", "pace-behind", "messy")
TEAMS: tuple[tuple[str, str], ...] = (
    ("north", "emea"),
    ("south", "emea"),
    ("east", "apac"),
    ("west", "amer"),
)
CHANNELS: tuple[str, ...] = values(Channel)


@dataclass(slots=True)
class Rep:
    rep_id: str
    team: str
    region: str
    open_deals: list[tuple[str, str, Decimal, str]] = field(
        default_factory=list
    )  # id, customer, amount, stage


@dataclass
class TrafficGenerator:
    """Yields contract events (dicts) at increasing event times from `start`."""

    rules: Rules
    reps: int = 12
    seed: int = 1
    scenario: str = "steady"
    declining_team: str = "north"
    _rng: random.Random = field(init=False)
    _reps: list[Rep] = field(init=False)
    _counter: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; allowed: {', '.join(SCENARIOS)}")
        self._rng = random.Random(self.seed)
        self._reps = [Rep(f"rep-{i:03d}", *TEAMS[i % len(TEAMS)]) for i in range(1, self.reps + 1)]
        self.calendar = Calendar(self.rules.zone, self.rules.fiscal_year_start_month)
        self.stages = list(self.rules.stages)

    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self.seed}-{self._counter}"

    def targets(self, at: datetime) -> Iterator[dict[str, Any]]:
        """A monthly target per rep for the month of `at`."""
        month = period_start("month", self.calendar.local_date(at))
        for rep in self._reps:
            yield self._base(rep, "target.set", at) | {
                "period": "month",
                "period_start": month.isoformat(),
                "amount": str(Decimal(60000 + 5000 * (int(rep.rep_id[-3:]) % 4))),
                "currency": self.rules.currency,
            }

    def _base(self, rep: Rep, kind: str, at: datetime) -> dict[str, Any]:
        return {
            "event_id": self._id("ev"),
            "type": kind,
            "occurred_at": at.isoformat(timespec="seconds"),
            "rep_id": rep.rep_id,
            "team": rep.team,
            "region": rep.region,
        }

    def _activity(self, rep: Rep, at: datetime, decline: float) -> dict[str, Any]:
        """One plausible CRM action of `rep` at `at`; `decline` in [0, 1] weakens the funnel."""
        rng = self._rng
        roll = rng.random()
        if roll < 0.45 or not rep.open_deals and roll < 0.6:
            visit = self._base(rep, "visit.completed", at) | {
                "visit_id": self._id("visit"),
                "customer_id": f"cust-{rng.randint(1, 5000)}",
                "duration_minutes": rng.choice((15, 30, 45, 60, 90)),
            }
            if rep.open_deals and rng.random() < 0.5:
                deal_id, customer, _, _ = rng.choice(rep.open_deals)
                visit |= {"deal_id": deal_id, "customer_id": customer}
            return visit
        if roll < 0.6 or not rep.open_deals:
            deal_id, customer = self._id("deal"), f"cust-{rng.randint(1, 5000)}"
            amount = Decimal(rng.randrange(2000, 40000, 250))
            stage = self.stages[0]
            rep.open_deals.append((deal_id, customer, amount, stage))
            return self._base(rep, "deal.created", at) | {
                "deal_id": deal_id,
                "customer_id": customer,
                "amount": str(amount),
                "currency": self.rules.currency,
                "stage": stage,
                "channel": rng.choice(CHANNELS),
            }
        index = rng.randrange(len(rep.open_deals))
        deal_id, customer, amount, stage = rep.open_deals[index]
        if roll < 0.72:
            return self._base(rep, "quote.sent", at) | {
                "quote_id": self._id("quote"),
                "deal_id": deal_id,
                "customer_id": customer,
                "amount": str(amount),
                "currency": self.rules.currency,
            }
        if roll < 0.84 and stage != self.stages[-1]:
            new_stage = self.stages[self.stages.index(stage) + 1]
            rep.open_deals[index] = (deal_id, customer, amount, new_stage)
            return self._base(rep, "deal.stage_changed", at) | {
                "deal_id": deal_id,
                "customer_id": customer,
                "stage": new_stage,
            }
        rep.open_deals.pop(index)
        if rng.random() < 0.55 * (1 - decline):
            return self._base(rep, "deal.won", at) | {
                "deal_id": deal_id,
                "customer_id": customer,
                "amount": str(amount),
                "currency": self.rules.currency,
            }
        return self._base(rep, "deal.lost", at) | {"deal_id": deal_id, "customer_id": customer}

    def _decline(self, rep: Rep, at: datetime, origin: datetime) -> float:
        """How much this scenario weakens `rep` at `at` (0 = normal)."""
        if self.scenario == "decline" and rep.team == self.declining_team:
            days = (at - origin).total_seconds() / 86400
            return min(0.9, days / 10) if days > 0 else 0.0
        if self.scenario == "pace-behind":
            return 0.6
        return 0.0

    def events(
        self, start: datetime, per_hour: float, origin: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Endless events from `start`, about `per_hour` per business hour, weekdays only.
        `origin` is when a scenario's change begins (default: `start`)."""
        origin = origin or start
        at = start
        month = None
        while True:
            local = at.astimezone(self.calendar.zone)
            this_month = (local.year, local.month)
            if this_month != month:
                month = this_month
                yield from self.targets(at)
            if local.weekday() >= 5 or not 8 <= local.hour < 18:
                at += timedelta(minutes=15)  # outside business hours: move on, emit nothing
                continue
            event = self.next_activity(at, origin)
            if event is not None:
                yield event
            at += timedelta(seconds=self._rng.expovariate(per_hour / 3600))

    def next_activity(self, at: datetime, origin: datetime) -> dict[str, Any] | None:
        """One event of a random rep at `at` (None when the scenario suppresses it)."""
        rep = self._rng.choice(self._reps)
        if self.scenario == "visits-drop" and rep.team == self.declining_team and at > origin:
            if self._rng.random() < 0.6:
                return None
        return self._activity(rep, at, self._decline(rep, at, origin))


RAW = "__raw__"  # an event dict carrying this key stands for raw (invalid) message bytes


def messy(events: Iterator[dict[str, Any]], seed: int = 1) -> Iterator[dict[str, Any]]:
    """Real-world mess around valid events: CRM retries (duplicates), out-of-order delivery,
    events older than any retained period, and malformed messages of every rejection kind."""
    rng = random.Random(seed)
    held: list[dict[str, Any]] = []
    for event in events:
        roll = rng.random()
        if roll < 0.05:
            yield dict(event)  # a retry: the same event_id twice
        elif roll < 0.10:
            held.append(event)  # delivered later, after newer events
            continue
        elif roll < 0.13:
            yield _malformed(event, rng)
        yield event
        if held and rng.random() < 0.3:
            yield held.pop(0)
    yield from held


def _malformed(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    bad = dict(event)
    bad["event_id"] = f"{event['event_id']}-bad"
    kind = rng.choice(("json", "naive", "negative", "type", "missing", "currency", "late"))
    if kind == "json":
        return {RAW: b'{"event_id": "broken", "type": "visit.completed", '}
    if kind == "naive":
        bad["occurred_at"] = str(bad["occurred_at"])[:19]
    elif kind == "negative" and "amount" in bad:
        bad["amount"] = "-" + str(bad["amount"])
    elif kind == "type":
        bad["type"] = "deal.exploded"
    elif kind == "currency" and "currency" in bad:
        bad["currency"] = "XXX"
    elif kind == "late":
        bad["occurred_at"] = "2001-01-01T09:00:00+00:00"
    else:
        bad.pop("rep_id", None)
    return bad
