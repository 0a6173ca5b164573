"""Isolated deployments of real `kpi-monitor worker` processes, for `tests/integration` and `benchmarks`.

Why a top-level package: this is the layer above `kpi_monitor` (kpi_rules <- kpi_core <- streams <-
kpi_monitor <- kpi_testkit). It drives the product from outside (CLI processes, HTTP probes, topic
and key cleanup) and nothing in the product imports it, so it does not belong inside `kpi_monitor`,
whose modules the image ships and the worker loads. Listed in pyproject's packages, it is installed
(editable in development) and importable from the tests and from `python -m benchmarks.*` without
path hacks; the Dockerfile does not copy it, so the image does not carry test machinery.

Modules: `processes` (process groups, the registry stopped at exit), `probes` (HTTP, Prometheus
samples, polling), `cleanup` (topics and Redis keys of an app), `deployment` (`Deployment`: app id,
topic prefix, environment, CLI runs) and `worker` (`WorkerProcess`: one worker, its endpoints)."""

from kpi_testkit.deployment import CHECKOUT, Deployment
from kpi_testkit.probes import Metrics, eventually, get_json, http_get, parse_metrics, sample, wait_for
from kpi_testkit.processes import free_port, install_cleanup, rss_mib, spawn, stop_all, stop_group
from kpi_testkit.worker import WorkerFailed, WorkerProcess

__all__ = [
    "CHECKOUT",
    "Deployment",
    "Metrics",
    "WorkerFailed",
    "WorkerProcess",
    "eventually",
    "free_port",
    "get_json",
    "http_get",
    "install_cleanup",
    "parse_metrics",
    "rss_mib",
    "sample",
    "spawn",
    "stop_all",
    "stop_group",
    "wait_for",
]
