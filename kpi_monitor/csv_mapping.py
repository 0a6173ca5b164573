"""The mapping file of a CRM's CSV export: which contract field each column fills, validated."""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from kpi_core.events import EVENT_MODELS, EVENT_TYPES
from kpi_rules import Rules
from kpi_rules.vocabulary import TARGET_PERIODS, Channel, values

# --------------------------------------------------------------------------- the contract's fields

#: event type -> its fields in the contract's order (`type` itself excluded: it has its own rule).
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(name for name in model.model_fields if name != "type")
    for kind, model in EVENT_MODELS.items()
}
REQUIRED_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(
        name for name, info in model.model_fields.items() if info.is_required() and name != "type"
    )
    for kind, model in EVENT_MODELS.items()
}
CONTRACT_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(name for names in TYPE_FIELDS.values() for name in names)
)
TIMESTAMP_FIELDS = frozenset({"occurred_at", "deal_created_at"})
DATE_FIELDS = frozenset({"period_start"})
MONEY_FIELDS = frozenset({"amount"})
INTEGER_FIELDS = frozenset({"duration_minutes"})
#: Fields whose contract values are a closed set, checked when the mapping is loaded.
CHOICES: dict[str, tuple[str, ...]] = {"channel": values(Channel), "period": values(TARGET_PERIODS)}

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class MappingError(ValueError):
    """The mapping file (or the CSV header it is applied to) is unusable; the message says why."""


# --------------------------------------------------------------------------- the mapping file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _allowed(what: str, value: str, choices: Sequence[str]) -> str:
    return f"{what} {value!r} is not allowed; allowed: {', '.join(choices)}"


class CsvDialect(_Strict):
    """How the file is written: separator, quote character, text encoding."""

    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8-sig"  # Excel's UTF-8 starts with a byte-order mark; this drops it

    @field_validator("delimiter", "quotechar")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1 or value in "\r\n":
            raise ValueError(f"must be one character other than a line break, got {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown text encoding {value!r}; e.g. utf-8-sig, utf-8, cp1252, latin-1"
            ) from None
        return value


class TypeRule(_Strict):
    """The event type: one `fixed` type for the whole file, or read from a `column` via `values`."""

    fixed: str | None = None
    column: str | None = None
    values: dict[str, str] = {}
    default: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"fixed": value} if isinstance(value, str) else value

    @field_validator("fixed", "default")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in EVENT_TYPES:
            raise ValueError(_allowed("event type", value, EVENT_TYPES))
        return value

    @field_validator("values")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        for crm, kind in value.items():
            if kind not in EVENT_TYPES:
                raise ValueError(f"{crm!r}: " + _allowed("event type", kind, EVENT_TYPES))
        return value

    @model_validator(mode="after")
    def _one_source(self) -> TypeRule:
        if (self.fixed is None) == (self.column is None):
            raise ValueError(
                "give either one event type for the whole file (type: deal.won) or a column and "
                "its values (type: {column: Stage, values: {Closed Won: deal.won}})"
            )
        if self.fixed is not None and (self.values or self.default):
            raise ValueError("values and default go with column, not with fixed")
        if self.column is not None and not self.values and self.default is None:
            raise ValueError(f"column {self.column!r} needs values (CRM value: event type)")
        return self

    @property
    def types(self) -> set[str]:
        """Every type this rule can produce."""
        if self.fixed is not None:
            return {self.fixed}
        return set(self.values.values()) | ({self.default} if self.default else set())


class ColumnRule(_Strict):
    """What one CSV column fills: a contract `field`, with optional `values` (CRM value: contract
    value; other values are refused), `default` (contract value for a blank cell) and `format`
    (strptime format for a timestamp or date field, instead of the one in `timestamps`)."""

    field: str
    values: dict[str, str] | None = None
    default: str | None = None
    format: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"field": value} if isinstance(value, str) else value

    @field_validator("field")
    @classmethod
    def _contract_field(cls, value: str) -> str:
        if value == "type":
            raise ValueError("the event type is set by the top-level key `type`, not by a column")
        if value not in CONTRACT_FIELDS:
            raise ValueError(_allowed("contract field", value, CONTRACT_FIELDS))
        return value

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        return None if value is None else _check_format(value)


class TimestampRule(_Strict):
    """How CRM time stamps and dates are written, and the zone of those without an offset."""

    format: str | None = None  # strptime format; None: ISO 8601 / RFC 3339
    date_format: str | None = None  # for period_start; None: YYYY-MM-DD
    timezone: str | None = None  # None: a time stamp without an offset is refused
    ambiguous: Literal["refuse", "earlier", "later"] = "refuse"

    @field_validator("format", "date_format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        return None if value is None else _check_format(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown IANA time zone {value!r}; use a name such as 'Europe/London', "
                    "'America/New_York' or 'Asia/Shanghai' (or UTC)"
                ) from None
        return value

    @property
    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None


class NumberRule(_Strict):
    """How amounts are written: decimal mark and thousands separator (none by default)."""

    decimal: Literal[".", ","] = "."
    thousands: Literal["", ",", ".", " ", "'", "\u00a0", "\u202f"] = ""

    @model_validator(mode="after")
    def _distinct(self) -> NumberRule:
        if self.decimal == self.thousands:
            raise ValueError(f"decimal and thousands must differ (both are {self.decimal!r})")
        return self


class CsvMapping(_Strict):
    """The whole mapping file (see README, "Import a CRM export")."""

    csv: CsvDialect = CsvDialect()
    type: TypeRule
    event_id: str | None = None  # template of column names in braces, e.g. "sf-{Id}-{Stage}"
    columns: dict[str, ColumnRule]
    constants: dict[str, str] = {}
    timestamps: TimestampRule = TimestampRule()
    numbers: NumberRule = NumberRule()

    @field_validator("constants")
    @classmethod
    def _constant_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name == "type":
                raise ValueError("type cannot be a constant (use the top-level key `type`)")
            if name == "event_id":
                raise ValueError("event_id cannot be a constant: every event needs its own id")
            if name not in CONTRACT_FIELDS:
                raise ValueError(_allowed("contract field", name, CONTRACT_FIELDS))
        return value

    @field_validator("event_id")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            names = PLACEHOLDER.findall(value)
            if not names or any(not name.strip() for name in names):
                raise ValueError(
                    "must name at least one column in braces, e.g. 'sfdc-{Opportunity ID}-{Stage}', "
                    "so that each row gets its own id"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CsvMapping:
        problems: list[str] = []
        filled: dict[str, str] = {}
        for column, rule in self.columns.items():
            where = f"columns.{column}"
            if rule.field in filled:
                problems.append(f"{where}: {rule.field} is already filled by {filled[rule.field]}")
            filled[rule.field] = where
            if rule.format is not None and rule.field not in TIMESTAMP_FIELDS | DATE_FIELDS:
                problems.append(f"{where}.format: only for time stamp and date fields, not {rule.field}")
            for crm, contract in (rule.values or {}).items():
                problems += _contract_problems(f"{where}.values.{crm}", rule.field, contract)
            if rule.default is not None:
                problems += _contract_problems(f"{where}.default", rule.field, rule.default)
        for name, value in self.constants.items():
            if name in filled:
                problems.append(f"constants.{name}: {name} is already filled by {filled[name]}")
            filled[name] = f"constants.{name}"
            problems += _contract_problems(f"constants.{name}", name, value)
        if self.event_id is not None:
            if "event_id" in filled:
                problems.append(f"event_id: the id is already filled by {filled['event_id']}; keep one")
            filled["event_id"] = "event_id"
        elif "event_id" not in filled:
            problems.append(
                "event_id: no column fills event_id; map a unique id column to it, or give a "
                "template such as event_id: 'crm-{Id}-{Stage}' (a re-import must give the same ids)"
            )
        produced = self.type.types
        for column, rule in self.columns.items():
            if not any(rule.field in TYPE_FIELDS[kind] for kind in produced):
                problems.append(
                    f"columns.{column}: {rule.field} is not a field of {', '.join(sorted(produced))}"
                )
        for kind in sorted(produced):
            missing = sorted(REQUIRED_FIELDS[kind] - set(filled) - {"event_id"})  # said above
            if missing:
                problems.append(
                    f"type: {kind} needs {', '.join(missing)}, which no column or constant fills"
                )
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    def referenced_columns(self) -> dict[str, str]:
        """CSV column -> the mapping key that names it."""
        named = {column: f"columns.{column}" for column in self.columns}
        if self.type.column is not None:
            named.setdefault(self.type.column, "type.column")
        for name in PLACEHOLDER.findall(self.event_id or ""):
            named.setdefault(name, "event_id")
        return named


def _contract_problems(where: str, name: str, value: str) -> list[str]:
    """A value written in the mapping itself (values, default, constants) that cannot be right."""
    choices = CHOICES.get(name)
    if choices is not None and value not in choices:
        return [f"{where}: " + _allowed(name, value, choices)]
    if name in INTEGER_FIELDS and not (value.isascii() and value.isdigit()):
        return [f"{where}: {name} must be a whole number, got {value!r}"]
    return []


def _check_format(value: str) -> str:
    """A strptime format must read back what it writes (catches bad directives at load time)."""
    sample = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    try:
        datetime.strptime(sample.strftime(value), value)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a strptime format that reads its own output ({exc}); "
            "e.g. '%d/%m/%Y %H:%M'"
        ) from None
    return value


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed beside an unknown key at `loc` (walks the nested models and dicts)."""
    model: Any = CsvMapping
    parts = list(loc[:-1])
    while parts:
        fields = getattr(model, "model_fields", {})
        part = parts.pop(0)
        if part not in fields:
            return []
        annotation = fields[part].annotation
        if get_origin(annotation) in (Union, UnionType):
            annotation = next((a for a in get_args(annotation) if hasattr(a, "model_fields")), None)
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
            if not parts:
                return []
            parts.pop(0)  # the dict key, e.g. the column name
        model = annotation
    return sorted(getattr(model, "model_fields", {}))


def _format_error(error: ValidationError, source: str) -> str:
    lines = [f"invalid mapping file {source}:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(tuple(item["loc"]))
            message = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        elif item["type"] == "missing":
            message = "required key is missing"
        elif item["type"] in ("literal_error", "dict_type", "model_type", "string_type"):
            message = f"{message} (got {item.get('input')!r})"
        lines.append(f"  {key}: {message}" if key else f"  {message}")
    return "\n".join(lines)


def parse_mapping(data: Any, source: str = "<mapping>", rules: Rules | None = None) -> CsvMapping:
    """Validate a parsed mapping file; with `rules`, also the stages and currencies it produces."""
    if not isinstance(data, dict):
        raise MappingError(f"invalid mapping file {source}: the top level must be a mapping of keys")
    try:
        mapping = CsvMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(_format_error(exc, source)) from None
    if rules is not None:
        problems = rules_problems(mapping, rules)
        if problems:
            raise MappingError(
                f"invalid mapping file {source} for the rules file:\n  " + "\n  ".join(problems)
            )
    return mapping


def load_mapping(path: Path | str, rules: Rules | None = None) -> CsvMapping:
    """Read and validate a mapping file. Every YAML scalar is read as text (BaseLoader), so that
    CRM values such as `Yes`, `0800` or `1.10` stay exactly as written."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read mapping file {path}: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        raise MappingError(f"mapping file {path} is not valid YAML: {exc}") from None
    return parse_mapping(data, str(path), rules)


def rules_problems(mapping: CsvMapping, rules: Rules) -> list[str]:
    """Stages and currencies the mapping can produce that the rules file would reject."""
    problems: list[str] = []
    allowed = {"stage": list(rules.stages), "currency": [rules.currency, *sorted(rules.fx)]}
    for column, rule in mapping.columns.items():
        choices = allowed.get(rule.field)
        if choices is None:
            continue
        where = f"columns.{column}"
        for crm, contract in (rule.values or {}).items():
            if contract not in choices:
                problems.append(f"{where}.values.{crm}: " + _allowed(rule.field, contract, choices))
        if rule.default is not None and rule.default not in choices:
            problems.append(f"{where}.default: " + _allowed(rule.field, rule.default, choices))
    for name, choices in allowed.items():
        value = mapping.constants.get(name)
        if value is not None and value not in choices:
            problems.append(f"constants.{name}: " + _allowed(name, value, choices))
    return problems


__all__ = [
    "CONTRACT_FIELDS",
    "REQUIRED_FIELDS",
    "TYPE_FIELDS",
    "ColumnRule",
    "CsvMapping",
    "MappingError",
    "NumberRule",
    "TimestampRule",
    "TypeRule",
    "load_mapping",
    "parse_mapping",
    "rules_problems",
]
