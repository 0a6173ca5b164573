"""Integration fixtures: the real local stack from `kpi_monitor.devstack`, brought up once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kpi_monitor.devstack import DevConfig, dev_down, dev_status, dev_up
from kpi_testkit import Deployment, WorkerProcess
from tests.integration.alerting_stack import Hook

_HERE = Path(__file__).parent.resolve()
_REPO = _HERE.parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/integration needs the stack: mark it `integration`."""
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack() -> Iterator[DevConfig]:
    """The running dev stack's config; started here, and stopped at the end if it was all down."""
    # The checkout's .kpi-dev (what `kpi-monitor dev up` uses there), whatever pytest's CWD.
    cfg = DevConfig.from_env(None if os.environ.get("KPI_DEV_DIR") else str(_REPO / ".kpi-dev"))
    was_down = all(state == "stopped" for state in dev_status(cfg).values())
    dev_up(cfg)  # idempotent; raises with the service's log tail when something cannot start
    yield cfg
    if was_down:
        dev_down(cfg)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: DevConfig) -> str:
    return stack.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(stack: DevConfig) -> str:
    return stack.redis_url


def _ready_worker(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path, clock: str
) -> Iterator[WorkerProcess]:
    """One ready worker of a fresh isolated deployment, stopped afterwards; the deployment's
    topics and Redis keys are deleted then."""
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path, clock=clock)
    process = deployment.worker().start()
    try:
        yield process.wait_ready()
    finally:
        process.stop()
        deployment.cleanup()


@pytest.fixture
def worker(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    """One ready worker on the wall clock (see _ready_worker)."""
    yield from _ready_worker(kafka_bootstrap, redis_url, tmp_path, "wall")


@pytest.fixture
def event_worker(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    """One ready worker on the event clock (see _ready_worker)."""
    yield from _ready_worker(kafka_bootstrap, redis_url, tmp_path, "event")


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A webhook receiver for a test's own Alertmanager (tests/integration/alerting_stack.py)."""
    receiver = Hook()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
