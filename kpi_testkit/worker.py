"""One real `kpi-monitor worker` process of a deployment: start, readiness, HTTP endpoints, stop by group."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import orjson

from kpi_testkit.probes import Metrics, get_json, http_get, parse_metrics, wait_for
from kpi_testkit.processes import kill_group, rss_mib, spawn, stop_group

if TYPE_CHECKING:
    from kpi_testkit.deployment import Deployment


class WorkerFailed(AssertionError):
    """A worker exited, or did not get ready in time (an AssertionError: in a test it is a failed
    check, shown with the worker's log tail)."""


class WorkerProcess:
    """`python -m kpi_monitor.cli worker` of `deployment` on `port` (KPI_WEB_PORT), in its own
    process group, output appended to `log_path`."""

    def __init__(self, deployment: Deployment, port: int):
        self.deployment = deployment
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = deployment.log_path(f"worker-{port}")
        self.started: float | None = None  # time.perf_counter() just before the process was created
        self.ready_after: float | None = None  # seconds from creation to the first /readyz 200

    def start(self) -> WorkerProcess:
        env = self.deployment.env | {"KPI_WEB_PORT": str(self.port)}
        self.started = time.perf_counter()
        self.ready_after = None
        self.proc = spawn(
            [sys.executable, "-m", "kpi_monitor.cli", "worker"],
            env,
            self.log_path,
            cwd=self.deployment.source,
        )
        return self

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("worker not started")
        return self.proc.pid

    # ------------------------------------------------------------------ process

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """Raise WorkerFailed, with the log's tail, when the process has exited."""
        if not self.alive():
            code = None if self.proc is None else self.proc.returncode
            raise WorkerFailed(f"worker on port {self.port} exited with {code}; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def rss_mib(self) -> float | None:
        return rss_mib(self.pid) if self.proc is not None else None

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM to the process group, SIGKILL after `timeout` s; returns the exit code."""
        if self.proc is None:
            return None
        return stop_group(self.proc, signal.SIGTERM, grace=timeout)

    def kill9(self) -> int | None:
        """SIGKILL to the whole process group: no flush, no goodbye to the broker."""
        if self.proc is None:
            return None
        return kill_group(self.proc)

    # ------------------------------------------------------------------ HTTP

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def base(self) -> str:
        return self.url("")

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        return http_get(self.url(path), timeout)

    def ready(self) -> bool:
        """`/readyz` answers 200 (WorkerFailed once the process has exited)."""
        self.check_alive()
        return self.get("/readyz", timeout=5)[0] == 200

    def wait_ready(self, timeout: float = 180.0, interval: float = 0.25) -> WorkerProcess:
        """Wait for `/readyz` 200 and record `ready_after`; WorkerFailed with the log's tail if the
        process exits or the time is up."""
        try:
            wait_for(self.ready, timeout, interval, "/readyz 200")
        except TimeoutError:
            raise WorkerFailed(f"worker not ready in {timeout}s; log:\n{self.log_tail()}") from None
        if self.started is not None:
            self.ready_after = time.perf_counter() - self.started
        return self

    def seconds_to_ready(self, timeout: float = 180.0, interval: float = 0.05) -> float:
        """Seconds from process creation until `/readyz` answered 200 (waits for it)."""
        self.wait_ready(timeout, interval)
        assert self.ready_after is not None
        return self.ready_after

    def status(self) -> dict[str, Any]:
        """`/status`: the worker's cheap JSON counters."""
        return dict(get_json(self.url("/status")))

    def processed(self) -> int:
        """Events this worker has finished with: applied, found duplicate, or rejected at ingest."""
        status = self.status()
        return int(status["applied"] + status["duplicates"] + status["ingest"]["rejected"])

    def customers_settled(self) -> bool:
        """The customer side has handled every fact routed to it and the rep side has received
        every summary it sent (`/status`, cheap: polling /metrics would render every series)."""
        customers = self.status()["customers"]
        return bool(
            customers["facts_handled"] >= customers["facts_routed"]
            and customers["summaries_received"] >= customers["summaries_sent"]
        )

    def wait_first_poll(self, timeout: float, interval: float = 0.02) -> None:
        """Wait until the ingest has polled Kafka once (`/status`; it can come before `/readyz`
        turns 200: the ingest starts before the agent's partitions are assigned)."""

        def polled() -> bool:
            self.check_alive()
            return int(self.status()["ingest"]["polled"]) > 0

        wait_for(polled, timeout, interval, f"first poll of the worker on port {self.port}")

    def wait_processed(self, total: int, timeout: float, interval: float = 0.1) -> None:
        """Wait until `processed()` reaches `total` (TimeoutError; WorkerFailed if it exits)."""

        def done() -> bool:
            self.check_alive()
            return self.processed() >= total

        wait_for(done, timeout, interval, f"worker on port {self.port} processing {total} events")

    def metrics(self) -> Metrics:
        status, body = self.get("/metrics")
        assert status == 200, body[:500]
        return parse_metrics(body.decode())

    def kpis(self, rep_id: str, period: str = "month") -> tuple[int, Any]:
        """(status, document) of `/kpis/reps/<rep>?period=<period>`."""
        status, body = self.get(f"/kpis/reps/{rep_id}?period={period}")
        try:
            return status, orjson.loads(body) if body else None
        except orjson.JSONDecodeError:  # e.g. a plain-text 500 page: show it in the failure
            return status, body.decode("utf-8", "replace")
