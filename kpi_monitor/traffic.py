"""Synthetic CRM traffic: reps in teams and regions working deal funnels, visits, quotes and
targets during business hours, seeded and pure (time is an argument); named scenarios."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from kpi_core.periods import Calendar, period_start, shift
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
BUSINESS_START, BUSINESS_HOURS = 8, 10  # 08:00-18:00 local, Monday to Friday


@dataclass(slots=True)
class Rep:
    rep_id: str
    team: str
    region: str
    open_deals: list[tuple[str, str, Decimal, str]] = field(
        default_factory=list
    )  # id, customer, amount, stage


@dataclass(frozen=True, slots=True)
class Funnel:
    """The proportions of a rep's CRM activity (fractions of its events), shared by history and
    live traffic so that targets, win rates and cycle lengths stay in proportion at any rate."""

    create: float = 0.12  # a new deal
    quote: float = 0.07  # a quote on an open deal
    advance: float = 0.15  # an open deal moves one stage on
    cycle_hours: float = 200.0  # mean business hours from created to closed (about 4 weeks)
    min_amount: int = 3000
    max_amount: int = 30000
    win_boost: Decimal = Decimal("0.05")  # added to the stage's win probability at close

    @property
    def mean_amount(self) -> Decimal:
        return Decimal(self.min_amount + self.max_amount) / 2


#: The declining team of the `decline` scenario: how much of its win chance, and of its visits
#: and quotes, is lost from the scenario's origin on (a step, so it shows at once against the
#: like-for-like previous period).
DECLINE_WINS = 0.7
DECLINE_ACTIVITY = 0.6
#: The `pace-behind` scenario: every rep's win chance is this much lower.
PACE_BEHIND_WINS = 0.6
#: Revenue won per deal created, over the mean amount (the funnel's win rate net of deals still open,
#: as measured); targets are set from it so that a steady rep attains about 100%.
NOMINAL_WIN_RATE = Decimal("0.28")


@dataclass
class TrafficGenerator:
    """Yields contract events (dicts) at increasing event times from `start`.

    `per_hour` is the business-hours pace of all reps together; targets follow from it (the
    revenue a rep makes at that pace with the funnel's proportions)."""

    rules: Rules
    reps: int = 12
    seed: int = 1
    scenario: str = "steady"
    declining_team: str = "north"
    per_hour: float = 40.0
    funnel: Funnel = field(default_factory=Funnel)
    _rng: random.Random = field(init=False)
    _reps: list[Rep] = field(init=False)
    _counter: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; allowed: {', '.join(SCENARIOS)}")
        if self.per_hour <= 0:
            raise ValueError(f"per_hour must be positive, got {self.per_hour}")
        self._rng = random.Random(self.seed)
        self._reps = [Rep(f"rep-{i:03d}", *TEAMS[i % len(TEAMS)]) for i in range(1, self.reps + 1)]
        self.calendar = Calendar(self.rules.zone, self.rules.fiscal_year_start_month)
        self.stages = list(self.rules.stages)
        # Per event of a rep, the chance of closing one of its n open deals is n * close_hazard:
        # in the steady state a deal then lives cycle_hours business hours whatever the pace.
        self._close_hazard = 1.0 / (self.funnel.cycle_hours * self.per_hour / self.reps)

    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self.seed}-{self._counter}"

    def monthly_target(self, rep: Rep, month: date) -> Decimal:
        """What `rep` should sell in `month` at the generator's pace: business hours of the
        month x events per rep-hour x deals created per event x win rate x mean amount, with
        some reps given stretch targets; rounded to 500."""
        next_month = shift("month", month, 1)
        weekdays = sum(
            1 for n in range((next_month - month).days) if (month + timedelta(days=n)).weekday() < 5
        )
        deals = Decimal(weekdays * BUSINESS_HOURS) * Decimal(str(self.per_hour)) / self.reps
        expected = deals * Decimal(str(self.funnel.create)) * NOMINAL_WIN_RATE * self.funnel.mean_amount
        stretch = Decimal("0.85") + Decimal(int(rep.rep_id[-3:]) % 4) / 10  # 85% .. 115%
        return (expected * stretch / 500).to_integral_value() * 500

    def targets(self, at: datetime) -> Iterator[dict[str, Any]]:
        """A monthly target per rep for the month of `at`."""
        month = period_start("month", self.calendar.local_date(at))
        for rep in self._reps:
            yield self._base(rep, "target.set", at) | {
                "period": "month",
                "period_start": month.isoformat(),
                "amount": str(self.monthly_target(rep, month)),
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

    def _activity(self, rep: Rep, at: datetime, wins_lost: float) -> dict[str, Any]:
        """One plausible CRM action of `rep` at `at`; `wins_lost` in [0, 1] is the share of its
        usual win chance the scenario takes away."""
        rng, funnel = self._rng, self.funnel
        if rep.open_deals and rng.random() < min(0.5, len(rep.open_deals) * self._close_hazard):
            return self._close(rep, at, wins_lost)
        roll = rng.random()
        if roll < funnel.create or not rep.open_deals and roll < funnel.create + funnel.quote:
            return self._create(rep, at)
        if rep.open_deals and roll < funnel.create + funnel.quote:
            return self._quote(rep, at)
        if rep.open_deals and roll < funnel.create + funnel.quote + funnel.advance:
            event = self._advance(rep, at)
            if event is not None:
                return event
        return self._visit(rep, at)

    def _visit(self, rep: Rep, at: datetime) -> dict[str, Any]:
        rng = self._rng
        visit = self._base(rep, "visit.completed", at) | {
            "visit_id": self._id("visit"),
            "customer_id": f"cust-{rng.randint(1, 5000)}",
            "duration_minutes": rng.choice((15, 30, 45, 60, 90)),
        }
        if rep.open_deals and rng.random() < 0.5:
            deal_id, customer, _, _ = rng.choice(rep.open_deals)
            visit |= {"deal_id": deal_id, "customer_id": customer}
        return visit

    def _create(self, rep: Rep, at: datetime) -> dict[str, Any]:
        rng, funnel = self._rng, self.funnel
        deal_id, customer = self._id("deal"), f"cust-{rng.randint(1, 5000)}"
        amount = Decimal(rng.randrange(funnel.min_amount, funnel.max_amount + 1, 250))
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

    def _quote(self, rep: Rep, at: datetime) -> dict[str, Any]:
        deal_id, customer, amount, _ = self._rng.choice(rep.open_deals)
        return self._base(rep, "quote.sent", at) | {
            "quote_id": self._id("quote"),
            "deal_id": deal_id,
            "customer_id": customer,
            "amount": str(amount),
            "currency": self.rules.currency,
        }

    def _advance(self, rep: Rep, at: datetime) -> dict[str, Any] | None:
        index = self._rng.randrange(len(rep.open_deals))
        deal_id, customer, amount, stage = rep.open_deals[index]
        if stage == self.stages[-1]:
            return None
        new_stage = self.stages[self.stages.index(stage) + 1]
        rep.open_deals[index] = (deal_id, customer, amount, new_stage)
        return self._base(rep, "deal.stage_changed", at) | {
            "deal_id": deal_id,
            "customer_id": customer,
            "stage": new_stage,
        }

    def _close(self, rep: Rep, at: datetime, wins_lost: float) -> dict[str, Any]:
        rng = self._rng
        deal_id, customer, amount, stage = rep.open_deals.pop(rng.randrange(len(rep.open_deals)))
        # Deals further on win more often: the stage's probability from the rules file.
        chance = float(min(Decimal(1), self.rules.stages[stage] + self.funnel.win_boost))
        if rng.random() < chance * (1 - wins_lost):
            return self._base(rep, "deal.won", at) | {
                "deal_id": deal_id,
                "customer_id": customer,
                "amount": str(amount),
                "currency": self.rules.currency,
            }
        return self._base(rep, "deal.lost", at) | {"deal_id": deal_id, "customer_id": customer}

    def _declining(self, rep: Rep, at: datetime, origin: datetime) -> bool:
        scenario_declines = self.scenario in ("decline", "visits-drop")
        return scenario_declines and rep.team == self.declining_team and at >= origin

    def events(
        self, start: datetime, per_hour: float | None = None, origin: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Endless events from `start`, about `per_hour` (default: the generator's pace) per
        business hour, weekdays only. `origin` is when a scenario's change begins (default:
        `start`)."""
        origin = origin or start
        rate = per_hour or self.per_hour
        at = start
        month = None
        while True:
            local = at.astimezone(self.calendar.zone)
            this_month = (local.year, local.month)
            if this_month != month:
                month = this_month
                yield from self.targets(at)
            if local.weekday() >= 5 or not BUSINESS_START <= local.hour < BUSINESS_START + BUSINESS_HOURS:
                at += timedelta(minutes=15)  # outside business hours: move on, emit nothing
                continue
            event = self.next_activity(at, origin)
            if event is not None:
                yield event
            at += timedelta(seconds=self._rng.expovariate(rate / 3600))

    def next_activity(self, at: datetime, origin: datetime) -> dict[str, Any] | None:
        """One event of a random rep at `at` (None when the scenario suppresses it)."""
        rep = self._rng.choice(self._reps)
        declining = self._declining(rep, at, origin)
        if declining and self._rng.random() < DECLINE_ACTIVITY:
            # Fewer visits and quotes; deals still move and close (so revenue falls through
            # the win chance alone in `decline`, and not at all in `visits-drop`).
            event = self._activity(rep, at, 0.0 if self.scenario == "visits-drop" else DECLINE_WINS)
            return event if event["type"] not in ("visit.completed", "quote.sent") else None
        wins_lost = 0.0
        if declining and self.scenario == "decline":
            wins_lost = DECLINE_WINS
        elif self.scenario == "pace-behind":
            wins_lost = PACE_BEHIND_WINS
        return self._activity(rep, at, wins_lost)


def decline_origin(calendar: Calendar, now: datetime) -> datetime:
    """Where the `decline` and `visits-drop` scenarios begin: the start of the current week or
    month in the business calendar, whichever is earlier, so that the declining team is behind
    the like-for-like previous week and month from the first event on."""
    today = calendar.local_date(now)
    first = min(period_start("week", today), period_start("month", today))
    return datetime(first.year, first.month, first.day, tzinfo=calendar.zone)


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
