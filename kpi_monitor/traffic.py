"""Synthetic CRM traffic: reps in teams and regions working deal funnels for their customers and
prospects, visits, quotes, leads, surveys, spend and a target plan during business hours, seeded
and pure (time is an argument); named scenarios."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from kpi_core.periods import Calendar
from kpi_monitor.traffic_customers import Book, Buying, Customer, CustomerDesk
from kpi_monitor.traffic_extras import (
    BUSINESS_HOURS,
    BUSINESS_START,
    business_after,
    cost_of,
    csat_score,
    lead_channel,
    nps_score,
)
from kpi_monitor.traffic_funnel import TEAMS, Funnel, OpenDeal, Rep
from kpi_monitor.traffic_pace import Pace
from kpi_rules import Rules
from kpi_rules.vocabulary import Channel, DealType

SCENARIOS: tuple[str, ...] = ("steady", "decline", "visits-drop", "pace-behind", "churn", "messy")
#: Scenarios that befall one team (north unless `<scenario>:<team>` names another).
TEAM_SCENARIOS: tuple[str, ...] = ("decline", "visits-drop", "churn")
#: How a repeat deal comes in (customers call, write or are visited).
REPEAT_CHANNELS: tuple[str, ...] = (Channel.PHONE, Channel.EMAIL, Channel.VISIT, Channel.WEB)
#: The declining team of the `decline` scenario: how much of its win chance, and of its visits
#: and quotes, is lost from the scenario's origin on (a step, so it shows at once against the
#: like-for-like previous period).
DECLINE_WINS = 0.7
DECLINE_ACTIVITY = 0.6
#: The `churn` scenario: the chance that a customer of its team leaves for good at a buying
#: occasion (instead of asking for a deal), from `churn_after_days` + CHURN_LEAD_DAYS before the
#: current month on (see churn_origin).
CHURN_LEAVING = 0.8
CHURN_LEAD_DAYS = 30
#: The `pace-behind` scenario: every rep's win chance is this much lower.
PACE_BEHIND_WINS = 0.6

Maker = Callable[[datetime], dict[str, Any]]


@dataclass
class TrafficGenerator:
    """Yields contract events (dicts) at increasing event times from `start`.

    `per_hour` is the business-hours pace of the reps' activity (deals, visits, quotes) all
    together; leads, surveys, spend and targets come on top, in proportion. Targets follow from
    the pace (what a rep makes at that pace with the funnel's proportions). `scenario` is a
    name of SCENARIOS or several joined by `+`; those of TEAM_SCENARIOS may name their team
    (`decline+churn:east`: north declines, east loses customers)."""

    rules: Rules
    reps: int = 12
    seed: int = 1
    scenario: str = "steady"
    declining_team: str = "north"  # of `decline` and `visits-drop` (`decline:<team>` names another)
    churning_team: str = "north"  # of `churn` (`churn:<team>` names another)
    per_hour: float = 40.0
    funnel: Funnel = field(default_factory=Funnel)
    buying: Buying = field(default_factory=Buying)
    #: When the `churn` scenario's team stops buying again (None: the `origin` of `events`).
    churn_from: datetime | None = None
    #: When the declining team's visits and quotes fall (None: the `origin` of `events`).
    quieter_from: datetime | None = None
    _rng: random.Random = field(init=False)
    _reps: list[Rep] = field(init=False)
    _counter: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.effects = self._parse(self.scenario)
        if self.per_hour <= 0:
            raise ValueError(f"per_hour must be positive, got {self.per_hour}")
        rng = self._rng = random.Random(self.seed)
        self._reps = []
        for i in range(1, self.reps + 1):
            team, region = TEAMS[i % len(TEAMS)]
            self._reps.append(
                Rep(
                    f"rep-{i:03d}", team, region,
                    margin=rng.uniform(0.25, 0.42),
                    satisfied=rng.uniform(0.74, 0.92),
                    lead_to_deal=rng.uniform(0.22, 0.38),
                    campaigns=i % 3 == 0,
                    cost_of_sales=rng.uniform(0.07, 0.12),
                )
            )  # fmt: skip
        self._team_books: dict[str, list[Book]] = {}
        for rep in self._reps:
            self._team_books.setdefault(rep.team, []).append(rep.book)
        self.calendar = Calendar(self.rules.zone, self.rules.fiscal_year_start_month)
        self.stages = list(self.rules.stages)
        self.desk = CustomerDesk(rng, self.buying, self.funnel.min_amount, self.funnel.max_amount)
        # Per event of a rep, each open deal closes with this chance: in the steady state a deal
        # then lives its cycle's business hours whatever the pace.
        per_rep_hour = self.per_hour / self.reps
        self._hazard = {
            True: 1.0 / (self.funnel.repeat_cycle_hours * per_rep_hour),
            False: 1.0 / (self.funnel.new_cycle_hours * per_rep_hour),
        }
        self._pending: list[tuple[datetime, int, Maker]] = []  # events that follow later
        self._seq = itertools.count()  # their order among equal times
        self._opened = False
        self.pace = Pace(self.rules, self._reps, self.per_hour, self.funnel, self.calendar, self._id, rng)

    def _parse(self, scenario: str) -> frozenset[str]:
        """The scenario names of `decline+churn:east` (setting the teams they name)."""
        names = set()
        teams = [team for team, _ in TEAMS]
        for part in scenario.split("+"):
            name, _, team = part.partition(":")
            if name not in SCENARIOS:
                raise ValueError(
                    f"unknown scenario {name!r}; allowed: {', '.join(SCENARIOS)} (or several joined "
                    "by +, e.g. decline+churn:east)"
                )
            if team and (name not in TEAM_SCENARIOS or team not in teams):
                raise ValueError(
                    f"scenario {part!r}: only {', '.join(TEAM_SCENARIOS)} name a team, one of "
                    f"{', '.join(teams)}"
                )
            if team and name == "churn":
                self.churning_team = team
            elif team:
                self.declining_team = team
            names.add(name)
        return frozenset(names)

    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self.seed}-{self._counter}"

    def monthly_target(self, rep: Rep, month: date) -> Decimal:
        """What `rep` should sell in `month` at the generator's pace (see Pace.monthly_target)."""
        return self.pace.monthly_target(rep.seat, month)

    def targets(self, at: datetime) -> Iterator[dict[str, Any]]:
        """The target plan of the year of `at` unless sent, and this month's (see Pace.targets)."""
        return self.pace.targets(at)

    def spend(self, at: datetime) -> Iterator[dict[str, Any]]:
        """A week's spend recorded at `at` (see Pace.spend)."""
        return self.pace.spend(at)

    # ------------------------------------------------------------------------- activity
    def _base(self, rep: Rep, kind: str, at: datetime) -> dict[str, Any]:
        return {
            "event_id": self._id("ev"),
            "type": kind,
            "occurred_at": at.isoformat(timespec="seconds"),
            "rep_id": rep.rep_id,
            "team": rep.team,
            "region": rep.region,
        }

    def _later(self, at: datetime, hours: float, maker: Maker) -> None:
        """`maker` gives an event `hours` business hours after `at` (see `due`)."""
        when = business_after(at, hours, self.calendar.zone)
        heapq.heappush(self._pending, (when, next(self._seq), maker))

    def due(self, at: datetime) -> Iterator[dict[str, Any]]:
        """The events that follow earlier ones (leads, surveys) due by `at`, at their own time."""
        while self._pending and self._pending[0][0] <= at:
            when, _, maker = heapq.heappop(self._pending)
            yield maker(when)

    def drain(self, at: datetime) -> Iterator[dict[str, Any]]:
        """Every pending event, stamped `at` (live traffic runs faster than business hours)."""
        while self._pending:
            _, _, maker = heapq.heappop(self._pending)
            yield maker(at)

    def open(self, at: datetime) -> None:
        """Give every rep the book of customers it has when the simulation starts at `at`
        (once): about as many as its share of repeat deals keeps buying."""
        if self._opened:
            return
        self._opened = True
        per_day = self.per_hour / self.reps * BUSINESS_HOURS * 5 / 7 * self.funnel.create
        # (measured: the book a rep keeps in the steady state is about 1.3 times this)
        size = round(1.3 * per_day * (1 - self.buying.new_share) * self.buying.rhythm_median_days)
        for rep in self._reps:
            self.desk.open_book(rep.book, at, max(1, size))

    def _activity(self, rep: Rep, at: datetime, wins_lost: float, leaving: float) -> dict[str, Any]:
        """One plausible CRM action of `rep` at `at`; `wins_lost` in [0, 1] is the share of its
        usual win chance the scenario takes away, `leaving` the chance that a customer of the
        rep leaves for good when its next buying occasion comes."""
        rng, funnel = self._rng, self.funnel
        deal = self._closing(rep)
        if deal is not None:
            return self._close(rep, deal, at, wins_lost)
        roll = rng.random()
        if roll < funnel.create or not rep.open_deals and roll < funnel.create + funnel.quote:
            return self._create(rep, at, leaving)
        if rep.open_deals and roll < funnel.create + funnel.quote:
            return self._quote(rep, at)
        if rep.open_deals and roll < funnel.create + funnel.quote + funnel.advance:
            event = self._advance(rep, at)
            if event is not None:
                return event
        return self._visit(rep, at)

    def _closing(self, rep: Rep) -> OpenDeal | None:
        """The open deal that closes at this event of `rep`, if any."""
        if not rep.open_deals:
            return None
        weights = [self._hazard[d.deal_type is not DealType.NEW_BUSINESS] for d in rep.open_deals]
        if self._rng.random() >= min(0.5, sum(weights)):
            return None
        index = self._rng.choices(range(len(weights)), weights=weights)[0]
        return rep.open_deals.pop(index)

    def _visit(self, rep: Rep, at: datetime) -> dict[str, Any]:
        rng = self._rng
        visit = self._base(rep, "visit.completed", at) | {"visit_id": self._id("visit")}
        if rep.open_deals and rng.random() < 0.4:
            deal = rng.choice(rep.open_deals)
            visit |= {"customer_id": deal.customer.customer_id, "deal_id": deal.deal_id}
        else:
            visit["customer_id"] = self.desk.to_visit(rep.book).customer_id
        visit["duration_minutes"] = rng.choice((15, 30, 45, 60, 90))
        return visit

    def _create(self, rep: Rep, at: datetime, leaving: float) -> dict[str, Any]:
        rng = self._rng
        teammates = [b for b in self._team_books[rep.team] if b is not rep.book]
        customer, deal_type = self.desk.for_deal(rep.book, teammates, at, leaving)
        is_new = deal_type is DealType.NEW_BUSINESS
        channel = lead_channel(rng) if is_new else rng.choice(REPEAT_CHANNELS)
        deal = OpenDeal(
            self._id("deal"),
            customer,
            self.desk.amount(customer, deal_type),
            self.stages[0],
            deal_type,
            channel,
        )
        rep.open_deals.append(deal)
        # The leads behind the deals: about 1 / lead_to_deal of them for each deal created.
        leads = 1 / rep.lead_to_deal
        count = int(leads) + (1 if rng.random() < leads - int(leads) else 0)
        for n in range(count):
            first = n == 0 and is_new
            self._later(
                at,
                rng.uniform(0, 8),
                self._lead(rep, channel if first else None, customer if first else None),
            )
        return self._base(rep, "deal.created", at) | {
            "deal_id": deal.deal_id,
            "customer_id": customer.customer_id,
            "amount": str(deal.amount),
            "currency": self.rules.currency,
            "stage": deal.stage,
            "channel": str(channel),
        }

    def _lead(self, rep: Rep, channel: str | None, customer: Customer | None) -> Maker:
        def make(at: datetime) -> dict[str, Any]:
            event = self._base(rep, "lead.created", at) | {
                "lead_id": self._id("lead"),
                "channel": str(channel or lead_channel(self._rng)),
            }
            if customer is not None:
                event["customer_id"] = customer.customer_id
            return event

        return make

    def _quote(self, rep: Rep, at: datetime) -> dict[str, Any]:
        deal = self._rng.choice(rep.open_deals)
        return self._base(rep, "quote.sent", at) | {
            "quote_id": self._id("quote"),
            "deal_id": deal.deal_id,
            "customer_id": deal.customer.customer_id,
            "amount": str(deal.amount),
            "currency": self.rules.currency,
        }

    def _advance(self, rep: Rep, at: datetime) -> dict[str, Any] | None:
        deal = rep.open_deals[self._rng.randrange(len(rep.open_deals))]
        if deal.stage == self.stages[-1]:
            return None
        deal.stage = self.stages[self.stages.index(deal.stage) + 1]
        return self._base(rep, "deal.stage_changed", at) | {
            "deal_id": deal.deal_id,
            "customer_id": deal.customer.customer_id,
            "stage": deal.stage,
        }

    def _close(self, rep: Rep, deal: OpenDeal, at: datetime, wins_lost: float) -> dict[str, Any]:
        rng, funnel = self._rng, self.funnel
        is_new = deal.deal_type is DealType.NEW_BUSINESS
        # Deals further on win more often (the stage's probability from the rules file), and a
        # customer buying again more often than a prospect; one that stopped buying never does.
        chance = min(1.0, float(self.rules.stages[deal.stage] + funnel.win_boost))
        if is_new:
            chance *= funnel.new_win_factor
        else:
            chance = funnel.repeat_win_floor + (1 - funnel.repeat_win_floor) * chance
        won = rng.random() < chance * (1 - wins_lost)
        self.desk.closed(rep.book, deal.customer, won, at)
        customer_id = deal.customer.customer_id
        if not won:
            return self._base(rep, "deal.lost", at) | {"deal_id": deal.deal_id, "customer_id": customer_id}
        event = self._base(rep, "deal.won", at) | {
            "deal_id": deal.deal_id,
            "customer_id": customer_id,
            "amount": str(deal.amount),
            "currency": self.rules.currency,
            "deal_type": deal.deal_type.value,
        }
        if rng.random() < funnel.cost_coverage:
            event["cost"] = str(cost_of(rng, deal.amount, rep.margin, deal.channel, deal.deal_type))
        if rng.random() < funnel.csat_response:
            self._later(at, rng.uniform(4, 60), self._survey(rep, deal.customer, "csat", deal.deal_id))
        if rng.random() < funnel.nps_chance and rep.book.customers:
            surveyed = rng.choice(rep.book.customers)
            self._later(at, rng.uniform(0, 40), self._survey(rep, surveyed, "nps", None))
        return event

    def _survey(self, rep: Rep, customer: Customer, kind: str, deal_id: str | None) -> Maker:
        def make(at: datetime) -> dict[str, Any]:
            score = (csat_score if kind == "csat" else nps_score)(self._rng, rep.satisfied)
            event = self._base(rep, "survey.completed", at) | {
                "survey_id": self._id("survey"),
                "customer_id": customer.customer_id,
                "kind": kind,
                "score": score,
            }
            if deal_id is not None:
                event["deal_id"] = deal_id
            return event

        return make

    # ------------------------------------------------------------------------- scenarios
    def place(self, now: datetime) -> datetime:
        """Place the scenarios' changes for a history ending at `now` (churn_from, quieter_from);
        returns the `origin` to give `events`: where the declining team starts to win less."""
        self.churn_from = churn_origin(self.calendar, now, self.rules.customers.churn_after_days)
        self.quieter_from = quieter_origin(self.calendar, now)
        return decline_origin(self.calendar, now)

    def _declining(self, rep: Rep, at: datetime, origin: datetime) -> bool:
        scenario_declines = bool(self.effects & {"decline", "visits-drop"})
        return scenario_declines and rep.team == self.declining_team and at >= origin

    def _leaving(self, rep: Rep, at: datetime, origin: datetime) -> float:
        """The `churn` scenario: from `churn_from` on, the team's customers mostly stop buying
        from it (each leaves at a buying occasion with the chance CHURN_LEAVING)."""
        since = self.churn_from or origin
        churns = "churn" in self.effects and rep.team == self.churning_team and at >= since
        return CHURN_LEAVING if churns else 0.0

    def events(
        self, start: datetime, per_hour: float | None = None, origin: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Endless events from `start`, about `per_hour` (default: the generator's pace) activity
        events per business hour, weekdays only, with the leads and surveys they bring, a
        week's spend on its first business hour and the target plan. `origin` is when a
        scenario's change begins (default: `start`)."""
        origin = origin or start
        rate = per_hour or self.per_hour
        self.open(start)
        at = start
        month = week = None
        while True:
            local = at.astimezone(self.calendar.zone)
            this_month = (local.year, local.month)
            if this_month != month:
                month = this_month
                yield from self.targets(at)
            if local.weekday() >= 5 or not BUSINESS_START <= local.hour < BUSINESS_START + BUSINESS_HOURS:
                at += timedelta(minutes=15)  # outside business hours: move on, emit nothing
                continue
            this_week = local.isocalendar()[:2]
            if this_week != week:
                week = this_week
                yield from self.spend(at)
            yield from self.due(at)
            event = self.next_activity(at, origin)
            if event is not None:
                yield event
            at += timedelta(seconds=self._rng.expovariate(rate / 3600))

    def next_activity(self, at: datetime, origin: datetime) -> dict[str, Any] | None:
        """One activity event (deal, visit, quote) of a random rep at `at` (None when the
        scenario suppresses it); the leads and surveys it brings wait in `due`."""
        self.open(at)
        rep = self._rng.choice(self._reps)
        leaving = self._leaving(rep, at, origin)
        wins_lost = 0.0
        if self._declining(rep, at, origin) and "decline" in self.effects:
            wins_lost = DECLINE_WINS
        elif "pace-behind" in self.effects:
            wins_lost = PACE_BEHIND_WINS
        quieter = self._declining(rep, at, self.quieter_from or origin)
        if quieter and self._rng.random() < DECLINE_ACTIVITY:
            # Fewer visits and quotes; deals still move and close (so revenue falls through
            # the win chance alone in `decline`, and not at all in `visits-drop`).
            event = self._activity(rep, at, wins_lost, leaving)
            return event if event["type"] not in ("visit.completed", "quote.sent") else None
        return self._activity(rep, at, wins_lost, leaving)


def _midnight(calendar: Calendar, day: date) -> datetime:
    """The start of a local day, in the business calendar's zone (as the scenarios print it)."""
    return datetime(day.year, day.month, day.day, tzinfo=calendar.zone)


def decline_origin(calendar: Calendar, now: datetime) -> datetime:
    """Where the `decline` and `visits-drop` scenarios begin: the start of the current week or
    month in the business calendar, whichever is earlier, so that the declining team is behind
    the like-for-like previous week and month from the first event on."""
    first = min(calendar.start_of("week", now), calendar.start_of("month", now))
    return _midnight(calendar, first)


def quieter_origin(calendar: Calendar, now: datetime) -> datetime:
    """Where the declining team's visits and quotes fall: the start of the current week, so that
    the week compared with (SalesVisitsDrop's) is always one before the fall. (From the month's
    start, the previous week had fallen too from the second week of a month on, and only the
    noisier revenue comparison was left to raise an alert.)"""
    first = calendar.start_of("week", now)
    return _midnight(calendar, first)


def churn_origin(calendar: Calendar, now: datetime, churn_after_days: int) -> datetime:
    """Where the `churn` scenario begins: `churn_after_days` + CHURN_LEAD_DAYS before the start of
    the current month. A customer churns `churn_after_days` after its last purchase, so the
    team's churn is at its new, higher rate through the previous and the current month."""
    first = calendar.start_of("month", now)
    start = _midnight(calendar, first)
    return start - timedelta(days=churn_after_days + CHURN_LEAD_DAYS)


RAW = "__raw__"  # an event dict carrying this key stands for raw (invalid) message bytes
#: Types whose rep_id is optional (a team's spend, a scope's target): a copy without it may be valid.
_REP_OPTIONAL = ("target.set", "spend.recorded")


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
    elif event.get("type") in _REP_OPTIONAL:
        bad.pop("amount", None)  # required on both
    else:
        bad.pop("rep_id", None)
    return bad
