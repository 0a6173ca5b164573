"""HTTP views of a worker: the KPI API (routed to the rep's owner), health, readiness, metrics."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from yarl import URL

from kpi_core.periods import PERIOD_KINDS
from streams.faust_compat import recovery_completed
from streams.routing import partition_for

if TYPE_CHECKING:
    from streams.app import Worker

FORWARDED_HEADER = "X-KPI-Forwarded"
REP_ID = re.compile(r"^[^\x00-\x1f/]{1,128}$")


def register_views(worker: Worker) -> None:
    app = worker.app

    @app.page("/healthz")
    async def healthz(view: Any, request: Any) -> Any:
        return view.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(view: Any, request: Any) -> Any:
        ready = worker.ready()
        body = {
            "ready": ready,
            "ingest_running": worker.ingest.running,
            "rebalancing": bool(app.rebalancing),
            "recovered": recovery_completed(app),
            "store_healthy": bool(getattr(worker.table.data, "healthy", True)),
        }
        return view.json(body, status=200 if ready else 503)

    @app.page("/status")
    async def status(view: Any, request: Any) -> Any:
        """Cheap JSON counters for scripts and benchmarks (no KPI rendering)."""
        metrics = worker.metrics
        store = worker.table.data
        return view.json(
            {
                "ready": worker.ready(),
                "applied": metrics.applied._value.get(),
                "duplicates": metrics.duplicates._value.get(),
                "owned_partitions": sorted(store.partitions()) if hasattr(store, "partitions") else [],
                "recovery": getattr(store, "recovery_stats", None),
                "ingest": {
                    "polled": worker.ingest.stats.polled,
                    "routed": worker.ingest.stats.routed,
                    "rejected": worker.ingest.stats.rejected,
                },
            }
        )

    @app.page("/metrics")
    async def metrics(view: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the text format is UTF-8 by definition.
        body = worker.metrics.exposition(worker.sales)
        return view.bytes(body, content_type="text/plain; version=0.0.4")

    @app.page("/kpis/reps/{rep_id}")
    async def rep_kpis(view: Any, request: Any, rep_id: str) -> Any:
        period = request.query.get("period", "month")
        if period not in PERIOD_KINDS:
            return view.json(
                {"error": f"period must be one of {', '.join(PERIOD_KINDS)}; got {period[:32]!r}"},
                status=400,
            )
        if not REP_ID.match(rep_id):
            return view.json(
                {"error": "rep_id must be 1-128 characters without control characters"}, status=400
            )
        owner = _owner(worker, rep_id)
        forwarded = request.headers.get(FORWARDED_HEADER)
        if owner is not None and owner != str(app.conf.canonical_url) and not forwarded:
            return await _forward(worker, owner, view, request)
        states = worker.states
        state = states.find(rep_id) if states is not None else None
        if state is None:
            return view.json({"error": f"no events for rep {rep_id[:128]!r}"}, status=404)
        return view.json(worker.engine.view(state).windows(period))


def _owner(worker: Worker, rep_id: str) -> str | None:
    """URL of the worker owning the rep's partition, from the last assignment (None if unknown).

    Not `app.table_route`: it serializes a str key with the table's changelog serializer (JSON,
    quotes included), which hashes to another partition than the raw rep id the ingest routes
    by; and its producer-metadata lookup fails (500) once the producer has sent to another
    topic, as the dead-letter sends do."""
    partition = partition_for(rep_id, worker.settings.partitions)
    topic = worker.table.changelog_topic.get_topic_name()
    for url, topics in worker.app.router.table_metadata(worker.table.name).items():
        if partition in topics.get(topic, ()):
            return str(url)
    return None


async def _forward(worker: Worker, owner: str, view: Any, request: Any) -> Any:
    target = URL(owner)
    url = request.url.with_host(target.host).with_port(target.port)
    headers = {**request.headers, FORWARDED_HEADER: "1"}  # forwarded once: never ping-pong
    async with worker.app.http_client.get(url, headers=headers) as response:
        body = await response.text()
        return view.text(body, content_type=response.content_type, status=response.status)
