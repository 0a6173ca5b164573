"""The report as one self-contained HTML page (Jinja2 template, charts as inline SVG data URIs)."""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from kpi_monitor.reporting.fonts import CSS_FAMILIES
from kpi_monitor.reporting.labels import scope_word, text
from kpi_monitor.reporting.view import ReportView

#: Columns of the summary (indices into view.view.TABLE_KPIS): revenue, target, attainment,
#: growth (like-for-like), projected attainment.
SUMMARY_COLUMNS = (0, 1, 2, 3, 4)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("kpi_monitor.reporting", "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a missing field is an error, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(view: ReportView, alert_note: str = "") -> str:
    template = _environment().get_template("report.html.j2")
    return template.render(
        view=view,
        fonts=CSS_FAMILIES.get(view.lang, CSS_FAMILIES["en"]),
        summary_columns=SUMMARY_COLUMNS,
        scope_words={s: scope_word(s, view.lang) for s in ("company", "region", "team", "rep")},
        no_alert=text("no_alert", view.lang),
        alert_note=alert_note,
    )
