"""`kpi-monitor report FILE`: the report document of an event file (or a mapped CSV export),
selected by period, scope and last N periods, written as JSON, a table, CSV, HTML or PDF."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine
from kpi_core.periods import PERIOD_KINDS
from kpi_core.report import build_report
from kpi_core.selection import Selection, parse_scope, select
from kpi_monitor.read_progress import ReadProgress
from kpi_monitor.report_render import FORMATS as TEXT_FORMATS
from kpi_monitor.report_render import rejected_summary, write_report
from kpi_monitor.reporting.render import DOCUMENT_FORMATS
from kpi_rules import Rules

ALL = "all"
#: The period a format shows when --period is not given: machine formats keep every period (as
#: before), the formats a person reads show months.
DEFAULT_PERIOD = {"json": ALL, "csv": ALL, "table": "month", "html": "month", "pdf": "month"}
#: Periods the HTML/PDF charts cover when --last is not given.
DEFAULT_LAST = 6


def current_starts(engine: KpiEngine) -> dict[str, date]:
    now = engine.clock.now()
    return {kind: engine.calendar.start_of(kind, now) for kind in PERIOD_KINDS}


def selection_of(args: argparse.Namespace, fmt: str) -> Selection:
    period = args.period or DEFAULT_PERIOD[fmt]
    if fmt in DOCUMENT_FORMATS and period == ALL:
        raise ValueError(f"--format {fmt} shows one period kind: --period {' | '.join(PERIOD_KINDS)}")
    scope, name = parse_scope(args.scope)
    last = args.last if args.last is not None else (DEFAULT_LAST if fmt in DOCUMENT_FORMATS else None)
    return Selection(None if period == ALL else period, scope, name, last)


def read_document(args: argparse.Namespace, rules: Rules, engine: KpiEngine) -> dict[str, Any]:
    if args.mapping is not None:
        return _report_csv(args.events, args.mapping, rules, engine)
    if str(args.events) == "-":
        return build_report(sys.stdin.buffer, engine)
    path: Path = args.events
    progress = ReadProgress()

    def reread() -> Iterator[bytes]:  # the event clock's first pass: the newest event time
        with open(path, "rb") as again:
            yield from progress.lines(again, "reading events (clock)")

    with open(path, "rb") as handle:
        document = build_report(progress.lines(handle, "reading events"), engine, reread)
    print(f"report: {progress.summary()}", file=sys.stderr)
    return document


def run_report(args: argparse.Namespace, rules: Rules, mode: str) -> int:
    fmt: str = args.format
    if fmt in DOCUMENT_FORMATS and args.output is None:
        raise ValueError(f"--format {fmt} writes a file: give --output PATH")
    selection = selection_of(args, fmt)
    engine = KpiEngine(rules, KpiClock(mode="event" if mode == "event" else "wall"))
    started = time.monotonic()
    document = read_document(args, rules, engine)
    current = current_starts(engine)
    selected = select(document, selection, current, drop_empty=fmt != "json" and fmt != "csv")
    if fmt in TEXT_FORMATS:
        if args.output is not None:
            with open(args.output, "w", encoding="utf-8") as out:
                write_report(selected, fmt, out)
        else:
            write_report(selected, fmt, sys.stdout)
    else:
        _write_document(args, rules, engine, document, selected, selection, fmt)
        print(
            f"report: wrote {args.output} ({fmt}, {selection.describe()}) in "
            f"{time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )
    print(rejected_summary(document), file=sys.stderr)
    return 0


def _write_document(
    args: argparse.Namespace,
    rules: Rules,
    engine: KpiEngine,
    document: dict[str, Any],
    selected: dict[str, Any],
    selection: Selection,
    fmt: str,
) -> None:
    from kpi_monitor.reporting.alert_states import file_states
    from kpi_monitor.reporting.labels import text
    from kpi_monitor.reporting.render import render_document
    from kpi_monitor.reporting.view import Meta

    now = engine.clock.now()
    meta = Meta("title", "source_file", str(args.events), datetime.now(UTC))
    alerts = file_states(document, rules, now)
    render_document(
        selected, selection, rules, meta, alerts, fmt, Path(args.output), text("alert_note", rules.locale)
    )


def _report_csv(path: Path, mapping_path: Path, rules: Rules, engine: KpiEngine) -> dict[str, Any]:
    """The report of a CSV export: the same events `publish --mapping` sends, refused rows
    counted with the rejected by reason."""
    from kpi_monitor.csv_mapping import load_mapping
    from kpi_monitor.publish import mapped_lines

    if str(path) == "-" or not path.is_file():
        raise ValueError(f"--mapping needs a CSV file, got {str(path)!r}")
    mapping = load_mapping(mapping_path, rules)
    refused: Counter[str] = Counter()

    def reread() -> Iterator[bytes]:
        with mapped_lines(path, mapping, rules) as again:
            yield from again

    with mapped_lines(path, mapping, rules, refused) as lines:
        document = build_report(lines, engine, reread)
    rejected: Counter[str] = Counter(document["rejected"])
    rejected.update(refused)
    document["rejected"] = dict(sorted(rejected.items()))
    return document
