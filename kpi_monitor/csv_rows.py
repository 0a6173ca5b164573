"""CSV rows as contract events under a mapping (pure: no Kafka): cell parsers, rows, refusals."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from kpi_core.events import Rejection, decode_obj
from kpi_monitor.csv_lookups import Lookup, load_lookup
from kpi_monitor.csv_mapping import (
    DATE_FIELDS,
    INTEGER_FIELDS,
    MONEY_FIELDS,
    PLACEHOLDER,
    REQUIRED_FIELDS,
    SKIP,
    TIMESTAMP_FIELDS,
    TYPE_FIELDS,
    ColumnRule,
    CsvMapping,
    MappedEvent,
    MappingError,
    NumberRule,
    TimestampRule,
)
from kpi_rules import Rules

#: Why a row is refused by the mapping itself; the contract's reasons (kpi_core.events.REASONS)
#: come on top, from validating the built event as the worker would.
MAPPING_REASONS: tuple[str, ...] = (
    "cell_count",
    "encoding",
    "csv",
    "unmapped_type",
    "unmapped_value",
    "missing_value",
    "bad_amount",
    "bad_integer",
    "bad_timestamp",
    "bad_date",
    "naive_timestamp",
    "nonexistent_time",
    "ambiguous_time",
    "too_large",
    "unknown_key",
)

_SURROGATE = re.compile("[\udc80-\udcff]")  # bytes that did not decode (errors="surrogateescape")


class RowRefused(Exception):
    """One row that cannot become a valid event: `reason` is a short name, `message` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# --------------------------------------------------------------------------- cell values


def parse_amount(text: str, rule: NumberRule) -> str:
    """A CRM amount as exact decimal text ("1.234,50" -> "1234.50"); never through a float.
    A leading minus is kept, so that the contract's own check refuses it as `negative_amount`."""
    sign = "-" if text.startswith("-") else ""
    body = text[1:].strip() if sign else text
    whole, mark, fraction = body.partition(rule.decimal)
    grouped = rule.thousands and rule.thousands in whole
    if grouped:
        groups = whole.split(rule.thousands)
        ok = 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])
        whole = "".join(groups) if ok else "?"
    if (
        not whole.isascii()
        or not whole.isdigit()
        or (mark and (not fraction.isascii() or not fraction.isdigit()))
    ):
        separators = f"decimal mark {rule.decimal!r}, thousands separator " + (
            repr(rule.thousands) if rule.thousands else "none"
        )
        raise RowRefused(
            "bad_amount",
            f"{text!r} is not an amount ({separators}; set numbers.decimal and numbers.thousands)",
        )
    return f"{sign}{whole}.{fraction}" if mark else f"{sign}{whole}"


def parse_integer(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise RowRefused("bad_integer", f"{text!r} is not a whole number")
    return int(text)


def parse_timestamp(text: str, fmt: str | None, rule: TimestampRule) -> str:
    """A CRM time stamp as RFC 3339 with an offset: its own offset if it has one, else the
    mapping's zone (with DST gaps refused and DST overlaps resolved as `ambiguous` says)."""
    try:
        parsed = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
    except ValueError:
        expected = f"format {fmt!r}" if fmt else "ISO 8601 (set timestamps.format for another)"
        raise RowRefused("bad_timestamp", f"{text!r} is not a time stamp in {expected}") from None
    if parsed.utcoffset() is not None:
        return parsed.isoformat()
    zone = rule.zone
    if zone is None:
        raise RowRefused(
            "naive_timestamp",
            f"{text!r} has no UTC offset and the mapping gives no time zone; set "
            "timestamps.timezone (e.g. Europe/London) to the zone the CRM exported in",
        )
    earlier, later = parsed.replace(tzinfo=zone, fold=0), parsed.replace(tzinfo=zone, fold=1)
    if earlier.utcoffset() == later.utcoffset():
        return earlier.isoformat()
    # The two folds differ only around a DST change: inside the gap neither reads back as the
    # same wall time; inside the overlap both do.
    if earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != parsed:
        raise RowRefused(
            "nonexistent_time",
            f"{text!r} does not exist in {rule.timezone} (the clocks went forward past it)",
        )
    if rule.ambiguous == "refuse":
        raise RowRefused(
            "ambiguous_time",
            f"{text!r} happened twice in {rule.timezone} (the clocks went back); set "
            "timestamps.ambiguous to earlier or later to choose",
        )
    return (earlier if rule.ambiguous == "earlier" else later).isoformat()


def parse_date(text: str, fmt: str | None) -> str:
    fmt = fmt or "%Y-%m-%d"
    try:
        return datetime.strptime(text, fmt).date().isoformat()
    except ValueError:
        raise RowRefused("bad_date", f"{text!r} is not a date in format {fmt!r}") from None


# --------------------------------------------------------------------------- rows -> events


@dataclass(frozen=True, slots=True)
class _Source:
    column: str | None  # None: a constant
    rule: ColumnRule | None
    constant: str | None


Cells = Callable[[str], str]  # column (of the export, or `<lookup>.<column>`) -> its cell


class _EventMapper:
    """One event of a row (a `MappedEvent` of the mapping)."""

    def __init__(self, owner: RowMapper, event: MappedEvent) -> None:
        self.owner = owner
        self.rule = event
        self.sources: dict[str, _Source] = {
            rule.field: _Source(column, rule, None) for column, rule in event.columns.items()
        }
        for name, value in event.constants.items():
            self.sources[name] = _Source(None, None, value)
        self.id_parts: list[tuple[str] | str] = []
        if event.event_id is not None:
            at = 0
            for match in PLACEHOLDER.finditer(event.event_id):
                self.id_parts.append(event.event_id[at : match.start()])
                self.id_parts.append((match.group(1),))
                at = match.end()
            self.id_parts.append(event.event_id[at:])

    def event(self, cell: Cells) -> dict[str, Any] | None:
        """The contract event (exactly the type's fields), None when the type rule says skip,
        or raise RowRefused."""
        kind = self._type(cell)
        if kind is None:
            return None
        required = REQUIRED_FIELDS[kind]
        event: dict[str, Any] = {}
        for name in TYPE_FIELDS[kind]:
            value = self._id(cell) if name == "event_id" and self.id_parts else self._value(name, cell)
            if value is None:
                if name in required:
                    source = self.sources.get(name)
                    where = f" (column {source.column!r} is empty)" if source and source.column else ""
                    raise RowRefused("missing_value", f"{kind} needs {name}{where}")
                continue
            event[name] = value
        event = {"event_id": event.pop("event_id"), "type": kind, **event}  # the contract's order
        try:
            decode_obj(event, self.owner.rules)
        except Rejection as rejection:
            raise RowRefused(rejection.reason, self._with_column(rejection.error)) from None
        return event

    def _type(self, cell: Cells) -> str | None:
        rule = self.rule.type
        if rule.fixed is not None:
            return rule.fixed
        assert rule.column is not None
        value = cell(rule.column).strip()
        kind = rule.values.get(value, rule.default)
        if kind is None:
            known = ", ".join(repr(v) for v in rule.values)
            raise RowRefused(
                "unmapped_type",
                f"column {rule.column!r}: {value!r} is not in {self.rule.where}type.values ({known}) "
                f"and {self.rule.where}type.default is not set",
            )
        return None if kind == SKIP else kind

    def _id(self, cell: Cells) -> str:
        text: list[str] = []
        for part in self.id_parts:
            if isinstance(part, str):
                text.append(part)
                continue
            value = cell(part[0]).strip()
            if not value:
                raise RowRefused("missing_value", f"event_id needs column {part[0]!r}, which is empty")
            text.append(value)
        return "".join(text)

    def _value(self, name: str, cell: Cells) -> Any:
        source = self.sources.get(name)
        if source is None:
            return None
        if source.constant is not None:
            return _contract_value(name, source.constant)
        rule = source.rule
        assert rule is not None and source.column is not None
        text = cell(source.column).strip()
        if not text:
            return None if rule.default is None else _contract_value(name, rule.default)
        if rule.values is not None:
            mapped = rule.values.get(text)
            if mapped is None:
                known = ", ".join(repr(v) for v in rule.values)
                raise RowRefused(
                    "unmapped_value",
                    f"column {source.column!r}: {text!r} is not in columns.{source.column}.values ({known})",
                )
            return _contract_value(name, mapped)
        try:
            return self.owner.parse(name, text, rule)
        except RowRefused as refused:
            refused.message = f"column {source.column!r}: {refused.message}"
            raise

    def _with_column(self, error: str) -> str:
        """The contract's message names the field; add the column it came from."""
        name, colon, rest = error.partition(":")
        source = self.sources.get(name)
        if colon and source is not None:
            where = f"column {source.column!r}" if source.column else f"constants.{name}"
            return f"{name} ({where}):{rest}"
        return error


class RowMapper:
    """A mapping bound to one file's header, its lookup tables and the rules: `events(cells)`
    builds the events of one row (all of them, or the row is refused)."""

    def __init__(
        self,
        mapping: CsvMapping,
        header: Sequence[str],
        rules: Rules,
        lookups: dict[str, Lookup] | None = None,
    ) -> None:
        self.mapping = mapping
        self.rules = rules
        names = [name.strip() for name in header]
        index: dict[str, int] = {}
        doubled: set[str] = set()
        for i, name in enumerate(names):
            if name in index:
                doubled.add(name)
            index.setdefault(name, i)
        wanted = mapping.columns_of_export()
        absent = [f"{column!r} ({key})" for column, key in wanted.items() if column not in index]
        if absent:
            raise MappingError(
                f"the mapping names columns the file does not have: {', '.join(absent)}; "
                f"the file's columns are: {', '.join(repr(n) for n in names)}"
            )
        twice = sorted(doubled & set(wanted))
        if twice:
            raise MappingError(f"the file has more than one column named {', '.join(map(repr, twice))}")
        if lookups is None:
            lookups = {
                name: load_lookup(name, rule, mapping.source_dir) for name, rule in mapping.lookups.items()
            }
        self.lookups = lookups
        for column, key in mapping.referenced_columns().items():
            lookup = mapping.lookup_of(column)
            if lookup is not None and column.split(".", 1)[1] not in lookups[lookup].columns:
                table = lookups[lookup]
                raise MappingError(
                    f"{key}: {table.path} has no column {column.split('.', 1)[1]!r}; its columns "
                    f"are: {', '.join(map(repr, table.columns))}"
                )
        self.width = len(names)
        self.index = index
        self._joins = [(name, index[rule.on]) for name, rule in mapping.lookups.items()]
        self._events = [_EventMapper(self, event) for event in mapping.mapped_events()]

    def events(self, cells: Sequence[str]) -> list[dict[str, Any]]:
        """The contract events of one row (none when every type rule says skip), or raise
        RowRefused: a row gives all its events or none."""
        if len(cells) != self.width:
            raise RowRefused("cell_count", f"the row has {len(cells)} cells, the header {self.width}")
        bad = next((c for c in cells if _SURROGATE.search(c)), None)
        if bad is not None:
            raise RowRefused(
                "encoding",
                f"a cell is not valid {self.mapping.csv.encoding} text ({bad.strip()!r:.60}); "
                "set csv.encoding in the mapping",
            )
        joined: dict[str, dict[str, str]] = {}
        for name, at in self._joins:
            key = cells[at].strip()
            if not key:
                continue  # a blank key fills nothing: defaults and required fields apply
            row = self.lookups[name].row(key)
            if row is None:
                table = self.lookups[name]
                raise RowRefused(
                    "unknown_key",
                    f"column {table.rule.on!r}: {key!r} is not in {table.path.name} "
                    f"(column {table.key!r}; lookups.{name})",
                )
            joined[name] = row
        index = self.index

        def cell(column: str) -> str:
            at = index.get(column)
            if at is not None:
                return cells[at]
            name, _, inner = column.partition(".")
            return joined.get(name, {}).get(inner, "")

        events = [e for e in (mapper.event(cell) for mapper in self._events) if e is not None]
        return events

    def event(self, cells: Sequence[str]) -> dict[str, Any]:
        """The one event of a row of a single-event mapping (the first of several)."""
        events = self.events(cells)
        if not events:
            raise RowRefused("skipped", "the row gives no event")
        return events[0]

    def parse(self, name: str, text: str, rule: ColumnRule) -> Any:
        if name in MONEY_FIELDS:
            return parse_amount(text, self.mapping.numbers)
        if name in INTEGER_FIELDS:
            return parse_integer(text)
        if name in TIMESTAMP_FIELDS:
            stamps = self.mapping.timestamps
            return parse_timestamp(text, rule.format or stamps.format, stamps)
        if name in DATE_FIELDS:
            return parse_date(text, rule.format or self.mapping.timestamps.date_format)
        return text


def _contract_value(name: str, text: str) -> Any:
    """Values, defaults and constants are written in the contract's form already."""
    return parse_integer(text) if name in INTEGER_FIELDS else text


@dataclass(frozen=True, slots=True)
class MappedRow:
    """One CSV record: the lines it spans, and its events or why it was refused."""

    line: int
    last_line: int
    events: tuple[dict[str, Any], ...]
    refused: RowRefused | None

    @property
    def event(self) -> dict[str, Any] | None:
        """The first event (the only one of a single-event mapping), None if refused."""
        return self.events[0] if self.events else None


class CsvRows:
    """The records of an open CSV file as events; the header is read (and checked against the
    mapping) on construction, so a wrong file fails before anything is sent."""

    def __init__(
        self, handle: TextIO, mapping: CsvMapping, rules: Rules, lookups: dict[str, Lookup] | None = None
    ) -> None:
        dialect = mapping.csv
        self._reader = csv.reader(handle, delimiter=dialect.delimiter, quotechar=dialect.quotechar)
        header: list[str] = []
        try:
            while not header:
                header = next(self._reader)
        except StopIteration:
            raise MappingError("the CSV file is empty: no header row") from None
        except csv.Error as exc:
            raise MappingError(f"the CSV header cannot be read: {exc}") from None
        if any(_SURROGATE.search(name) for name in header):
            raise MappingError(
                f"the CSV header is not valid {dialect.encoding} text; set csv.encoding in the mapping"
            )
        self.header_line = self._reader.line_num
        self.mapper = RowMapper(mapping, header, rules, lookups)

    def __iter__(self) -> Iterator[MappedRow]:
        reader = self._reader
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # The reader starts afresh at the next record, so one bad record costs one row.
                yield MappedRow(line, reader.line_num, (), RowRefused("csv", f"not readable CSV: {exc}"))
                continue
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank lines, as in JSONL
            try:
                yield MappedRow(line, reader.line_num, tuple(self.mapper.events(cells)), None)
            except RowRefused as refused:
                if refused.reason == "cell_count" and reader.line_num > line:
                    refused.message += (
                        f" (the record runs over lines {line}-{reader.line_num}: an unbalanced quote?)"
                    )
                yield MappedRow(line, reader.line_num, (), refused)


__all__ = [
    "MAPPING_REASONS",
    "CsvRows",
    "MappedRow",
    "RowMapper",
    "RowRefused",
    "parse_amount",
    "parse_date",
    "parse_integer",
    "parse_timestamp",
]
