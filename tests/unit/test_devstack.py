"""Pure tests of the dev stack: settings, generated configs, PID files, missing binaries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kpi_monitor import devstack
from kpi_monitor.devstack import DevConfig, DevStackError
from kpi_monitor.devstack_config import (
    kafka_pom,
    kafka_properties,
    prometheus_config,
    redis_conf,
)


def _cfg(tmp_path: Path, **env: str) -> DevConfig:
    return DevConfig.from_env(str(tmp_path / "dev"), env={"HOME": str(tmp_path), **env})


def test_defaults(tmp_path: Path) -> None:
    cfg = DevConfig.from_env(env={})
    assert (cfg.kafka_port, cfg.kafka_controller_port, cfg.redis_port) == (9092, 29093, 6379)
    assert (cfg.prometheus_port, cfg.alertmanager_port, cfg.web_port) == (9090, 9093, 6066)
    assert cfg.kafka_version == "4.1.1"
    assert cfg.data_dir == (Path.cwd() / ".kpi-dev").absolute()
    assert cfg.kafka_home == Path.home() / ".cache" / "kpi-monitor" / "kafka-4.1.1"
    assert (cfg.repo_dir / "prometheus").is_dir()


def test_env_overrides(tmp_path: Path) -> None:
    env = {
        "KPI_DEV_DIR": str(tmp_path / "d"),
        "KPI_KAFKA_PORT": "19092",
        "KPI_KAFKA_CONTROLLER_PORT": "19093",
        "KPI_REDIS_PORT": "16379",
        "KPI_PROMETHEUS_PORT": "19090",
        "KPI_ALERTMANAGER_PORT": "19094",
        "KPI_WEB_PORT": "16066",
        "KPI_KAFKA_VERSION": "4.0.0",
    }
    cfg = DevConfig.from_env(env=env)
    assert cfg.data_dir == tmp_path / "d"
    assert cfg.kafka_bootstrap == "127.0.0.1:19092"
    assert cfg.redis_url == "redis://127.0.0.1:16379/0"
    assert cfg.kafka_home.name == "kafka-4.0.0"
    assert (cfg.prometheus_port, cfg.alertmanager_port, cfg.web_port) == (19090, 19094, 16066)
    assert DevConfig.from_env(str(tmp_path / "x"), env=env).data_dir == tmp_path / "x"


def test_bad_port_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="KPI_REDIS_PORT"):
        DevConfig.from_env(env={"KPI_REDIS_PORT": "six"})


def test_kafka_properties(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, KPI_KAFKA_PORT="19092", KPI_KAFKA_CONTROLLER_PORT="19093")
    props = dict(line.split("=", 1) for line in kafka_properties(cfg).splitlines() if "=" in line)
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["num.partitions"] == "4"
    assert props["auto.create.topics.enable"] == "true"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["log.dirs"] == str(cfg.data_dir / "kafka" / "data")


def test_kafka_pom_names_broker_and_logging(tmp_path: Path) -> None:
    pom = kafka_pom(_cfg(tmp_path))
    assert "<artifactId>kafka_2.13</artifactId><version>4.1.1</version>" in pom
    assert "log4j-core" in pom and "log4j-slf4j-impl" in pom


def test_redis_conf(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, KPI_REDIS_PORT="16379")
    lines = redis_conf(cfg).splitlines()
    assert "port 16379" in lines and "bind 127.0.0.1" in lines
    assert "appendonly yes" in lines and "daemonize no" in lines
    assert f"dir {cfg.data_dir / 'redis'}" in lines


def test_prometheus_config(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, KPI_WEB_PORT="16066", KPI_ALERTMANAGER_PORT="19094")
    doc = yaml.safe_load(prometheus_config(cfg))
    jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
    worker = jobs["kpi-worker"]
    assert worker["static_configs"][0]["targets"] == ["127.0.0.1:16066"]
    assert worker["scrape_interval"] == "5s"
    assert "prometheus" in jobs
    [rules] = doc["rule_files"]
    assert Path(rules).is_absolute() and rules.endswith("prometheus/rules/*.yml")
    assert list(Path(rules).parent.glob("*.yml")), "no rule file in prometheus/rules"
    targets = doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:19094"]


def test_pid_file_with_dead_pid_is_stale(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    cfg.run_dir.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    path = devstack.pid_file(cfg, "redis")
    path.write_text(f"{proc.pid}\n")
    redis = next(c for c in devstack.COMPONENTS if c.name == "redis")
    assert devstack.live_pid(cfg, redis) is None
    assert not path.exists()
    assert devstack.dev_status(cfg)["redis"] == "stopped"


def test_pid_file_of_a_foreign_process_is_not_ours(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    cfg.run_dir.mkdir(parents=True)
    devstack.pid_file(cfg, "kafka").write_text("1\n")  # alive, but not our kafka.Kafka
    kafka = next(c for c in devstack.COMPONENTS if c.name == "kafka")
    assert devstack.live_pid(cfg, kafka) is None


@pytest.mark.parametrize("text", ["", "garbage", "-4", "0"])
def test_read_pid_rejects_garbage(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.pid"
    path.write_text(text)
    assert devstack.read_pid(path) is None
    assert devstack.read_pid(tmp_path / "missing.pid") is None


def test_pid_alive_for_self_and_marker() -> None:
    assert devstack.pid_alive(os.getpid())
    assert devstack.pid_alive(os.getpid(), marker="python")
    assert not devstack.pid_alive(os.getpid(), marker="definitely-not-in-cmdline")


@pytest.mark.parametrize(
    ("binary", "package"),
    [
        ("redis-server", "redis-server"),
        ("prometheus", "prometheus"),
        ("prometheus-alertmanager", "prometheus-alertmanager"),
        ("java", "default-jre-headless"),
        ("mvn", "maven"),
    ],
)
def test_missing_binary_names_the_package(
    monkeypatch: pytest.MonkeyPatch, binary: str, package: str
) -> None:
    monkeypatch.setattr(devstack.shutil, "which", lambda name: None)
    with pytest.raises(DevStackError) as info:
        devstack.require_binary(binary)
    message = str(info.value)
    assert f"apt-get install -y {package}" in message
    assert "scripts/install-system-deps.sh" in message


def test_up_reports_missing_redis_before_spawning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path)
    real_which = devstack.shutil.which
    monkeypatch.setattr(
        devstack.shutil, "which", lambda n: None if n == "redis-server" else real_which(n)
    )
    redis = next(c for c in devstack.COMPONENTS if c.name == "redis")
    with pytest.raises(DevStackError, match="redis-server"):
        redis.prepare(cfg)


def test_cluster_id_shape() -> None:
    cluster_id = devstack.new_cluster_id()
    assert len(cluster_id) == 22 and "=" not in cluster_id


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """An id starting with '-' is read as an option by kafka-storage (a real CI failure)."""
    import uuid as uuid_module

    dashed = uuid_module.UUID(bytes=b"\xf8" + bytes(15))  # base64 of 0xf8... starts with '-'
    fresh = iter([dashed, uuid_module.UUID(int=1)])
    monkeypatch.setattr(devstack.uuid, "uuid4", lambda: next(fresh))
    cluster_id = devstack.new_cluster_id()
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22
