"""One entry point for both paths (`report FILE`, `digest --prometheus`): a selected document of
one period kind, with its alert states, written as HTML or PDF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kpi_core.selection import Selection
from kpi_monitor.reporting.alert_states import AlertState, by_scope
from kpi_monitor.reporting.formatting import Formatter
from kpi_monitor.reporting.html import render_html
from kpi_monitor.reporting.labels import scope_word, text
from kpi_monitor.reporting.view import Meta, ViewBuilder
from kpi_rules.models import Rules

DOCUMENT_FORMATS = ("html", "pdf")


def formatter(rules: Rules) -> Formatter:
    return Formatter(rules.locale, rules.currency, rules.zone, rules.fiscal_year_start_month)


def scope_label(selection: Selection, locale: str) -> str:
    word = scope_word(selection.scope.value, locale)
    if selection.name:
        return f"{word} {selection.name}"
    if selection.scope.value == "company":
        return word
    return f"{word}: {text('all', locale)}"


def alert_text(fmt: Formatter, state: AlertState) -> str:
    if state.summary:
        return f"{state.summary} · {text(state.state, fmt.locale)}"
    value = ""
    if state.value is not None:
        value = " " + (
            fmt.money_short(state.value) if state.alert == "SalesDownTrend" else fmt.number(state.value)
        )
        if state.alert in ("SalesRevenueDecline", "SalesTargetPaceBehind", "SalesQuoteToCloseLow"):
            value = " " + fmt.pct(state.value, signed=state.alert == "SalesRevenueDecline")
    return f"{state.alert}{value} · {text(state.state, fmt.locale)}"


def render_document(
    document: dict[str, Any],
    selection: Selection,
    rules: Rules,
    meta: Meta,
    alerts: Sequence[AlertState],
    fmt_name: str,
    output: Path,
    alert_note: str = "",
) -> None:
    """Writes `document` (already selected: one period kind, empty rows left out) to `output`."""
    fmt = formatter(rules)
    builder = ViewBuilder(
        document, fmt, scope_label(selection, rules.locale), by_scope(alerts), lambda a: alert_text(fmt, a)
    )
    html = render_html(builder.build(meta), alert_note)
    if fmt_name == "html":
        output.write_text(html, encoding="utf-8")
    elif fmt_name == "pdf":
        from kpi_monitor.reporting.pdf import write_pdf

        write_pdf(html, output)
    else:
        raise ValueError(f"document format must be one of {', '.join(DOCUMENT_FORMATS)}, got {fmt_name!r}")
