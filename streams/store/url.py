"""Store URLs: ``redis://`` / ``rediss://`` parsed into redis-py's URL and the store's own
parameters, and redacted for logs (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["RedisURLConfig", "parse_store_url", "redact_url"]

# Query parameters consumed by the store itself; all others go to redis-py untouched.
_STORE_PARAMS = frozenset({"cluster", "ssl", "tls", "flush_interval", "key_prefix"})
# Query parameters the store must control (it works with bytes).
_FORBIDDEN_PARAMS = frozenset({"decode_responses", "encoding", "encoding_errors"})
_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f", ""})


def _to_bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"store URL parameter {name}={value!r} is not a boolean")


def redact_url(url: object) -> str:
    """The URL (a str or a yarl URL) with its password replaced by ``***`` (safe for logs)."""
    parts = urlsplit(str(url))
    if parts.password is None:
        return str(url)
    userinfo = f"{parts.username or ''}:***"
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{userinfo}@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class RedisURLConfig:
    """A store URL split into what redis-py gets and what the store itself uses."""

    redis_url: str  # passed to redis-py ``from_url`` (may contain the password: never log it)
    safe_url: str  # password hidden
    host: str
    port: int
    db: int
    username: str | None
    has_password: bool
    ssl: bool
    cluster: bool
    flush_interval: float | None
    key_prefix: str | None
    redis_params: Mapping[str, str] = field(default_factory=dict)


def parse_store_url(url: object) -> RedisURLConfig:
    """Parse ``redis://[[user]:password@]host:port/db`` (``rediss://`` or ``?ssl=true`` for TLS,
    ``?cluster=true`` for Redis Cluster, ``flush_interval`` and ``key_prefix`` for the store;
    other query parameters go to redis-py)."""
    text = str(url)
    parts = urlsplit(text)
    safe = redact_url(text)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"RedisStore needs a redis:// or rediss:// URL, got {safe!r}")
    store_params: dict[str, str] = {}
    redis_params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _STORE_PARAMS:
            store_params[name] = value
        elif name in _FORBIDDEN_PARAMS:
            raise ValueError(f"store URL parameter {name!r} is managed by RedisStore: {safe!r}")
        else:
            redis_params[name] = value
    ssl = scheme == "rediss"
    for name in ("ssl", "tls"):
        if name in store_params and _to_bool(name, store_params[name]):
            ssl = True
    cluster = _to_bool("cluster", store_params["cluster"]) if "cluster" in store_params else False
    flush_interval: float | None = None
    if "flush_interval" in store_params:
        try:
            flush_interval = float(store_params["flush_interval"])
        except ValueError:
            raise ValueError(f"flush_interval must be a number of seconds: {safe!r}") from None
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be > 0: {safe!r}")
    key_prefix = store_params.get("key_prefix") or None

    path = parts.path.strip("/")
    db_text = redis_params.pop("db", None) or path or "0"
    try:
        db = int(db_text)
    except ValueError:
        raise ValueError(f"Redis db must be an integer, got {db_text!r} in {safe!r}") from None
    if db < 0:
        raise ValueError(f"Redis db must be >= 0 in {safe!r}")
    if cluster and db != 0:
        raise ValueError(f"Redis Cluster only has db 0, got db {db} in {safe!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"invalid port in {safe!r}") from None
    host = parts.hostname or "127.0.0.1"

    out_scheme = "rediss" if ssl else "redis"
    out_path = "" if cluster else f"/{db}"
    redis_url = urlunsplit(
        (out_scheme, parts.netloc or f"{host}:{port}", out_path, urlencode(redis_params), "")
    )
    return RedisURLConfig(
        redis_url=redis_url,
        safe_url=safe,
        host=host,
        port=port,
        db=db,
        username=parts.username or None,
        has_password=parts.password is not None,
        ssl=ssl,
        cluster=cluster,
        flush_interval=flush_interval,
        key_prefix=key_prefix,
        redis_params=redis_params,
    )
