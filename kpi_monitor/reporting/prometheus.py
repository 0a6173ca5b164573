"""A small client of Prometheus' HTTP API (instant queries, alerts, runtime info) for `digest`."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Sample = tuple[dict[str, str], float]


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or refused a query: the message says which and where."""


@dataclass(frozen=True)
class Prometheus:
    url: str
    timeout: float = 15.0

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        address = f"{self.url.rstrip('/')}{path}{query}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise PrometheusError(
                f"Prometheus at {self.url} answered {exc.code} to {path}: {detail}"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(
                f"cannot reach Prometheus at {self.url} ({reason}): is it running, and is --prometheus "
                "its base URL (e.g. http://127.0.0.1:9090)?"
            ) from None
        except json.JSONDecodeError:
            raise PrometheusError(f"{self.url}{path} did not answer JSON: is it Prometheus?") from None
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus at {self.url} refused {path}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str, at: datetime | None = None) -> list[Sample]:
        """An instant query (at `at`, else Prometheus' now): each series' labels and value."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        data = self._get("/api/v1/query", params)
        if data.get("resultType") != "vector":
            raise PrometheusError(f"expected a vector for {expr!r}, got {data.get('resultType')}")
        return [(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) with their labels and annotations."""
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def retention(self) -> str | None:
        """The TSDB retention Prometheus runs with (`15d`), None when it does not say."""
        try:
            info = self._get("/api/v1/status/runtimeinfo")
        except PrometheusError:
            return None
        value = info.get("storageRetention")
        return str(value) if value else None
