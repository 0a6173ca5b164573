"""`kpi-monitor digest --prometheus URL`: the HTML/PDF report (or its JSON document) of a running
deployment, from the recording rules in its Prometheus."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from kpi_core.periods import PERIOD_KINDS, Calendar
from kpi_core.selection import Selection, parse_scope, select
from kpi_monitor.moments import parse_moment
from kpi_monitor.report_render import write_report
from kpi_monitor.reporting.digest import digest_document
from kpi_monitor.reporting.labels import text
from kpi_monitor.reporting.prometheus import Prometheus
from kpi_monitor.reporting.render import render_document
from kpi_monitor.reporting.view import Meta
from kpi_rules import Rules

DEFAULT_LAST = 6


def run_digest(args: argparse.Namespace, rules: Rules) -> int:
    fmt: str = args.format
    if fmt in ("html", "pdf") and args.output is None:
        raise ValueError(f"--format {fmt} writes a file: give --output PATH")
    kind = args.period or "month"
    scope, name = parse_scope(args.scope)
    last = args.last if args.last is not None else DEFAULT_LAST
    selection = Selection(kind, scope, name, last)
    started = time.monotonic()
    now = datetime.now(UTC)
    at = now if args.at is None else parse_moment(args.at, rules.zone, "--at", now)
    prometheus = Prometheus(args.prometheus)
    document, alerts, found = digest_document(prometheus, rules, kind, last, at)
    calendar = Calendar(rules.zone, rules.fiscal_year_start_month)
    current = {str(k): calendar.start_of(k, at) for k in PERIOD_KINDS}
    selected = select(document, selection, current, drop_empty=fmt != "json")
    if fmt == "json":
        if args.output is not None:
            with open(args.output, "w", encoding="utf-8") as out:
                write_report(selected, "json", out)
        else:
            write_report(selected, "json", sys.stdout)
    else:
        locale = rules.locale
        retention = prometheus.retention() or text("unknown_retention", locale)
        limits = [
            text("limit_history", locale, found=found, asked=last, retention=retention),
            text("limit_rejected", locale),
            text("limit_file_only", locale),
        ]
        meta = Meta("digest_title", "source_prometheus", args.prometheus, now, limits)
        render_document(
            selected,
            selection,
            rules,
            meta,
            alerts,
            fmt,
            Path(args.output),
            text("alert_note_digest", locale),
        )
        print(
            f"digest: wrote {args.output} ({fmt}, {selection.describe()}) in "
            f"{time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )
    print(f"digest: {found} of {last} {kind} periods in Prometheus at {args.prometheus}", file=sys.stderr)
    return 0
