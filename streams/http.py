"""HTTP views of a worker: the KPI API (routed to the rep's owner), health, readiness, metrics.

Hardening: with KPI_API_TOKEN set, /kpis/* and /status need `Authorization: Bearer <token>`
(/healthz, /readyz and /metrics stay open: probes and Prometheus scrape them); rep ids and
periods are checked (400); a failing view answers a generic JSON 500 and logs the traceback;
a forwarded request is answered where it lands (one hop at most)."""

from __future__ import annotations

import functools
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from faust.web.exceptions import WebError
from yarl import URL

import kpi_core.transitions
from kpi_core.periods import PERIOD_KINDS
from streams.faust_compat import recovery_completed
from streams.routing import partition_for

if TYPE_CHECKING:
    from streams.app import Worker

log = logging.getLogger(__name__)
FORWARDED_HEADER = "X-KPI-Forwarded"
MAX_REP_ID_CHARS = 128
# Decoded (aiohttp unquotes path parameters): no C0/C1 control characters, DEL or slash.
REP_ID = re.compile(r"^[^\x00-\x1f\x7f-\x9f/]{1,128}$")
FORWARD_TIMEOUT_S = 10.0
Handler = Callable[..., Awaitable[Any]]


def _token(worker: Worker) -> bytes | None:
    secret = getattr(worker.settings, "api_token", None)
    value = secret.get_secret_value() if secret is not None else ""
    return value.encode() if value else None  # unset or empty: no authentication


def bearer_ok(header: str | None, token: bytes) -> bool:
    """Whether an Authorization header carries exactly `token` (constant-time comparison)."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        given = value.strip().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte: not the token
        return False
    return hmac.compare_digest(given, token)


def guarded(token: bytes | None) -> Callable[[Handler], Handler]:
    """Wrap a view: the bearer token check (when `token` is set), and no traceback to clients:
    an exception becomes a generic JSON 500; the traceback goes to the log only."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def view_fn(view: Any, request: Any, **kwargs: Any) -> Any:
            if token is not None and not bearer_ok(request.headers.get("Authorization"), token):
                return view.json(
                    {"error": "authentication required: Authorization: Bearer <KPI_API_TOKEN>"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="kpi-monitor"'},
                )
            try:
                return await handler(view, request, **kwargs)
            except (WebError, web.HTTPException):
                raise  # deliberate HTTP answers (Faust / aiohttp turn them into responses)
            except Exception:
                log.exception("HTTP view %s failed", handler.__name__)
                return view.json({"error": "internal error (details in the worker log)"}, status=500)

        return view_fn

    return decorate


def register_views(worker: Worker) -> None:
    app = worker.app
    protected = guarded(_token(worker))
    open_ = guarded(None)

    @app.page("/healthz")
    @open_
    async def healthz(view: Any, request: Any) -> Any:
        return view.json({"status": "ok"})

    @app.page("/readyz")
    @open_
    async def readyz(view: Any, request: Any) -> Any:
        ready = worker.ready()
        body = {
            "ready": ready,
            "ingest_running": worker.ingest.running,
            "rebalancing": bool(app.rebalancing),
            "recovered": recovery_completed(app),
            "store_healthy": bool(getattr(worker.table.data, "healthy", True)),
        }
        if worker.integrity is not None:  # rollbacks, repairs, rebuilds, incomplete periods
            body.update(worker.integrity.status())
        return view.json(body, status=200 if ready else 503)

    @app.page("/status")
    @protected
    async def status(view: Any, request: Any) -> Any:
        """Cheap JSON counters for scripts and benchmarks (no KPI rendering)."""
        metrics = worker.metrics
        store = worker.table.data
        return view.json(
            {
                "ready": worker.ready(),
                "core": _core(),
                "applied": metrics.applied._value.get(),
                "duplicates": metrics.duplicates._value.get(),
                "owned_partitions": sorted(store.partitions()) if hasattr(store, "partitions") else [],
                "recovery": getattr(store, "recovery_stats", None),
                "ingest": {
                    "polled": worker.ingest.stats.polled,
                    "routed": worker.ingest.stats.routed,
                    "rejected": worker.ingest.stats.rejected,
                },
                # The customer side has caught up when it handled every fact routed to it and the
                # rep side received every summary it sent (the same counters as /metrics).
                "customers": {
                    "facts_routed": metrics.customer_routed._value.get(),
                    "facts_handled": metrics.customer_facts._value.get(),
                    "summaries_sent": metrics.customer_summaries._value.get(),
                    "summaries_received": metrics.customer_summaries_received._value.get(),
                },
            }
        )

    @app.page("/metrics")
    @open_  # Prometheus scrapes without credentials: protect /metrics at the network level
    async def metrics(view: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the text format is UTF-8 by definition.
        body = worker.metrics.exposition(worker.sales)
        return view.bytes(body, content_type="text/plain; version=0.0.4")

    @app.page("/customers/reps/{rep_id}/at-risk")
    @protected
    async def rep_at_risk(view: Any, request: Any, rep_id: str) -> Any:
        """The rep's at-risk customers (customer ids: behind the API token, never in metrics)."""
        bad = _bad_rep_id(rep_id)
        if bad is not None:
            return view.json(bad, status=400)
        owner = _owner(worker, rep_id)
        if owner is not None and owner != str(app.conf.canonical_url) and not request.headers.get(
            FORWARDED_HEADER
        ):
            return await _forward(worker, owner, view, request)
        states = worker.get_states()
        state = states.find(rep_id) if states is not None else None
        if state is None:
            return view.json({"error": f"no events for rep {rep_id[:128]!r}"}, status=404)
        return view.json(worker.engine.at_risk(state))

    @app.page("/kpis/reps/{rep_id}")
    @protected
    async def rep_kpis(view: Any, request: Any, rep_id: str) -> Any:
        # Other query parameters are ignored.
        period = request.query.get("period", "month")
        if period not in PERIOD_KINDS:
            return view.json(
                {
                    "error": f"period must be one of {', '.join(PERIOD_KINDS)}; got {period[:32]!r}",
                    "allowed": list(PERIOD_KINDS),
                },
                status=400,
            )
        bad = _bad_rep_id(rep_id)
        if bad is not None:
            return view.json(bad, status=400)
        owner = _owner(worker, rep_id)
        forwarded = request.headers.get(FORWARDED_HEADER)
        if owner is not None and owner != str(app.conf.canonical_url) and not forwarded:
            return await _forward(worker, owner, view, request)
        states = worker.get_states()
        state = states.find(rep_id) if states is not None else None
        if state is None:
            return view.json({"error": f"no events for rep {rep_id[:128]!r}"}, status=404)
        body = worker.engine.view(state).windows(period)
        if worker.integrity is not None:
            # Figures of periods the input no longer fully holds are not served silently.
            gap = worker.integrity.incomplete_for(partition_for(rep_id, worker.settings.partitions), period)
            if gap is not None:
                body["incomplete"] = gap
        return view.json(body)


def _bad_rep_id(rep_id: str) -> dict[str, str] | None:
    """The 400 answer for a rep id the API refuses, or None."""
    if len(rep_id) > MAX_REP_ID_CHARS or not REP_ID.match(rep_id) or not rep_id.strip():
        return {
            "error": f"rep_id must be 1-{MAX_REP_ID_CHARS} characters (URL-decoded), not "
            "blank, without control characters or '/'"
        }
    return None


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
    try:
        async with worker.app.http_client.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
        ) as response:
            body = await response.text()
            extra = {}
            if "WWW-Authenticate" in response.headers:
                extra["WWW-Authenticate"] = response.headers["WWW-Authenticate"]
            return view.text(body, content_type=response.content_type, status=response.status, headers=extra)
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("forwarding a KPI request to %s failed: %s", owner, type(exc).__name__)
        return view.json({"error": "the worker owning this rep did not answer; retry"}, status=502)


def _core() -> str:
    """`compiled` when kpi_core's hot modules are the mypyc build (kpi_monitor.compiled_core)."""
    return "python" if str(kpi_core.transitions.__file__).endswith(".py") else "compiled"
