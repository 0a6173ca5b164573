"""Decode one Kafka message into a validated event, or raise `Rejection` (and nothing else).

On the streaming hot path: `decode_event` parses once with orjson, dispatches on `type` to one
pydantic validator per type and, only when `amount` arrived as a JSON number with a fraction or
exponent (which orjson reads as a float), re-reads that number's exact text from the raw bytes
(falling back to the standard library parser with `parse_float=Decimal`). Amounts in another
currency are converted with the fixed rate of the rules file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NoReturn

import orjson
from pydantic import ValidationError

from kpi_core.events.fields import EXACT, json_kind, short
from kpi_core.events.models import EVENT_MODELS, Event
from kpi_core.events.rejection import Rejection
from kpi_rules.models import Rules
from kpi_rules.vocabulary import EventType, Reason

_VALIDATE: dict[str, Any] = {
    name: model.__pydantic_validator__.validate_python for name, model in EVENT_MODELS.items()
}
_WITH_STAGE = frozenset({EventType.DEAL_CREATED, EventType.DEAL_STAGE_CHANGED})
_WITH_MONEY = frozenset(
    {
        EventType.DEAL_CREATED,
        EventType.DEAL_STAGE_CHANGED,
        EventType.DEAL_WON,
        EventType.QUOTE_SENT,
        EventType.TARGET_SET,
        EventType.SPEND_RECORDED,
    }
)
_TYPE_LIST = ", ".join(EventType)

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
        raise Rejection(Reason.INVALID_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(exact, dict):  # pragma: no cover - orjson already said it is an object
        raise Rejection(Reason.INVALID_JSON, "the message must be a JSON object")
    return exact


def decode_event(raw: bytes, rules: Rules) -> Event:
    """Decode one Kafka message value into an event, or raise `Rejection` (and nothing else)."""
    if type(raw) is not bytes:
        if isinstance(raw, bytearray | memoryview):
            raw = bytes(raw)
        elif isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        elif raw is None:
            raise Rejection(Reason.INVALID_JSON, "the message has no value (a Kafka tombstone?)")
        else:
            raise Rejection(
                Reason.INVALID_JSON, f"the message must be bytes of UTF-8 JSON, got {type(raw).__name__}"
            )
    size = len(raw)
    if size > rules.max_event_bytes:
        raise Rejection(
            Reason.TOO_LARGE,
            f"the message is {size} bytes; the limit (max_event_bytes in the rules file) is "
            f"{rules.max_event_bytes}",
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejection(Reason.INVALID_JSON, f"not valid UTF-8 JSON: {exc}") from None
    if type(obj) is not dict:
        raise Rejection(Reason.INVALID_JSON, f"the message must be a JSON object, got {json_kind(obj)}")
    if type(obj.get("amount")) is float:
        obj = _exact_amount(raw, obj)
    return _decode(obj, rules)


def decode_obj(obj: Mapping[str, Any], rules: Rules) -> Event:
    """Validate an already-parsed JSON object, with the same checks as `decode_event`.

    Parse with `parse_float=Decimal` to keep money exact; a float `amount` is taken at its
    shortest repr (`0.1` -> Decimal("0.1")).
    """
    if not isinstance(obj, Mapping):
        raise Rejection(Reason.INVALID_JSON, f"the event must be a JSON object, got {json_kind(obj)}")
    return _decode(obj, rules)


def _decode(obj: Mapping[str, Any], rules: Rules) -> Event:
    kind = obj.get("type")
    validate = _VALIDATE.get(kind) if type(kind) is str else None
    if validate is None:
        if kind is None:
            if "type" in obj:
                raise Rejection(Reason.SCHEMA, f"type: is null; expected one of {_TYPE_LIST}")
            raise Rejection(
                Reason.SCHEMA, f"type: required field is missing; expected one of {_TYPE_LIST}"
            )
        if type(kind) is not str:
            raise Rejection(
                Reason.SCHEMA, f"type: expected a string (one of {_TYPE_LIST}), got {json_kind(kind)}"
            )
        raise Rejection(
            Reason.UNKNOWN_TYPE,
            f"type: {short(kind)} is not a known event type; expected one of {_TYPE_LIST}",
        )
    try:
        event: Any = validate(obj)
    except ValidationError as exc:
        raise _rejection(exc) from None
    except RecursionError:  # pragma: no cover - flat models; belt and braces
        raise Rejection(Reason.SCHEMA, "the event is nested too deeply") from None
    if kind in _WITH_STAGE and event.stage not in rules.stages:
        raise Rejection(
            Reason.SCHEMA,
            f"stage: {short(event.stage)} is not a stage of the rules file; expected one of "
            + ", ".join(rules.stages),
        )
    if kind in _WITH_MONEY:
        _to_base_currency(kind, event, rules)
    return event  # type: ignore[no-any-return]


def _to_base_currency(kind: str, event: Any, rules: Rules) -> None:
    """Check the currency and convert the event's money into the base currency, in place (the
    event was built just above and is not shared yet: cheaper than model_copy)."""
    currency = event.currency
    fields = event.__dict__
    if kind == EventType.DEAL_WON and event.cost_currency not in (None, currency):
        raise Rejection(
            Reason.CURRENCY_MISMATCH,
            f"cost_currency: {event.cost_currency} is not the deal's currency {currency}; send "
            "the cost in the deal's currency",
        )
    if currency == rules.currency:
        return
    if event.amount is None:  # deal.stage_changed without a new value: no money at all
        fields["currency"] = None
        return
    if currency is None:
        if kind != EventType.TARGET_SET:  # deal.stage_changed: the amount is in the base currency
            fields["currency"] = rules.currency
        return  # a target of a count (visits, deals_won, new_customers) has no currency
    rate = rules.fx.get(currency)
    if rate is None:
        allowed = ", ".join([rules.currency, *sorted(rules.fx)])
        raise Rejection(
            Reason.CURRENCY_MISMATCH,
            f"currency: {currency} is neither the base currency {rules.currency} nor "
            f"has a rate in the rules file fx; expected one of {allowed}",
        )
    fields["amount"] = EXACT.multiply(event.amount, rate)
    if kind == EventType.DEAL_WON and event.cost is not None:
        fields["cost"] = EXACT.multiply(event.cost, rate)
        if event.cost_currency is not None:
            fields["cost_currency"] = rules.currency
    fields["currency"] = rules.currency


_PRIORITY: dict[str, int] = {Reason.NAIVE_TIMESTAMP: 0, Reason.NEGATIVE_AMOUNT: 1}


def _rejection(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_context=False)
    ranked = sorted(range(len(errors)), key=lambda i: (_PRIORITY.get(errors[i]["type"], 9), i))
    first = errors[ranked[0]]
    reason = Reason(first["type"]) if first["type"] in _PRIORITY else Reason.SCHEMA
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
    got = short(error.get("input"))
    if kind == "string_pattern_mismatch":
        if field.endswith("currency"):
            return f"{field}: expected an ISO 4217 code of three capital letters; got {got}"
        if field == "rep_id":
            return f"{field}: must not be blank or hold control characters; got {got}"
        return f"{field}: must not be blank; got {got}"
    if kind == "rule":  # a rule across fields: its message names the field
        return msg
    if kind.startswith(("money_", "timestamp_", "date_", "label_")) or kind in _PRIORITY:
        return f"{field}: {msg}"
    msg = msg[:1].lower() + msg[1:]
    return f"{field}: {msg}; got {got}"

