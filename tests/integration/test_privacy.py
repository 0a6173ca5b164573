"""No personal data in metrics or logs: after a simulated run (thousands of deals, visits and quotes
with customer ids) plus bad messages that carry customer ids into the error paths, no customer id
appears in /metrics, /kpis, /status or the worker's log, even at KPI_LOG_LEVEL=debug.

The dead-letter topic is a data topic, not a log: it keeps the original bytes (customer ids
included) and its `kpi.error` header may quote a rejected value; the test checks that this is the
only place they go."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from kpi_core.periods import PERIOD_KINDS
from kpi_testkit import Deployment
from tests.integration.workers import consume_topic, produce_raw, simulate_file, wait_all_handled, write_lines

CUSTOMER = re.compile(rb"cust-[0-9]+")


def _bad_with_customers(visit: dict[str, object], deal: dict[str, object]) -> list[tuple[str, bytes]]:
    """Bad messages whose customer ids reach rejection messages (echoed values) or error paths."""
    return [
        # echoed by the rejection message: the id in a field whose value is quoted
        ("deals", orjson.dumps(deal | {"event_id": "p1", "stage": "cust-900001"})),
        ("deals", orjson.dumps(deal | {"event_id": "p2", "currency": "cust-900002"})),
        ("visits", orjson.dumps(visit | {"event_id": "p3", "type": "cust-900003"})),
        ("visits", orjson.dumps(visit | {"event_id": "p4", "customer_id": ["cust-900004"]})),
        ("visits", orjson.dumps(visit | {"event_id": "p5", "occurred_at": "cust-900005"})),
        ("deals", orjson.dumps(deal | {"event_id": "p6", "amount": "cust-900006"})),
        # rejected at ingest (no rep): full validation there
        ("visits", orjson.dumps({k: v for k, v in visit.items() if k != "rep_id"} | {"customer_id": "cust-900007"})),  # noqa: E501
        ("visits", b'{"customer_id": "cust-900008", "rep_id": '),
        ("deals", orjson.dumps(deal | {"event_id": "p9", "amount": "-5", "customer_id": "cust-900009"})),
        ("visits", orjson.dumps(visit | {"event_id": "p10", "notes": "cust-900010 " * 7000})),  # too large
    ]


def test_no_customer_ids_in_metrics_api_or_logs(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path, extra_env={"KPI_LOG_LEVEL": "debug"})
    lines = simulate_file(deployment, tmp_path / "sim.jsonl", 4000, days=15, reps=8, seed=5)
    events = [orjson.loads(line) for line in lines]
    customers = {e["customer_id"] for e in events if "customer_id" in e}
    kinds = {e["type"] for e in events if "customer_id" in e}
    assert len(customers) > 500, len(customers)
    assert {"deal.created", "deal.won", "visit.completed", "quote.sent"} <= kinds, kinds
    visit = next(e for e in events if e["type"] == "visit.completed")
    deal = next(e for e in events if e["type"] == "deal.created")
    bad = _bad_with_customers(visit, deal)
    planted = {m.decode() for _, raw in bad for m in CUSTOMER.findall(raw)}
    customers |= planted

    worker = deployment.worker().start()
    try:
        worker.wait_ready()
        deployment.cli("publish", str(write_lines(tmp_path / "publish.jsonl", lines)))
        produce_raw(deployment, bad)
        wait_all_handled([worker], len(lines) + len(bad), timeout=120)

        def leaked(where: str, body: bytes) -> None:
            found = {m.decode() for m in CUSTOMER.findall(body)} & customers
            assert not found, f"customer ids in {where}: {sorted(found)[:10]}"
            assert b"customer_id" not in body or where.startswith("log"), where

        status, body = worker.get("/metrics")
        assert status == 200 and b"sales_visits" in body
        leaked("/metrics", body)
        status, body = worker.get("/status")
        assert status == 200
        leaked("/status", body)
        reps = sorted({e["rep_id"] for e in events if "rep_id" in e})  # team spend and targets: none
        for rep in reps:
            for kind in PERIOD_KINDS:
                status, body = worker.get(f"/kpis/reps/{rep}?period={kind}")
                assert status == 200, (rep, kind, body[:200])
                leaked(f"/kpis/reps/{rep}?period={kind}", body)
        for path in ("/kpis/reps/cust-900001", "/kpis/reps/nobody?period=cust-900002"):
            status, body = worker.get(path)
            assert status in (400, 404)

        # The dead letters carry them (a data topic, the original bytes): as designed.
        letters = consume_topic(deployment, "deadletter", len(bad), timeout=60)
        assert len(letters) == len(bad)
        assert planted <= {m.decode() for r in letters for m in CUSTOMER.findall(r.value)}

        log = worker.log_path.read_bytes()
        assert len(log) > 0
        assert b"DEBUG" in log, "the worker ran at debug level"
        leaked("log", log)
        assert worker.alive()
    finally:
        worker.stop()
    leaked("log after stop", worker.log_path.read_bytes())
