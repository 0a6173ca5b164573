"""The KPI catalogue equals the contract's tables, and every surface takes its KPIs from it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest

from kpi_core.aggregates import NOT_IN_BUCKETS
from kpi_core.aggregates import SLOTS as AGG_SLOTS
from kpi_core.catalogue import (
    ADDITIVE,
    BY_NAME,
    CATALOGUE,
    DERIVED,
    PIPE_FIELDS,
    ROW_COMPONENTS,
    ROW_DERIVED,
    SNAPSHOT,
    KpiKind,
    Shape,
    Surface,
    on,
)
from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine
from kpi_core.events import example_events
from kpi_core.report import CSV_COLUMNS, TABLE_COLUMNS, build_report
from kpi_core.schemas import report_json_schema
from kpi_monitor.rulesgen.annotations import noun
from kpi_monitor.rulesgen.dashboards import dashboards, panel_queries
from kpi_monitor.rulesgen.promrules import LEVELS, recorded_names
from kpi_rules import load_rules
from streams.metrics import FAMILY_HELP

CONTRACT = Path(__file__).resolve().parents[3] / "docs" / "CONTRACT.md"
# KPIs beyond the contract's tables: "attainment and pace for every target metric" (section 3.3,
# issue 13) as the target of each metric and its attainment and projection, labelled `metric`.
BEYOND_TABLES = {"metric_target", "attainment_by_metric_pct", "projected_by_metric_pct"}


def _table(title: str) -> list[list[str]]:
    """The rows (cells) of the first Markdown table after the line starting with `title`."""
    lines = CONTRACT.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # header and rule


def _names(cell: str) -> list[tuple[str, str | None]]:
    """`a` / `_count`, `b{channel}` -> [(a, None), (a's stem + _count, None), (b, channel)]."""
    out: list[tuple[str, str | None]] = []
    for token in re.findall(r"`([^`]+)`", cell):
        name, _, label = token.partition("{")
        if name.startswith("_"):
            name = out[-1][0].rsplit("_", 1)[0] + name
        out.append((name, label.rstrip("}") or None))
    return out


def contract_kpis() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for title, kind in (("Additive components", "additive"), ("Derived (HTTP API", "derived")):
        for cells in _table(title):
            for name, label in _names(cells[0]):
                found[name] = {"kind": kind, "label": label, "formula": cells[1], "source": cells[2]}
    for cells in _table("Active at an instant t"):
        for name, label in _names(cells[0]):
            found[name] = {"kind": "additive", "label": label, "formula": cells[1], "source": ""}
    text = CONTRACT.read_text(encoding="utf-8")
    customers = text[text.index("Derived: `retention_pct`") : text.index("No customer id appears")]
    for name, formula in re.findall(r"`([a-z_]+)` =\s+([^;(]+?)\s*(?:;|\(|$)", customers, re.M):
        found[name] = {"kind": "derived", "label": None, "formula": " ".join(formula.split()), "source": ""}
    snapshots = text[text.index("Snapshot KPIs (not windowed)") : text.index("### 3.3")]
    for name in ("open_deals", "open_pipeline", "weighted_pipeline", "pipeline_coverage"):
        assert f"`{name}`" in snapshots
        # "weighted_pipeline (... probabilities from the rules file; seed 001), pipeline_coverage"
        source = "seed 001" if name in ("weighted_pipeline", "pipeline_coverage") else ""
        found[name] = {"kind": "snapshot", "label": None, "formula": "", "source": source}
    return found


def test_the_catalogue_equals_the_contract() -> None:
    contract = contract_kpis()
    built = {k.name for k in CATALOGUE if Surface.REPORT in k.surfaces} - BEYOND_TABLES
    assert built == set(contract)
    for name in built:
        entry, item = contract[name], BY_NAME[name]
        assert item.label == entry["label"], name
        if entry["kind"] == "additive":
            assert item.additive, name
        elif entry["kind"] == "snapshot":
            assert item.kind is KpiKind.SNAPSHOT or item.shape is Shape.COVERAGE, name
        else:
            assert item.kind is KpiKind.DERIVED, name
        if entry["source"]:
            assert item.source == entry["source"], name


_FORMULA = re.compile(r"^\(?([a-z_ +-]+?)\)? / \(?([a-z_ +]+?)\)?( x 100)?(?: \(.*\))?$")


@pytest.mark.parametrize(
    "item", [k for k in DERIVED if k.shape is Shape.RATIO and Surface.REPORT in k.surfaces]
)
def test_a_ratio_is_the_contract_formula(item: Any) -> None:
    """`deals_won / (deals_won + deals_lost) x 100` is numerator, denominator and scale."""
    entry = contract_kpis()[item.name]
    if entry["formula"].startswith("sum / count"):  # avg_cycle_days, avg_first_response_hours
        assert item.numerator[0].component.endswith("_sum")
        assert item.denominator[0].component.endswith("_count")
        assert item.scale == {"days": Fraction(1, 86400), "hours": Fraction(1, 3600)}[item.unit]
        return
    if entry["formula"] == "100 - retention_pct":  # churn_pct, as a ratio of the same sums
        retention = BY_NAME["retention_pct"]
        assert item.denominator == retention.denominator and item.scale == retention.scale
        assert [(t.component, t.sign) for t in item.numerator] == [
            (retention.denominator[0].component, 1),
            (retention.numerator[0].component, -1),
        ]
        return
    match = _FORMULA.match(entry["formula"])
    assert match, f"unparsed contract formula for {item.name}: {entry['formula']!r}"
    top, bottom, percent = match.groups()

    def terms(text: str) -> list[tuple[str, int]]:
        signed = re.findall(r"([+-]?)\s*([a-z_]+)", text)
        return [(name, -1 if sign == "-" else 1) for sign, name in signed]

    assert [(t.component, t.sign) for t in item.numerator] == terms(top)
    assert [(t.component, t.sign) for t in item.denominator] == terms(bottom)
    assert item.scale == (100 if percent else 1)


def test_metric_families_are_the_catalogue() -> None:
    exported = {k.name for k in on(Surface.METRICS, (*ADDITIVE, *SNAPSHOT))}
    # plus the service figures of the exposition: elapsed fraction, the split gap of targets
    assert set(FAMILY_HELP) - {"period_elapsed_ratio", "target_split_gap"} == exported
    for name, text in FAMILY_HELP.items():
        if name in BY_NAME:
            assert text == BY_NAME[name].help.en


def test_agg_holds_every_bucket_component() -> None:
    assert [s.component for s in AGG_SLOTS] == [k.name for k in ADDITIVE if k.name not in NOT_IN_BUCKETS]
    assert NOT_IN_BUCKETS == {"target", "metric_target"}  # facts of their own (RepState.targets)
    assert len({s.code for s in AGG_SLOTS}) == len(AGG_SLOTS)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    rules = load_rules()
    events = example_events(datetime(2026, 3, 10, 9, tzinfo=UTC))
    still_open = dict(events[0], event_id="ex-open", deal_id="deal-open")  # a deal.created
    lines = [orjson.dumps(e) for e in [*events, still_open]]
    engine = KpiEngine(rules, KpiClock(mode="event"))
    return build_report(lines, engine)


def test_report_rows_are_the_catalogue(report: dict[str, Any]) -> None:
    row = report["periods"][0]
    assert list(row) == ["rep_id", "team", "region", "period", "start", *ROW_COMPONENTS, "derived"]
    assert list(row["derived"]) == list(ROW_DERIVED)
    # PIPE in the report; `pipeline_coverage` is in /kpis (it needs the current period's target)
    assert set(report["pipeline"][0]) | {"pipeline_coverage"} == {*PIPE_FIELDS, "rep_id", "team", "region"}
    columns = {c.removeprefix("derived.") for c in CSV_COLUMNS}
    assert columns == {"rep_id", "team", "region", "period", "start"} | {
        k for k in (*ROW_COMPONENTS, *ROW_DERIVED) if BY_NAME[k].label is None
    }
    titled = {BY_NAME[path.removeprefix("derived.")].table for _, path in TABLE_COLUMNS[4:]}
    assert titled == {k.table for k in CATALOGUE if k.table is not None}


def test_report_schema_is_the_catalogue(report: dict[str, Any]) -> None:
    import jsonschema

    schema = report_json_schema()
    row = schema["properties"]["periods"]["items"]
    assert list(row["properties"]) == [
        "rep_id",
        "team",
        "region",
        "period",
        "start",
        *ROW_COMPONENTS,
        "derived",
    ]
    assert list(row["properties"]["derived"]["properties"]) == list(ROW_DERIVED)
    jsonschema.Draft202012Validator(schema).validate(report)


def test_recording_rules_cover_the_catalogue() -> None:
    names = recorded_names(load_rules())
    for level in LEVELS:
        for item in on(Surface.METRICS, (*ADDITIVE, *SNAPSHOT)):
            assert f"{level}:sales_{item.name}:sum" in names
        for item in on(Surface.RULES, CATALOGUE):
            if item.kind is not KpiKind.DERIVED:
                continue  # its rule is the `:sum` above
            assert item.record is not None, item.name
            assert f"{level}:sales_{item.record[0]}:{item.record[1]}" in names, item.name


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_board_panels_are_titled_from_the_catalogue(locale: str) -> None:
    rules = load_rules().model_copy(update={"locale": locale})
    by_record = {
        (k.record or (k.name, "sum")): k for k in CATALOGUE if k.kind is not KpiKind.DERIVED or k.record
    }
    checked = 0
    for board in dashboards(rules).values():
        for title, expr in panel_queries(board):
            match = re.fullmatch(r"[a-z]+:sales_([a-z_]+):([a-z_]+)(\{.*\})?", expr)
            item = by_record.get(match.groups()[:2]) if match else None
            if item is not None and title.startswith(item.title.get(locale)):
                checked += 1
    assert checked > 40


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_alert_texts_name_kpis_by_their_catalogue_title(locale: str) -> None:
    from kpi_monitor.rulesgen.promrules import sales_alerts

    rules = load_rules().model_copy(update={"locale": locale})
    summaries = {a["alert"]: a["annotations"]["summary"] for a in sales_alerts(rules)}
    for alert, name in (
        ("SalesRevenueDecline", "revenue"),
        ("SalesVisitsDrop", "visits"),
        ("SalesQuoteToCloseLow", "quote_to_close_pct"),
        ("SalesPipelineCoverageLow", "pipeline_coverage"),
        ("SalesChurnRising", "churn_pct"),
        ("SalesMarginDrop", "gross_margin_pct"),
    ):
        assert noun(name, locale) in summaries[alert]
    satisfaction = [a for a in sales_alerts(rules) if a["alert"] == "SalesSatisfactionLow"]
    for alert, name in zip(satisfaction, ("csat_pct", "nps"), strict=True):
        assert noun(name, locale) in alert["annotations"]["summary"]
