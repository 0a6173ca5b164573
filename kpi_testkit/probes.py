"""HTTP probes of a worker (/readyz, /status, /metrics, /kpis) and polling until a condition holds."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")
# Prometheus samples of one scrape: (name, sorted label items) -> value.
Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, body) of a GET; an HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def get_json(url: str, timeout: float = 10.0) -> Any:
    """The JSON document of a 200 answer (OSError otherwise, which the pollers count as not yet)."""
    status, body = http_get(url, timeout)
    if status != 200:
        raise OSError(f"GET {url}: HTTP {status}")
    return orjson.loads(body)


def parse_metrics(text: str) -> Metrics:
    """Every sample of a Prometheus text exposition."""
    samples: Metrics = {}
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            samples[(item.name, tuple(sorted(item.labels.items())))] = item.value
    return samples


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for (metric, items), value in metrics.items():
        if metric == name and all(dict(items).get(k) == v for k, v in labels.items()):
            total += value
    return total


def wait_for(predicate: Callable[[], T | None], timeout: float, interval: float = 0.1, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy, and return that; OSError (a worker not
    listening yet) counts as not yet. TimeoutError naming `what` when the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s: {what or predicate}")
        time.sleep(interval)


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5) -> Any:
    """Retry `check` until it returns a truthy value without raising (AssertionError and OSError
    count as not yet), for tests: when the time is up, re-raise the last failure, or raise
    AssertionError."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (AssertionError, OSError) as exc:
            last = exc
        time.sleep(interval)
    if last is not None:
        raise last
    raise AssertionError(f"condition not met within {timeout}s")
