"""Run real `kpi-monitor worker` processes for integration tests, and read what they expose."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Deployment:
    """One isolated deployment: its own app id and topic prefix on the shared broker and Redis."""

    kafka_bootstrap: str
    redis_url: str
    tmp: Path
    partitions: int = 4
    clock: str = "event"
    extra_env: dict[str, str] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"it{uuid.uuid4().hex[:10]}")

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
        env.update(
            KPI_APP_ID=self.name,
            KPI_TOPIC_PREFIX=f"{self.name}.crm.",
            KPI_KAFKA_BOOTSTRAP=self.kafka_bootstrap,
            KPI_REDIS_URL=self.redis_url,
            KPI_PARTITIONS=str(self.partitions),
            KPI_CLOCK=self.clock,
            KPI_DATA_DIR=str(self.tmp / self.name),
            KPI_RULES=str(REPO / "kpi_rules" / "rules.yaml"),
            KPI_LOG_LEVEL="warning",
        )
        env.update(self.extra_env)
        return env

    def topic(self, name: str) -> str:
        return f"{self.name}.crm.{name}"

    def worker(self) -> WorkerProcess:
        return WorkerProcess(self, free_port())

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kpi_monitor.cli", *args],
            env=self.env, cwd=REPO, capture_output=True, text=True, check=check, timeout=300,
        )


class WorkerProcess:
    def __init__(self, deployment: Deployment, port: int):
        self.deployment = deployment
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = deployment.tmp / f"{deployment.name}-worker-{port}.log"

    def start(self) -> WorkerProcess:
        env = self.deployment.env | {"KPI_WEB_PORT": str(self.port)}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kpi_monitor.cli", "worker"],
            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 90.0) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"worker exited early; log:\n{self.log_tail()}")
            try:
                status, _ = self.get("/readyz", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready in {timeout}s; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def kill9(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, body = self.get("/metrics")
        assert status == 200, body[:500]
        samples = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def kpis(self, rep_id: str, period: str = "month") -> tuple[int, Any]:
        status, body = self.get(f"/kpis/reps/{rep_id}?period={period}")
        return status, orjson.loads(body) if body else None


def sample(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for (metric, items), value in metrics.items():
        if metric == name and all(dict(items).get(k) == v for k, v in labels.items()):
            total += value
    return total


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5) -> Any:
    """Retry `check` until it returns a truthy value without raising; re-raise the last failure."""
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
