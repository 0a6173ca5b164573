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
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator, model_validator

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
#: A type rule's value (or default) meaning "this row gives no event here": for snapshot exports
#: whose rows close a deal only when their stage says so.
SKIP = "skip"


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

    @field_validator("fixed")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in EVENT_TYPES:
            raise ValueError(_allowed("event type", value, EVENT_TYPES))
        return value

    @field_validator("default")
    @classmethod
    def _known_default(cls, value: str | None) -> str | None:
        if value is not None and value not in (*EVENT_TYPES, SKIP):
            raise ValueError(_allowed("event type", value, (*EVENT_TYPES, SKIP)))
        return value

    @field_validator("values")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        for crm, kind in value.items():
            if kind not in (*EVENT_TYPES, SKIP):
                raise ValueError(f"{crm!r}: " + _allowed("event type", kind, (*EVENT_TYPES, SKIP)))
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
        return (set(self.values.values()) | ({self.default} if self.default else set())) - {SKIP}


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


def _constant_fields(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if name == "type":
            raise ValueError(
                "type cannot be a constant (use the top-level key `type`, or `type` in an event)"
            )
        if name == "event_id":
            raise ValueError("event_id cannot be a constant: every event needs its own id")
        if name not in CONTRACT_FIELDS:
            raise ValueError(_allowed("contract field", name, CONTRACT_FIELDS))
    return value


def _template(value: str | None) -> str | None:
    if value is not None:
        names = PLACEHOLDER.findall(value)
        if not names or any(not name.strip() for name in names):
            raise ValueError(
                "must name at least one column in braces, e.g. 'sfdc-{Opportunity ID}-{Stage}', "
                "so that each row gets its own id"
            )
    return value


class EventRule(_Strict):
    """One of the events a row gives (the `events` list): its type, id template, and the columns
    and constants that differ from the top-level ones (e.g. its own `occurred_at` column)."""

    type: TypeRule
    event_id: str | None = None
    columns: dict[str, ColumnRule] = {}
    constants: dict[str, str] = {}

    @field_validator("constants")
    @classmethod
    def _constants(cls, value: dict[str, str]) -> dict[str, str]:
        return _constant_fields(value)

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, value: str | None) -> str | None:
        return _template(value)


class LookupRule(_Strict):
    """A table from another CSV file: the export's column `on` is looked up in the file's `key`
    column (default its first); the file's other columns are then `<lookup name>.<column>`."""

    file: str
    on: str
    key: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8-sig"


class MappedEvent(BaseModel):
    """An event rule with the top-level columns and constants merged in (what a row maps by)."""

    model_config = ConfigDict(frozen=True)

    where: str
    type: TypeRule
    event_id: str | None
    columns: dict[str, ColumnRule]  # CSV (or lookup) column -> rule, one per contract field
    constants: dict[str, str]


class CsvMapping(_Strict):
    """The whole mapping file (see README, "Import a CRM export")."""

    csv: CsvDialect = CsvDialect()
    type: TypeRule | None = None
    event_id: str | None = None  # template of column names in braces, e.g. "sf-{Id}-{Stage}"
    events: list[EventRule] = []
    lookups: dict[str, LookupRule] = {}
    columns: dict[str, ColumnRule] = {}
    constants: dict[str, str] = {}
    timestamps: TimestampRule = TimestampRule()
    numbers: NumberRule = NumberRule()
    #: The mapping file's folder: lookup files are read relative to it.
    _source_dir: Path = PrivateAttr(default_factory=Path)

    @property
    def source_dir(self) -> Path:
        return self._source_dir

    @field_validator("constants")
    @classmethod
    def _constants(cls, value: dict[str, str]) -> dict[str, str]:
        return _constant_fields(value)

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, value: str | None) -> str | None:
        return _template(value)

    @field_validator("lookups", mode="before")
    @classmethod
    def _lookup_shorthand(cls, value: Any) -> Any:
        # `lookups: {Owner ID: users.csv}`: look the column up in the file's first column.
        if isinstance(value, dict):
            return {
                name: {"file": rule, "on": name} if isinstance(rule, str) else rule
                for name, rule in value.items()
            }
        return value

    def mapped_events(self) -> list[MappedEvent]:
        """Every event a row gives, with the top-level columns and constants merged in; an
        event's own column for a field replaces the top-level column for that field."""
        if not self.events:
            assert self.type is not None
            return [MappedEvent(where="", type=self.type, event_id=self.event_id,
                                columns=dict(self.columns), constants=dict(self.constants))]  # fmt: skip
        out = []
        for index, rule in enumerate(self.events):
            own = {column_rule.field for column_rule in rule.columns.values()} | set(rule.constants)
            columns = {c: r for c, r in self.columns.items() if r.field not in own} | rule.columns
            constants = {n: v for n, v in self.constants.items() if n not in own} | rule.constants
            out.append(MappedEvent(where=f"events.{index}.", type=rule.type, event_id=rule.event_id,
                                   columns=columns, constants=constants))  # fmt: skip
        return out

    @model_validator(mode="after")
    def _consistent(self) -> CsvMapping:
        problems: list[str] = []
        if self.events and (self.type is not None or self.event_id is not None):
            problems.append("type, event_id: with `events`, give type and event_id in each event")
        elif not self.events and self.type is None:
            problems.append("type: required (or a list of `events`, each with its type)")
        if problems:
            raise ValueError("\n  ".join(problems))
        for column, rule in self.columns.items():
            problems += _column_problems(f"columns.{column}", rule)
        for index, event_rule in enumerate(self.events):
            own: dict[str, str] = {}
            for column, rule in event_rule.columns.items():
                where = f"events.{index}.columns.{column}"
                problems += _column_problems(where, rule)
                if rule.field in own:
                    problems.append(f"{where}: {rule.field} is already filled by {own[rule.field]}")
                own[rule.field] = where
            for name in event_rule.constants:
                if name in own:
                    where = f"events.{index}.constants.{name}"
                    problems.append(f"{where}: {name} is already filled by {own[name]}")
        seen: dict[str, str] = {}
        for column, rule in self.columns.items():
            if rule.field in seen:
                problems.append(f"columns.{column}: {rule.field} is already filled by {seen[rule.field]}")
            seen[rule.field] = f"columns.{column}"
        for name, value in self.constants.items():
            if name in seen:
                problems.append(f"constants.{name}: {name} is already filled by {seen[name]}")
            problems += _contract_problems(f"constants.{name}", name, value)
        for event in self.mapped_events():
            problems += _event_problems(event)
        produced = set().union(*(event.type.types for event in self.mapped_events()))
        for column, rule in self.columns.items():
            if not any(rule.field in TYPE_FIELDS[kind] for kind in produced):
                problems.append(
                    f"columns.{column}: {rule.field} is not a field of {', '.join(sorted(produced))}"
                )
        for name, lookup in self.lookups.items():
            if "." in name or "{" in name or "}" in name:
                problems.append(f"lookups.{name}: a lookup's name may not contain '.', '{{' or '}}'")
            if not lookup.file.strip():
                problems.append(f"lookups.{name}.file: empty")
        if problems:
            raise ValueError("\n  ".join(dict.fromkeys(problems)))
        return self

    def lookup_of(self, column: str) -> str | None:
        """The lookup a `<lookup>.<column>` name refers to, or None for a column of the export."""
        head, dot, rest = column.partition(".")
        return head if dot and rest and head in self.lookups else None

    def referenced_columns(self) -> dict[str, str]:
        """Column (of the export, or `<lookup>.<column>`) -> the mapping key that names it."""
        named: dict[str, str] = {}
        for event in self.mapped_events():
            for column in event.columns:
                if column in self.columns and event.columns[column] is self.columns[column]:
                    named.setdefault(column, f"columns.{column}")
                else:
                    named.setdefault(column, f"{event.where}columns.{column}")
            if event.type.column is not None:
                named.setdefault(event.type.column, f"{event.where}type.column")
            for name in PLACEHOLDER.findall(event.event_id or ""):
                named.setdefault(name, f"{event.where}event_id")
        for name, lookup in self.lookups.items():
            named.setdefault(lookup.on, f"lookups.{name}.on")
        return named

    def columns_of_export(self) -> dict[str, str]:
        """The referenced columns the export itself must have (not those of a lookup)."""
        return {c: k for c, k in self.referenced_columns().items() if self.lookup_of(c) is None}


def _column_problems(where: str, rule: ColumnRule) -> list[str]:
    problems: list[str] = []
    if rule.format is not None and rule.field not in TIMESTAMP_FIELDS | DATE_FIELDS:
        problems.append(f"{where}.format: only for time stamp and date fields, not {rule.field}")
    for crm, contract in (rule.values or {}).items():
        problems += _contract_problems(f"{where}.values.{crm}", rule.field, contract)
    if rule.default is not None:
        problems += _contract_problems(f"{where}.default", rule.field, rule.default)
    return problems


def _event_problems(event: MappedEvent) -> list[str]:
    """What one event of a row cannot do: a field filled twice, no id, a required field unfilled."""
    problems: list[str] = []
    filled: dict[str, str] = {}
    prefix = event.where
    # (a field filled twice is found by CsvMapping._consistent, where it is written)
    for column, rule in event.columns.items():
        filled[rule.field] = f"columns.{column}"
    for name, value in event.constants.items():
        filled[name] = f"constants.{name}"
        if prefix:
            problems += _contract_problems(f"{prefix}constants.{name}", name, value)
    if event.event_id is not None:
        if "event_id" in filled:
            problems.append(f"{prefix}event_id: the id is already filled by {filled['event_id']}; keep one")
        filled["event_id"] = f"{prefix}event_id"
    elif "event_id" not in filled:
        problems.append(
            f"{prefix}event_id: no column fills event_id; map a unique id column to it, or give a "
            "template such as event_id: 'crm-{Id}-{Stage}' (a re-import must give the same ids)"
        )
    produced = event.type.types
    if not produced:
        problems.append(f"{prefix}type: gives no event type (every value is skip)")
    for kind in sorted(produced):
        missing = sorted(REQUIRED_FIELDS[kind] - set(filled) - {"event_id"})  # said above
        if missing:
            problems.append(
                f"{prefix}type: {kind} needs {', '.join(missing)}, which no column or constant fills"
            )
    return problems


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
    mapping = parse_mapping(data, str(path), rules)
    mapping._source_dir = Path(path).parent
    return mapping


def rules_problems(mapping: CsvMapping, rules: Rules) -> list[str]:
    """Stages and currencies the mapping can produce that the rules file would reject."""
    problems: list[str] = []
    allowed = {"stage": list(rules.stages), "currency": [rules.currency, *sorted(rules.fx)]}
    columns = {f"columns.{c}": r for c, r in mapping.columns.items()}
    for index, event in enumerate(mapping.events):
        columns |= {f"events.{index}.columns.{c}": r for c, r in event.columns.items()}
    for where, rule in columns.items():
        choices = allowed.get(rule.field)
        if choices is None:
            continue
        for crm, contract in (rule.values or {}).items():
            if contract not in choices:
                problems.append(f"{where}.values.{crm}: " + _allowed(rule.field, contract, choices))
        if rule.default is not None and rule.default not in choices:
            problems.append(f"{where}.default: " + _allowed(rule.field, rule.default, choices))
    constants = [("", mapping.constants)]
    constants += [(f"events.{i}.", e.constants) for i, e in enumerate(mapping.events)]
    for prefix, given in constants:
        for name, choices in allowed.items():
            value = given.get(name)
            if value is not None and value not in choices:
                problems.append(f"{prefix}constants.{name}: " + _allowed(name, value, choices))
    return problems


__all__ = [
    "CONTRACT_FIELDS",
    "REQUIRED_FIELDS",
    "TYPE_FIELDS",
    "SKIP",
    "ColumnRule",
    "CsvMapping",
    "EventRule",
    "LookupRule",
    "MappedEvent",
    "MappingError",
    "NumberRule",
    "TimestampRule",
    "TypeRule",
    "load_mapping",
    "parse_mapping",
    "rules_problems",
]
