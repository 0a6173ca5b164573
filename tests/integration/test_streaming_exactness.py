"""The streaming worker computes exactly what the embedded report computes from the same file."""

from __future__ import annotations

import time
from pathlib import Path

from kpi_testkit import Deployment, sample
from tests.integration.workers import (
    PERIOD_KINDS,
    api_mismatches,
    report,
    report_reps,
    simulate_file,
    wait_all_handled,
)

EVENTS = 5000


def test_kpis_api_equals_report(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path)
    path = tmp_path / "events.jsonl"
    lines = simulate_file(deployment, path, EVENTS, days=20, reps=30, per_hour=40)
    assert len(lines) == EVENTS
    expected = report(deployment, path)
    reps = report_reps(expected)
    assert len(reps) == 30 and expected["rejected"] == {}

    worker = deployment.worker().start()
    try:
        worker.wait_ready()
        started = time.monotonic()
        deployment.cli("publish", str(path))
        wait_all_handled([worker], EVENTS, timeout=90)
        print(f"\n{EVENTS} events published and applied in {time.monotonic() - started:.1f}s")
        metrics = worker.metrics()
        assert sample(metrics, "kpi_events_applied_total") == EVENTS
        assert sample(metrics, "kpi_events_duplicate_total") == 0
        assert sample(metrics, "kpi_events_rejected_total") == 0
        assert sample(metrics, "kpi_events_processed_total") == EVENTS

        problems = api_mismatches(worker, expected, PERIOD_KINDS, reps)
        assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:10])

        # The exported gauges agree with the report too (current month, every rep).
        rows = {(r["rep_id"], r["period"], r["start"]): r for r in expected["periods"]}
        # (the report's latest month rows may be future months a target plan is set for)
        current_month = worker.kpis(reps[0], "month")[1]["current"]["start"]
        for rep in reps:
            row = rows.get((rep, "month", current_month))
            for kpi in ("visits", "deals_won", "quotes_sent"):
                got = sample(metrics, f"sales_{kpi}", rep=rep, period="month", window="current")
                assert got == (row[kpi] if row else 0), (rep, kpi)
        assert worker.alive()
    finally:
        worker.stop()
