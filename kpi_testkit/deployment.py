"""One isolated deployment on the shared stack: its own app id and topic prefix, its environment, cleanup."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kpi_testkit.cleanup import delete_app_keys, delete_app_topics
from kpi_testkit.processes import free_port, spawn
from kpi_testkit.worker import WorkerProcess

# The checkout this package is installed from (editable): the code the workers run by default.
CHECKOUT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


@dataclass
class Deployment:
    """App id `name`, topics `<name>.crm.*`, on the broker and Redis given; logs and Faust's data
    directory under `workdir`. Several deployments share the stack without seeing each other.

    `source` is the checkout whose code the processes run (their working directory, which comes
    first on their sys.path): another one, e.g. an older commit's worktree, for before/after
    benchmarks. `rules` defaults to that checkout's `kpi_rules/rules.yaml`."""

    kafka_bootstrap: str
    redis_url: str
    workdir: Path
    partitions: int = 4
    clock: str = "event"
    extra_env: dict[str, str] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"it{uuid.uuid4().hex[:10]}")
    rules: Path | None = None
    source: Path = CHECKOUT

    @property
    def prefix(self) -> str:
        return f"{self.name}.crm."

    def topic(self, name: str) -> str:
        """The deployment's topic of contract topic `name` (e.g. `visits`)."""
        return self.prefix + name

    @property
    def env(self) -> dict[str, str]:
        """The environment of this deployment's processes: the caller's KPI_* variables are dropped
        so nothing leaks in from the shell (nor PYTHONPATH, when running another checkout)."""
        dropped = ("PYTHONPATH",) if self.source.resolve() != CHECKOUT else ()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_") and k not in dropped}
        env |= {
            "KPI_APP_ID": self.name,
            "KPI_TOPIC_PREFIX": self.prefix,
            "KPI_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "KPI_REDIS_URL": self.redis_url,
            "KPI_PARTITIONS": str(self.partitions),
            "KPI_CLOCK": self.clock,
            "KPI_DATA_DIR": str(self.workdir / self.name),
            "KPI_RULES": str(self.rules or self.source / "kpi_rules" / "rules.yaml"),
            "KPI_LOG_LEVEL": "warning",
        }
        return env | self.extra_env

    def worker(self, port: int | None = None) -> WorkerProcess:
        """A worker of this deployment on `port` (a free one by default), not started yet."""
        return WorkerProcess(self, port or free_port())

    def start_worker(self, port: int | None = None) -> WorkerProcess:
        """A started worker (not waited for: see `WorkerProcess.wait_ready`)."""
        return self.worker(port).start()

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `kpi-monitor ARGS` with this deployment's settings to its end; output captured."""
        return subprocess.run(
            [sys.executable, "-m", "kpi_monitor.cli", *args],
            env=self.env,
            cwd=self.source,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def spawn_cli(self, *args: str, log_name: str = "cli") -> subprocess.Popen[bytes]:
        """Start `kpi-monitor ARGS` in the background, in its own process group (stop it with
        `kpi_testkit.stop_group`), output to `<workdir>/<name>-<log_name>.log`."""
        return spawn(
            [sys.executable, "-m", "kpi_monitor.cli", *args],
            self.env,
            self.log_path(log_name),
            cwd=self.source,
        )

    def log_path(self, what: str) -> Path:
        return self.workdir / f"{self.name}-{what}.log"

    def cleanup(self, keep: bool = False) -> list[str]:
        """Delete this deployment's topics and Redis keys (its name is unique to it), unless `keep`.
        Never raises: cleanup must not hide a test's failure or a benchmark's figures; what could not
        be done is logged as a warning and returned."""
        problems: list[str] = []
        if keep:
            return problems
        try:
            delete_app_topics(self.kafka_bootstrap, self.name)
        except Exception as exc:
            problems.append(f"topics of {self.name} not deleted: {exc!r}")
        try:
            delete_app_keys(self.redis_url, self.name)
        except Exception as exc:
            problems.append(f"Redis keys of {self.name} not deleted: {exc!r}")
        for problem in problems:
            log.warning("cleanup: %s", problem)
        return problems
