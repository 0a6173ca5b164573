"""`kpi-monitor report` output: the core's report document as JSON, a rich table, or CSV."""

from __future__ import annotations

import csv
from typing import Any, TextIO

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from kpi_core.report import CSV_COLUMNS, PIPELINE_COLUMNS, ROW_KEY_COLUMNS, TABLE_COLUMNS, cell

#: Text formats written here; `html` and `pdf` are rendered by `kpi_monitor.reporting`.
FORMATS = ("json", "table", "csv")
# The report is read whole (a pager, a file): columns are never squeezed, folded or cut.
UNLIMITED_WIDTH = 10_000
#: The table names a row by its scope and name (the rep's team too), then its period.
HEAD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("scope", "scope"),
    ("name", "name"),
    ("team", "team"),
    ("period", "period"),
    ("start", "start"),
)
ROW_TABLE_COLUMNS = HEAD_COLUMNS + TABLE_COLUMNS[len(ROW_KEY_COLUMNS) :]
_KEYS = {path for _, path in HEAD_COLUMNS} | {path for _, path in ROW_KEY_COLUMNS}  # left-aligned


def _text(value: Any) -> str:
    if value is None:
        return "-"  # undefined (a denominator of 0) or absent
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _table(columns: tuple[tuple[str, str], ...], rows: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header, path in columns:
        table.add_column(header, justify="left" if path in _KEYS else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(_text(cell(row, path)) for _, path in columns))
    return table


def table_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The scope rows (company, regions, teams) first, then the reps', as the table lists them."""
    scopes = [{**row, "team": ""} for row in document["scopes"]]
    reps = [{**row, "scope": "rep", "name": row["rep_id"]} for row in document["periods"]]
    return scopes + reps


def write_table(document: dict[str, Any], out: TextIO) -> None:
    """The scope totals, then the rep rows (ROW_TABLE_COLUMNS), then the open pipeline; styled
    only on a terminal."""
    console = Console(file=out, width=UNLIMITED_WIDTH, highlight=False)
    console.print(_table(ROW_TABLE_COLUMNS, table_rows(document)))
    if document["pipeline"]:
        console.print("\nOpen pipeline")
        console.print(_table(PIPELINE_COLUMNS, document["pipeline"]))


def write_csv(document: dict[str, Any], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.removeprefix("derived.") for c in CSV_COLUMNS])
    for row in document["periods"]:
        writer.writerow(["" if (v := cell(row, c)) is None else v for c in CSV_COLUMNS])


def write_report(document: dict[str, Any], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "table":
        write_table(document, out)
    elif fmt == "csv":
        write_csv(document, out)
    else:
        raise ValueError(f"report format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def rejected_summary(document: dict[str, Any]) -> str:
    rejected = document["rejected"]
    if not rejected:
        return "rejected: none"
    total = sum(rejected.values())
    parts = ", ".join(f"{reason} {count}" for reason, count in rejected.items())
    return f"rejected: {total} ({parts})"
