"""HTTP views of a worker: the KPI API (routed to the rep's owner), health, readiness, metrics."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from prometheus_client import generate_latest

from kpi_core.periods import PERIOD_KINDS

if TYPE_CHECKING:
    from streams.app import Worker

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
            "recovered": app.tables.recovery.completed.is_set(),
            "store_healthy": bool(getattr(worker.table.data, "healthy", True)),
        }
        return view.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics(view: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the text format is UTF-8 by definition.
        return view.bytes(generate_latest(worker.registry), content_type="text/plain; version=0.0.4")

    @app.page("/kpis/reps/{rep_id}")
    @app.table_route(table=worker.table, match_info="rep_id")
    async def rep_kpis(view: Any, request: Any, rep_id: str) -> Any:
        period = request.query.get("period", "month")
        if period not in PERIOD_KINDS:
            return view.json(
                {"error": f"period must be one of {', '.join(PERIOD_KINDS)}; got {period[:32]!r}"},
                status=400,
            )
        if not REP_ID.match(rep_id):
            return view.json({"error": "rep_id must be 1-128 characters without control characters"}, status=400)
        states = worker.states
        state = states.find(rep_id) if states is not None else None
        if state is None:
            return view.json({"error": f"no events for rep {rep_id[:128]!r}"}, status=404)
        return view.json(worker.engine.view(state).windows(period))
