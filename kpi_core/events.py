"""CRM events: pydantic models, and `decode_event`, which turns raw bytes into one or a `Rejection`.

Contract sections 1 and 2. Money is exact: a JSON number becomes a `Decimal` from its own text
(never through a float), is non-negative, has at most 18 digits of which at most 6 after the
decimal point, and is converted into the base currency with the fixed rate of the rules file.
Timestamps are RFC 3339 with a UTC offset and come out as aware datetimes in UTC.

`decode_event` is on the streaming hot path. It parses once with orjson, dispatches on `type`
to one pydantic validator per type and, only when `amount` arrived as a JSON number with a
fraction or exponent (which orjson reads as a float), re-reads that number's exact text from
the raw bytes (falling back to the standard library parser with `parse_float=Decimal`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Any, Literal, NoReturn

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from kpi_rules.models import CHANNELS, Rules

REASONS: tuple[str, ...] = (
    "invalid_json",
    "schema",
    "unknown_type",
    "naive_timestamp",
    "negative_amount",
    "currency_mismatch",
    "too_late",
    "future",
    "too_large",
)

EVENT_TYPES: tuple[str, ...] = (
    "deal.created",
    "deal.stage_changed",
    "deal.won",
    "deal.lost",
    "visit.completed",
    "quote.sent",
    "target.set",
)

#: event type -> suffix of the contract topic it arrives on (`crm.<suffix>` by default).
TOPIC_OF_TYPE: dict[str, str] = {
    "deal.created": "deals",
    "deal.stage_changed": "deals",
    "deal.won": "deals",
    "deal.lost": "deals",
    "visit.completed": "visits",
    "quote.sent": "quotes",
    "target.set": "targets",
}

UNKNOWN = "unknown"
MAX_ID_CHARS = 128
MAX_LABEL_CHARS = 128
MONEY_MAX_DIGITS = 18
MONEY_MAX_PLACES = 6
MAX_DURATION_MINUTES = 1440


class Rejection(Exception):
    """An event that cannot be applied: `reason` is one of REASONS, `error` says what and why."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error

    def __str__(self) -> str:
        return self.error

    def __repr__(self) -> str:
        return f"Rejection({self.reason!r}, {self.error!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Rejection, (self.reason, self.error))


# --------------------------------------------------------------------------- field validators
# Each is one Python call (PlainValidator), so pydantic does no second pass over the value.
# Errors are PydanticCustomError whose `type` is either a rejection reason (naive_timestamp,
# negative_amount) or a descriptive name that maps to `schema`.

_EXACT = Context(prec=200, traps=[InvalidOperation])
_MICRO = Decimal(1).scaleb(-MONEY_MAX_PLACES)
_ONE = Decimal(1)
_ZERO = Decimal(0)
_INT_LIMIT = 10**MONEY_MAX_DIGITS
_MONEY_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,6})?")
_MAX_MONEY_TEXT = 64
_MONEY_RULE = (
    f"a number >= 0 with at most {MONEY_MAX_DIGITS} digits, "
    f"of which at most {MONEY_MAX_PLACES} after the decimal point"
)


def _short(value: Any, limit: int = 60) -> str:
    """repr() of a value for a message, cut to `limit` characters."""
    try:
        text = repr(value)
    except RecursionError:  # e.g. an id that is an array nested 1,000 levels deep
        return f"{_json_kind(value)} nested too deeply"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _num(value: Any, limit: int = 40) -> str:
    """str() of a number for a message, cut to `limit` characters."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _money_error(kind: str, template: str, value: Any, **extra: Any) -> PydanticCustomError:
    return PydanticCustomError(
        kind, template + "; expected " + _MONEY_RULE, {"value": value, **extra}
    )


def _money(value: Any) -> Decimal:
    kind = type(value)
    if kind is Decimal:
        d: Decimal = value
    elif kind is int:
        if value < 0:
            raise _money_error("negative_amount", "{value} is negative", _num(value))
        if value >= _INT_LIMIT:
            raise _money_error("money_digits", "{value} has too many digits", _num(value))
        return Decimal(value)
    elif kind is str:
        if len(value) > _MAX_MONEY_TEXT or not _MONEY_TEXT.fullmatch(value):
            raise _money_error(
                "money_text",
                '{value} is not a decimal number (a JSON number or a string such as "1234.50")',
                _short(value),
            )
        d = Decimal(value)
    elif kind is float:
        # Only from already-parsed objects (decode_obj); decode_event never hands us a float.
        finite = value == value and abs(value) != float("inf")
        d = Decimal(repr(value)) if finite else Decimal("NaN")
    else:
        raise PydanticCustomError(
            "money_type", "expected " + _MONEY_RULE + ", got {kind}", {"kind": _json_kind(value)}
        )
    sign, digits, exponent = d.as_tuple()
    if type(exponent) is not int:
        raise _money_error("money_finite", "{value} is not a finite number", str(d))
    if digits == (0,):
        return _ZERO
    if sign:
        raise _money_error("negative_amount", "{value} is negative", _num(d))
    if exponent >= 0:
        whole, places = len(digits) + exponent, 0
    else:
        places = -exponent
        whole = max(len(digits) - places, 0)
    if whole > MONEY_MAX_DIGITS:
        raise _money_error(
            "money_digits",
            "{value} has {whole} digits before the decimal point",
            _num(d),
            whole=whole,
        )
    if places > MONEY_MAX_PLACES:
        rounded = d.quantize(_MICRO, context=_EXACT)
        if rounded != d:
            raise _money_error(
                "money_places",
                "{value} has more than {places} digits after the decimal point",
                _num(d),
                places=MONEY_MAX_PLACES,
            )
        d, places = rounded, MONEY_MAX_PLACES  # only trailing zeros were dropped
    if whole + places > MONEY_MAX_DIGITS:
        raise _money_error(
            "money_digits", "{value} has {digits} digits", _num(d), digits=whole + places
        )
    if exponent > 0:  # 1E+3 -> 1000
        d = d.quantize(_ONE, context=_EXACT)
    return d


_TIMESTAMP_EXAMPLE = "expected RFC 3339 with an offset, e.g. 2026-03-01T10:00:00+00:00"


def _timestamp(value: Any) -> datetime:
    if type(value) is str:
        if len(value) > 64:
            raise PydanticCustomError(
                "timestamp_text",
                "{value} is not a timestamp; " + _TIMESTAMP_EXAMPLE,
                {"value": _short(value)},
            )
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError(
                "timestamp_text",
                "{value} is not a timestamp; " + _TIMESTAMP_EXAMPLE,
                {"value": _short(value)},
            ) from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise PydanticCustomError(
            "timestamp_type",
            "expected an RFC 3339 timestamp string with a UTC offset, got {kind}",
            {"kind": _json_kind(value)},
        )
    zone = parsed.tzinfo
    if zone is UTC:  # fromisoformat gives the UTC singleton for Z and +00:00
        return parsed
    offset = parsed.utcoffset()
    if offset is None:
        raise PydanticCustomError(
            "naive_timestamp",
            "{value} has no UTC offset; use RFC 3339 with an offset such as +00:00 or Z",
            {"value": _short(value if isinstance(value, str) else parsed.isoformat())},
        )
    if offset.microseconds or offset.seconds % 60:
        raise PydanticCustomError(
            "timestamp_text",
            "{value} has an offset that is not a whole number of minutes; " + _TIMESTAMP_EXAMPLE,
            {"value": _short(str(value))},
        )
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PydanticCustomError(
            "timestamp_range",
            "{value} is out of the supported range (years 1 to 9999 in UTC)",
            {"value": _short(str(value))},
        ) from None


def _period_start(value: Any) -> date:
    if type(value) is str:
        if len(value) == 10 and value[4] == "-" and value[7] == "-":
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise PydanticCustomError(
            "date_text", "{value} is not a date; expected YYYY-MM-DD", {"value": _short(value)}
        )
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise PydanticCustomError(
        "date_type", "expected a date string YYYY-MM-DD, got {kind}", {"kind": _json_kind(value)}
    )


def _label(value: Any) -> str:
    if value is None:
        return UNKNOWN
    if type(value) is not str:
        raise PydanticCustomError(
            "label_type", "expected a string or null, got {kind}", {"kind": _json_kind(value)}
        )
    if len(value) > MAX_LABEL_CHARS:
        raise PydanticCustomError(
            "label_length",
            "{value} is longer than {limit} characters",
            {"value": _short(value), "limit": MAX_LABEL_CHARS},
        )
    return value if value.strip() else UNKNOWN


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_MONEY_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$"},
    ]
}
_TIMESTAMP_SCHEMA: dict[str, Any] = {"type": "string", "format": "date-time"}

Id = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_ID_CHARS, pattern=r"\S"),
]
Money = Annotated[Decimal, PlainValidator(_money), WithJsonSchema(_MONEY_SCHEMA)]
Timestamp = Annotated[datetime, PlainValidator(_timestamp), WithJsonSchema(_TIMESTAMP_SCHEMA)]
Label = Annotated[
    str,
    PlainValidator(_label),
    WithJsonSchema({"anyOf": [{"type": "string", "maxLength": MAX_LABEL_CHARS}, {"type": "null"}]}),
]
PeriodStart = Annotated[
    date, PlainValidator(_period_start), WithJsonSchema({"type": "string", "format": "date"})
]
Currency = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]
Channel = Literal["phone", "email", "visit", "web", "referral", "event", "other"]
Stage = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_ID_CHARS)]
Duration = Annotated[int, Field(strict=True, ge=0, le=MAX_DURATION_MINUTES)]

assert tuple(Channel.__args__) == CHANNELS  # type: ignore[attr-defined]


def _id(what: str) -> Any:
    return Field(description=f"{what}; a non-blank string of 1-{MAX_ID_CHARS} characters")


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


# --------------------------------------------------------------------------- models


class BaseEvent(BaseModel):
    """Fields on every event (contract section 1). Unknown extra fields are ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        json_schema_extra={
            "additionalProperties": True,
        },
    )

    event_id: Id = _id("Unique event id; a repeated event_id is counted once")
    type: str = Field(description="Event type; one of " + ", ".join(EVENT_TYPES))
    occurred_at: Timestamp = Field(
        description="Event time, RFC 3339 with a UTC offset (e.g. 2026-03-01T10:00:00+00:00 or "
        "...Z); a timestamp without offset is rejected `naive_timestamp`"
    )
    rep_id: Id = _id("The sales rep the event belongs to")
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

    type: Literal["deal.created"] = Field(description="Always `deal.created`")
    deal_id: Id = _id("The deal")
    customer_id: Id = _id("The customer (never exported as a label)")
    amount: Money = Field(description="The deal's value. " + _AMOUNT)
    currency: Currency = Field(description=_CURRENCY)
    stage: Stage = Field(description=_STAGE)
    channel: Channel = Field(description="Contact method: " + ", ".join(CHANNELS))


class DealStageChanged(BaseEvent):
    """A deal moved to another open stage; the latest stage by event time wins."""

    model_config = ConfigDict(title="deal.stage_changed")

    type: Literal["deal.stage_changed"] = Field(description="Always `deal.stage_changed`")
    deal_id: Id = _id("The deal")
    customer_id: Id = _id("The customer (never exported as a label)")
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

    type: Literal["deal.won"] = Field(description="Always `deal.won`")
    deal_id: Id = _id("The deal")
    customer_id: Id = _id("The customer (never exported as a label)")
    amount: Money = Field(description="Revenue of the won deal. " + _AMOUNT)
    currency: Currency = Field(description=_CURRENCY)
    channel: Channel | None = Field(
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

    type: Literal["deal.lost"] = Field(description="Always `deal.lost`")
    deal_id: Id = _id("The deal")
    customer_id: Id = _id("The customer (never exported as a label)")


class VisitCompleted(BaseEvent):
    """A sales visit took place (SVT)."""

    model_config = ConfigDict(title="visit.completed")

    type: Literal["visit.completed"] = Field(description="Always `visit.completed`")
    visit_id: Id = _id("The visit")
    customer_id: Id = _id("The customer visited (never exported as a label)")
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

    type: Literal["quote.sent"] = Field(description="Always `quote.sent`")
    quote_id: Id = _id("The quote")
    deal_id: Id = _id("The deal quoted")
    customer_id: Id = _id("The customer (never exported as a label)")
    amount: Money = Field(description="Quoted value. " + _AMOUNT)
    currency: Currency = Field(description=_CURRENCY)


class TargetSet(BaseEvent):
    """A rep's revenue target for one period; the latest by event time wins."""

    model_config = ConfigDict(title="target.set")

    type: Literal["target.set"] = Field(description="Always `target.set`")
    period: Literal["month", "quarter", "year"] = Field(
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

EVENT_MODELS: dict[str, type[BaseEvent]] = {
    "deal.created": DealCreated,
    "deal.stage_changed": DealStageChanged,
    "deal.won": DealWon,
    "deal.lost": DealLost,
    "visit.completed": VisitCompleted,
    "quote.sent": QuoteSent,
    "target.set": TargetSet,
}
assert tuple(EVENT_MODELS) == EVENT_TYPES
_VALIDATE = {
    name: model.__pydantic_validator__.validate_python for name, model in EVENT_MODELS.items()
}
_WITH_STAGE = frozenset({"deal.created", "deal.stage_changed"})
_WITH_MONEY = frozenset(
    {"deal.created", "deal.stage_changed", "deal.won", "quote.sent", "target.set"}
)
_TYPE_LIST = ", ".join(EVENT_TYPES)

# --------------------------------------------------------------------------- decoding

_JSON_NUMBER = re.compile(rb"\s*:\s*(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)")


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _exact_amount(raw: bytes, obj: dict[str, Any]) -> dict[str, Any]:
    """`amount` came out of orjson as a float: put the exact number from the raw text in its place.

    Fast path, when the raw bytes hold no backslash: then no string has an escape, every `"` is a
    string delimiter and the top-level key is spelt `"amount"` literally; if that spelling occurs
    exactly once it is the top-level key, and the number after its colon is the one orjson read.
    Anything else (escapes, duplicates, nested `amount` keys) re-parses the whole message with
    the standard library and `parse_float=Decimal`.
    """
    if b"\\" not in raw:
        at = raw.find(b'"amount"')
        if at >= 0 and raw.find(b'"amount"', at + 8) < 0:
            match = _JSON_NUMBER.match(raw, at + 8)
            if match is not None:
                obj["amount"] = Decimal(match.group(1).decode("ascii"))
                return obj
    try:
        exact = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise Rejection("invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(exact, dict):  # pragma: no cover - orjson already said it is an object
        raise Rejection("invalid_json", "the message must be a JSON object")
    return exact


def decode_event(raw: bytes, rules: Rules) -> Event:
    """Decode one Kafka message value into an event, or raise `Rejection` (and nothing else)."""
    if type(raw) is not bytes:
        if isinstance(raw, bytearray | memoryview):
            raw = bytes(raw)
        elif isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        elif raw is None:
            raise Rejection("invalid_json", "the message has no value (a Kafka tombstone?)")
        else:
            raise Rejection(
                "invalid_json", f"the message must be bytes of UTF-8 JSON, got {type(raw).__name__}"
            )
    size = len(raw)
    if size > rules.max_event_bytes:
        raise Rejection(
            "too_large",
            f"the message is {size} bytes; the limit (max_event_bytes in the rules file) is "
            f"{rules.max_event_bytes}",
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejection("invalid_json", f"not valid UTF-8 JSON: {exc}") from None
    if type(obj) is not dict:
        raise Rejection("invalid_json", f"the message must be a JSON object, got {_json_kind(obj)}")
    if type(obj.get("amount")) is float:
        obj = _exact_amount(raw, obj)
    return _decode(obj, rules)


def decode_obj(obj: Mapping[str, Any], rules: Rules) -> Event:
    """Validate an already-parsed JSON object, with the same checks as `decode_event`.

    Parse with `parse_float=Decimal` to keep money exact; a float `amount` is taken at its
    shortest repr (`0.1` -> Decimal("0.1")).
    """
    if not isinstance(obj, Mapping):
        raise Rejection("invalid_json", f"the event must be a JSON object, got {_json_kind(obj)}")
    return _decode(obj, rules)


def _decode(obj: Mapping[str, Any], rules: Rules) -> Event:
    kind = obj.get("type")
    validate = _VALIDATE.get(kind) if type(kind) is str else None
    if validate is None:
        if kind is None:
            if "type" in obj:
                raise Rejection("schema", f"type: is null; expected one of {_TYPE_LIST}")
            raise Rejection(
                "schema", f"type: required field is missing; expected one of {_TYPE_LIST}"
            )
        if type(kind) is not str:
            raise Rejection(
                "schema", f"type: expected a string (one of {_TYPE_LIST}), got {_json_kind(kind)}"
            )
        raise Rejection(
            "unknown_type",
            f"type: {_short(kind)} is not a known event type; expected one of {_TYPE_LIST}",
        )
    try:
        event: Any = validate(obj)
    except ValidationError as exc:
        raise _rejection(exc) from None
    except RecursionError:  # pragma: no cover - flat models; belt and braces
        raise Rejection("schema", "the event is nested too deeply") from None
    if kind in _WITH_STAGE and event.stage not in rules.stages:
        raise Rejection(
            "schema",
            f"stage: {_short(event.stage)} is not a stage of the rules file; expected one of "
            + ", ".join(rules.stages),
        )
    if kind in _WITH_MONEY:
        currency = event.currency
        if currency != rules.currency:
            if event.amount is None:  # deal.stage_changed without a new value: no money at all
                event.__dict__["currency"] = None
            elif currency is None:  # deal.stage_changed: the amount is in the base currency
                event.__dict__["currency"] = rules.currency
            else:
                rate = rules.fx.get(currency)
                if rate is None:
                    allowed = ", ".join([rules.currency, *sorted(rules.fx)])
                    raise Rejection(
                        "currency_mismatch",
                        f"currency: {currency} is neither the base currency {rules.currency} nor "
                        f"has a rate in the rules file fx; expected one of {allowed}",
                    )
                # The event was built just above and is not shared yet: set the two fields in
                # place rather than through model_copy (which costs more than the validation).
                fields = event.__dict__
                fields["amount"] = _EXACT.multiply(event.amount, rate)
                fields["currency"] = rules.currency
    return event  # type: ignore[no-any-return]


_PRIORITY = {"naive_timestamp": 0, "negative_amount": 1}


def _rejection(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_context=False)
    ranked = sorted(range(len(errors)), key=lambda i: (_PRIORITY.get(errors[i]["type"], 9), i))
    first = errors[ranked[0]]
    reason = first["type"] if first["type"] in _PRIORITY else "schema"
    message = _describe(first)
    if len(errors) > 1:
        others = sorted({_field(errors[i]) for i in ranked[1:]})
        message += f" (and {len(errors) - 1} more: {', '.join(others)})"
    return Rejection(reason, message)


def _field(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(event)"


def _describe(error: Any) -> str:
    field = _field(error)
    kind: str = error["type"]
    if kind == "missing":
        return f"{field}: required field is missing"
    msg: str = error["msg"]
    got = _short(error.get("input"))
    if kind == "string_pattern_mismatch":
        if field.endswith("currency"):
            return f"{field}: expected an ISO 4217 code of three capital letters; got {got}"
        return f"{field}: must not be blank; got {got}"
    if kind.startswith(("money_", "timestamp_", "date_", "label_")) or kind in _PRIORITY:
        return f"{field}: {msg}"
    msg = msg[:1].lower() + msg[1:]
    return f"{field}: {msg}; got {got}"


# --------------------------------------------------------------------------- examples


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
    ]


__all__ = [
    "EVENT_MODELS",
    "EVENT_TYPES",
    "REASONS",
    "TOPIC_OF_TYPE",
    "UNKNOWN",
    "BaseEvent",
    "DealCreated",
    "DealLost",
    "DealStageChanged",
    "DealWon",
    "Event",
    "QuoteSent",
    "Rejection",
    "TargetSet",
    "VisitCompleted",
    "decode_event",
    "decode_obj",
    "example_events",
]
