"""The one settings object of a worker or command, from `KPI_*` environment variables and flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kpi_rules.vocabulary import INPUT_TOPICS, Topic


class SettingsError(ValueError):
    """A setting is invalid; the message names the variable and what is allowed."""


class Settings(BaseSettings):
    """Service settings. Each field `x` is read from the environment variable `KPI_X`."""

    model_config = SettingsConfigDict(env_prefix="KPI_", extra="ignore", frozen=True)

    app_id: str = Field(default="kpi-monitor", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = Field(default="crm.", pattern=r"^[A-Za-z0-9._-]{0,100}$")
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=5)
    redis_url: str = "redis://127.0.0.1:6379/0"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    clock: Literal["wall", "event"] = "wall"
    # Which KPI core the process runs: read by the `kpi-monitor` command at start, before anything
    # imports kpi_core (kpi_monitor/compiled_core.py); listed here so it is checked and documented.
    core: Literal["auto", "compiled", "python"] = "auto"
    rules: Path = Path("kpi_rules/rules.yaml")
    data_dir: Path = Path(".kpi-worker")
    batch_max_events: int = Field(default=5000, ge=1, le=100_000)
    batch_max_wait_ms: int = Field(default=100, ge=1, le=60_000)
    metrics_interval_s: float = Field(default=5.0, gt=0, le=300)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # The customer side (customer KPIs, issue 12); off: purchases, visits and quotes are not routed
    # to it, and the customer KPIs stay 0 (for deployments that do not want them, and to measure
    # what it costs).
    customer_side: bool = True
    # Secured connections (see README "Secured connections"); streams/connections.py
    # turns these into aiokafka / Faust / redis-py arguments.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-256"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True
    redis_password: SecretStr | None = None
    redis_ssl_ca_certs: Path | None = None
    # Bearer token for /kpis/* and /status (KPI_API_TOKEN); unset or empty: no auth (streams/http.py).
    api_token: SecretStr | None = None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// (TLS) or unix://")
        return value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(
        "kafka_sasl_username", "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile",
        "redis_ssl_ca_certs", "kafka_sasl_password", "redis_password", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "redis_ssl_ca_certs")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _security_consistent(self) -> Settings:
        """Combinations that cannot work are refused at start, naming what is needed."""
        problems: list[str] = []
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            if not self.kafka_sasl_username:
                problems.append(
                    f"KPI_KAFKA_SASL_USERNAME is required with KPI_KAFKA_SECURITY_PROTOCOL={protocol}"
                )
            if self.kafka_sasl_password is None:
                problems.append(
                    f"KPI_KAFKA_SASL_PASSWORD is required with KPI_KAFKA_SECURITY_PROTOCOL={protocol}"
                )
        elif self.kafka_sasl_username or self.kafka_sasl_password is not None:
            problems.append(
                f"KPI_KAFKA_SASL_USERNAME/KPI_KAFKA_SASL_PASSWORD are set but "
                f"KPI_KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL (use SASL_SSL or SASL_PLAINTEXT)"
            )
        uses_tls = protocol in ("SSL", "SASL_SSL")
        tls_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if not uses_tls and any(f is not None for f in tls_files):
            problems.append(
                f"KPI_KAFKA_SSL_* files are set but KPI_KAFKA_SECURITY_PROTOCOL={protocol} does not "
                f"use TLS (use SSL or SASL_SSL)"
            )
        if uses_tls and self.kafka_ssl_check_hostname and self.kafka_ssl_cafile is None:
            problems.append(
                f"KPI_KAFKA_SSL_CAFILE (the CA certificate that signed the broker's certificate, "
                f"PEM) is required with KPI_KAFKA_SECURITY_PROTOCOL={protocol}; set "
                f"KPI_KAFKA_SSL_CHECK_HOSTNAME=false only to trust the system CAs without a "
                f"host name check"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            problems.append(
                "KPI_KAFKA_SSL_CERTFILE and KPI_KAFKA_SSL_KEYFILE (the client certificate and its "
                "key) must be given together"
            )
        if self.redis_ssl_ca_certs is not None and not self.redis_url.startswith("rediss://"):
            problems.append(
                "KPI_REDIS_SSL_CA_CERTS is set but KPI_REDIS_URL does not start with rediss:// (TLS)"
            )
        if self.redis_password is not None and "@" in self.redis_url.split("//", 1)[-1].split("/", 1)[0]:
            problems.append(
                "KPI_REDIS_PASSWORD is set and KPI_REDIS_URL has credentials too: give the password once"
            )
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    def topic(self, name: str) -> str:
        """Contract topic name: `deals` -> `crm.deals` with the default prefix."""
        return f"{self.topic_prefix}{name}"

    @property
    def input_topics(self) -> tuple[str, ...]:
        return tuple(self.topic(t) for t in INPUT_TOPICS)

    @property
    def deadletter_topic(self) -> str:
        return self.topic(Topic.DEADLETTER)

    @property
    def routed_topic(self) -> str:
        """Internal topic of micro-batches partitioned by owner (rep or scope), and of customer
        summaries for those owners."""
        return f"{self.app_id}.events-by-rep"

    @property
    def customer_topic(self) -> str:
        """Internal topic of micro-batches of customer facts, partitioned by customer."""
        return f"{self.app_id}.events-by-customer"


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; flags given as overrides win. Fails with the variable named."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = ["invalid settings:"]
        for item in exc.errors():
            key = ".".join(str(p) for p in item["loc"])
            if not key:  # a consistency check across settings: its message names them
                lines.append(f"  {str(item['msg']).removeprefix('Value error, ')}")
                continue
            lines.append(f"  KPI_{key.upper()} ({key}): {item['msg']}")
        raise SettingsError("\n".join(lines)) from None
