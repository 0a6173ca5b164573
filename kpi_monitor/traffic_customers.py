"""Simulated customers: each rep's book of buying customers and prospects, when each buys again,
who is visited, and the rare customer that moves to another rep."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from kpi_rules.vocabulary import DealType


@dataclass(slots=True)
class Customer:
    """A company a rep sells to (or courts: a prospect until its first purchase)."""

    customer_id: str
    rhythm_days: float  # mean days between its buying occasions (each one a repeat deal)
    size: Decimal  # its usual order value
    attention: float  # its share of the rep's visits (0: visited only about a deal)
    next_due: datetime  # when its next buying occasion opens
    open_deals: int = 0
    bought: bool = False  # a customer (has bought), else a prospect
    last_bought: datetime | None = None


@dataclass(slots=True)
class Book:
    """A rep's customers (they buy again) and prospects (visited, may become new business)."""

    customers: list[Customer] = field(default_factory=list)
    prospects: list[Customer] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Buying:
    """How customers buy. The defaults give a B2B book where a customer has a buying occasion
    every one to four weeks (a repeat deal, about 40% of them won), so buys every month or so
    (measured at the quick start's pace: median 34 days between purchases, 92% within 90): with
    churn after 90 days without a purchase most customers stay active, some lapse (and often
    come back) and a few leave for good. In the steady state about a tenth of a team's active
    customers churn in a month, about as many as new customers replace
    (tests/unit/test_traffic_business.py)."""

    rhythm_median_days: float = 14.0  # median of the customers' mean days between occasions
    rhythm_spread: float = 0.4  # log-normal sigma of that rhythm over customers
    min_rhythm_days: float = 7.0
    max_rhythm_days: float = 75.0
    new_share: float = 0.12  # share of new deals that go to prospects even when customers wait
    move_chance: float = 0.02  # a repeat deal whose customer moves over from a teammate
    walk_away: float = 0.05  # a customer whose repeat deal is lost buys elsewhere from then on
    lapsed_days: float = 110.0  # a customer with no purchase for this long has mostly moved on:
    lapsed_leave: float = 0.8  # it leaves the book with this chance when its occasion comes
    expansion_share: float = 0.35  # of repeat deals (the rest are renewals)
    neglected_share: float = 0.25  # customers the rep visits only about a deal
    prospects: int = 8  # prospects a rep courts at a time
    max_open: int = 2  # deals a customer has open at once (occasions wait for a free one)


class CustomerDesk:
    """Customers of every rep, drawn from one seeded random source (ids never repeat, so a customer
    is shared by two reps only after a move)."""

    def __init__(self, rng: random.Random, buying: Buying, min_amount: int, max_amount: int) -> None:
        self.rng = rng
        self.buying = buying
        self.min_amount, self.max_amount = min_amount, max_amount
        self._ids: set[int] = set()

    def _new_id(self) -> str:
        while True:
            number = self.rng.randrange(1_000_000, 10_000_000)
            if number not in self._ids:
                self._ids.add(number)
                return f"cust-{number}"

    def _rhythm(self) -> float:
        b = self.buying
        value = b.rhythm_median_days * math.exp(self.rng.gauss(0.0, b.rhythm_spread))
        return min(b.max_rhythm_days, max(b.min_rhythm_days, value))

    def _amount(self) -> Decimal:
        return Decimal(self.rng.randrange(self.min_amount, self.max_amount + 1, 250))

    def newcomer(self, at: datetime) -> Customer:
        """A company not yet buying (a prospect)."""
        neglected = self.rng.random() < self.buying.neglected_share
        return Customer(
            self._new_id(),
            rhythm_days=self._rhythm(),
            size=self._amount(),
            attention=0.0 if neglected else self.rng.uniform(0.5, 2.0),
            next_due=at,
        )

    def open_book(self, book: Book, at: datetime, customers: int) -> None:
        """A book as it stands when the simulation starts: `customers` that bought before (their
        next occasions spread over one rhythm from `at`) and the prospects being courted."""
        for _ in range(customers):
            customer = self.newcomer(at)
            customer.bought = True
            customer.last_bought = at - timedelta(days=self.rng.uniform(0, customer.rhythm_days))
            customer.next_due = customer.last_bought + timedelta(days=customer.rhythm_days)
            book.customers.append(customer)
        self._refill(book, at)

    def _refill(self, book: Book, at: datetime) -> None:
        while len(book.prospects) < self.buying.prospects:
            book.prospects.append(self.newcomer(at))

    def for_deal(
        self, book: Book, teammates: list[Book], at: datetime, leaving: float = 0.0
    ) -> tuple[Customer, DealType]:
        """Whom a new deal is for: the customer waiting longest for its buying occasion (now and
        then one of a teammate's, who moves over), else a prospect (new business). When its
        occasion comes a customer leaves for good with the chance `leaving` (a scenario's)."""
        rng, b = self.rng, self.buying
        if rng.random() >= b.new_share:
            source = book
            if teammates and rng.random() < b.move_chance:
                source = rng.choice(teammates)
            customer = self._longest_waiting(source, at, leaving)
            if customer is not None:
                if source is not book:
                    source.customers.remove(customer)
                    book.customers.append(customer)
                customer.open_deals += 1
                customer.next_due = at + timedelta(days=customer.rhythm_days * rng.uniform(0.7, 1.3))
                expansion = rng.random() < b.expansion_share
                return customer, DealType.EXPANSION if expansion else DealType.RENEWAL
        customer = book.prospects.pop(0)  # the one courted longest
        self._refill(book, at)
        customer.open_deals += 1
        return customer, DealType.NEW_BUSINESS

    def _longest_waiting(self, book: Book, at: datetime, leaving: float) -> Customer | None:
        """The customer of `book` whose buying occasion opened first (and still waits for a deal);
        one that has not bought for `lapsed_days` mostly leaves the book instead, and any with
        the chance `leaving`."""
        b = self.buying
        lapsed = at - timedelta(days=b.lapsed_days)
        while True:
            waiting = [c for c in book.customers if c.open_deals < b.max_open and c.next_due <= at]
            if not waiting:
                return None
            customer = min(waiting, key=lambda c: c.next_due)
            lapsing = customer.last_bought is not None and customer.last_bought < lapsed
            stays = not lapsing or self.rng.random() >= self.buying.lapsed_leave
            if stays and (not leaving or self.rng.random() >= leaving):
                return customer
            book.customers.remove(customer)

    def amount(self, customer: Customer, deal_type: DealType) -> Decimal:
        """A deal's value: a prospect's usual order, a renewal about the usual, an expansion more."""
        if deal_type is DealType.NEW_BUSINESS:
            return customer.size
        low, high = (1.1, 1.6) if deal_type is DealType.EXPANSION else (0.8, 1.1)
        value = customer.size * Decimal(str(round(self.rng.uniform(low, high), 3)))
        return max(Decimal(self.min_amount), (value / 250).to_integral_value() * 250)

    def closed(self, book: Book, customer: Customer, won: bool, at: datetime) -> None:
        """A deal of `customer` closed: a won prospect becomes a customer (its occasions start);
        a customer that lost one may walk away for good (it churns later)."""
        customer.open_deals -= 1
        if won:
            customer.last_bought = at
        if not won and customer.bought and self.rng.random() < self.buying.walk_away:
            if customer in book.customers:
                book.customers.remove(customer)
        elif won and not customer.bought:
            customer.bought = True
            customer.next_due = at + timedelta(days=customer.rhythm_days * self.rng.uniform(0.7, 1.3))
            book.customers.append(customer)

    def to_visit(self, book: Book) -> Customer:
        """A customer the rep looks after (by its attention; the neglected never), else a prospect."""
        rng = self.rng
        cared = [c for c in book.customers if c.attention > 0]
        if cared and rng.random() < 0.6:
            return rng.choices(cared, weights=[c.attention for c in cared])[0]
        return rng.choice(book.prospects)
