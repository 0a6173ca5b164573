"""The embedded `report` mode: KPIs from an event file with no Kafka, as JSON, a table or CSV."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from kpi_core.catalogue import Kpi, KpiKind, kpi
from kpi_core.derived import ROW_KPIS
from kpi_core.engine import KpiEngine, observe_all, replay
from kpi_core.events import Event, Rejection, decode_event
from kpi_core.periods import PERIOD_KINDS
from kpi_core.state import RepState
from kpi_core.windows import ROW_ADDITIVE

_ROW_KEYS: tuple[tuple[str, str], ...] = (
    ("rep", "rep_id"),
    ("team", "team"),
    ("period", "period"),
    ("start", "start"),
)


def _path(item: Kpi) -> str:
    return f"derived.{item.name}" if item.kind is KpiKind.DERIVED else item.name


#: The KPIs of `report --format table` in reading order (titles: the catalogue's `table`).
TABLE_KPIS: tuple[str, ...] = (
    "visits",
    "revenue",
    "target",
    "attainment_pct",
    "growth_pct",
    "win_rate_pct",
    "quote_to_close_pct",
    "avg_cycle_days",
    "gross_margin_pct",
    "churn_pct",
    "csat_pct",
)
TABLE_COLUMNS: tuple[tuple[str, str], ...] = _ROW_KEYS + tuple(
    (str(kpi(name).table), _path(kpi(name))) for name in TABLE_KPIS
)
#: `report --format csv`: every unlabelled KPI of a row, in catalogue order.
CSV_COLUMNS: tuple[str, ...] = ("rep_id", "team", "region", "period", "start") + tuple(
    _path(item) for item in (*ROW_ADDITIVE, *ROW_KPIS) if item.label is None
)


def read_events(lines: Iterable[bytes], engine: KpiEngine, rejected: Counter[str]) -> Iterator[Event]:
    """Decode JSONL lines; blank lines are skipped, bad ones counted by reason."""
    for line in lines:
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            yield decode_event(raw, engine.rules)
        except Rejection as rejection:
            rejected[rejection.reason.value] += 1


def build_report(
    lines: Iterable[bytes],
    engine: KpiEngine,
    reread: Callable[[], Iterable[bytes]] | None = None,
) -> dict[str, Any]:
    """The report document of an event file. With the wall clock the file is streamed once; with
    the event clock it is read twice when `reread` can open it again (bounded memory), else it is
    held in memory (`replay`)."""
    rejected: Counter[str] = Counter()
    observed = False
    if engine.clock.mode == "event" and reread is not None:
        # A first pass sets the clock, so the file need not be held in memory.
        observe_all(engine, read_events(reread(), engine, Counter()))
        observed = True
    states, late = replay(engine, read_events(lines, engine, rejected), observed)
    rejected.update(late)
    return report_document(states, engine, rejected)


def report_document(
    states: dict[str, RepState], engine: KpiEngine, rejected: Counter[str]
) -> dict[str, Any]:
    periods: list[dict[str, Any]] = []
    pipeline: list[dict[str, Any]] = []
    now = engine.clock.now()
    for rep_id in sorted(states):
        view = engine.view(states[rep_id], now)
        for kind in PERIOD_KINDS:
            periods.extend(view.period_row(kind, start) for start in view.starts(kind))
        if states[rep_id].open_deals:
            pipeline.append(view.pipeline())
    return {"periods": periods, "pipeline": pipeline, "rejected": dict(sorted(rejected.items()))}


def _cell(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render_table(document: dict[str, Any], out: IO[str]) -> None:
    rows = [[_text(_cell(r, path)) for _, path in TABLE_COLUMNS] for r in document["periods"]]
    headers = [title for title, _ in TABLE_COLUMNS]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    numeric = set(range(len(_ROW_KEYS), len(TABLE_COLUMNS)))

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out.write(line(headers) + "\n")
    out.write(line(["-" * w for w in widths]) + "\n")
    for r in rows:
        out.write(line(r) + "\n")
    if document["pipeline"]:
        out.write("\nOpen pipeline\n")
        for p in document["pipeline"]:
            out.write(
                f"  {p['rep_id']:<16} {p['team']:<12} deals {p['open_deals']:>4}  "
                f"open {p['open_pipeline']:>14}  weighted {p['weighted_pipeline']:>14}\n"
            )


def render_csv(document: dict[str, Any], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.removeprefix("derived.") for c in CSV_COLUMNS])
    for row in document["periods"]:
        writer.writerow(["" if (v := _cell(row, c)) is None else v for c in CSV_COLUMNS])


def rejected_summary(document: dict[str, Any]) -> str:
    rejected = document["rejected"]
    if not rejected:
        return "rejected: none"
    total = sum(rejected.values())
    parts = ", ".join(f"{reason} {count}" for reason, count in rejected.items())
    return f"rejected: {total} ({parts})"


def render(document: dict[str, Any], fmt: str) -> str:
    import orjson

    if fmt == "json":
        return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    buffer = io.StringIO()
    (render_table if fmt == "table" else render_csv)(document, buffer)
    return buffer.getvalue()
