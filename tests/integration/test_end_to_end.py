"""A visit published to the real broker raises that rep's `sales_visits` at the worker's /metrics."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from kpi_rules import load_rules
from kpi_testkit import WorkerProcess, eventually, sample
from tests.integration.workers import clear_of_midnight


def _visit(rep: str, n: int, at: datetime) -> dict[str, object]:
    return {
        "event_id": f"{rep}-visit-{n}",
        "type": "visit.completed",
        "occurred_at": at.isoformat(),
        "rep_id": rep,
        "team": "north",
        "region": "emea",
        "visit_id": f"v-{n}",
        "customer_id": "cust-1",
    }


def test_visit_raises_sales_visits(worker: WorkerProcess, tmp_path: Path) -> None:
    rep = f"rep-{uuid.uuid4().hex[:8]}"
    # The worker's wall clock decides "today": the test keeps clear of midnight in the rules' zone.
    clear_of_midnight(load_rules(worker.deployment.env["KPI_RULES"]).zone, minutes=3)
    at = datetime.now(UTC)
    events = tmp_path / "visits.jsonl"
    deployment = worker.deployment

    def visits_now() -> float:
        return sample(worker.metrics(), "sales_visits", rep=rep, period="day", window="current")

    assert visits_now() == 0
    events.write_bytes(orjson.dumps(_visit(rep, 1, at)) + b"\n")
    deployment.cli("publish", str(events))
    eventually(lambda: visits_now() == 1, timeout=60)

    events.write_bytes(b"".join(orjson.dumps(_visit(rep, n, at)) + b"\n" for n in (2, 3)))
    deployment.cli("publish", str(events))
    eventually(lambda: visits_now() == 3, timeout=60)
    metrics = worker.metrics()
    assert sample(metrics, "sales_visits", rep=rep, period="month", window="current") == 3
    assert sample(metrics, "kpi_events_processed_total", type="visit.completed") == 3
    status, body = worker.kpis(rep, "day")
    assert status == 200
    assert body["current"]["visits"] == 3
    assert body["team"] == "north"
