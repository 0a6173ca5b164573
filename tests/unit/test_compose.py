"""docker-compose.yml agrees with the repo and the app's defaults (no Docker needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kpi_monitor.devstack_config import DevConfig

REPO = Path(__file__).resolve().parents[2]
SERVICES = {"kafka", "redis", "prometheus", "alertmanager", "grafana", "worker", "simulator"}
DEFAULTS = DevConfig.from_env(env={})


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _published(service: dict[str, Any]) -> dict[int, int]:
    """host port -> container port."""
    result = {}
    for mapping in service.get("ports", []):
        host, container = str(mapping).rsplit(":", 2)[-2:]
        result[int(host)] = int(container.split("/")[0])
    return result


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def test_every_service_exists(compose: dict[str, Any]) -> None:
    assert SERVICES <= set(_services(compose))


def test_host_paths_exist(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        for source, _ in _bind_mounts(service):
            assert (REPO / source).exists(), f"{name} mounts missing {source}"
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            assert (REPO / context / "Dockerfile").is_file(), f"{name}: no Dockerfile"


def test_ports_are_the_app_defaults(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert DEFAULTS.web_port == 6066 and DEFAULTS.kafka_port == 9092
    assert _published(services["worker"]) == {DEFAULTS.web_port: DEFAULTS.web_port}
    assert DEFAULTS.kafka_port in _published(services["kafka"])
    assert DEFAULTS.redis_port in _published(services["redis"])
    assert DEFAULTS.prometheus_port in _published(services["prometheus"])
    assert DEFAULTS.alertmanager_port in _published(services["alertmanager"])


def test_kafka_listeners_match_the_app_bootstrap(compose: dict[str, Any]) -> None:
    services = _services(compose)
    kafka_env = services["kafka"]["environment"]
    bootstrap = services["worker"]["environment"]["KPI_KAFKA_BOOTSTRAP"]
    assert bootstrap == f"kafka:{DEFAULTS.kafka_port}"
    assert f"//{bootstrap}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    host_side = _published(services["kafka"])[DEFAULTS.kafka_port]
    assert f"//localhost:{DEFAULTS.kafka_port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert f":{host_side}" in kafka_env["KAFKA_LISTENERS"]
    redis_url = services["worker"]["environment"]["KPI_REDIS_URL"]
    assert redis_url == f"redis://redis:{DEFAULTS.redis_port}/0"
    assert services["worker"]["environment"]["KPI_WEB_HOST"] == "0.0.0.0"


def test_app_commands(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert services["worker"]["command"] == ["kpi-monitor", "worker"]
    simulate = services["simulator"]["command"]
    assert simulate[:2] == ["kpi-monitor", "simulate"] and "--scenario" in simulate


def test_prometheus_config_scrapes_the_worker(compose: dict[str, Any]) -> None:
    services = _services(compose)
    mounts = dict(_bind_mounts(services["prometheus"]))
    config_source = next(s for s, t in mounts.items() if t == "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load((REPO / config_source).read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    [target] = jobs["kpi-worker"]["static_configs"][0]["targets"]
    host, port = target.rsplit(":", 1)
    assert host == "worker" and int(port) == DEFAULTS.web_port
    [rules] = config["rule_files"]
    rules_mount = next(t for s, t in mounts.items() if s == "./prometheus/rules")
    assert rules.startswith(rules_mount + "/")
    [am] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == f"alertmanager:{DEFAULTS.alertmanager_port}"


def test_grafana_provisioning(compose: dict[str, Any]) -> None:
    mounts = dict(_bind_mounts(_services(compose)["grafana"]))
    provisioning = REPO / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == f"http://prometheus:{DEFAULTS.prometheus_port}"
    provider = yaml.safe_load((provisioning / "dashboards" / "kpi-monitor.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == mounts["./grafana/dashboards"]
