"""`kpi-monitor alerts listen`: a local Alertmanager webhook receiver printing one line per alert."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

import orjson

#: Labels every business alert carries that the line shows in its own columns, not as `k=v`.
OWN_COLUMNS = ("alertname", "severity", "scope")
#: Scope labels first, in this order; the others (period, topic, reason, instance...) after.
SCOPE_ORDER = ("region", "team", "rep")
STATUS_WORDS: dict[str, dict[str, str]] = {
    "en": {"firing": "FIRING", "resolved": "RESOLVED"},
    "zh-CN": {"firing": "触发", "resolved": "已恢复"},
}
MAX_BODY_BYTES = 1024 * 1024  # Alertmanager's notifications are a few KiB; refuse anything huge


class PayloadError(ValueError):
    """A webhook body that is not an Alertmanager notification; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    path: str


def endpoint_of(url: str) -> Endpoint:
    """Where to listen for the webhook URL of the rules file (`alerts.notify.webhook_url`)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(
            f"alerts.notify.webhook_url {url!r} is not a plain http:// URL this receiver can serve; "
            "give --host, --port and --path"
        )
    return Endpoint(parts.hostname, parts.port or 80, parts.path or "/")


def parse_notification(body: bytes) -> list[dict[str, Any]]:
    """The alerts of an Alertmanager webhook body (version 4), checked for the fields printed."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"the body is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise PayloadError("the body is not a JSON object")
    alerts = doc.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("no `alerts` list: not an Alertmanager webhook notification")
    for index, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise PayloadError(f"alerts[{index}] is not an object")
        for key in ("labels", "annotations"):
            if not isinstance(alert.get(key, {}), dict):
                raise PayloadError(f"alerts[{index}].{key} is not an object")
        if not isinstance(alert.get("labels", {}).get("alertname"), str):
            raise PayloadError(f"alerts[{index}] has no labels.alertname")
    return alerts


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def format_alert(alert: dict[str, Any], locale: str = "en") -> str:
    """One readable line: when, status, severity, alert name, scope labels, summary."""
    labels: dict[str, Any] = alert.get("labels") or {}
    annotations: dict[str, Any] = alert.get("annotations") or {}
    status = str(alert.get("status") or "firing")
    words = STATUS_WORDS.get(locale, STATUS_WORDS["en"])
    when = str(alert.get("endsAt" if status == "resolved" else "startsAt") or "")
    when = when[:19].replace("T", " ") + ("Z" if when.endswith("Z") or "+00:00" in when else "")
    shown = [k for k in SCOPE_ORDER if k in labels] + sorted(
        k for k in labels if k not in SCOPE_ORDER and k not in OWN_COLUMNS
    )
    scope = " ".join(f"{k}={_one_line(labels[k])}" for k in shown)
    summary = _one_line(annotations.get("summary") or annotations.get("description") or "")
    parts = [
        when,
        words.get(status, status.upper()),
        _one_line(labels.get("severity", "-")),
        _one_line(labels["alertname"]),
        scope,
    ]
    line = "  ".join(p for p in parts if p)
    return f"{line}  | {summary}" if summary else line


def render_notification(alerts: list[dict[str, Any]], locale: str, as_json: bool) -> list[str]:
    if as_json:
        return [orjson.dumps(alert).decode() for alert in alerts]
    return [format_alert(alert, locale) for alert in alerts]


def make_app(locale: str, as_json: bool, path: str, out: TextIO) -> Any:
    """The aiohttp application: POST `path` prints the alerts; 400 for a body that is not one."""
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        try:
            body = await request.content.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                raise PayloadError(f"the body is larger than {MAX_BODY_BYTES} bytes")
            alerts = parse_notification(body)
            lines = render_notification(alerts, locale, as_json)
        except PayloadError as exc:
            print(f"alerts listen: refused a notification: {exc}", file=sys.stderr, flush=True)
            return web.json_response({"error": str(exc)}, status=400)
        for line in lines:
            out.write(line + "\n")
        out.flush()
        return web.json_response({"received": len(alerts)})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(path, hook)
    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ready\n")

    app.router.add_get("/-/ready", ready)
    return app


async def serve(
    endpoint: Endpoint, locale: str, as_json: bool, out: TextIO, started: Callable[[], None] | None = None
) -> None:
    """Serve until cancelled."""
    from aiohttp import web

    runner = web.AppRunner(make_app(locale, as_json, endpoint.path, out), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, endpoint.host, endpoint.port)
        await site.start()
        if started is not None:
            started()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_listen(endpoint: Endpoint, locale: str, as_json: bool) -> int:
    def started() -> None:
        print(
            f"alerts listen: waiting for Alertmanager on http://{endpoint.host}:{endpoint.port}"
            f"{endpoint.path} (one line per alert; Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )

    try:
        asyncio.run(serve(endpoint, locale, as_json, sys.stdout, started))
    except OSError as exc:
        print(f"alerts listen: cannot listen on {endpoint.host}:{endpoint.port}: {exc}", file=sys.stderr)
        return 2
    return 0


__all__ = [
    "Endpoint",
    "PayloadError",
    "endpoint_of",
    "format_alert",
    "make_app",
    "parse_notification",
    "run_listen",
    "serve",
]
