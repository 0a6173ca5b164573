"""The Quix Streams benchmark peer computes the same per-rep month KPIs as our core, on the same events.

Events from the benchmark's own generator (spanning four months), plus a few made to test the edges:
money in EUR and USD (converted with the rules' fixed rates), an amount as a JSON number, events
whose UTC month differs from their month in the rules' time zone (Europe/London), and redelivered
duplicates. They go to fresh contract topics; the peer runs in its subprocess as the suite runs it;
`kpi_core.report.build_report` (the `kpi-monitor report --clock event` path) computes the reference.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from benchmarks import peer_quix
from benchmarks.stream_throughput import make_events, produce
from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine
from kpi_core.report import build_report
from kpi_rules import load_rules

COUNTS = ("visits", "deals_created", "deals_won", "deals_lost", "quotes_sent")


def _events() -> list[bytes]:
    """3,000 generated events over Aug-Nov 2026 (20 reps), edited at the edges, + 75 duplicates."""
    events = [orjson.loads(raw) for raw in make_events(30_000, 20)[::10]]
    wons = [e for e in events if e["type"] == "deal.won"]
    visits = [e for e in events if e["type"] == "visit.completed"]
    wons[0].update(currency="EUR", amount="1234.57")
    wons[1].update(currency="USD", amount="99.999999")
    wons[2].update(amount=1999.99)  # a JSON number with a fraction, not a string
    # 23:15 UTC on the last day of a summer month is already the next month in London (BST).
    wons[3].update(occurred_at="2026-08-31T23:15:00+00:00")
    visits[0].update(occurred_at="2026-09-30T23:30:00+00:00")
    visits[1].update(occurred_at="2026-10-01T01:10:00+02:00")  # Sep 30, 23:10 UTC: October in London
    raw = [orjson.dumps(e) for e in events]
    return raw + raw[::40]


def _core_months(events: list[bytes]) -> dict[tuple[str, str], dict[str, Any]]:
    engine = KpiEngine(load_rules(), KpiClock(mode="event"))
    document = build_report(events, engine)
    assert document["rejected"] == {}, document["rejected"]
    return {(r["rep_id"], r["start"]): r for r in document["periods"] if r["period"] == "month"}


def test_peer_month_kpis_equal_the_core(kafka_bootstrap: str, tmp_path: Path) -> None:
    events = _events()
    assert len(events) == 3075
    prefix = f"peertest{uuid.uuid4().hex[:8]}.crm."
    try:
        asyncio.run(produce(kafka_bootstrap, prefix, events, 4))
        result = peer_quix.measure_peer(kafka_bootstrap, prefix, len(events), tmp_path, timeout_s=300)
    finally:
        peer_quix.delete_topics(kafka_bootstrap, prefix)  # ours and Quix's repartition/changelog ones

    assert result.processed == len(events)
    assert result.seconds > 0 and result.events_per_s > 0
    assert result.months is not None
    peer = {(rep, month): kpis for rep, by_month in result.months.items() for month, kpis in by_month.items()}
    core = _core_months(events)
    assert {start for _, start in core} >= {"2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01"}
    assert len({rep for rep, _ in core}) == 20
    # Months with activity: the peer has exactly those (the core may also list empty months).
    active = {key for key, row in core.items() if any(row[n] for n in COUNTS)}
    assert set(peer) == active
    zero = peer_quix.new_month()
    for key, row in core.items():
        got = peer.get(key, zero)
        for name in COUNTS:
            assert got[name] == row[name], (key, name, got[name], row[name])
        assert Decimal(got["revenue"]) == Decimal(row["revenue"]), (key, got["revenue"], row["revenue"])
    # The edits took effect: converted money and a London-time month differ from the naive answer.
    total = sum((Decimal(k["revenue"]) for k in peer.values()), Decimal(0))
    assert total == sum((Decimal(r["revenue"]) for r in core.values()), Decimal(0))
    assert total % 1 != 0  # the fractional EUR/USD/number amounts survived exactly
