"""Pydantic models of the CRM events (contract section 1), one per event type, and their union."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

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
    RepId,
    Score,
    Stage,
    Timestamp,
    id_field,
)
from kpi_rules.vocabulary import (
    MONEY_METRICS,
    SURVEY_SCALES,
    TARGET_PERIODS,
    Channel,
    DealType,
    EventType,
    Scope,
    SpendCategory,
    SurveyKind,
    TargetMetric,
    values,
)

CHANNELS = values(Channel)
EVENT_TYPES = values(EventType)
# Plain strings rather than enum members, so a rejection reads "Input should be 'month', ...".
TargetPeriod = Literal["month", "quarter", "year"]
if TargetPeriod.__args__ != values(TARGET_PERIODS):  # type: ignore[attr-defined]  # pragma: no cover
    raise AssertionError("TargetPeriod must list vocabulary.TARGET_PERIODS")
TARGET_METRICS = values(TargetMetric)


def _inline(enum: type[StrEnum]) -> WithJsonSchema:
    """Inline in the JSON Schema (no $defs): one self-contained schema file per event type."""
    return WithJsonSchema({"type": "string", "enum": list(values(enum))})


ChannelField = Annotated[Channel, _inline(Channel)]
TargetMetricField = Annotated[TargetMetric, _inline(TargetMetric)]
ScopeField = Annotated[Scope, _inline(Scope)]
SurveyKindField = Annotated[SurveyKind, _inline(SurveyKind)]
SpendCategoryField = Annotated[SpendCategory, _inline(SpendCategory)]
DealTypeField = Annotated[DealType, _inline(DealType)]

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
    # Required on most types (RepEvent); declared here so that it keeps its place among the
    # common fields (CSV-mapped events are written in field order).
    rep_id: RepId | None = Field(default=None, description="The sales rep the event belongs to")
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


class RepEvent(BaseEvent):
    """An event that belongs to a rep (every type but spend and scoped targets, where it is optional)."""

    rep_id: RepId = id_field("The sales rep the event belongs to")


class DealCreated(RepEvent):
    """A new deal (lead) was opened."""

    model_config = ConfigDict(title="deal.created")

    type: Literal[EventType.DEAL_CREATED] = Field(description="Always `deal.created`")
    deal_id: Id = id_field("The deal")
    customer_id: Id = id_field("The customer (never exported as a label)")
    amount: Money = Field(description="The deal's value. " + _AMOUNT)
    currency: Currency = Field(description=_CURRENCY)
    stage: Stage = Field(description=_STAGE)
    channel: ChannelField = Field(description="Contact method: " + ", ".join(CHANNELS))


class DealStageChanged(RepEvent):
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


class DealWon(RepEvent):
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
    cost: Money | None = Field(
        default=None,
        description="Optional cost of what was sold, in the deal's currency (for gross margin). "
        + _AMOUNT,
    )
    cost_currency: Currency | None = Field(
        default=None,
        description="Optional; when given it must equal `currency` (a cost is in the deal's "
        "currency), else rejected `currency_mismatch`",
    )
    deal_type: DealTypeField | None = Field(
        default=None, description="Optional: new_business, expansion or renewal"
    )


class DealLost(RepEvent):
    """A deal was lost."""

    model_config = ConfigDict(title="deal.lost")

    type: Literal[EventType.DEAL_LOST] = Field(description="Always `deal.lost`")
    deal_id: Id = id_field("The deal")
    customer_id: Id = id_field("The customer (never exported as a label)")


class VisitCompleted(RepEvent):
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


class QuoteSent(RepEvent):
    """A quote was sent to the customer for a deal."""

    model_config = ConfigDict(title="quote.sent")

    type: Literal[EventType.QUOTE_SENT] = Field(description="Always `quote.sent`")
    quote_id: Id = id_field("The quote")
    deal_id: Id = id_field("The deal quoted")
    customer_id: Id = id_field("The customer (never exported as a label)")
    amount: Money = Field(description="Quoted value. " + _AMOUNT)
    currency: Currency = Field(description=_CURRENCY)


_SCOPED_REP = (
    "The rep the {what} belongs to; optional: without it the {what} belongs to the team (`team` "
    "required)"
)


class TargetSet(BaseEvent):
    """A target for one period, for a rep, a team, a region or the company (contract section 3.3);
    the latest revision by event time wins."""

    model_config = ConfigDict(title="target.set")

    type: Literal[EventType.TARGET_SET] = Field(description="Always `target.set`")
    rep_id: RepId | None = Field(
        default=None,
        description="The rep, for a rep target (the default scope); absent for a team, region or "
        "company target",
    )
    period: TargetPeriod = Field(
        description="Kind of period the target is for: month, quarter or year"
    )
    period_start: PeriodStart = Field(
        description="A date (YYYY-MM-DD) in the business calendar; the target applies to the "
        "period of kind `period` that contains it (normally its first day)"
    )
    amount: Money = Field(
        description="The target: an amount of money for revenue and gross_margin, a whole number "
        "for visits, deals_won and new_customers. " + _AMOUNT
    )
    currency: Currency | None = Field(
        default=None, description="Required for money metrics (revenue, gross_margin). " + _CURRENCY
    )
    metric: TargetMetricField = Field(
        default=TargetMetric.REVENUE, description="What the target is for: " + ", ".join(TARGET_METRICS)
    )
    scope: ScopeField = Field(
        default=Scope.REP,
        description="Whose target: rep (default; `rep_id` required), team (`team` names it), "
        "region (`region` names it) or company; a team, region or company target has no `rep_id`",
    )

    @model_validator(mode="after")
    def _scope_and_units(self) -> TargetSet:
        scope, metric = self.scope, self.metric
        if scope is Scope.REP and self.rep_id is None:
            raise _rule("rep_id: required for a rep target (scope rep, the default)")
        if scope is not Scope.REP and self.rep_id is not None:
            raise _rule(f"rep_id: a {scope} target names no rep; leave rep_id out")
        if scope is Scope.TEAM and self.team == UNKNOWN:
            raise _rule("team: required for a team target (it names the team)")
        if scope is Scope.REGION and self.region == UNKNOWN:
            raise _rule("region: required for a region target (it names the region)")
        if metric in MONEY_METRICS:
            if self.currency is None:
                raise _rule(f"currency: required for a {metric} target (an amount of money)")
        elif self.amount != self.amount.to_integral_value():
            raise _rule(f"amount: a {metric} target is a whole number; got {self.amount}")
        return self


class SurveyCompleted(RepEvent):
    """A customer answered a satisfaction survey: CSAT (1-5) or NPS (0-10)."""

    model_config = ConfigDict(title="survey.completed")

    type: Literal[EventType.SURVEY_COMPLETED] = Field(description="Always `survey.completed`")
    survey_id: Id = id_field("The survey response; a repeated survey_id counts once, like an event_id")
    customer_id: Id = id_field("The customer who answered (never exported as a label)")
    deal_id: Id | None = Field(default=None, description="Optional deal the survey was about")
    kind: SurveyKindField = Field(description="csat (a 1-5 scale) or nps (0-10)")
    score: Score = Field(description="An integer on the kind's scale: csat 1-5, nps 0-10")

    @model_validator(mode="after")
    def _on_scale(self) -> SurveyCompleted:
        low, high = SURVEY_SCALES[self.kind]
        if not low <= self.score <= high:
            raise _rule(f"score: {self.score} is off the {self.kind} scale {low}-{high}")
        return self


class LeadCreated(RepEvent):
    """A new lead came in (counted per rep and contact method)."""

    model_config = ConfigDict(title="lead.created")

    type: Literal[EventType.LEAD_CREATED] = Field(description="Always `lead.created`")
    lead_id: Id = id_field("The lead")
    channel: ChannelField = Field(description="Contact method: " + ", ".join(CHANNELS))
    customer_id: Id | None = Field(
        default=None, description="Optional customer (never exported as a label)"
    )


class SpendRecorded(BaseEvent):
    """A cost of selling (marketing or sales) incurred on the day of `occurred_at`, by a rep or by
    a team (no `rep_id`)."""

    model_config = ConfigDict(title="spend.recorded")

    type: Literal[EventType.SPEND_RECORDED] = Field(description="Always `spend.recorded`")
    rep_id: RepId | None = Field(default=None, description=_SCOPED_REP.format(what="spend"))
    spend_id: Id = id_field("The spend record")
    amount: Money = Field(description="The cost. " + _AMOUNT)
    currency: Currency = Field(description=_CURRENCY)
    category: SpendCategoryField = Field(description="marketing or sales")
    channel: ChannelField | None = Field(
        default=None, description="Optional contact method the spend paid for: " + ", ".join(CHANNELS)
    )

    @model_validator(mode="after")
    def _owner(self) -> SpendRecorded:
        if self.rep_id is None and self.team == UNKNOWN:
            raise _rule("team: required when rep_id is absent (the spend belongs to the team)")
        return self


def _rule(message: str) -> PydanticCustomError:
    """A rule across fields, rejected `schema`; the message names the field first."""
    return PydanticCustomError("rule", message)


Event = Annotated[
    DealCreated
    | DealStageChanged
    | DealWon
    | DealLost
    | VisitCompleted
    | QuoteSent
    | TargetSet
    | SurveyCompleted
    | LeadCreated
    | SpendRecorded,
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
    EventType.SURVEY_COMPLETED: SurveyCompleted,
    EventType.LEAD_CREATED: LeadCreated,
    EventType.SPEND_RECORDED: SpendRecorded,
}
if tuple(EVENT_MODELS) != tuple(EventType):  # pragma: no cover - caught at import, in every test
    raise AssertionError("EVENT_MODELS must list every EventType, in order")
