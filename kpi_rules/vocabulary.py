"""The contract's words (event types, topics, channels, periods, windows, reasons, severities, scopes)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class EventType(StrEnum):
    """The `type` of a CRM event (contract section 1)."""

    DEAL_CREATED = "deal.created"
    DEAL_STAGE_CHANGED = "deal.stage_changed"
    DEAL_WON = "deal.won"
    DEAL_LOST = "deal.lost"
    VISIT_COMPLETED = "visit.completed"
    QUOTE_SENT = "quote.sent"
    TARGET_SET = "target.set"
    SURVEY_COMPLETED = "survey.completed"
    LEAD_CREATED = "lead.created"
    SPEND_RECORDED = "spend.recorded"


class Topic(StrEnum):
    """Suffix of a contract topic: `crm.<suffix>` with the default prefix."""

    DEALS = "deals"
    VISITS = "visits"
    QUOTES = "quotes"
    TARGETS = "targets"
    SURVEYS = "surveys"
    LEADS = "leads"
    SPEND = "spend"
    DEADLETTER = "deadletter"


#: The topic each event type arrives on.
TOPIC_OF: dict[EventType, Topic] = {
    EventType.DEAL_CREATED: Topic.DEALS,
    EventType.DEAL_STAGE_CHANGED: Topic.DEALS,
    EventType.DEAL_WON: Topic.DEALS,
    EventType.DEAL_LOST: Topic.DEALS,
    EventType.VISIT_COMPLETED: Topic.VISITS,
    EventType.QUOTE_SENT: Topic.QUOTES,
    EventType.TARGET_SET: Topic.TARGETS,
    EventType.SURVEY_COMPLETED: Topic.SURVEYS,
    EventType.LEAD_CREATED: Topic.LEADS,
    EventType.SPEND_RECORDED: Topic.SPEND,
}
#: Topics a worker consumes, in a stable order (every topic some event type arrives on).
INPUT_TOPICS: tuple[Topic, ...] = tuple(dict.fromkeys(TOPIC_OF.values()))
#: Compacted input topics (Kafka requires message keys on them).
COMPACTED_TOPICS: frozenset[Topic] = frozenset({Topic.TARGETS})


class Channel(StrEnum):
    """How a deal or lead came in (the contact method)."""

    PHONE = "phone"
    EMAIL = "email"
    VISIT = "visit"
    WEB = "web"
    REFERRAL = "referral"
    EVENT = "event"
    OTHER = "other"


class PeriodKind(StrEnum):
    """Calendar periods, in the rules file's time zone (week: ISO, Monday)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


#: Periods a target may be set for.
TARGET_PERIODS: tuple[PeriodKind, ...] = (PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR)


class TargetMetric(StrEnum):
    """What a target is set for (contract section 3.3): money metrics need a currency."""

    REVENUE = "revenue"
    GROSS_MARGIN = "gross_margin"
    VISITS = "visits"
    DEALS_WON = "deals_won"
    NEW_CUSTOMERS = "new_customers"


MONEY_METRICS: frozenset[TargetMetric] = frozenset({TargetMetric.REVENUE, TargetMetric.GROSS_MARGIN})


class DealType(StrEnum):
    NEW_BUSINESS = "new_business"
    EXPANSION = "expansion"
    RENEWAL = "renewal"


class SurveyKind(StrEnum):
    """CSAT on a 1-5 scale, NPS on 0-10."""

    CSAT = "csat"
    NPS = "nps"


#: The inclusive score scale of each survey kind.
SURVEY_SCALES: dict[SurveyKind, tuple[int, int]] = {SurveyKind.CSAT: (1, 5), SurveyKind.NPS: (0, 10)}


class SpendCategory(StrEnum):
    MARKETING = "marketing"
    SALES = "sales"


class Window(StrEnum):
    """The windows compared (contract section 3.4), and the trailing completed months of the
    trailing KPIs (clv), exported under `period="month"` for the recording rules."""

    CURRENT = "current"
    PREVIOUS = "previous"
    PREVIOUS_TO_DATE = "previous_to_date"
    TRAILING = "trailing"


class Reason(StrEnum):
    """Why an event was rejected to the dead-letter topic (contract section 2)."""

    INVALID_JSON = "invalid_json"
    SCHEMA = "schema"
    UNKNOWN_TYPE = "unknown_type"
    NAIVE_TIMESTAMP = "naive_timestamp"
    NEGATIVE_AMOUNT = "negative_amount"
    CURRENCY_MISMATCH = "currency_mismatch"
    TOO_LATE = "too_late"
    FUTURE = "future"
    TOO_LARGE = "too_large"


class Severity(StrEnum):
    """Alert severities, mildest first (routing: page/critical to on-call, the rest to sales)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    PAGE = "page"


class Scope(StrEnum):
    """Levels KPIs are summed to: a rep, a team, a region, the company."""

    REP = "rep"
    TEAM = "team"
    REGION = "region"
    COMPANY = "company"


def values(members: Iterable[StrEnum]) -> tuple[str, ...]:
    """The plain string values of a vocabulary (or a subset), in order: for messages and schemas."""
    return tuple(member.value for member in members)
