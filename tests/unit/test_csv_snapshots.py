"""Snapshot exports (one row per opportunity): several events per row, lookups from a users
export, overlapping re-imports counted once, and `report` from a CSV as from the JSONL sent."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine
from kpi_core.report import build_report
from kpi_monitor.cli import main
from kpi_monitor.csv_mapping import MappingError, load_mapping, parse_mapping
from kpi_monitor.csv_rows import CsvRows
from kpi_monitor.publish import open_items
from kpi_rules import load_rules, packaged_rules_path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
RULES = load_rules(packaged_rules_path())
SALESFORCE = EXAMPLES / "salesforce-opportunity-report.mapping.yaml"
HEADER = (EXAMPLES / "salesforce-opportunity-report.csv").read_text().splitlines()[0].split(",")
OWNERS = ("Jane Smith", "Omar Haddad", "Mei Chen")
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _rows(text: str, mapping_path: Path = SALESFORCE) -> list[Any]:
    return list(CsvRows(io.StringIO(text), load_mapping(mapping_path, RULES), RULES))


def _csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow([row.get(name, "") for name in HEADER])
    return out.getvalue()


def opportunity(n: int, stage: str = "Closed Won", owner: str = "Jane Smith", **cells: str) -> dict[str, str]:
    return {
        "Opportunity ID": f"006-{n}",
        "Account ID": f"001-{n}",
        "Opportunity Owner": owner,
        "Stage": stage,
        "Amount": "1,000.00",
        "Opportunity Currency": "GBP",
        "Lead Source": "Web",
        "Created Date": "02/11/2026",
        "Close Date": "20/11/2026",
        "Last Stage Change Date": "10/11/2026",
    } | cells


# ------------------------------------------------------------------------- several events a row


def test_a_won_row_gives_created_then_won_and_an_open_row_created_then_its_stage() -> None:
    won, open_, lost = _rows(
        _csv([opportunity(1), opportunity(2, "Proposal/Price Quote"), opportunity(3, "Closed Lost")])
    )
    assert [e["type"] for e in won.events] == ["deal.created", "deal.won"]
    assert [e["event_id"] for e in won.events] == ["sfdc-006-1-created", "sfdc-006-1-closed"]
    assert won.events[0]["occurred_at"] == "2026-11-02T00:00:00+00:00"  # Created Date
    assert won.events[1]["occurred_at"] == "2026-11-20T00:00:00+00:00"  # Close Date
    assert won.events[1]["deal_created_at"] == "2026-11-02T00:00:00+00:00"
    assert [e["type"] for e in open_.events] == ["deal.created", "deal.stage_changed"]
    assert open_.events[1] | {"occurred_at": "x"} == open_.events[1] | {
        "event_id": "sfdc-006-2-stage-Proposal/Price Quote", "stage": "proposal", "occurred_at": "x"
    }  # fmt: skip
    assert [e["type"] for e in lost.events] == ["deal.created", "deal.lost"]


def test_a_row_gives_all_its_events_or_none() -> None:
    [row] = _rows(_csv([opportunity(1, **{"Close Date": "31/02/2026"})]))
    assert row.events == () and row.refused is not None
    assert row.refused.reason == "bad_timestamp" and "'Close Date'" in row.refused.message


def test_the_owners_team_and_region_come_from_the_users_export() -> None:
    [row] = _rows(_csv([opportunity(1, owner="Mei Chen")]))
    assert {(e["team"], e["region"]) for e in row.events} == {("east", "apac")}


def test_an_owner_missing_from_the_users_export_refuses_the_row_naming_file_and_key() -> None:
    [row] = _rows(_csv([opportunity(1, owner="Nobody Known")]))
    assert row.refused is not None and row.refused.reason == "unknown_key"
    assert row.refused.message == (
        "column 'Opportunity Owner': 'Nobody Known' is not in salesforce-users.csv "
        "(column 'Full Name'; lookups.owner)"
    )


def _mapping_with(tmp_path: Path, users: str, **lookup: str) -> Path:
    (tmp_path / "users.csv").write_text(users, encoding="utf-8")
    text = SALESFORCE.read_text(encoding="utf-8").replace("file: salesforce-users.csv", "file: users.csv")
    for old, new in lookup.items():
        text = text.replace(old, new)
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("users", "change", "message"),
    [
        ("Name,Role,Division\nJane Smith,north,emea\n", {}, "lookups.owner.key: "),
        ("Full Name,Role\nJane Smith,north\n", {}, "owner.Division"),
        ("Full Name,Role,Division\nJane Smith,north,emea\nJane Smith,south,emea\n", {},
         "two different rows for Full Name 'Jane Smith'"),
        ("Full Name,Role,Division\n", {"file: users.csv": "file: absent.csv"},
         "lookups.owner.file: cannot read"),
    ],
)  # fmt: skip
def test_unusable_lookup_files_are_refused_before_any_row(
    tmp_path: Path, users: str, change: dict[str, str], message: str
) -> None:
    path = _mapping_with(tmp_path, users, **change)
    with pytest.raises(MappingError, match=message.replace(".", r"\.")):
        _rows(_csv([opportunity(1)]), path)


def test_events_and_a_top_level_type_do_not_go_together() -> None:
    base = {
        "columns": {"Id": "deal_id", "Who": "rep_id", "C": "customer_id", "At": "occurred_at"},
        "events": [{"type": "deal.lost", "event_id": "x-{Id}"}],
    }
    assert len(parse_mapping(base).mapped_events()) == 1
    with pytest.raises(MappingError, match="with `events`, give type and event_id in each event"):
        parse_mapping(base | {"type": "deal.lost"})
    with pytest.raises(MappingError, match="gives no event type"):
        parse_mapping(base | {"events": [{"type": {"column": "S", "default": "skip"}, "event_id": "x-{Id}"}]})


# ------------------------------------------------------------------------- overlapping re-imports

_STAGES = ("Closed Won", "Closed Lost", "Prospecting", "Needs Analysis", "Negotiation/Review")


@st.composite
def opportunities(draw: st.DrawFn) -> list[dict[str, str]]:
    count = draw(st.integers(min_value=1, max_value=12))
    out = []
    for n in range(count):
        created = date(2026, 8, 1) + timedelta(days=draw(st.integers(0, 60)))
        closed = created + timedelta(days=draw(st.integers(0, 50)))
        out.append(
            opportunity(
                n,
                draw(st.sampled_from(_STAGES)),
                draw(st.sampled_from(OWNERS)),
                Amount=f"{draw(st.integers(1, 90_000)):,}.{draw(st.integers(0, 99)):02d}",
                **{
                    "Created Date": created.strftime("%d/%m/%Y"),
                    "Close Date": closed.strftime("%d/%m/%Y"),
                    "Last Stage Change Date": closed.strftime("%d/%m/%Y"),
                },
            )
        )
    return out


def _report(lines: list[bytes]) -> dict[str, Any]:
    engine = KpiEngine(RULES, KpiClock(wall=lambda: NOW))
    return build_report(iter(lines), engine)


def _events(rows: list[dict[str, str]]) -> list[bytes]:
    return [orjson.dumps(e) for row in _rows(_csv(rows)) for e in row.events]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(opportunities(), st.data())
def test_reimporting_an_overlapping_export_counts_each_fact_once(
    rows: list[dict[str, str]], data: st.DataObject
) -> None:
    first_end = data.draw(st.integers(0, len(rows)))
    second_start = data.draw(st.integers(0, first_end))
    first, second = rows[:first_end], rows[second_start:]  # rows[second_start:first_end] twice
    assert _report(_events(first) + _events(second)) == _report(_events(rows))
    document = _report(_events(first) + _events(second))
    months = [r for r in document["periods"] if r["period"] == "year"]
    assert sum(r["deals_created"] for r in months) == len(rows)
    assert sum(r["deals_won"] for r in months) == sum(r["Stage"] == "Closed Won" for r in rows)


# ------------------------------------------------------------------------- report from a CSV


@pytest.mark.parametrize("name", ["salesforce-opportunity-report", "hubspot-deals", "pipedrive-deals"])
def test_report_of_a_csv_equals_report_of_the_jsonl_publish_would_send(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export, mapping_path = EXAMPLES / f"{name}.csv", EXAMPLES / f"{name}.mapping.yaml"
    with open_items(export, load_mapping(mapping_path, RULES), RULES) as items:
        jsonl = tmp_path / "sent.jsonl"
        jsonl.write_bytes(b"".join(item.value + b"\n" for item in items))  # type: ignore[union-attr]
    rules = ["--rules", str(packaged_rules_path()), "--format", "json", "--clock", "event"]
    assert main(["report", str(export), "--mapping", str(mapping_path), *rules]) == 0
    from_csv = orjson.loads(capsys.readouterr().out)
    assert main(["report", str(jsonl), *rules]) == 0
    assert from_csv == orjson.loads(capsys.readouterr().out)
    assert from_csv["periods"] and from_csv["rejected"] == {}


def test_report_of_a_csv_counts_refused_rows_with_the_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export.csv"
    export.write_text(_csv([opportunity(1), opportunity(2, owner="Nobody"), opportunity(3, Amount="x")]))
    args = ["report", str(export), "--mapping", str(SALESFORCE), "--format", "json"]
    assert main([*args, "--rules", str(packaged_rules_path())]) == 0
    captured = capsys.readouterr()
    assert orjson.loads(captured.out)["rejected"] == {"bad_amount": 1, "unknown_key": 1}
    assert "rejected: 2 (bad_amount 1, unknown_key 1)" in captured.err
