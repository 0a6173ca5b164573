"""Field types of the event models: exact money, RFC 3339 timestamps, labels, dates, ids.

Each validator is one Python call (PlainValidator), so pydantic does no second pass over the
value. Errors are PydanticCustomError whose `type` is either a rejection reason
(naive_timestamp, negative_amount) or a descriptive name that maps to `schema`.

Money is exact: a JSON number becomes a `Decimal` from its own text (never through a float), is
non-negative, and has at most 18 digits of which at most 6 after the decimal point.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import Field, PlainValidator, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

UNKNOWN = "unknown"
MAX_ID_CHARS = 128
MAX_LABEL_CHARS = 128
MONEY_MAX_DIGITS = 18
MONEY_MAX_PLACES = 6
MAX_DURATION_MINUTES = 1440

EXACT = Context(prec=200, traps=[InvalidOperation])
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


def short(value: Any, limit: int = 60) -> str:
    """repr() of a value for a message, cut to `limit` characters."""
    try:
        text = repr(value)
    except RecursionError:  # e.g. an id that is an array nested 1,000 levels deep
        return f"{json_kind(value)} nested too deeply"
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
                short(value),
            )
        d = Decimal(value)
    elif kind is float:
        # Only from already-parsed objects (decode_obj); decode_event never hands us a float.
        finite = value == value and abs(value) != float("inf")
        d = Decimal(repr(value)) if finite else Decimal("NaN")
    else:
        raise PydanticCustomError(
            "money_type", "expected " + _MONEY_RULE + ", got {kind}", {"kind": json_kind(value)}
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
        rounded = d.quantize(_MICRO, context=EXACT)
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
        d = d.quantize(_ONE, context=EXACT)
    return d


_TIMESTAMP_EXAMPLE = "expected RFC 3339 with an offset, e.g. 2026-03-01T10:00:00+00:00"


def _timestamp(value: Any) -> datetime:
    if type(value) is str:
        if len(value) > 64:
            raise PydanticCustomError(
                "timestamp_text",
                "{value} is not a timestamp; " + _TIMESTAMP_EXAMPLE,
                {"value": short(value)},
            )
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError(
                "timestamp_text",
                "{value} is not a timestamp; " + _TIMESTAMP_EXAMPLE,
                {"value": short(value)},
            ) from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise PydanticCustomError(
            "timestamp_type",
            "expected an RFC 3339 timestamp string with a UTC offset, got {kind}",
            {"kind": json_kind(value)},
        )
    zone = parsed.tzinfo
    if zone is UTC:  # fromisoformat gives the UTC singleton for Z and +00:00
        return parsed
    offset = parsed.utcoffset()
    if offset is None:
        raise PydanticCustomError(
            "naive_timestamp",
            "{value} has no UTC offset; use RFC 3339 with an offset such as +00:00 or Z",
            {"value": short(value if isinstance(value, str) else parsed.isoformat())},
        )
    if offset.microseconds or offset.seconds % 60:
        raise PydanticCustomError(
            "timestamp_text",
            "{value} has an offset that is not a whole number of minutes; " + _TIMESTAMP_EXAMPLE,
            {"value": short(str(value))},
        )
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PydanticCustomError(
            "timestamp_range",
            "{value} is out of the supported range (years 1 to 9999 in UTC)",
            {"value": short(str(value))},
        ) from None


def _period_start(value: Any) -> date:
    if type(value) is str:
        if len(value) == 10 and value[4] == "-" and value[7] == "-":
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise PydanticCustomError(
            "date_text", "{value} is not a date; expected YYYY-MM-DD", {"value": short(value)}
        )
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise PydanticCustomError(
        "date_type", "expected a date string YYYY-MM-DD, got {kind}", {"kind": json_kind(value)}
    )


def _label(value: Any) -> str:
    if value is None:
        return UNKNOWN
    if type(value) is not str:
        raise PydanticCustomError(
            "label_type", "expected a string or null, got {kind}", {"kind": json_kind(value)}
        )
    if len(value) > MAX_LABEL_CHARS:
        raise PydanticCustomError(
            "label_length",
            "{value} is longer than {limit} characters",
            {"value": short(value), "limit": MAX_LABEL_CHARS},
        )
    return value if value.strip() else UNKNOWN


def json_kind(value: Any) -> str:
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

# A rep id is also a Redis key part and a Prometheus label: no control characters (the worker's
# own scope states use them in their keys, so they can never collide with a rep).
RepId = Annotated[
    str,
    StringConstraints(
        strict=True,
        min_length=1,
        max_length=MAX_ID_CHARS,
        pattern=r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
    ),
]
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
Score = Annotated[int, Field(strict=True, ge=0, le=10)]
Stage = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_ID_CHARS)]
Duration = Annotated[int, Field(strict=True, ge=0, le=MAX_DURATION_MINUTES)]


def id_field(what: str) -> Any:
    return Field(description=f"{what}; a non-blank string of 1-{MAX_ID_CHARS} characters")
