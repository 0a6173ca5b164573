"""The one settings object of a worker or command, from `KPI_*` environment variables and flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    rules: Path = Path("kpi_rules/rules.yaml")
    data_dir: Path = Path(".kpi-worker")
    batch_max_events: int = Field(default=5000, ge=1, le=100_000)
    batch_max_wait_ms: int = Field(default=100, ge=1, le=60_000)
    flush_interval_s: float = Field(default=1.0, gt=0, le=300)
    metrics_interval_s: float = Field(default=5.0, gt=0, le=300)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// (TLS) or unix://")
        return value

    def topic(self, name: str) -> str:
        """Contract topic name: `deals` -> `crm.deals` with the default prefix."""
        return f"{self.topic_prefix}{name}"

    @property
    def input_topics(self) -> tuple[str, ...]:
        return tuple(self.topic(n) for n in ("deals", "visits", "quotes", "targets"))

    @property
    def deadletter_topic(self) -> str:
        return self.topic("deadletter")

    @property
    def routed_topic(self) -> str:
        """Internal rep-partitioned topic of validated micro-batches."""
        return f"{self.app_id}.events-by-rep"


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; flags given as overrides win. Fails with the variable named."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = ["invalid settings:"]
        for item in exc.errors():
            key = ".".join(str(p) for p in item["loc"])
            lines.append(f"  KPI_{key.upper()} ({key}): {item['msg']}")
        raise SettingsError("\n".join(lines)) from None
