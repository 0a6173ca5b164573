"""A msgspec front end for `decode_event`: plain events decoded without pydantic, the same `Event`.

The reference decoder (orjson + pydantic, `kpi_core.events.decode`) stays the judge: this front
end only takes messages it is sure about, and answers None for anything unusual (escapes,
non-ASCII text, nesting, a field it cannot prove valid, any error at all), which the reference
then decodes, so every rejection keeps its reason and message. On the messages it takes, it
builds the very object the reference builds: same model class, same field values in the same
order, same set of fields given; through the same field functions (`_money`, `_timestamp`,
`_label`, `_period_start`), the same model rules and the same checks after validation (stage,
currency, conversion). `tests/unit/test_fast_decoder.py` proves it on valid events of every type
and on malformed ones.

msgspec reads a message into a per-type struct (tagged by `type`) whose field types and
constraints are the models' own where msgspec states them identically for plain ASCII text
(strict strings and integers with their lengths and bounds, enums, literals, the currency
pattern); money stays its JSON text and timestamps, labels and dates go through the reference's
functions. So the C decoder parses and checks most of an event and Python touches only a few
fields.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta

from kpi_core.events.fields import (
    MAX_DURATION_MINUTES,
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    UNKNOWN,
    _label,
    _money,
    _period_start,
    _timestamp,
)
from kpi_core.events.models import EVENT_MODELS, BaseEvent, SpendRecorded, SurveyCompleted, TargetSet
from kpi_rules.models import Rules
from kpi_rules.vocabulary import (
    Channel,
    DealType,
    EventType,
    Scope,
    SpendCategory,
    SurveyKind,
    TargetMetric,
)

__all__ = ["FIELD_SPECS", "decode_fast"]

_UNSET = msgspec.UNSET
_REQUIRED = object()  # a field with no default
_new = object.__new__
_set = object.__setattr__


class _NotPlain(Exception):
    """Valid JSON, but not provably valid here: the reference decides."""


# Field types as msgspec states them. In a plain message (ASCII, no escapes, no DEL) a string
# has only printable characters, so an id of 1-128 characters is an `Id`/`RepId` unless it is
# all spaces (checked in `decode_fast`).
_Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS)]
_Stage = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS)]
_Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$")]
_Label = Union[Annotated[str, Meta(max_length=MAX_LABEL_CHARS)], None]  # noqa: UP007
_Duration = Annotated[int, Meta(ge=0, le=MAX_DURATION_MINUTES)]
_Score = Annotated[int, Meta(ge=0, le=10)]
_Period = Literal["month", "quarter", "year"]


def _money_text(raw: msgspec.Raw) -> Decimal | None:
    """What the reference makes of this JSON text: `_money` of a string's characters, of an
    integer as int (as orjson reads it), of any other number as Decimal of its own text."""
    text = bytes(raw)
    if text[:1] == b'"':
        return _money(text[1:-1].decode("ascii"))  # no escapes in a plain message
    if text == b"null":
        return None  # a required amount: refused below
    if b"." in text or b"e" in text or b"E" in text:
        return _money(Decimal(text.decode("ascii")))
    number = int(text)
    if not -(2**63) <= number < 2**63:  # orjson reads these as floats: the reference's business
        raise _NotPlain
    return _money(number)


# Per field: name, msgspec type, default (or _REQUIRED), and the reference function that
# converts it (None: msgspec's value is the model's value); in the model's field order, `type`
# left out. tests/unit/test_fast_decoder.py checks they list exactly the models' fields.
Spec = tuple[str, Any, Any, Callable[[Any], Any] | None]
_COMMON: tuple[Spec, ...] = (
    ("event_id", _Id, _REQUIRED, None),
    ("occurred_at", str, _REQUIRED, _timestamp),
    ("rep_id", _Id, _REQUIRED, None),
    ("team", _Label, UNKNOWN, _label),
    ("region", _Label, UNKNOWN, _label),
)
_OPTIONAL_REP: Spec = ("rep_id", Union[_Id, None], None, None)  # noqa: UP007


def _fields(*extra: Spec, optional_rep: bool = False) -> tuple[Spec, ...]:
    common = tuple(_OPTIONAL_REP if optional_rep and s[0] == "rep_id" else s for s in _COMMON)
    return common + extra


def _opt(kind: Any) -> Any:
    return Union[kind, None]  # noqa: UP007


FIELD_SPECS: dict[EventType, tuple[Spec, ...]] = {
    EventType.DEAL_CREATED: _fields(
        ("deal_id", _Id, _REQUIRED, None),
        ("customer_id", _Id, _REQUIRED, None),
        ("amount", msgspec.Raw, _REQUIRED, _money_text),
        ("currency", _Currency, _REQUIRED, None),
        ("stage", _Stage, _REQUIRED, None),
        ("channel", Channel, _REQUIRED, None),
    ),
    EventType.DEAL_STAGE_CHANGED: _fields(
        ("deal_id", _Id, _REQUIRED, None),
        ("customer_id", _Id, _REQUIRED, None),
        ("stage", _Stage, _REQUIRED, None),
        ("amount", msgspec.Raw, None, _money_text),
        ("currency", _opt(_Currency), None, None),
    ),
    EventType.DEAL_WON: _fields(
        ("deal_id", _Id, _REQUIRED, None),
        ("customer_id", _Id, _REQUIRED, None),
        ("amount", msgspec.Raw, _REQUIRED, _money_text),
        ("currency", _Currency, _REQUIRED, None),
        ("channel", _opt(Channel), None, None),
        ("deal_created_at", _opt(str), None, _timestamp),
        ("cost", msgspec.Raw, None, _money_text),
        ("cost_currency", _opt(_Currency), None, None),
        ("deal_type", _opt(DealType), None, None),
    ),
    EventType.DEAL_LOST: _fields(
        ("deal_id", _Id, _REQUIRED, None),
        ("customer_id", _Id, _REQUIRED, None),
    ),
    EventType.VISIT_COMPLETED: _fields(
        ("visit_id", _Id, _REQUIRED, None),
        ("customer_id", _Id, _REQUIRED, None),
        ("deal_id", _opt(_Id), None, None),
        ("duration_minutes", _opt(_Duration), None, None),
    ),
    EventType.QUOTE_SENT: _fields(
        ("quote_id", _Id, _REQUIRED, None),
        ("deal_id", _Id, _REQUIRED, None),
        ("customer_id", _Id, _REQUIRED, None),
        ("amount", msgspec.Raw, _REQUIRED, _money_text),
        ("currency", _Currency, _REQUIRED, None),
    ),
    EventType.TARGET_SET: _fields(
        ("period", _Period, _REQUIRED, None),
        ("period_start", str, _REQUIRED, _period_start),
        ("amount", msgspec.Raw, _REQUIRED, _money_text),
        ("currency", _opt(_Currency), None, None),
        ("metric", TargetMetric, TargetMetric.REVENUE, None),
        ("scope", Scope, Scope.REP, None),
        optional_rep=True,
    ),
    EventType.SURVEY_COMPLETED: _fields(
        ("survey_id", _Id, _REQUIRED, None),
        ("customer_id", _Id, _REQUIRED, None),
        ("deal_id", _opt(_Id), None, None),
        ("kind", SurveyKind, _REQUIRED, None),
        ("score", _Score, _REQUIRED, None),
    ),
    EventType.LEAD_CREATED: _fields(
        ("lead_id", _Id, _REQUIRED, None),
        ("channel", Channel, _REQUIRED, None),
        ("customer_id", _opt(_Id), None, None),
    ),
    EventType.SPEND_RECORDED: _fields(
        ("spend_id", _Id, _REQUIRED, None),
        ("amount", msgspec.Raw, _REQUIRED, _money_text),
        ("currency", _Currency, _REQUIRED, None),
        ("category", SpendCategory, _REQUIRED, None),
        ("channel", _opt(Channel), None, None),
        optional_rep=True,
    ),
}

# The model rules (pydantic "after" validators), called on the built event as pydantic does.
_AFTER: dict[EventType, Callable[[Any], Any]] = {
    EventType.TARGET_SET: getattr(TargetSet, "_scope_and_units"),  # noqa: B009 - typed as a proxy
    EventType.SURVEY_COMPLETED: getattr(SurveyCompleted, "_on_scale"),  # noqa: B009
    EventType.SPEND_RECORDED: getattr(SpendRecorded, "_owner"),  # noqa: B009
}

# What Python still does to a field of the struct (in `decode_fast`'s loop).
_DEFAULT = 0  # optional: when absent (UNSET), the default, and the field was not given
_LABEL = 1  # team/region: absent -> the default; null -> `unknown` (given); a string is kept
_CONVERT = 2  # required: the reference's function
_CONVERT_OPTIONAL = 3  # optional: absent -> default (not given); null stays None; else converted


class _Plan:
    """How one type's struct becomes its event."""

    __slots__ = ("after", "ids", "kind", "model", "names", "steps")

    def __init__(self, kind: EventType) -> None:
        specs = FIELD_SPECS[kind]
        self.kind = kind
        self.model = EVENT_MODELS[kind]
        self.names = frozenset(["type", *(s[0] for s in specs)])
        self.ids = tuple(name for name, t, _, _ in specs if t in (_Id, _opt(_Id)))
        steps: list[tuple[str, int, Any, Any]] = []
        for name, _, default, convert in specs:
            if convert is _label:
                steps.append((name, _LABEL, default, None))
            elif convert is not None:
                step = _CONVERT if default is _REQUIRED else _CONVERT_OPTIONAL
                steps.append((name, step, default, convert))
            elif default is not _REQUIRED:
                steps.append((name, _DEFAULT, default, None))
        self.steps = tuple(steps)
        self.after = _AFTER.get(kind)


def _struct(kind: EventType) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for name, kind_type, default, _ in FIELD_SPECS[kind]:
        if default is _REQUIRED:
            fields.append((name, kind_type))
        else:  # may be absent (UNSET): the event must know which fields were given
            fields.append((name, kind_type | msgspec.UnsetType, _UNSET))
    title = "".join(part.title() for part in kind.replace("_", ".").split("."))
    return msgspec.defstruct(title, fields, tag_field="type", tag=kind.value, kw_only=True)


_PLANS: dict[type, _Plan] = {_struct(kind): _Plan(kind) for kind in FIELD_SPECS}
_DECODER: Any = msgspec.json.Decoder(Union[tuple(_PLANS)])  # noqa: UP007
_asdict = msgspec.structs.asdict


def decode_fast(
    raw: bytes, rules: Rules, finish: Callable[[str, Any, Rules], None]
) -> BaseEvent | None:
    """The event of a plain message (exactly as the reference decodes it), else None.

    `finish` is the reference's check after validation (stage and currency, in place)."""
    # Plain: ASCII without DEL or escapes, one object with no object or array inside (no nesting
    # that orjson would refuse while msgspec skips it). `find` is the cheapest scan in CPython.
    if (
        len(raw) > rules.max_event_bytes
        or not raw.isascii()
        or raw.find(b"\\") >= 0
        or raw.find(b"[") >= 0
        or raw.find(b"\x7f") >= 0
        or raw.find(b"{", 1) >= 0
    ):
        return None
    # Without a space, no string is blank but the empty one, which msgspec refuses for ids.
    spaced = raw.find(b" ") >= 0
    try:
        struct = _DECODER.decode(raw)
        plan = _PLANS[type(struct)]
        data = _asdict(struct)
        if spaced:
            for name in plan.ids:
                value = data[name]
                if type(value) is str and not value.strip():
                    return None
        given = plan.names
        for name, step, default, convert in plan.steps:
            value = data[name]
            if value is _UNSET:
                data[name] = default
                given = given - {name}
            elif step == _LABEL:
                if not value or (spaced and not value.strip()):  # null or blank: `unknown`
                    data[name] = default
            elif step == _CONVERT:
                converted = convert(value)
                if converted is None:  # a required amount given as null
                    return None
                data[name] = converted
            elif value is not None and step == _CONVERT_OPTIONAL:
                data[name] = convert(value)
        event = _new(plan.model)
        # The models' field order: `type` second, after `event_id`.
        _set(event, "__dict__", {"event_id": data.pop("event_id"), "type": plan.kind, **data})
        _set(event, "__pydantic_fields_set__", set(given))
        _set(event, "__pydantic_extra__", None)
        _set(event, "__pydantic_private__", None)
        if plan.after is not None:
            plan.after(event)
        finish(plan.kind, event, rules)
    except Exception:  # anything at all: the reference decodes it and says why
        return None
    return event  # type: ignore[no-any-return]
