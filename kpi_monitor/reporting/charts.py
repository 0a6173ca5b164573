"""The report's charts, drawn by matplotlib (object API, no pyplot state) as self-contained SVG.

Text is drawn as paths (`svg.fonttype: path`), so a chart shows the same everywhere without the
fonts installed; the glyphs come from DejaVu Sans and, for Chinese, Noto Sans CJK SC."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from matplotlib.typing import RcKeyType

from kpi_monitor.reporting.fonts import families, glyphs_checked

WIDTH = 7.6  # inches: the text column of an A4 page, and a comfortable screen width
COLORS = ("#1f5fa8", "#e07b1a", "#2e9a4a", "#c2352b", "#7f5ab6", "#8a5a44", "#d462a8", "#6e6e6e")
TARGET_COLOR = "#222222"
GRID = "#dddddd"


@dataclass(frozen=True)
class Series:
    """One named line or set of bars: a value (or None: no figure) per category."""

    name: str
    values: Sequence[float | None]


def _rc(locale: str) -> dict[RcKeyType, Any]:
    return {
        "font.family": families(locale),
        "font.size": 9,
        "axes.titlesize": 11,
        "axes.titleweight": "bold",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.edgecolor": "#888888",
        "axes.grid": True,
        "grid.color": GRID,
        "axes.axisbelow": True,
        "legend.frameon": False,
        "svg.fonttype": "path",
        "svg.hashsalt": "kpi-monitor",  # stable ids: the same report twice is the same file
    }


def render_svg(locale: str, height: float, draw: Callable[[Figure], None], what: str) -> bytes:
    """A figure drawn by `draw`, as SVG bytes; a glyph missing from every font is an error."""
    with matplotlib.rc_context(_rc(locale)), glyphs_checked(what):
        figure = Figure(figsize=(WIDTH, height), layout="constrained")
        draw(figure)
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def data_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def _axis(ax: Axes, fmt: Callable[[float], str], axis: str = "y") -> None:
    formatter = FuncFormatter(lambda value, _pos: fmt(value))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)
    (ax.xaxis if axis == "y" else ax.yaxis).grid(False)


def grouped_bars(
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str],
    *,
    markers: Sequence[Series] = (),
    marker_label: str = "",
    title: str = "",
) -> Callable[[Figure], None]:
    """Vertical bars, one group per category and one bar per series; `markers` (a target) are
    drawn as a dark tick across their series' bar."""

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        count = max(len(series), 1)
        width = 0.8 / count
        for i, item in enumerate(series):
            xs = [c + (i - (count - 1) / 2) * width for c in range(len(categories))]
            heights = [v or 0.0 for v in item.values]
            ax.bar(xs, heights, width * 0.92, label=item.name, color=COLORS[i % len(COLORS)])
            if i < len(markers):
                marked = [(x, v) for x, v in zip(xs, markers[i].values, strict=True) if v is not None]
                if marked:
                    ax.hlines(
                        [v for _, v in marked],
                        [x - width * 0.5 for x, _ in marked],
                        [x + width * 0.5 for x, _ in marked],
                        colors=TARGET_COLOR,
                        linewidths=2.2,
                        zorder=3,
                        label=marker_label if i == 0 else "_nolegend_",
                    )
        ax.set_xticks(range(len(categories)), categories)
        _axis(ax, fmt)
        ax.set_title(title, loc="left")
        if len(series) > 1 or markers:
            ax.legend(ncols=min(len(series) + 1, 5), loc="upper left", bbox_to_anchor=(0, -0.08))

    return draw


def ranked_bars(
    labels: Sequence[str],
    values: Sequence[float],
    colors: Sequence[str],
    fmt: Callable[[float], str],
    *,
    reference: float | None = None,
    reference_label: str = "",
    title: str = "",
    legend: Sequence[tuple[str, str]] = (),
) -> Callable[[Figure], None]:
    """Horizontal bars, largest first, each labelled with its value; a dashed `reference` line."""

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        ys = list(range(len(labels)))
        ax.barh(ys, values, color=colors, height=0.7)
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        for y, value in zip(ys, values, strict=True):
            ax.annotate(fmt(value), (value, y), xytext=(3, 0), textcoords="offset points", va="center")
        if reference is not None:
            ax.axvline(reference, color=TARGET_COLOR, linestyle="--", linewidth=1, label=reference_label)
        _axis(ax, fmt, axis="x")
        ax.margins(x=0.12)
        ax.set_title(title, loc="left")
        handles = [matplotlib.patches.Patch(color=color, label=name) for name, color in legend]
        if handles or reference is not None:
            lines = ax.get_legend_handles_labels()[0]
            ax.legend(handles=[*handles, *lines], loc="lower right", fontsize=8)

    return draw


def funnel(
    stages: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str],
    conversion: Callable[[float, float], str],
    *,
    title: str = "",
) -> Callable[[Figure], None]:
    """A funnel: one horizontal bar per stage (per series), the conversion from the stage above."""

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        count = max(len(series), 1)
        height = 0.8 / count
        for i, item in enumerate(series):
            ys = [s + (i - (count - 1) / 2) * height for s in range(len(stages))]
            values = [v or 0.0 for v in item.values]
            ax.barh(ys, values, height * 0.9, color=COLORS[i % len(COLORS)], label=item.name)
            for j, (y, value) in enumerate(zip(ys, values, strict=True)):
                text = fmt(value)
                if j > 0 and values[j - 1] > 0:
                    text += f"  ({conversion(value, values[j - 1])})"
                ax.annotate(text, (value, y), xytext=(3, 0), textcoords="offset points", va="center")
        ax.set_yticks(range(len(stages)), stages)
        ax.invert_yaxis()
        _axis(ax, fmt, axis="x")
        ax.margins(x=0.25)
        ax.set_title(title, loc="left")
        if len(series) > 1:
            ax.legend(loc="lower right")

    return draw


def lines(
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str],
    *,
    title: str = "",
    dashed: Sequence[bool] = (),
) -> Callable[[Figure], None]:
    """One line per series over the categories (periods); a missing value breaks the line."""

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        xs = list(range(len(categories)))
        for i, item in enumerate(series):
            ys = [float("nan") if v is None else v for v in item.values]
            style = "--" if i < len(dashed) and dashed[i] else "-"
            ax.plot(xs, ys, style, marker="o", markersize=4, color=COLORS[i % len(COLORS)], label=item.name)
        ax.set_xticks(xs, categories)
        ax.set_ylim(bottom=0)
        _axis(ax, fmt)
        ax.set_title(title, loc="left")
        if len(series) > 1:
            ax.legend(ncols=min(len(series), 5), loc="upper left", bbox_to_anchor=(0, -0.08))

    return draw
