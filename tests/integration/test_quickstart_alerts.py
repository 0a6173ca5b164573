"""The quick start's alert path end to end: the simulator as scripts/quickstart.sh runs it (team
north declining, and losing customers) -> a worker on kpi_rules/quickstart.yaml -> Prometheus and
Alertmanager configured exactly as `kpi-monitor dev up --rules kpi_rules/quickstart.yaml`
configures them -> the real `kpi-monitor alerts listen` process, which must print the decline
alert as a readable line.

The dev stack's Kafka and Redis are shared (an isolated deployment); its Prometheus and
Alertmanager are left alone: this test runs its own, on free ports, in tmp dirs.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kpi_monitor.devstack import write_rule_files
from kpi_monitor.devstack_config import DevConfig, alertmanager_config, prometheus_config
from tests.integration.alerting_stack import Service
from tests.integration.alerting_stack import binary as _binary
from tests.integration.workers import REPO, Deployment, eventually, free_port, stop_process
from tests.unit.test_quickstart import simulate_args

QUICKSTART_RULES = REPO / "kpi_rules" / "quickstart.yaml"
DECLINE = re.compile(r"  (SalesRevenueDecline|SalesVisitsDrop)  ")
ALERT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  FIRING  warning  (SalesRevenueDecline|SalesVisitsDrop)  "
    r"team=north period=(month|week)  \| Team north: (revenue|sales visits \(SVT\)) down [0-9.]+% on "
)


class Process:
    """A `kpi-monitor` command in its own process group, output in a file, stopped by its pid."""

    def __init__(self, deployment: Deployment, log: Path, *args: str) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kpi_monitor.cli", *args],
                env=deployment.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        stop_process(self.proc, 15)


def test_the_quickstart_decline_reaches_the_alert_receiver(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    deployment = Deployment(
        kafka_bootstrap, redis_url, tmp_path, clock="wall", extra_env={"KPI_RULES": str(QUICKSTART_RULES)}
    )
    worker = deployment.worker()
    base = DevConfig.from_env(str(tmp_path / "stack"), env={})
    cfg = dataclasses.replace(
        base,
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
        web_port=worker.port,
        alerts_port=free_port(),
        rules_file=QUICKSTART_RULES,
    )
    write_rule_files(cfg)
    prom_dir, am_dir = cfg.data_dir / "prometheus", cfg.data_dir / "alertmanager"
    am_dir.mkdir(parents=True)
    (prom_dir / "prometheus.yml").write_text(prometheus_config(cfg), encoding="utf-8")
    (am_dir / "alertmanager.yml").write_text(alertmanager_config(cfg), encoding="utf-8")
    alertmanager = Service(
        "alertmanager",
        [
            _binary("prometheus-alertmanager"),
            f"--config.file={am_dir / 'alertmanager.yml'}",
            f"--storage.path={am_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{cfg.alertmanager_port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
        f"http://127.0.0.1:{cfg.alertmanager_port}/-/ready",
    )
    prometheus = Service(
        "prometheus",
        [
            _binary("prometheus"),
            f"--config.file={prom_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={prom_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{cfg.prometheus_port}",
        ],
        tmp_path / "prometheus.log",
        f"http://127.0.0.1:{cfg.prometheus_port}/-/ready",
    )
    receiver = Process(
        deployment, tmp_path / "alerts.log",
        "alerts", "listen", "--rules", str(QUICKSTART_RULES), "--port", str(cfg.alerts_port),
    )  # fmt: skip
    simulator: Process | None = None
    try:

        def receiver_ready() -> bool:
            assert receiver.proc.poll() is None, receiver.text()
            with urllib.request.urlopen(f"http://127.0.0.1:{cfg.alerts_port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)

        eventually(receiver_ready, timeout=30)
        alertmanager.start()
        prometheus.start()
        worker.start().wait_ready()
        simulator = Process(deployment, tmp_path / "simulator.log", "simulate", *simulate_args())

        def alert_lines() -> list[str]:
            assert simulator is not None and simulator.proc.poll() is None, simulator.text()
            return [line for line in receiver.text().splitlines() if "FIRING" in line]

        # The quick start promises the first alert within five minutes of its start.
        lines = eventually(alert_lines, timeout=300, interval=2)
        # (other alerts of the traffic, such as north's churn, may come too; not asserted here)
        north = [line for line in lines if "team=north" in line and DECLINE.search(line)]
        assert north and all(ALERT_LINE.match(line) for line in north), lines
    except BaseException:
        print("receiver:\n" + receiver.text()[-3000:])
        print("prometheus log:\n" + prometheus.tail() + "\nalertmanager log:\n" + alertmanager.tail())
        print("worker log:\n" + worker.log_tail())
        if simulator is not None:
            print("simulator:\n" + simulator.text()[-2000:])
        raise
    finally:
        if simulator is not None:
            simulator.stop()
        worker.stop()
        prometheus.stop()
        alertmanager.stop()
        receiver.stop()
    print(f"quick-start alert at the receiver {time.monotonic() - started:.1f}s after the test began")
