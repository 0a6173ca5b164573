"""The simulated sales floor: reps in teams and regions, their open deals, and the funnel's
proportions with their measured yields (from which targets and spend follow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from kpi_monitor.traffic_customers import Book, Customer
from kpi_monitor.traffic_plan import Seat
from kpi_rules.vocabulary import DealType

TEAMS: tuple[tuple[str, str], ...] = (
    ("north", "emea"),
    ("south", "emea"),
    ("east", "apac"),
    ("west", "amer"),
)


@dataclass(slots=True)
class OpenDeal:
    deal_id: str
    customer: Customer
    amount: Decimal
    stage: str
    deal_type: DealType
    channel: str


@dataclass(slots=True)
class Rep:
    rep_id: str
    team: str
    region: str
    margin: float = 0.35  # its usual gross margin
    satisfied: float = 0.85  # share of its customers' CSAT answers scoring 4-5
    lead_to_deal: float = 0.3  # deals created per lead
    campaigns: bool = False  # runs marketing of its own besides the team's
    cost_of_sales: float = 0.1  # its sales spend over its revenue
    open_deals: list[OpenDeal] = field(default_factory=list)
    book: Book = field(default_factory=Book)

    @property
    def seat(self) -> Seat:
        return Seat(self.rep_id, self.team, self.region)


@dataclass(frozen=True, slots=True)
class Funnel:
    """The proportions of a rep's CRM activity (fractions of its events), shared by history and
    live traffic so that targets, win rates and cycle lengths stay in proportion at any rate."""

    create: float = 0.12  # a new deal
    quote: float = 0.07  # a quote on an open deal
    advance: float = 0.15  # an open deal moves one stage on
    # Mean business hours from created to closed: about four weeks for a customer buying again,
    # six to seven for a prospect (new business).
    repeat_cycle_hours: float = 200.0
    new_cycle_hours: float = 320.0
    min_amount: int = 3000
    max_amount: int = 30000
    win_boost: Decimal = Decimal("0.05")  # added to the stage's win probability at close
    new_win_factor: float = 0.3  # a prospect wins this share of that chance
    repeat_win_floor: float = 0.22  # a customer buying again wins at least this, more further on
    cost_coverage: float = 0.88  # share of won deals whose cost the CRM knows
    csat_response: float = 0.35  # share of won deals whose customer answers a CSAT survey
    nps_chance: float = 0.3  # per won deal, an NPS answer of one of the rep's customers

    @property
    def mean_amount(self) -> Decimal:
        return Decimal(self.min_amount + self.max_amount) / 2


#: Measured yields of the funnel (tests/unit/test_traffic.py and test_traffic_business.py check
#: them), from which targets and spend are set so that a steady rep attains about 100%: per
#: activity event, the share of visits; per deal the funnel means to create (`create` of every
#: event), revenue over the mean amount, deals won and new customers. (Measured over April to
#: December of cold starts in March at the quick start's pace, seeds 1-3.)
NOMINAL_WIN_RATE = Decimal("0.34")
NOMINAL_VISIT_SHARE = Decimal("0.6")
NOMINAL_WINS_PER_DEAL = Decimal("0.32")
NOMINAL_NEW_PER_DEAL = Decimal("0.035")
