"""`kpi-monitor report FILE --format json|table|csv`: the contract section 4 document."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories as f
import pytest
from factories import deal_created, deal_lost, deal_won, quote, stage_changed, target, visit

from kpi_core.report import CSV_COLUMNS
from kpi_monitor.cli import main

ADDITIVE = {
    "visits",
    "deals_created",
    "deals_won",
    "deals_lost",
    "quotes_sent",
    "revenue",
    "revenue_by_channel",
    "cycle_seconds_sum",
    "cycle_seconds_count",
    "first_response_seconds_sum",
    "first_response_seconds_count",
    "target",
    # contract section 3, margin, leads, spend and satisfaction
    "gross_margin",
    "costed_revenue",
    "leads",
    "leads_by_channel",
    "spend_marketing",
    "spend_sales",
    "csat_responses",
    "csat_satisfied",
    "nps_responses",
    "nps_promoters",
    "nps_detractors",
    # contract section 3.1, customers
    "new_customers",
    "buying_customers",
    "returning_customers",
    "reactivated_customers",
    "churned_customers",
    "active_customers_start",
    "retained_customers",
    # section 3.3: the target of every metric (labelled `metric`)
    "metric_target",
}
ROW_KEYS = {"rep_id", "team", "region", "period", "start", *ADDITIVE, "derived"}
DERIVED = {
    "growth_pct",
    "quote_to_close_pct",
    "win_rate_pct",
    "lead_conversion_pct",
    "avg_deal_size",
    "avg_cycle_days",
    "avg_first_response_hours",
    "channel_share_pct",
    "attainment_pct",
    "projected_attainment_pct",
    "visits_per_win",
    "gross_margin_pct",
    "cost_coverage_pct",
    "cost_per_lead",
    "lead_to_deal_pct",
    "cost_of_sales_pct",
    "cac",
    "csat_pct",
    "nps",
    "retention_pct",
    "churn_pct",
    "repurchase_pct",
    "clv",
    "attainment_by_metric_pct",
    "projected_by_metric_pct",
}
PIPE_KEYS = {"rep_id", "team", "region", "open_deals", "open_pipeline", "weighted_pipeline"}
# The code adds the snapshot KPI `pipeline_coverage` (contract section 3) to PIPE.
PIPE_EXTRA = {"pipeline_coverage"}

# History well before the real wall clock, read with --clock event ("now" = 2025-10-20 15:00Z).
EVENTS: list[dict[str, Any]] = [
    deal_created("2025-10-01T09:00:00Z", "d-1", "rep-1", amount="1000", channel="web"),
    visit("2025-10-02T10:00:00Z", "rep-1", deal="d-1"),
    quote("2025-10-03T10:00:00Z", "d-1", "rep-1"),
    deal_won("2025-10-06T09:00:00Z", "d-1", "rep-1", amount="1200.5"),
    deal_created("2025-10-07T09:00:00Z", "d-2", "rep-1", amount="300", stage="proposal"),
    deal_created("2025-10-08T09:00:00Z", "d-3", "rep-2", team="south", region="apac"),
    deal_lost("2025-10-09T09:00:00Z", "d-3", "rep-2", team="south", region="apac"),
    stage_changed("2025-10-20T15:00:00Z", "d-2", "negotiation", "rep-1"),
    target("2025-09-28T09:00:00Z", "month", "2025-10-01", "5000", "rep-1"),
]
BAD_LINES = [
    b"{not json",
    b'{"event_id": "x", "type": "deal.teleported", "occurred_at": "2025-10-01T00:00:00Z"}',
    b'{"event_id": "y", "type": "visit.completed", "occurred_at": "2025-10-01T00:00:00",'
    b' "rep_id": "r", "visit_id": "v", "customer_id": "c"}',
    b"",
]


@pytest.fixture()
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join([*f.lines(EVENTS), *BAD_LINES]) + b"\n")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_matches_the_contract_shape(events_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "report", str(events_file), "--format", "json", "--clock", "event")
    assert code == 0
    doc = json.loads(out)
    # contract section 4: periods, pipeline, rejected, and the scope rows; `targets` (every
    # target with its decomposition gaps, section 3.3) is this report's addition
    assert set(doc) == {"periods", "scopes", "pipeline", "targets", "rejected"}
    assert doc["periods"], "expected rows"
    scope_keys = {"scope", "name", "period", "start", *ADDITIVE, "derived"}
    assert {row["scope"] for row in doc["scopes"]} == {"team", "region", "company"}
    for row in doc["scopes"]:
        assert set(row) == scope_keys
        assert set(row["derived"]) == DERIVED
    for row in doc["periods"]:
        assert set(row) == ROW_KEYS
        assert set(row["derived"]) == DERIVED
        assert row["period"] in ("day", "week", "month", "quarter", "year")
        assert datetime.strptime(row["start"], "%Y-%m-%d")
        assert isinstance(row["revenue"], str)
        assert all(isinstance(v, str) for v in row["revenue_by_channel"].values())
        assert row["target"] is None or isinstance(row["target"], str)
        for name in ("visits", "deals_created", "deals_won", "deals_lost", "quotes_sent"):
            assert isinstance(row[name], int)
    for pipe in doc["pipeline"]:
        assert set(pipe) == PIPE_KEYS | PIPE_EXTRA
        assert isinstance(pipe["open_pipeline"], str)
        assert isinstance(pipe["weighted_pipeline"], str)
    oct_1 = f.row(doc, "month", "2025-10-01", "rep-1")
    assert (oct_1["revenue"], oct_1["target"], oct_1["team"]) == ("1200.50", "5000.00", "north")
    assert oct_1["revenue_by_channel"] == {"web": "1200.50"}
    assert oct_1["derived"]["attainment_pct"] == 24.01
    oct_2 = f.row(doc, "month", "2025-10-01", "rep-2")
    assert (oct_2["target"], oct_2["team"], oct_2["region"]) == (None, "south", "apac")
    assert oct_2["derived"]["win_rate_pct"] == 0.0
    assert doc["pipeline"] == [
        {
            "rep_id": "rep-1",
            "team": "north",
            "region": "emea",
            "open_deals": 1,
            "open_pipeline": "300.00",
            "weighted_pipeline": "210.00",
            "pipeline_coverage": round(210 / (5000 - 1200.5), 4),
        }
    ]
    assert doc["rejected"] == {"invalid_json": 1, "naive_timestamp": 1, "unknown_type": 1}
    assert "rejected: 3" in err
    for reason in ("invalid_json 1", "naive_timestamp 1", "unknown_type 1"):
        assert reason in err


def test_table(events_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "report", str(events_file), "--format", "table", "--clock", "event")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "scope",
        "name",
        "team",
        "period",
        "start",
        "visits",
        "revenue",
        "target",
        "attain%",
        "growth%",
        "win%",
        "q2c%",
        "cycle",
        "d",
        "margin%",
        "churn%",
        "csat%",
    ]
    assert set(lines[1].replace(" ", "")) == {"─"}  # the rule under the header
    body = [line.split() for line in lines[2 : lines.index("Open pipeline")] if line.strip()]
    # months only by default (a person reads it), the totals first: company, regions, teams, reps
    assert [row[0] for row in body] == ["company", "region", "region", "team", "team", "rep", "rep"]
    assert all("month" in row for row in body)
    company = body[0]
    assert company[:5] == ["company", "month", "2025-10-01", "1", "1200.50"]  # the empty name
    month = next(row for row in body if row[1] == "rep-1")
    assert month[:8] == ["rep", "rep-1", "north", "month", "2025-10-01", "1", "1200.50", "5000.00"]
    assert "24.0" in month  # attainment, one decimal
    pipeline = lines[lines.index("Open pipeline") + 1 :]
    assert pipeline[0].split()[:2] == ["rep", "team"] and "Weighted pipeline" in pipeline[0]
    assert [line.split() for line in pipeline[2:]] == [["rep-1", "north", "1", "300.00", "210.00"]]
    assert "rejected: 3" in err


def test_csv(events_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "report", str(events_file), "--format", "csv", "--clock", "event")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [c.removeprefix("derived.") for c in CSV_COLUMNS]
    code, out_json, _ = _run(capsys, "report", str(events_file), "--format", "json", "--clock", "event")
    doc = json.loads(out_json)
    assert len(rows) == len(doc["periods"])
    month = next(r for r in rows if r["period"] == "month" and r["rep_id"] == "rep-1")
    assert (month["revenue"], month["target"], month["attainment_pct"]) == (
        "1200.50",
        "5000.00",
        "24.01",
    )
    other = next(r for r in rows if r["period"] == "month" and r["rep_id"] == "rep-2")
    assert other["target"] == "" and other["attainment_pct"] == ""  # undefined: empty cell


def test_stdin_and_wall_clock(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    recent = [visit(now - timedelta(minutes=5), "rep-9"), visit(now + timedelta(days=1), "rep-9")]
    data = b"\n".join(f.lines(recent)) + b"\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    monkeypatch.delenv("KPI_CLOCK", raising=False)
    code, out, err = _run(capsys, "report", "-", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["rejected"] == {"future": 1}
    assert sum(r["visits"] for r in doc["periods"] if r["period"] == "year") == 1
    assert "future 1" in err


def test_kpi_clock_environment_variable(
    events_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KPI_CLOCK", "event")
    _, by_env, _ = _run(capsys, "report", str(events_file), "--format", "json")
    _, by_flag, _ = _run(capsys, "report", str(events_file), "--format", "json", "--clock", "event")
    assert by_env == by_flag
    monkeypatch.setenv("KPI_CLOCK", "sundial")
    code, out, err = _run(capsys, "report", str(events_file), "--format", "json")
    assert code == 2 and out == ""
    assert "KPI_CLOCK" in err and "wall" in err and "event" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("timezone: Mars/Olympus\ncurrency: GBP\nstages: {a: '0.5'}\n", ["timezone", "IANA"]),
        (
            "timezone: UTC\ncurrency: GBP\nstages: {a: '0.5'}\nkpi_colour: blue\n",
            ["kpi_colour", "unknown key", "allowed here:", "stages"],
        ),
        ("timezone: UTC\ncurrency: GBP\nstages: {a: '1.5'}\n", ["stages", "between 0 and 1"]),
        ("timezone: UTC\ncurrency: GBP\n", ["stages", "required"]),
        ("- just\n- a list\n", ["top level must be a mapping"]),
        ("timezone: [unclosed\n", ["not valid YAML"]),
    ],
)
def test_invalid_rules_exit_2_naming_the_key(
    tmp_path: Path,
    events_file: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    expected: list[str],
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(text)
    code, out, err = _run(capsys, "report", str(events_file), "--format", "json", "--rules", str(rules))
    assert code == 2
    assert out == ""
    assert err.startswith("kpi-monitor report: ")
    for word in expected:
        assert word in err
    assert "Traceback" not in err


def test_missing_rules_file_exits_2(
    tmp_path: Path, events_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "report", str(events_file), "--rules", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "cannot read rules file" in err
