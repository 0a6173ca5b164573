"""A dedicated Prometheus and Alertmanager for one test, running the rules and routing generated
from a rules file, scraping one worker, delivering to a webhook in the test (`Hook`).

The dev stack's Prometheus and Alertmanager are left alone: these run on free ports, in tmp dirs,
each in its own process group, stopped by their own pid.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpi_testkit import eventually, free_port
from tests.integration.workers import stop_process


def fast_notify_rules(tmp: Path, data: dict[str, Any], hook_url: str) -> Path:
    """Write the rules `data` to `tmp/rules.yaml`, routed to the test's webhook with 1 s waits."""
    data.setdefault("alerts", {})["notify"] = {
        "webhook_url": hook_url,
        "group_wait": "1s",
        "group_interval": "1s",
        "repeat_interval": "1h",
    }
    path = tmp / "rules.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class Hook:
    """A webhook receiver in a thread: keeps every JSON body Alertmanager posts."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length", "0"))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def alerts(self) -> list[dict[str, Any]]:
        return [alert for body in list(self.bodies) for alert in body.get("alerts", [])]


class Service:
    """A binary run in its own process group, log in tmp, stopped by its own pid."""

    def __init__(self, name: str, argv: list[str], log: Path, ready_url: str) -> None:
        self.name, self.argv, self.log, self.ready_url = name, argv, log, ready_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, f"{self.name} exited:\n{self.tail()}"
            with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                return bool(response.status == 200)

        eventually(ready, timeout=60)
        return self

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:]) if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 15)


def binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


class AlertingStack:
    """Prometheus (1 s scrapes and evaluations of the generated rules) and Alertmanager (the
    generated routing) for `worker_port`, from `files` as `kpi_monitor.rulesgen.render_all` gives
    them; `start()` then `stop()`."""

    def __init__(self, tmp: Path, files: dict[str, str], worker_port: int) -> None:
        rules_dir = tmp / "prom" / "rules"
        rules_dir.mkdir(parents=True)
        for rel, content in files.items():
            if rel.startswith("prometheus/rules/"):
                (rules_dir / Path(rel).name).write_text(content, encoding="utf-8")
        am_dir = tmp / "am"
        am_dir.mkdir()
        (am_dir / "alertmanager.yml").write_text(files["prometheus/alertmanager.yml"], encoding="utf-8")
        am_port, prom_port = free_port(), free_port()
        prom_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_dir / "*.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [
                {"job_name": "kpi-worker", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]},
            ],
        }
        (tmp / "prom" / "prometheus.yml").write_text(yaml.safe_dump(prom_config), encoding="utf-8")
        self.alertmanager = Service(
            "alertmanager",
            [
                binary("prometheus-alertmanager"),
                f"--config.file={am_dir / 'alertmanager.yml'}",
                f"--storage.path={am_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp / "alertmanager.log",
            f"http://127.0.0.1:{am_port}/-/ready",
        )
        self.prometheus = Service(
            "prometheus",
            [
                binary("prometheus"),
                f"--config.file={tmp / 'prom' / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'prom' / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            tmp / "prometheus.log",
            f"http://127.0.0.1:{prom_port}/-/ready",
        )
        self.url = f"http://127.0.0.1:{prom_port}"

    def start(self) -> AlertingStack:
        self.alertmanager.start()
        self.prometheus.start()
        return self

    def stop(self) -> None:
        self.prometheus.stop()
        self.alertmanager.stop()

    def logs(self) -> str:
        return (
            "prometheus log:\n" + self.prometheus.tail() + "\nalertmanager log:\n" + self.alertmanager.tail()
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of `expr` now (a failing query fails the test)."""
        body = get_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def alerts(self, name: str, state: str = "firing") -> list[dict[str, Any]]:
        """Prometheus's alerts named `name` in `state`."""
        alerts = get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == state]
