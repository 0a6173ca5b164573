"""kpi_monitor.csv_mapping and csv_rows: the mapping file, CSV rows -> events, every refusal."""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine
from kpi_core.events import decode_event, decode_obj
from kpi_core.transitions import check_time
from kpi_monitor.csv_mapping import (
    CONTRACT_FIELDS,
    MappingError,
    NumberRule,
    TimestampRule,
    load_mapping,
    parse_mapping,
)
from kpi_monitor.csv_rows import (
    MAPPING_REASONS,
    CsvRows,
    RowMapper,
    RowRefused,
    parse_amount,
    parse_timestamp,
)
from kpi_rules import load_rules, packaged_rules_path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
RULES = load_rules(packaged_rules_path())  # GBP base, EUR and USD fx, stages qualification..commit
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A mapping as YAML gives it (every scalar a string), for a small opportunity export.
MAPPING: dict[str, Any] = {
    "type": {
        "column": "Stage",
        "values": {"New": "deal.created", "Closed Won": "deal.won", "Closed Lost": "deal.lost"},
        "default": "deal.stage_changed",
    },
    "event_id": "crm-{Id}-{Stage}-{When}",
    "columns": {
        "Id": "deal_id",
        "Account": "customer_id",
        "Owner": "rep_id",
        "Team": "team",
        "When": "occurred_at",
        "Amount": "amount",
        "Currency": "currency",
        "Stage": {"field": "stage", "values": {"New": "qualification", "Proposal": "proposal"}},
        "Source": {"field": "channel", "values": {"Web": "web", "Phone": "phone"}, "default": "other"},
        "Created": {"field": "deal_created_at", "format": "%Y-%m-%d"},
    },
    "timestamps": {"format": "%Y-%m-%d %H:%M", "timezone": "Europe/London"},
    "numbers": {"decimal": ".", "thousands": ","},
}
HEADER = [
    "Id",
    "Account",
    "Owner",
    "Team",
    "When",
    "Amount",
    "Currency",
    "Stage",
    "Source",
    "Created",
    "Notes",
]
ROW = {
    "Id": "D-1",
    "Account": "C-9",
    "Owner": "rep-7",
    "Team": "north",
    "When": "2026-06-15 14:30",
    "Amount": "1,234,567.89",
    "Currency": "GBP",
    "Stage": "Closed Won",
    "Source": "Web",
    "Created": "2026-05-02",
    "Notes": "ignored, whatever it says",
}


def mapping(**changes: Any) -> dict[str, Any]:
    """MAPPING with top-level keys replaced (None deletes)."""
    data = copy.deepcopy(MAPPING)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def mapper(data: dict[str, Any] | None = None, header: Sequence[str] = HEADER) -> RowMapper:
    return RowMapper(parse_mapping(data or MAPPING, rules=RULES), header, RULES)


def cells(**changes: str) -> list[str]:
    row = ROW | changes
    return [row[name] for name in HEADER]


def csv_text(*rows: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def refusal(data: dict[str, Any] | None = None, **changes: str) -> RowRefused:
    with pytest.raises(RowRefused) as caught:
        mapper(data).event(cells(**changes))
    return caught.value


# --------------------------------------------------------------------------- good rows


def test_won_row_is_exactly_the_contract_event() -> None:
    event = mapper().event(cells())
    assert event == {
        "event_id": "crm-D-1-Closed Won-2026-06-15 14:30",
        "type": "deal.won",
        "occurred_at": "2026-06-15T14:30:00+01:00",  # BST
        "rep_id": "rep-7",
        "team": "north",
        "deal_id": "D-1",
        "customer_id": "C-9",
        "amount": "1234567.89",
        "currency": "GBP",
        "channel": "web",
        "deal_created_at": "2026-05-02T00:00:00+01:00",
    }
    # The contract's field order, no stage (not a field of deal.won), no `region` (blank: unknown).
    assert list(event)[:4] == ["event_id", "type", "occurred_at", "rep_id"]
    won = decode_obj(event, RULES)
    assert won.amount == Decimal("1234567.89") and won.region == "unknown"


def test_each_stage_value_gives_its_type_with_only_that_types_fields() -> None:
    created = mapper().event(cells(Stage="New", Source=""))
    assert created["type"] == "deal.created"
    assert (created["stage"], created["channel"]) == ("qualification", "other")  # the default
    assert "deal_created_at" not in created
    changed = mapper().event(cells(Stage="Proposal", Amount=""))
    assert changed["type"] == "deal.stage_changed" and changed["stage"] == "proposal"
    assert "amount" not in changed and "channel" not in changed  # optional and blank: left out
    lost = mapper().event(cells(Stage="Closed Lost"))
    assert set(lost) == {"event_id", "type", "occurred_at", "rep_id", "team", "deal_id", "customer_id"}
    for event in (created, changed, lost):
        decode_obj(event, RULES)


def test_fixed_type_constants_and_an_id_column() -> None:
    data = {
        "type": "visit.completed",
        "columns": {
            "Key": "event_id",
            "Activity": "visit_id",
            "Who": "rep_id",
            "Account": "customer_id",
            "At": "occurred_at",
            "Minutes": "duration_minutes",
        },
        "constants": {"region": "emea", "team": "field"},
    }
    header = ["Key", "Activity", "Who", "Account", "At", "Minutes"]
    event = RowMapper(parse_mapping(data), header, RULES).event(
        ["K-1", "A-1", "rep-1", "C-1", "2026-06-01T09:00:00Z", "45"]
    )
    assert event == {
        "event_id": "K-1",
        "type": "visit.completed",
        "occurred_at": "2026-06-01T09:00:00+00:00",
        "rep_id": "rep-1",
        "team": "field",
        "region": "emea",
        "visit_id": "A-1",
        "customer_id": "C-1",
        "duration_minutes": 45,  # an integer, as the contract wants
    }
    decode_obj(event, RULES)


def test_target_from_a_decimal_comma_export() -> None:
    data = {
        "csv": {"delimiter": ";"},
        "type": "target.set",
        "event_id": "q-{Owner}-{Month}",
        "columns": {"Owner": "rep_id", "Month": "period_start", "Quota": "amount", "Changed": "occurred_at"},
        "constants": {"period": "quarter", "currency": "EUR"},
        "timestamps": {"format": "%d.%m.%Y %H:%M", "date_format": "%d.%m.%Y", "timezone": "Europe/Berlin"},
        "numbers": {"decimal": ",", "thousands": "."},
    }
    rows = CsvRows(
        io.StringIO("Owner;Month;Quota;Changed\nr1;01.10.2026;1.234,50;30.09.2026 17:05\n"),
        parse_mapping(data, rules=RULES),
        RULES,
    )
    [row] = list(rows)
    assert row.event == {
        "event_id": "q-r1-01.10.2026",
        "type": "target.set",
        "occurred_at": "2026-09-30T17:05:00+02:00",
        "rep_id": "r1",
        "period": "quarter",
        "period_start": "2026-10-01",
        "amount": "1234.50",
        "currency": "EUR",
    }
    target = decode_obj(row.event, RULES)
    assert target.amount == Decimal("1234.50") * Decimal("0.86")  # converted by the worker only


@pytest.mark.parametrize(
    "name",
    [
        "salesforce-opportunities",
        "quotas",
        "salesforce-opportunity-report",
        "hubspot-deals",
        "pipedrive-deals",
    ],
)
def test_examples_give_the_documented_events_which_the_worker_accepts(name: str) -> None:
    data = load_mapping(EXAMPLES / f"{name}.mapping.yaml", RULES)
    with open(EXAMPLES / f"{name}.csv", encoding=data.csv.encoding, newline="") as handle:
        rows = list(CsvRows(handle, data, RULES))
    assert [row.refused for row in rows] == [None] * len(rows)
    got = [orjson.dumps(event) for row in rows for event in row.events]
    assert got == (EXAMPLES / f"{name}.events.jsonl").read_bytes().splitlines()
    # What the worker does with each message: decode, then the time checks (at a fixed "now").
    context = KpiEngine(RULES, KpiClock(wall=lambda: datetime(2026, 11, 23, 10, tzinfo=UTC))).context()
    for value in got:
        check_time(decode_event(value, RULES), context)


def test_line_numbers_count_quoted_line_breaks_and_blank_lines() -> None:
    text = (
        "Id,Account,Owner,Team,When,Amount,Currency,Stage,Source,Created,Notes\n"
        'D-1,C-1,r,north,2026-06-15 14:30,5,GBP,Closed Won,Web,2026-05-02,"two\nlines"\n'
        "\n"
        "D-2,C-1,r,north,2026-06-15 14:30,5,GBP,Closed Maybe,Web,2026-05-02,\n"
        "D-3,C-1,r,north,2026-06-15 14:30,5,GBP,Closed Won,Web,2026-05-02,\n"
    )
    rows = list(CsvRows(io.StringIO(text), parse_mapping(MAPPING, rules=RULES), RULES))
    assert [(r.line, r.last_line) for r in rows] == [(2, 3), (5, 5), (6, 6)]
    assert rows[1].refused is not None and rows[1].refused.reason == "unmapped_value"  # a stage
    assert rows[0].event is not None and rows[2].event is not None


# --------------------------------------------------------------------------- every refusal

REFUSALS: list[tuple[dict[str, str], str, str]] = [
    (
        {"Stage": "On Hold", "Amount": "5"},
        "unmapped_value",
        "column 'Stage': 'On Hold' is not in columns.Stage.values",
    ),
    ({"Source": "Fax"}, "unmapped_value", "'Fax' is not in columns.Source.values ('Web', 'Phone')"),
    ({"Amount": ""}, "missing_value", "deal.won needs amount (column 'Amount' is empty)"),
    ({"Owner": "  "}, "missing_value", "deal.won needs rep_id (column 'Owner' is empty)"),
    ({"Id": ""}, "missing_value", "event_id needs column 'Id', which is empty"),
    (
        {"Amount": "12,34.5"},
        "bad_amount",
        "'12,34.5' is not an amount (decimal mark '.', thousands separator ','",
    ),
    ({"Amount": "1.234,50"}, "bad_amount", "column 'Amount': '1.234,50' is not an amount"),
    ({"Amount": "£5"}, "bad_amount", "'£5' is not an amount"),
    ({"Amount": "1e5"}, "bad_amount", "'1e5' is not an amount"),
    ({"Amount": "5."}, "bad_amount", "'5.' is not an amount"),
    ({"Amount": "-5"}, "negative_amount", "amount (column 'Amount'): -5 is negative"),
    ({"Amount": "1.1234567"}, "schema", "more than 6 digits after the decimal point"),
    ({"When": "15/06/2026 14:30"}, "bad_timestamp", "column 'When': '15/06/2026 14:30' is not a time stamp"),
    (
        {"Created": "2026-13-01"},
        "bad_timestamp",
        "column 'Created': '2026-13-01' is not a time stamp in format",
    ),
    ({"When": "2026-03-29 01:30"}, "nonexistent_time", "does not exist in Europe/London"),
    ({"When": "2026-10-25 01:30"}, "ambiguous_time", "happened twice in Europe/London"),
    ({"Currency": "JPY"}, "currency_mismatch", "currency (column 'Currency'): JPY is neither the base"),
    ({"Currency": "gbp"}, "schema", "currency (column 'Currency'): expected an ISO 4217 code"),
    ({"Id": "x" * 130}, "schema", "event_id: string should have at most 128 characters"),
    ({"Team": "t" * 200}, "schema", "team (column 'Team'): "),
]


@pytest.mark.parametrize(("changes", "reason", "message"), REFUSALS)
def test_refusals_name_the_reason_and_the_column(changes: dict[str, str], reason: str, message: str) -> None:
    refused = refusal(**changes)
    assert refused.reason == reason
    assert message in refused.message, refused.message


def test_refusals_of_the_type_column_cells_and_encoding() -> None:
    without_default = mapping(type=MAPPING["type"] | {"default": None})
    del without_default["type"]["default"]
    refused = refusal(without_default, Stage="Closed Maybe")
    assert refused.reason == "unmapped_type"
    assert "'Closed Maybe' is not in type.values ('New', 'Closed Won', 'Closed Lost')" in refused.message
    with pytest.raises(RowRefused) as short:
        mapper().event(cells()[:-1])
    assert short.value.reason == "cell_count" and "10 cells, the header 11" in short.value.message
    broken = cells(Owner="caf\udce9")  # a byte the encoding could not read (surrogateescape)
    with pytest.raises(RowRefused) as undecoded:
        mapper().event(broken)
    assert undecoded.value.reason == "encoding" and "csv.encoding" in undecoded.value.message


def test_naive_timestamp_is_refused_without_a_zone_and_offsets_are_kept() -> None:
    no_zone = mapping(timestamps={"format": "%Y-%m-%d %H:%M"})
    refused = refusal(no_zone)
    assert refused.reason == "naive_timestamp" and "set timestamps.timezone" in refused.message
    iso = mapping(
        timestamps={"timezone": "Europe/London"}, columns=MAPPING["columns"] | {"Created": "deal_created_at"}
    )
    event = mapper(iso).event(cells(When="2026-06-15T14:30:00-05:00", Created="2026-05-02T10:00:00Z"))
    assert event["occurred_at"] == "2026-06-15T14:30:00-05:00"  # its own offset, not the zone's
    assert event["deal_created_at"] == "2026-05-02T10:00:00+00:00"


def test_integer_and_date_refusals() -> None:
    data = {
        "type": "visit.completed",
        "event_id": "v-{Id}",
        "columns": {
            "Id": "visit_id",
            "Who": "rep_id",
            "C": "customer_id",
            "At": "occurred_at",
            "Min": "duration_minutes",
        },
    }
    visits = RowMapper(parse_mapping(data), ["Id", "Who", "C", "At", "Min"], RULES)
    with pytest.raises(RowRefused) as caught:
        visits.event(["1", "r", "c", "2026-06-01T09:00Z", "45.5"])
    assert (
        caught.value.reason == "bad_integer"
        and "column 'Min': '45.5' is not a whole number" in caught.value.message
    )
    with pytest.raises(RowRefused) as too_long:
        visits.event(["1", "r", "c", "2026-06-01T09:00Z", "2000"])
    assert too_long.value.reason == "schema" and "duration_minutes (column 'Min')" in too_long.value.message
    target = {
        "type": "target.set",
        "event_id": "t-{Who}",
        "columns": {"Who": "rep_id", "Start": "period_start", "Q": "amount", "At": "occurred_at"},
        "constants": {"period": "month", "currency": "GBP"},
    }
    targets = RowMapper(parse_mapping(target), ["Who", "Start", "Q", "At"], RULES)
    with pytest.raises(RowRefused) as bad_date:
        targets.event(["r", "01/11/2026", "5", "2026-06-01T09:00Z"])
    assert bad_date.value.reason == "bad_date" and "'%Y-%m-%d'" in bad_date.value.message


def test_an_unreadable_csv_record_is_refused_and_reading_goes_on() -> None:
    huge = "x" * (csv.field_size_limit() + 10)
    text = csv_text(HEADER, cells(Notes=huge), cells(), cells()[:5])
    rows = list(CsvRows(io.StringIO(text), parse_mapping(MAPPING, rules=RULES), RULES))
    assert [r.refused.reason if r.refused else "ok" for r in rows] == ["csv", "ok", "cell_count"]
    assert [r.line for r in rows] == [2, 3, 4]


def test_an_unbalanced_quote_names_the_lines_it_swallowed() -> None:
    text = csv_text(HEADER, cells(Notes="x")).replace(",x\n", ',"oops\n') + csv_text(cells())
    [row] = list(CsvRows(io.StringIO(text), parse_mapping(MAPPING, rules=RULES), RULES))
    assert row.refused is not None and row.refused.reason == "cell_count"
    assert "lines 2-3: an unbalanced quote?" in row.refused.message


def test_every_mapping_reason_is_declared() -> None:
    reasons = {reason for _, reason, _ in REFUSALS} - {"negative_amount", "currency_mismatch", "schema"}
    assert reasons <= set(MAPPING_REASONS)


# --------------------------------------------------------------------------- amounts: exact text


@pytest.mark.parametrize(
    ("text", "decimal", "thousands", "exact"),
    [
        ("1234567.89", ".", "", "1234567.89"),
        ("1,234,567.89", ".", ",", "1234567.89"),
        ("1234567.89", ".", ",", "1234567.89"),  # separators are optional
        ("1.234,50", ",", ".", "1234.50"),
        ("1 234,50", ",", " ", "1234.50"),
        ("1\u202f234,50", ",", "\u202f", "1234.50"),
        ("1'234'567.10", ".", "'", "1234567.10"),
        ("0.000001", ".", "", "0.000001"),
        ("999999999999.999999", ".", "", "999999999999.999999"),
        ("007", ".", ",", "007"),
        ("-12.5", ".", "", "-12.5"),
    ],
)
def test_amounts_keep_their_exact_text(text: str, decimal: str, thousands: str, exact: str) -> None:
    rule = NumberRule(decimal=decimal, thousands=thousands)  # type: ignore[arg-type]
    assert parse_amount(text, rule) == exact


@pytest.mark.parametrize(
    "text", ["1,2345", "12,34", ",5", "1.234.5", "1,234.5.6", "1__0", "١٢٣", "NaN", "1 234"]
)
def test_amounts_that_are_not_numbers_in_the_format_are_refused(text: str) -> None:
    with pytest.raises(RowRefused) as caught:
        parse_amount(text, NumberRule(decimal=".", thousands=","))
    assert caught.value.reason == "bad_amount"


STYLES = [(".", ""), (".", ","), (",", "."), (",", " "), (".", "'")]


@PROPERTY
@given(
    amount=st.decimals(min_value=0, max_value=Decimal("999999999999"), places=6, allow_nan=False),
    places=st.integers(0, 6),
    style=st.sampled_from(STYLES),
)
def test_amounts_survive_exactly_in_every_style(amount: Decimal, places: int, style: tuple[str, str]) -> None:
    value = amount.quantize(Decimal(1).scaleb(-places))
    decimal, thousands = style
    grouped = f"{value:,f}" if thousands else f"{value:f}"
    text = grouped.replace(",", "\0").replace(".", decimal).replace("\0", thousands)
    rule = NumberRule(decimal=decimal, thousands=thousands)  # type: ignore[arg-type]
    exact = parse_amount(text, rule)
    assert exact == f"{value:f}"  # the digits as written, trailing zeros included
    event = mapper(mapping(numbers={"decimal": decimal, "thousands": thousands})).event(
        cells(Amount=text, Stage="Closed Won")
    )
    assert event["amount"] == exact
    assert decode_event(orjson.dumps(event), RULES).amount == value


# --------------------------------------------------------------------------- time zones and DST

LONDON = TimestampRule(format="%Y-%m-%d %H:%M", timezone="Europe/London")


@pytest.mark.parametrize(
    ("local", "ambiguous", "expected"),
    [
        ("2026-03-29 00:59", "refuse", "2026-03-29T00:59:00+00:00"),  # last minute of GMT
        ("2026-03-29 02:00", "refuse", "2026-03-29T02:00:00+01:00"),  # first wall time of BST
        ("2026-10-25 00:59", "refuse", "2026-10-25T00:59:00+01:00"),
        ("2026-10-25 01:30", "earlier", "2026-10-25T01:30:00+01:00"),  # the first 01:30 (BST)
        ("2026-10-25 01:30", "later", "2026-10-25T01:30:00+00:00"),  # the second 01:30 (GMT)
        ("2026-10-25 02:00", "refuse", "2026-10-25T02:00:00+00:00"),
    ],
)
def test_dst_edges(local: str, ambiguous: str, expected: str) -> None:
    rule = LONDON.model_copy(update={"ambiguous": ambiguous})
    assert parse_timestamp(local, rule.format, rule) == expected


def test_dst_gap_and_overlap_are_refused_by_default() -> None:
    for local, reason in (("2026-03-29 01:00", "nonexistent_time"), ("2026-10-25 01:00", "ambiguous_time")):
        with pytest.raises(RowRefused) as caught:
            parse_timestamp(local, LONDON.format, LONDON)
        assert caught.value.reason == reason
    # A zone west of UTC, too: New York's clocks go forward at 02:00 local.
    new_york = TimestampRule(format="%m/%d/%Y %I:%M %p", timezone="America/New_York")
    with pytest.raises(RowRefused):
        parse_timestamp("03/08/2026 02:30 AM", new_york.format, new_york)
    assert parse_timestamp("03/08/2026 03:30 AM", new_york.format, new_york) == "2026-03-08T03:30:00-04:00"


ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Shanghai"]


def _transitions(zone: str, years: range = range(2025, 2028)) -> list[datetime]:
    """UTC hours just before the zone's offset changes (found hour by hour)."""
    tz, found = ZoneInfo(zone), []
    at = datetime(years.start, 1, 1, tzinfo=UTC)
    while at.year < years.stop:
        if at.astimezone(tz).utcoffset() != (at + timedelta(hours=1)).astimezone(tz).utcoffset():
            found.append(at)
        at += timedelta(hours=1)
    return found


TRANSITIONS = [(zone, at) for zone in ZONES for at in _transitions(zone)]
# Around a DST change (where gaps and overlaps are), or anywhere from 2000 to 2037.
INSTANTS = st.one_of(
    st.tuples(st.sampled_from(TRANSITIONS), st.integers(-180, 180)).map(
        lambda t: (t[0][0], t[0][1] + timedelta(minutes=t[1]))
    ),
    st.tuples(
        st.sampled_from(ZONES),
        st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
        ),
    ),
)


@PROPERTY
@given(zoned=INSTANTS, ambiguous=st.sampled_from(["refuse", "earlier", "later"]))
def test_local_wall_times_read_back_as_the_same_instant(zoned: tuple[str, datetime], ambiguous: str) -> None:
    zone, instant = zoned
    instant = instant.replace(second=0, microsecond=0)
    rule = TimestampRule(format="%Y-%m-%d %H:%M", timezone=zone, ambiguous=ambiguous)  # type: ignore[arg-type]
    local = instant.astimezone(ZoneInfo(zone))
    twice = local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()
    text = local.strftime("%Y-%m-%d %H:%M")
    if twice and ambiguous == "refuse":
        with pytest.raises(RowRefused) as caught:
            parse_timestamp(text, rule.format, rule)
        assert caught.value.reason == "ambiguous_time"
        return
    parsed = datetime.fromisoformat(parse_timestamp(text, rule.format, rule))
    if twice and (local.fold == 1) != (ambiguous == "later"):
        assert abs(parsed - instant) <= timedelta(hours=1) and parsed != instant  # the other one
    else:
        assert parsed == instant


# --------------------------------------------------------------------------- mapping-file errors


def _error(data: Any, rules: Any = RULES) -> str:
    with pytest.raises(MappingError) as caught:
        parse_mapping(data, "m.yaml", rules)
    return str(caught.value)


def _columns(**changes: Any) -> dict[str, Any]:
    columns = copy.deepcopy(MAPPING["columns"])
    for key, value in changes.items():
        if value is None:
            columns.pop(key)
        else:
            columns[key] = value
    return columns


MAPPING_ERRORS: list[tuple[dict[str, Any], str]] = [
    (
        mapping(colums={}),
        "colums: unknown key; allowed here: columns, constants, csv, event_id, events, lookups, numbers, "
        "timestamps, type",
    ),
    (mapping(type=None), "type: required (or a list of `events`, each with its type)"),
    (
        mapping(columns=_columns(Stage={"field": "stage", "valuez": {}})),
        "columns.Stage.valuez: unknown key; allowed here: default, field, format, values",
    ),
    (
        mapping(columns=_columns(Amount="amout")),
        "columns.Amount.field: contract field 'amout' is not allowed; allowed: event_id, occurred_at, rep_id",
    ),
    (
        mapping(columns=_columns(Stage="type")),
        "columns.Stage.field: the event type is set by the top-level key `type`",
    ),
    (
        mapping(type={"column": "Stage", "values": {"Closed Won": "deal.win"}}),
        "type.values: 'Closed Won': event type 'deal.win' is not allowed; "
        "allowed: deal.created, deal.stage_changed",
    ),
    (mapping(type="deal.closed"), "type.fixed: event type 'deal.closed' is not allowed"),
    (mapping(type={"column": "Stage"}), "column 'Stage' needs values (CRM value: event type)"),
    (mapping(type={"fixed": "deal.won", "column": "Stage"}), "give either one event type for the whole file"),
    (
        mapping(timestamps={"timezone": "Europe/Londn"}),
        "timestamps.timezone: unknown IANA time zone 'Europe/Londn'",
    ),
    (mapping(timestamps={"format": "%Y-%Q"}), "timestamps.format: '%Y-%Q' is not a strptime format"),
    (
        mapping(timestamps={"ambiguous": "first"}),
        "timestamps.ambiguous: Input should be 'refuse', 'earlier' or 'later' (got 'first')",
    ),
    (mapping(numbers={"decimal": ";"}), "numbers.decimal: Input should be '.' or ','"),
    (mapping(numbers={"decimal": ",", "thousands": ","}), "numbers: decimal and thousands must differ"),
    (mapping(csv={"delimiter": "ab"}), "csv.delimiter: must be one character"),
    (mapping(csv={"encoding": "utf-99"}), "csv.encoding: unknown text encoding 'utf-99'"),
    (
        mapping(columns=_columns(Source={"field": "channel", "values": {"Fax": "fax"}})),
        "columns.Source.values.Fax: channel 'fax' is not allowed; "
        "allowed: phone, email, visit, web, referral, event, other",
    ),
    (mapping(columns=_columns(Owner2="rep_id")), "columns.Owner2: rep_id is already filled by columns.Owner"),
    (
        mapping(constants={"currency": "GBP"}),
        "constants.currency: currency is already filled by columns.Currency",
    ),
    (mapping(constants={"event_id": "x"}), "constants: event_id cannot be a constant"),
    (
        mapping(columns=_columns(Currency=None)),
        "type: deal.created needs currency, which no column or constant fills",
    ),
    (mapping(event_id=None), "event_id: no column fills event_id"),
    (mapping(event_id="always-the-same"), "event_id: must name at least one column in braces"),
    (
        mapping(columns=_columns(Amount={"field": "amount", "format": "%d"})),
        "columns.Amount.format: only for time stamp and date fields",
    ),
    (
        mapping(type="deal.lost", columns=_columns(Created=None, Stage=None)),
        "columns.Amount: amount is not a field of deal.lost",
    ),
    (
        mapping(columns=_columns(Stage={"field": "stage", "values": {"Proposal": "proposl"}})),
        "columns.Stage.values.Proposal: stage 'proposl' is not allowed; "
        "allowed: qualification, discovery, proposal",
    ),
    (
        mapping(
            type="deal.won",
            constants={"channel": "web"},
            columns=_columns(Source=None, Stage=None, Currency=None)
            | {"Cur": {"field": "currency", "default": "JPY"}},
        ),
        "columns.Cur.default: currency 'JPY' is not allowed; allowed: GBP, EUR, USD",
    ),
    (
        mapping(columns=_columns(Stage={"field": "stage", "values": "New"})),
        "columns.Stage.values: Input should be a valid dictionary (got 'New')",
    ),
]


VISITS: dict[str, Any] = {
    "type": "visit.completed",
    "event_id": "v-{Id}",
    "columns": {"Id": "visit_id", "Who": "rep_id", "C": "customer_id", "At": "occurred_at"},
}
MAPPING_ERRORS += [
    (
        mapping(constants={"channel": "fax"}),
        "constants.channel: channel 'fax' is not allowed; allowed: phone",
    ),
    (
        VISITS | {"constants": {"duration_minutes": "forty"}},
        "constants.duration_minutes: duration_minutes must be",
    ),
    (VISITS | {"constants": {"type": "deal.won"}}, "constants: type cannot be a constant (use the top-level"),
    (
        VISITS | {"constants": {"colour": "red"}},
        "constants: contract field 'colour' is not allowed; allowed:",
    ),
]


@pytest.mark.parametrize(("data", "message"), MAPPING_ERRORS)
def test_mapping_errors_name_the_key_and_what_is_allowed(data: dict[str, Any], message: str) -> None:
    text = _error(data)
    assert text.startswith("invalid mapping file m.yaml")
    assert message in text, text


def test_the_contract_fields_are_those_of_the_event_models() -> None:
    assert CONTRACT_FIELDS[:5] == ("event_id", "occurred_at", "rep_id", "team", "region")
    assert {"amount", "stage", "channel", "period_start", "duration_minutes", "deal_created_at"} <= set(
        CONTRACT_FIELDS
    )
    assert "type" not in CONTRACT_FIELDS


def test_mapping_file_is_read_as_text_and_file_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "type: {column: Won, values: {Yes: deal.won, No: deal.lost}}\n"
        "event_id: 'x-{Id}'\n"
        "columns: {Id: deal_id, Acct: customer_id, Rep: rep_id, At: occurred_at, Amt: amount}\n"
        "constants: {currency: GBP}\n"
    )
    loaded = load_mapping(path, RULES)
    assert loaded.type.values == {"Yes": "deal.won", "No": "deal.lost"}  # not booleans
    path.write_text("type: [unclosed\n")
    with pytest.raises(MappingError, match="is not valid YAML"):
        load_mapping(path)
    with pytest.raises(MappingError, match="cannot read mapping file"):
        load_mapping(tmp_path / "nope.yaml")
    with pytest.raises(MappingError, match="the top level must be a mapping"):
        parse_mapping(["type"], "m.yaml")


def test_header_must_have_every_column_the_mapping_names() -> None:
    with pytest.raises(MappingError) as caught:
        mapper(header=[h for h in HEADER if h not in ("Amount", "Stage")])
    message = str(caught.value)
    assert (
        "the mapping names columns the file does not have: 'Amount' (columns.Amount), 'Stage' (columns.Stage)"
        in message
    )
    assert "the file's columns are: 'Id', 'Account'" in message
    with pytest.raises(MappingError, match="more than one column named 'Owner'"):
        mapper(header=[*HEADER, "Owner"])
    with pytest.raises(MappingError, match="the CSV file is empty"):
        CsvRows(io.StringIO("\n\n"), parse_mapping(MAPPING, rules=RULES), RULES)
    # A header with padding and an Excel byte-order mark (read with utf-8-sig) still matches.
    raw = ("\ufeff" + ", ".join(HEADER) + "\n" + csv_text(cells())).encode("utf-8")
    handle = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="")
    [row] = list(CsvRows(handle, parse_mapping(MAPPING, rules=RULES), RULES))
    assert row.event is not None
