"""Settings of the local dev stack and the config files generated for each of its services."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def find_repo_dir(start: Path | None = None) -> Path:
    """The checkout holding prometheus/rules: searched upwards from CWD, then the package."""
    candidates = [start or Path.cwd(), Path(__file__).resolve().parent]
    for base in candidates:
        for directory in (base.resolve(), *base.resolve().parents):
            if (directory / "pyproject.toml").is_file() and (directory / "prometheus").is_dir():
                return directory
    return Path(__file__).resolve().parent.parent


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a port number, got {raw!r}") from exc


@dataclass(frozen=True)
class DevConfig:
    """Where the dev stack lives and which ports it listens on (all on 127.0.0.1)."""

    data_dir: Path
    kafka_home: Path
    repo_dir: Path
    kafka_version: str = DEFAULT_KAFKA_VERSION
    kafka_port: int = 9092
    kafka_controller_port: int = 29093
    redis_port: int = 6379
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    web_port: int = 6066
    host: str = "127.0.0.1"
    #: A rules file whose generated Prometheus rules and Alertmanager config the stack runs
    #: (written under data_dir), instead of the repository's prometheus/ files.
    rules_file: Path | None = None
    #: With rules_file: Alertmanager sends to http://127.0.0.1:<alerts_port>/hook instead of
    #: the rules file's alerts.notify.webhook_url (KPI_ALERTS_PORT).
    alerts_port: int | None = None

    @classmethod
    def from_env(
        cls, data_dir: str | None = None, env: Mapping[str, str] | None = None
    ) -> DevConfig:
        """Build from KPI_* environment variables; an explicit data_dir wins over KPI_DEV_DIR."""
        env = os.environ if env is None else env
        version = env.get("KPI_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION
        default_home = Path.home() / ".cache" / "kpi-monitor" / f"kafka-{version}"
        return cls(
            data_dir=Path(data_dir or env.get("KPI_DEV_DIR") or ".kpi-dev").absolute(),
            kafka_home=Path(env.get("KPI_KAFKA_HOME") or default_home).expanduser().absolute(),
            repo_dir=find_repo_dir(),
            kafka_version=version,
            kafka_port=_env_int(env, "KPI_KAFKA_PORT", 9092),
            kafka_controller_port=_env_int(env, "KPI_KAFKA_CONTROLLER_PORT", 29093),
            redis_port=_env_int(env, "KPI_REDIS_PORT", 6379),
            prometheus_port=_env_int(env, "KPI_PROMETHEUS_PORT", 9090),
            alertmanager_port=_env_int(env, "KPI_ALERTMANAGER_PORT", 9093),
            web_port=_env_int(env, "KPI_WEB_PORT", 6066),
            alerts_port=_env_int(env, "KPI_ALERTS_PORT", 0) or None,
        )

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.host}:{self.redis_port}/0"

    @property
    def generated_rules_dir(self) -> Path:
        return self.data_dir / "prometheus" / "rules"

    @property
    def rules_glob(self) -> str:
        if self.rules_file is not None:
            return str(self.generated_rules_dir / "*.yml")
        return str(self.repo_dir / "prometheus" / "rules" / "*.yml")

    @property
    def webhook_url(self) -> str | None:
        return None if self.alerts_port is None else f"http://{self.host}:{self.alerts_port}/hook"


def kafka_pom(cfg: DevConfig) -> str:
    """A pom whose runtime dependencies are the Kafka broker plus a log4j2 binding."""
    # Kafka 4.x pins slf4j-api 1.7, so the slf4j 1.x binding of log4j2 is the one that works.
    deps = [
        ("org.apache.kafka", "kafka_2.13", cfg.kafka_version),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
    ]
    body = "".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>\n"
        for g, a, v in deps
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>local.kpi-monitor</groupId>\n"
        "  <artifactId>kafka-runtime</artifactId>\n"
        f"  <version>{cfg.kafka_version}</version>\n"
        "  <packaging>pom</packaging>\n"
        f"  <dependencies>\n{body}  </dependencies>\n"
        "</project>\n"
    )


def kafka_properties(cfg: DevConfig) -> str:
    """server.properties for a single KRaft node acting as broker and controller."""
    h, p, c = cfg.host, cfg.kafka_port, cfg.kafka_controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{h}:{c}",
        "listeners": f"PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c}",
        "advertised.listeners": f"PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(cfg.data_dir / "kafka" / "data"),
        "num.partitions": "4",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def kafka_log4j2() -> str:
    """log4j2 properties: everything to stdout, which the stack redirects to logs/kafka.log."""
    return (
        "status = warn\n"
        "appender.out.type = Console\n"
        "appender.out.name = STDOUT\n"
        "appender.out.layout.type = PatternLayout\n"
        "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.out.ref = STDOUT\n"
        "logger.state.name = state.change.logger\n"
        "logger.state.level = WARN\n"
        "logger.cleaner.name = kafka.log.LogCleaner\n"
        "logger.cleaner.level = WARN\n"
    )


def redis_conf(cfg: DevConfig) -> str:
    """redis.conf: foreground, loopback only, AOF persistence in the data dir."""
    return (
        f"port {cfg.redis_port}\n"
        f"bind {cfg.host}\n"
        "protected-mode yes\n"
        "daemonize no\n"
        f"dir {cfg.data_dir / 'redis'}\n"
        "appendonly yes\n"
        "save 60 1000\n"
        'logfile ""\n'
    )


def prometheus_config(cfg: DevConfig) -> str:
    """prometheus.yml: scrape the worker and itself, load the repo's rules, alert locally."""
    doc = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [cfg.rules_glob],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"{cfg.host}:{cfg.alertmanager_port}"]}]}
            ]
        },
        "scrape_configs": [
            {
                "job_name": "kpi-worker",
                "scrape_interval": "5s",
                "static_configs": [{"targets": [f"{cfg.host}:{cfg.web_port}"]}],
            },
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": [f"{cfg.host}:{cfg.prometheus_port}"]}],
            },
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def generated_files(cfg: DevConfig) -> dict[str, str]:
    """With a rules file: the Prometheus rule files (by name) and `alertmanager.yml` it gives."""
    from kpi_monitor.rulesgen.alertmanager import alertmanager_config as routing
    from kpi_monitor.rulesgen.writer import ALERTMANAGER, HEADER, render_all, to_yaml
    from kpi_rules import load_rules

    assert cfg.rules_file is not None
    rules = load_rules(cfg.rules_file)
    files = {
        Path(rel).name: text for rel, text in render_all(rules).items() if rel.startswith("prometheus/rules/")
    }
    files[Path(ALERTMANAGER).name] = HEADER + to_yaml(routing(rules, cfg.webhook_url))
    return files


def alertmanager_config(cfg: DevConfig) -> str:
    """The repo's prometheus/alertmanager.yml, or the one generated from the stack's rules file."""
    if cfg.rules_file is not None:
        return generated_files(cfg)["alertmanager.yml"]
    return (cfg.repo_dir / "prometheus" / "alertmanager.yml").read_text(encoding="utf-8")
