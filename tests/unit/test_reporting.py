"""The HTML/PDF report's parts that need no browser: formatting per locale, the glyph check, the
file's alert states, the view model, and the command line's errors."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kpi_core.selection import Selection, select
from kpi_monitor.cli import main
from kpi_monitor.reporting import charts, fonts
from kpi_monitor.reporting.alert_states import file_states
from kpi_monitor.reporting.fonts import FontError
from kpi_monitor.reporting.formatting import Formatter
from kpi_monitor.reporting.view import Meta, ViewBuilder
from kpi_testkit import free_port

sys.path.insert(0, str(Path(__file__).parent / "core"))
import factories as f  # noqa: E402

LONDON = ZoneInfo("Europe/London")


def test_money_numbers_and_periods_per_locale() -> None:
    en = Formatter("en", "GBP", LONDON)
    zh = Formatter("zh-CN", "CNY", ZoneInfo("Asia/Shanghai"))
    assert en.money("1234567.5") == "£1,234,567.50"
    assert zh.money("1234567.5") == "¥1,234,567.50"
    assert en.money_short(1_234_567) == "£1.2M" and zh.money_short(1_234_567) == "¥123.5万"
    assert en.pct(-43.0682, signed=True) == "-43.1%" and en.pct(7.25, signed=True) == "+7.2%"
    assert en.pct(None) == "–" and en.money(None) == "–"
    assert en.period("month", "2026-11-01") == "Nov 2026" and zh.period("month", "2026-11-01") == "2026年11月"
    assert (
        en.period("quarter", "2026-10-01") == "Q4 2026"
        and zh.period("quarter", "2026-10-01") == "2026年第4季度"
    )
    fiscal = Formatter("en", "GBP", LONDON, fiscal_year_start_month=4)
    assert (
        fiscal.period("quarter", date(2027, 1, 1)) == "FY2026 Q4"
        and fiscal.period("year", "2026-04-01") == "FY2026"
    )
    assert en.period("week", "2026-11-23") == "w/c Nov 23, 2026"


def test_a_glyph_no_font_has_fails_the_chart() -> None:
    def draw(figure: Any) -> None:
        figure.subplots().set_title(title)

    title = "收入与目标 £1.2M"
    svg = charts.render_svg("zh-CN", 2.0, draw, "title")  # Chinese and Latin: both fonts draw it
    assert svg.startswith(b"<?xml") and b"<path" in svg
    title = "\U0001d54a\U000f0000"  # a mathematical letter and a private-use code point: in neither font
    with pytest.raises(FontError, match="missing from font"):
        charts.render_svg("zh-CN", 2.0, draw, "title")


def test_a_cjk_font_installed_after_matplotlib_cached_its_list_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from matplotlib import font_manager

    def stale() -> list[Any]:
        return [entry for entry in font_manager.fontManager.ttflist if "CJK" not in entry.name]

    monkeypatch.setattr(font_manager.fontManager, "ttflist", stale())
    assert fonts.families("zh-CN") == ["DejaVu Sans", "Noto Sans CJK SC"]
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda: [])  # and not installed at all
    monkeypatch.setattr(font_manager.fontManager, "ttflist", stale())
    with pytest.raises(FontError, match="install the Debian package fonts-noto-cjk"):
        fonts.families("zh-CN")
    assert fonts.families("en") == ["DejaVu Sans"]


def _decline_document() -> tuple[dict[str, Any], Any]:
    """North sold 10 x 1000 by this point of October and 1 x 1000 in November: -90%."""
    events: list[dict[str, Any]] = []
    for team, wins in (("north", 1), ("south", 10)):
        rep = f"{team}-1"
        for month, count in ((10, 10), (11, wins)):
            for n in range(count):
                at = f"2026-{month}-0{1 + n % 9}T10:00:00Z"
                deal = f"{rep}-{month}-{n}"
                events.append(f.deal_created(at, deal, rep, amount="1000", team=team, region="emea"))
                events.append(
                    f.deal_won(at.replace("T10", "T11"), deal, rep, amount="1000", team=team, region="emea")
                )
        events.append(
            f.target("2026-10-30T10:00:00Z", "month", "2026-11-01", "20000", rep, team=team, region="emea")
        )
    return f.report(events), f.rules()


def test_file_alert_states_follow_the_rules_thresholds() -> None:
    document, rules = _decline_document()
    states = {(s.alert, s.scope, s.name) for s in file_states(document, rules, f.FIXED)}
    assert ("SalesRevenueDecline", "team", "north") in states
    assert ("SalesRevenueDecline", "team", "south") not in states  # flat: 0%
    # 1000 of 20000 with 73% of November gone: projected 6.8% < 80%; south 10000: 68.2% too
    assert ("SalesTargetPaceBehind", "team", "north") in states
    early = datetime(2026, 11, 3, 10, tzinfo=UTC)  # before min_elapsed_pct (25%) of the month
    assert not any(s.alert == "SalesTargetPaceBehind" for s in file_states(document, rules, early))


def test_view_model_of_a_selected_document() -> None:
    document, rules = _decline_document()
    current = {"month": date(2026, 11, 1), "day": date(2026, 11, 23), "week": date(2026, 11, 23),
               "quarter": date(2026, 10, 1), "year": date(2026, 1, 1)}  # fmt: skip
    selected = select(document, Selection("month", last=2), current, drop_empty=True)
    fmt = Formatter("en", "GBP", LONDON)
    view = ViewBuilder(selected, fmt, "Company", {}, lambda a: a.alert).build(
        Meta("title", "source_file", "events.jsonl", f.FIXED)
    )
    assert view.title == "Sales KPI report · Nov 2026"
    assert [row.scope for row in view.summary] == ["company", "region", "team", "team"]
    assert [(row.scope, row.name) for row in view.rows][-2:] == [("rep", "north-1"), ("rep", "south-1")]
    north = next(row for row in view.rows if row.name == "north")
    growth = next(cell for cell in north.cells if cell.kpi == "derived.growth_pct")
    assert (growth.text, growth.css) == ("-90.0%", "down")
    # no visits in these events, no deal with a cost: those two charts are notes instead
    assert [c.key for c in view.charts] == ["revenue_target", "attainment", "funnel", "channel", "customers"]
    assert view.notes == [
        "Sales visits (SVT) by team: no data in these periods.",
        "Gross margin: no won deal in these periods carried a cost.",
    ]
    assert all(c.uri and c.uri.startswith("data:image/svg+xml;base64,") for c in view.charts)


def test_command_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"\n".join(f.lines([f.visit("2026-11-02T10:00:00Z")])) + b"\n")
    assert main(["report", str(events), "--format", "pdf"]) == 2
    assert "--format pdf writes a file: give --output PATH" in capsys.readouterr().err
    assert main(["report", str(events), "--format", "html", "--period", "all", "--output", "x.html"]) == 2
    assert "shows one period kind" in capsys.readouterr().err
    assert main(["report", str(events), "--format", "json", "--scope", "team:south", "--clock", "event"]) == 2
    assert "no team named 'south' in the report; teams: north" in capsys.readouterr().err
    port = free_port()  # nothing listens there
    assert main(["digest", "--prometheus", f"http://127.0.0.1:{port}", "--format", "json"]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach Prometheus at http://127.0.0.1:{port}" in err and "Traceback" not in err
    assert main(["digest", "--prometheus", "http://127.0.0.1:9", "--period", "day", "--format", "json"]) == 2
    assert "Prometheus records the periods week, month, quarter" in capsys.readouterr().err


def test_report_writes_html_from_a_small_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document, _ = _decline_document()
    events = tmp_path / "e.jsonl"
    assert document["periods"]
    lines = []
    for team in ("north", "south"):
        lines.append(
            f.deal_created("2026-11-02T10:00:00Z", f"d-{team}", f"{team}-1", amount="500", team=team)
        )
        lines.append(f.deal_won("2026-11-02T11:00:00Z", f"d-{team}", f"{team}-1", amount="500", team=team))
    events.write_bytes(b"\n".join(f.lines(lines)) + b"\n")
    out = tmp_path / "r.html"
    code = main(["report", str(events), "--format", "html", "--output", str(out), "--clock", "event",
                 "--scope", "team:north"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    page = out.read_text(encoding="utf-8")
    assert 'data-scope="team" data-name="north"' in page and 'data-name="south"' not in page
    assert Decimal("500") and "£500.00" in page


def test_digest_targets_are_a_scopes_own_else_its_members() -> None:
    from kpi_monitor.reporting.digest import _effective

    d = Decimal
    own = {
        ("rep", "ann"): {"revenue": d(100), "visits": d(10)},
        ("rep", "bob"): {"revenue": d(50)},
        ("rep", "cat"): {"revenue": d(70)},
        ("team", "south"): {"revenue": d(500)},  # south's own target replaces cat's 70
        ("company", ""): {"visits": d(99)},
    }
    rep_team = {"ann": "north", "bob": "north", "cat": "south"}
    out = _effective(own, rep_team, {"north": {"emea"}, "south": {"emea"}})
    assert out[("team", "north")] == {"revenue": d(150), "visits": d(10)}
    assert out[("team", "south")] == {"revenue": d(500)}
    assert out[("region", "emea")] == {"revenue": d(650), "visits": d(10)}
    assert out[("company", "")] == {"revenue": d(650), "visits": d(99)}
    assert out[("rep", "cat")] == {"revenue": d(70)}
