"""The embedded `report` mode: the KPI document of an event file (no Kafka), and its table/CSV columns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from kpi_core.catalogue import Kpi, KpiKind, kpi
from kpi_core.derived import ROW_KPIS, money
from kpi_core.engine import KpiEngine, observe_all, replay
from kpi_core.events import Event, Rejection, decode_event
from kpi_core.owners import parse_scope_key
from kpi_core.periods import PERIOD_KINDS
from kpi_core.scopes import ScopeBook
from kpi_core.state import RepState
from kpi_core.windows import ROW_ADDITIVE
from kpi_rules.vocabulary import MONEY_METRICS

#: (column title, path in a period row) of the columns that name a row (the rest are KPIs).
ROW_KEY_COLUMNS: tuple[tuple[str, str], ...] = (
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
TABLE_COLUMNS: tuple[tuple[str, str], ...] = ROW_KEY_COLUMNS + tuple(
    (str(kpi(name).table), _path(kpi(name))) for name in TABLE_KPIS
)
#: The open pipeline under the table: (title, key of a pipeline row).
PIPELINE_COLUMNS: tuple[tuple[str, str], ...] = (("rep", "rep_id"), ("team", "team")) + tuple(
    (kpi(name).title.en, name) for name in ("open_deals", "open_pipeline", "weighted_pipeline")
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
    """Contract section 4: rep rows, scope rows (team, region, company), the open pipeline, the
    targets with their decomposition gaps, and the rejected input by reason."""
    periods: list[dict[str, Any]] = []
    pipeline: list[dict[str, Any]] = []
    now = engine.clock.now()
    views = [engine.view(states[key], now) for key in sorted(states)]
    for view in views:
        if parse_scope_key(view.state.rep_id) is not None:
            continue  # a team's, region's or the company's own state: in the scope rows
        for kind in PERIOD_KINDS:
            periods.extend(view.period_row(kind, start) for start in view.starts(kind))
        if view.state.open_deals:
            pipeline.append(view.pipeline())
    book = ScopeBook(views)
    return {
        "periods": periods,
        "scopes": book.rows(),
        "pipeline": pipeline,
        "targets": [_gap_row(item) for item in book.gaps()],
        "rejected": dict(sorted(rejected.items())),
    }


def _gap_row(item: dict[str, Any]) -> dict[str, Any]:
    """Amounts of a target as the report writes them: money as decimal strings, counts whole."""
    render = money if item["metric"] in MONEY_METRICS else _whole
    out = dict(item)
    for name in ("target", "allocation_gap", "split_gap"):
        if out[name] is not None:
            out[name] = render(out[name])
    return out


def _whole(value: Decimal) -> int:
    return int(value)


def cell(row: dict[str, Any], path: str) -> Any:
    """The value at a column's dotted path (`derived.win_rate_pct`), None where there is none."""
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
