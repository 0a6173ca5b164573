"""The HTTP API of a worker, hardened: bearer-token auth (KPI_API_TOKEN) on /kpis/* and /status,
open probes and /metrics, checked rep ids and periods, no tracebacks to clients."""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from kpi_core.events import example_events
from kpi_rules.vocabulary import TOPIC_OF
from kpi_testkit import Deployment, WorkerProcess, eventually, sample
from streams.http import bearer_ok, guarded
from tests.integration.workers import produce_raw, wait_all_handled

TOKEN = "s3cret-token-for-tests"


def get(worker: WorkerProcess, path: str, token: str | None = None, auth: str | None = None) -> Any:
    """(status, headers, parsed JSON body or raw bytes)."""
    request = urllib.request.Request(worker.url(path))
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if auth is not None:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    try:
        return status, headers, orjson.loads(body)
    except orjson.JSONDecodeError:
        return status, headers, body


def test_http_api_hardening(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    deployment = Deployment(
        kafka_bootstrap, redis_url, tmp_path, partitions=2, extra_env={"KPI_API_TOKEN": TOKEN}
    )
    # Not target.set: its compacted topic refuses messages without a key (produce_raw sends none).
    # Yesterday 06:00 UTC, as below: the example events (-1 h to +5 h) fall in one local day and
    # month (from "now - 1 day" they crossed into a new month on its first evening).
    base = (datetime.now(UTC) - timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
    events = [e for e in example_events(base) if e["type"] != "target.set"]
    worker = deployment.worker().start()
    try:
        worker.wait_ready()
        produce_raw(deployment, [(TOPIC_OF[e["type"]], orjson.dumps(e)) for e in events])
        wait_all_handled([worker], len(events), timeout=60)

        # Open without a token: probes and the Prometheus scrape.
        for path in ("/healthz", "/readyz", "/metrics"):
            assert get(worker, path)[0] == 200, path
        assert b"kpi_events_applied_total" in get(worker, "/metrics")[2]

        # Protected: 401 with a JSON error and a Bearer challenge, without or with a wrong token.
        for kwargs in ({}, {"token": "wrong"}, {"token": TOKEN + "x"}, {"auth": f"Basic {TOKEN}"},
                       {"auth": TOKEN}, {"token": ""}):  # fmt: skip
            for path in ("/kpis/reps/rep-001?period=month", "/status", "/kpis/reps/nobody",
                         "/customers/reps/rep-001/at-risk"):  # fmt: skip
                status, headers, body = get(worker, path, **kwargs)
                assert status == 401, (path, kwargs, status, body)
                assert headers["WWW-Authenticate"].startswith("Bearer"), headers
                assert isinstance(body, dict) and "error" in body, body
        # Auth comes first: a bad period without a token is 401, not 400.
        assert get(worker, "/kpis/reps/rep-001?period=fortnight")[0] == 401

        # With the token.
        status, _, body = get(worker, "/kpis/reps/rep-001?period=month", TOKEN)
        assert status == 200, body
        assert body["rep_id"] == "rep-001" and body["period"] == "month"
        assert body["current"]["deals_won"] == 1, body["current"]
        assert get(worker, "/kpis/reps/rep-001", auth=f"bearer {TOKEN}")[0] == 200  # scheme: any case
        status, _, body = get(worker, "/status", TOKEN)
        assert status == 200 and body["applied"] == len(events), body
        status, _, body = get(worker, "/customers/reps/rep-001/at-risk", TOKEN)  # customer ids: token only
        assert status == 200 and body["rep_id"] == "rep-001" and isinstance(body["customers"], list), body
        # Unknown query parameters are ignored; the rep id is URL-decoded.
        assert get(worker, "/kpis/reps/rep-001?period=day&foo=bar&x", TOKEN)[0] == 200
        assert get(worker, "/kpis/reps/rep%2D001?period=day", TOKEN)[2]["rep_id"] == "rep-001"

        # Bad period: 400 naming the allowed values.
        status, _, body = get(worker, "/kpis/reps/rep-001?period=fortnight", TOKEN)
        assert status == 400, body
        assert body["allowed"] == ["day", "week", "month", "quarter", "year"], body
        assert "day, week, month, quarter, year" in body["error"]
        assert get(worker, "/kpis/reps/rep-001?period=", TOKEN)[0] == 400

        # Bad rep ids: too long, control characters (URL-encoded), blank.
        for rep in ("r" * 129, "x" * 300, "rep%01", "%00", "rep%0Aid", "rep%7F", "%C2%85", "%20%20"):
            status, _, body = get(worker, f"/kpis/reps/{rep}?period=month", TOKEN)
            assert status == 400, (rep, status, body)
            assert "rep_id" in body["error"], body
        # 128 characters is allowed: an unknown rep, 404.
        status, _, body = get(worker, f"/kpis/reps/{'r' * 128}", TOKEN)
        assert status == 404, body
        status, _, body = get(worker, "/kpis/reps/nobody?period=week", TOKEN)
        assert status == 404 and "error" in body, body

        # Forwarded requests are answered where they land (one hop): a known rep is still found.
        request = urllib.request.Request(worker.url("/kpis/reps/rep-001"))
        request.add_header("Authorization", f"Bearer {TOKEN}")
        request.add_header("X-KPI-Forwarded", "1")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

        assert worker.alive()
        log = worker.log_path.read_text(errors="replace")
        assert TOKEN not in log
    finally:
        worker.stop()


def test_forwarding_with_auth(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    """Two workers: a request to the worker that does not own the rep is forwarded once, with the
    token, and answers the same; without the token both refuse before forwarding."""
    deployment = Deployment(
        kafka_bootstrap, redis_url, tmp_path, partitions=4, extra_env={"KPI_API_TOKEN": TOKEN}
    )
    # Yesterday 06:00 UTC: every example event (-1 h to +5 h) falls in one local day, whatever
    # the time of the run (with the event clock, "today" is that day).
    base = (datetime.now(UTC) - timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
    events = []
    for n in range(12):  # 12 reps: both workers own some
        for e in example_events(base):
            if e["type"] != "target.set":
                events.append(e | {"event_id": f"{e['event_id']}-{n}", "rep_id": f"rep-{n:03d}"})
    a = deployment.worker().start()
    b = deployment.worker()
    try:
        a.wait_ready()
        produce_raw(deployment, [(TOPIC_OF[e["type"]], orjson.dumps(e)) for e in events])
        wait_all_handled([a], len(events), timeout=60)
        b.start().wait_ready()

        def split() -> bool:
            owned = [sample(w.metrics(), "kpi_owned_partitions") for w in (a, b)]
            return all(o > 0 for o in owned) and sum(owned) == 4 and a.get("/readyz")[0] == 200

        eventually(split, timeout=90)
        local_misses = 0
        for n in range(12):
            path = f"/kpis/reps/rep-{n:03d}?period=day"

            def same(path: str = path) -> bool:
                answers = [get(w, path, TOKEN) for w in (a, b)]
                assert all(status == 200 for status, _, _ in answers), [x[0] for x in answers]
                assert answers[0][2] == answers[1][2]
                assert answers[0][2]["current"]["deals_won"] == 1
                return True

            eventually(same, timeout=30)
            for w in (a, b):
                status, headers, _ = get(w, path, "wrong")
                assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
                # Marked as already forwarded: answered locally, 404 by the worker not owning it.
                request = urllib.request.Request(w.url(path))
                request.add_header("Authorization", f"Bearer {TOKEN}")
                request.add_header("X-KPI-Forwarded", "1")
                try:
                    urllib.request.urlopen(request, timeout=10).close()
                except urllib.error.HTTPError as error:
                    assert error.code == 404, error.code
                    local_misses += 1
        assert local_misses == 12, "each rep is owned by exactly one worker: the other forwarded"
    finally:
        b.stop()
        a.stop()


# --------------------------------------------------------------------------- the view wrapper
# No request input makes a view fail, so the JSON 500 is tested on the wrapper itself.


class _View:
    def json(self, value: Any, *, status: int = 200, headers: Any = None) -> dict[str, Any]:
        return {"status": status, "body": orjson.dumps(value), "headers": dict(headers or {})}


class _Request:
    def __init__(self, authorization: str | None = None) -> None:
        self.headers = {} if authorization is None else {"Authorization": authorization}


def test_view_exception_is_a_generic_json_500(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(view: Any, request: Any) -> Any:
        raise ValueError("cust-4711 internal detail")

    with caplog.at_level(logging.ERROR, logger="streams.http"):
        response = asyncio.run(guarded(None)(broken)(_View(), _Request()))
    assert response["status"] == 500
    body = orjson.loads(response["body"])
    assert body == {"error": "internal error (details in the worker log)"}
    assert b"Traceback" not in response["body"] and b"cust-4711" not in response["body"]
    assert "Traceback" in caplog.text and "ValueError" in caplog.text  # the log has it


def test_view_wrapper_auth() -> None:
    async def fine(view: Any, request: Any) -> Any:
        return view.json({"ok": True})

    wrapped = guarded(b"tok")(fine)
    assert asyncio.run(wrapped(_View(), _Request("Bearer tok")))["status"] == 200
    for header in (None, "Bearer", "Bearer tok2", "Bearer to", "Basic tok", "tok", "Bearer  tok x"):
        response = asyncio.run(wrapped(_View(), _Request(header)))
        assert response["status"] == 401, header
        assert response["headers"]["WWW-Authenticate"].startswith("Bearer")
    assert bearer_ok("  Bearer tok  ", b"tok") and bearer_ok("BEARER tok", b"tok")
    assert not bearer_ok("Bearer t\udcffok", b"tok")
    assert not bearer_ok("Bearer \ud800", b"?")
    assert asyncio.run(guarded(None)(fine)(_View(), _Request()))["status"] == 200
