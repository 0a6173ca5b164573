"""Pydantic models of the CRM events (contract section 1), one per event type, and their union."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from kpi_core.events.fields import (
    MAX_DURATION_MINUTES,
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    MONEY_MAX_DIGITS,
    MONEY_MAX_PLACES,
    UNKNOWN,
    Currency,
    Duration,
    Id,
    Label,
    Money,
    PeriodStart,
    Stage,
    Timestamp,
    id_field,
)
from kpi_rules.vocabulary import TARGET_PERIODS, Channel, EventType, values

CHANNELS = values(Channel)
EVENT_TYPES = values(EventType)
# Plain strings rather than enum members, so a rejection reads "Input should be 'month', ...".
TargetPeriod = Literal["month", "quarter", "year"]
if TargetPeriod.__args__ != values(TARGET_PERIODS):  # type: ignore[attr-defined]  # pragma: no cover
    raise AssertionError("TargetPeriod must list vocabulary.TARGET_PERIODS")
# Inline in the JSON Schema (no $defs): one self-contained schema file per event type.
ChannelField = Annotated[Channel, WithJsonSchema({"type": "string", "enum": list(CHANNELS)})]

_AMOUNT = (
    f"Exact decimal amount >= 0 (JSON number or numeric string), at most {MONEY_MAX_DIGITS} digits "
    f"with at most {MONEY_MAX_PLACES} after the point; never read through a float. Negative: "
    "rejected `negative_amount`."
)
_CURRENCY = (
    "ISO 4217 code (three capital letters). Must be the base currency of the rules file or have "
    "a fixed rate in its `fx`, else rejected `currency_mismatch`; converted into the base currency."
)
_STAGE = "Deal stage; must be one of the open stages of the rules file, else rejected `schema`."


class BaseEvent(BaseModel):
    """Fields on every event (contract section 1). Unknown extra fields are ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        json_schema_extra={
            "additionalProperties": True,
        },
    )

    event_id: Id = id_field("Unique event id; a repeated event_id is counted once")
    type: str = Field(description="Event type; one of " + ", ".join(EVENT_TYPES))
    occurred_at: Timestamp = Field(
        description="Event time, RFC 3339 with a UTC offset (e.g. 2026-03-01T10:00:00+00:00 or "
        "...Z); a timestamp without offset is rejected `naive_timestamp`"
    )
    rep_id: Id = id_field("The sales rep the event belongs to")
    team: Label = Field(
        default=UNKNOWN,
        description=f"Team of the rep, at most {MAX_LABEL_CHARS} characters; missing, null or "
        "blank means `unknown`",
    )
    region: Label = Field(
        default=UNKNOWN,
        description=f"Region of the rep, at most {MAX_LABEL_CHARS} characters; missing, null or "
        "blank means `unknown`",
    )


class DealCreated(BaseEvent):
    """A new deal (lead) was opened."""

    model_config = ConfigDict(title="deal.created")

    type: Literal[EventType.DEAL_CREATED] = Field(description="Always `deal.created`")
    deal_id: Id = id_field("The deal")
    customer_id: Id = id_field("The customer (never exported as a label)")
    amount: Money = Field(description="The deal's value. " + _AMOUNT)
    currency: Currency = Field(description=_CURRENCY)
    stage: Stage = Field(description=_STAGE)
    channel: ChannelField = Field(description="Contact method: " + ", ".join(CHANNELS))


class DealStageChanged(BaseEvent):
    """A deal moved to another open stage; the latest stage by event time wins."""

    model_config = ConfigDict(title="deal.stage_changed")

    type: Literal[EventType.DEAL_STAGE_CHANGED] = Field(description="Always `deal.stage_changed`")
    deal_id: Id = id_field("The deal")
    customer_id: Id = id_field("The customer (never exported as a label)")
    stage: Stage = Field(description=_STAGE)
    amount: Money | None = Field(
        default=None, description="Optional new value of the deal. " + _AMOUNT
    )
    currency: Currency | None = Field(
        default=None,
        description="Currency of `amount`; optional, the base currency when missing. " + _CURRENCY,
    )


class DealWon(BaseEvent):
    """A deal was won: counts as revenue in the period of `occurred_at`."""

    model_config = ConfigDict(title="deal.won")

    type: Literal[EventType.DEAL_WON] = Field(description="Always `deal.won`")
    deal_id: Id = id_field("The deal")
    customer_id: Id = id_field("The customer (never exported as a label)")
    amount: Money = Field(description="Revenue of the won deal. " + _AMOUNT)
    currency: Currency = Field(description=_CURRENCY)
    channel: ChannelField | None = Field(
        default=None,
        description="Optional contact method (" + ", ".join(CHANNELS) + "); else the one of "
        "`deal.created`, else `other`",
    )
    deal_created_at: Timestamp | None = Field(
        default=None,
        description="Optional creation time of the deal, RFC 3339 with offset (naive is rejected "
        "`naive_timestamp`); used for the cycle length when `deal.created` was never seen",
    )


class DealLost(BaseEvent):
    """A deal was lost."""

    model_config = ConfigDict(title="deal.lost")

    type: Literal[EventType.DEAL_LOST] = Field(description="Always `deal.lost`")
    deal_id: Id = id_field("The deal")
    customer_id: Id = id_field("The customer (never exported as a label)")


class VisitCompleted(BaseEvent):
    """A sales visit took place (SVT)."""

    model_config = ConfigDict(title="visit.completed")

    type: Literal[EventType.VISIT_COMPLETED] = Field(description="Always `visit.completed`")
    visit_id: Id = id_field("The visit")
    customer_id: Id = id_field("The customer visited (never exported as a label)")
    deal_id: Id | None = Field(
        default=None,
        description="Optional deal the visit was about (first touch for first-response time); "
        f"a non-blank string of 1-{MAX_ID_CHARS} characters",
    )
    duration_minutes: Duration | None = Field(
        default=None,
        description=f"Optional length of the visit, an integer 0-{MAX_DURATION_MINUTES}",
    )


class QuoteSent(BaseEvent):
    """A quote was sent to the customer for a deal."""

    model_config = ConfigDict(title="quote.sent")

    type: Literal[EventType.QUOTE_SENT] = Field(description="Always `quote.sent`")
    quote_id: Id = id_field("The quote")
    deal_id: Id = id_field("The deal quoted")
    customer_id: Id = id_field("The customer (never exported as a label)")
    amount: Money = Field(description="Quoted value. " + _AMOUNT)
    currency: Currency = Field(description=_CURRENCY)


class TargetSet(BaseEvent):
    """A rep's revenue target for one period; the latest by event time wins."""

    model_config = ConfigDict(title="target.set")

    type: Literal[EventType.TARGET_SET] = Field(description="Always `target.set`")
    period: TargetPeriod = Field(
        description="Kind of period the target is for: month, quarter or year"
    )
    period_start: PeriodStart = Field(
        description="A date (YYYY-MM-DD) in the business calendar; the target applies to the "
        "period of kind `period` that contains it (normally its first day)"
    )
    amount: Money = Field(description="Revenue target. " + _AMOUNT)
    currency: Currency = Field(description=_CURRENCY)


Event = Annotated[
    DealCreated | DealStageChanged | DealWon | DealLost | VisitCompleted | QuoteSent | TargetSet,
    Field(discriminator="type"),
]

EVENT_MODELS: dict[EventType, type[BaseEvent]] = {
    EventType.DEAL_CREATED: DealCreated,
    EventType.DEAL_STAGE_CHANGED: DealStageChanged,
    EventType.DEAL_WON: DealWon,
    EventType.DEAL_LOST: DealLost,
    EventType.VISIT_COMPLETED: VisitCompleted,
    EventType.QUOTE_SENT: QuoteSent,
    EventType.TARGET_SET: TargetSet,
}
if tuple(EVENT_MODELS) != tuple(EventType):  # pragma: no cover - caught at import, in every test
    raise AssertionError("EVENT_MODELS must list every EventType, in order")
