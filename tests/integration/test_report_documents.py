"""`report --format html|pdf` as a manager sees it, in `en` and `zh-CN`: the HTML's figures equal
`report --format json`; the page opens in headless Chromium (Debian's) with no console error, no
request outside the file, and every chart drawn; the PDF's pages, rasterised by pdftoppm, are not
blank, and the Chinese one embeds its CJK font. Needs no service: only the programs that
scripts/install-system-deps.sh installs (chromium, poppler-utils, fonts-noto-cjk)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from kpi_monitor.reporting.formatting import Formatter
from kpi_monitor.reporting.view import TABLE_KPIS, value_at
from kpi_rules import load_rules
from tests.integration.workers import HISTORY_END, REPO

LOCALES = ("en", "zh-CN")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-background-networking",  # the network is closed: no update or metrics calls
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The decline scenario's history has won deals with costs, customers and targets: every chart is drawn
# (a history without costs leaves the margin chart out and says so: tests/unit/test_reporting.py).
CHARTS = ["revenue_target", "attainment", "funnel", "channel", "visits", "customers", "margin"]
SELECTION = ("--period", "month", "--last", "3", "--clock", "event")
# The history ends at a fixed moment (--until), mid-month, and the report's clock is its newest
# event: the same documents on whichever day the test runs.
MID_MONTH = HISTORY_END
# Where CI once ran: 9 minutes into a month, whose targets are set but which has no deal yet.
MONTH_START = "2026-12-01T00:09:00+00:00"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "kpi_monitor.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The decline scenario's history (12 reps, 62 days) and a rules file per locale."""
    tmp = tmp_path_factory.mktemp("reports")
    _cli(
        "simulate",
        "--scenario",
        "decline",
        "--days",
        "62",
        "--seed",
        "3",
        "--output",
        str(tmp / "events.jsonl"),
        "--until",
        MID_MONTH,
    )
    data = yaml.safe_load((REPO / "kpi_rules" / "rules.yaml").read_text(encoding="utf-8"))
    for locale in LOCALES:
        (tmp / f"rules-{locale}.yaml").write_text(
            yaml.safe_dump({**data, "locale": locale}), encoding="utf-8"
        )
    return tmp


@pytest.fixture(scope="module")
def documents(workdir: Path) -> dict[str, dict[str, Path]]:
    out: dict[str, dict[str, Path]] = {}
    for locale in LOCALES:
        rules = str(workdir / f"rules-{locale}.yaml")
        paths = {fmt: workdir / f"report-{locale}.{fmt}" for fmt in ("html", "pdf", "json")}
        for fmt, path in paths.items():
            events = str(workdir / "events.jsonl")
            _cli("report", events, "--format", fmt, "--output", str(path), "--rules", rules, *SELECTION)
        out[locale] = paths
    return out


class _Cells(HTMLParser):
    """The figures table's rows: (scope, name, start) -> {kpi: (data-value, text)}."""

    def __init__(self) -> None:
        super().__init__()
        self.in_figures = False
        self.rows: dict[tuple[str, str, str], dict[str, tuple[str, str]]] = {}
        self.row: dict[str, tuple[str, str]] | None = None
        self.cell: tuple[str, str] | None = None
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and "figures" in a.get("class", "").split():
            self.in_figures = True
        elif self.in_figures and tag == "tr" and "data-scope" in a:
            self.row = self.rows.setdefault((a["data-scope"], a["data-name"], a["data-start"]), {})
        elif self.row is not None and tag == "td" and "data-kpi" in a:
            self.cell, self.text = (a["data-kpi"], a["data-value"]), ""

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.cell is not None and self.row is not None:
            self.row[self.cell[0]] = (self.cell[1], self.text.strip())
            self.cell = None
        elif tag == "table":
            self.in_figures = False


@pytest.mark.parametrize("locale", LOCALES)
def test_html_figures_equal_the_json_report(documents: dict[str, dict[str, Path]], locale: str) -> None:
    paths = documents[locale]
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    parser = _Cells()
    parser.feed(paths["html"].read_text(encoding="utf-8"))
    newest = max(r["start"] for r in doc["scopes"])
    expected: dict[tuple[str, str, str], dict[str, Any]] = {
        (r["scope"], r["name"], r["start"]): r for r in doc["scopes"] if r["start"] == newest
    }
    expected |= {("rep", r["rep_id"], r["start"]): r for r in doc["periods"] if r["start"] == newest}
    assert set(parser.rows) == set(expected)  # every row of the newest month, no other
    rules = load_rules(paths["json"].parent / f"rules-{locale}.yaml")
    fmt = Formatter(locale, rules.currency, rules.zone)
    for key, cells in parser.rows.items():
        assert [kpi for kpi, _ in TABLE_KPIS] == list(cells)
        for path, how in TABLE_KPIS:
            value = value_at(expected[key], path)
            raw, text = cells[path]
            assert raw == ("" if value is None else str(value)), (key, path)
            if how == "money":
                shown = fmt.money(value)
            elif how == "count":
                shown = fmt.count(value)
            else:
                shown = fmt.pct(value, signed=how == "signed")
            assert text == shown, (key, path, text)
    company = parser.rows[("company", "", newest)]
    assert company["revenue"][1] == fmt.money(expected[("company", "", newest)]["revenue"])
    assert company["revenue"][1].startswith("£")


def _non_blank(image: Image.Image) -> bool:
    """Drawn on: more than a few colours, and ink (pixels darker than light grey) on at least
    0.3% of it. A page with one chart and two lines of notes has about 0.9%, at 50 dpi; a page
    with only its number, under 0.05%."""
    rgb = image.convert("RGB")
    colours = rgb.getcolors(maxcolors=1_000_000) or []
    grey = rgb.convert("L")
    ink = sum(grey.histogram()[:200]) / (grey.width * grey.height)
    return len(colours) > 8 and ink >= 0.003


def _assert_pages_drawn(pdf: Path, tmp_path: Path, what: str) -> None:
    """At least 3 pages, each drawn on, rasterised by pdftoppm at 50 dpi."""
    raster = ["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")]
    subprocess.run(raster, check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    for page in pages:
        assert _non_blank(Image.open(page)), f"{page.name} of {what} is blank"


@pytest.mark.parametrize("locale", LOCALES)
def test_html_opens_in_chromium_with_every_chart_drawn(
    documents: dict[str, dict[str, Path]], locale: str, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/install-system-deps.sh")
    from playwright.sync_api import sync_playwright

    page_url = documents[locale]["html"].resolve().as_uri()
    problems: list[str] = []
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on(
                "console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("request", lambda r: requested.append(r.url))
            page.goto(page_url, wait_until="load")
            assert page.evaluate("document.documentElement.lang") == locale
            charts = page.locator("figure.chart")
            assert [charts.nth(i).get_attribute("data-chart") for i in range(charts.count())] == CHARTS
            for i in range(charts.count()):
                chart = charts.nth(i)
                name = chart.get_attribute("data-chart")
                complete, width, height = chart.locator("img").evaluate(
                    "img => [img.complete, img.naturalWidth, img.naturalHeight]"
                )
                assert complete and width > 300 and height > 100, (name, width, height)
                shot = tmp_path / f"{locale}-{name}.png"
                chart.screenshot(path=str(shot))
                assert _non_blank(Image.open(shot)), f"{name}: blank in {locale}"
            page.screenshot(path=str(tmp_path / f"{locale}-page.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requested), requested  # self-contained


@pytest.mark.parametrize("locale", LOCALES)
def test_pdf_pages_are_drawn(documents: dict[str, dict[str, Path]], locale: str, tmp_path: Path) -> None:
    for tool in ("pdftoppm", "pdffonts", "pdftotext"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run scripts/install-system-deps.sh (poppler-utils)")
    pdf = documents[locale]["pdf"]
    _assert_pages_drawn(pdf, tmp_path, f"the {locale} PDF")
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    if locale == "zh-CN":
        assert "Noto-Sans-CJK-SC" in fonts, fonts
        assert "销售 KPI 报表" in words and "概要" in words
    else:
        assert "Sales KPI report" in words and "Summary" in words
    assert "Type 3" not in fonts  # real embedded fonts, not bitmaps


def test_a_month_without_deals_yet_keeps_its_charts_and_says_what_is_missing(tmp_path: Path) -> None:
    """Nine minutes into December: the month's targets are set, nothing is sold yet. The report's
    current month is December; the charts over time are drawn, the two of December alone say
    they have no data, and no PDF page is blank."""
    events = tmp_path / "events.jsonl"
    _cli(
        "simulate", "--scenario", "decline", "--days", "62", "--seed", "3", "--output", str(events),
        "--until", MONTH_START,
    )  # fmt: skip
    html, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    for path in (html, pdf):
        _cli("report", str(events), "--format", path.suffix[1:], "--output", str(path), *SELECTION)
    page = html.read_text(encoding="utf-8")
    drawn = [c for c in CHARTS if f'data-chart="{c}"' in page]
    assert drawn == [c for c in CHARTS if c not in ("funnel", "channel")]
    for title in ("Deal funnel, Dec 2026", "Revenue by contact channel, Dec 2026"):
        assert f"{title}: no data in these periods." in page
    _assert_pages_drawn(pdf, tmp_path, "the PDF")
    words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Deal funnel, Dec 2026: no data in these periods." in words
