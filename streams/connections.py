"""Secured connections: the ONE place that turns `Settings` into client arguments.

* `aiokafka_kwargs(settings)`: `security_protocol`, `ssl_context`, `sasl_*` for every
  `AIOKafkaConsumer` / `AIOKafkaProducer` / `AIOKafkaAdminClient` (ingest, topics, simulate,
  publish);
* `faust_credentials(settings)`: the same for the Faust app (`broker_credentials`), which Faust
  turns back into the same aiokafka arguments for its own consumer, producer and topic client;
* `redis_store_url(settings)` / `redis_store_options(settings)`: the store URL (plus the CA file)
  and the password given to the Redis store as an option, so it never appears in a printed URL;
* `check_kafka(settings)` / `check_redis(settings)`: connect once at start and fail with a
  sentence saying what is wrong (authentication, certificate, unreachable) and which setting to
  look at, instead of a client retrying in the background.

Passwords are `SecretStr` in the settings and are only revealed here, into client arguments.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from streams.settings import Settings

__all__ = [
    "ConnectionCheckError",
    "aiokafka_kwargs",
    "check_kafka",
    "check_redis",
    "faust_credentials",
    "kafka_ssl_context",
    "redis_store_options",
    "redis_store_url",
]

log = logging.getLogger(__name__)


class ConnectionCheckError(ValueError):
    """A service refused or failed the configured connection; the message says what to check.
    (A ValueError: the command line prints it as a configuration error, without a traceback.)"""


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL / SASL_SSL (None for PLAINTEXT / SASL_PLAINTEXT)."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile is not None:
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    return context


def _sasl_password(settings: Settings) -> str | None:
    secret = settings.kafka_sasl_password
    return None if secret is None else secret.get_secret_value()


def aiokafka_kwargs(settings: Settings, context: ssl.SSLContext | None = None) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (nothing more than PLAINTEXT by default)."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = context or kafka_ssl_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = _sasl_password(settings)
    return kwargs


def faust_credentials(settings: Settings) -> Any:
    """`faust.App(broker_credentials=...)`: None (PLAINTEXT), SSLCredentials or SASLCredentials
    (SASL_SSL when it carries a TLS context; PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = kafka_ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=_sasl_password(settings),
        ssl_context=context,  # None: SASL_PLAINTEXT
        mechanism=settings.kafka_sasl_mechanism,
    )


def describe_kafka(settings: Settings) -> str:
    """How the clients connect, without secrets (for logs and error messages)."""
    protocol = settings.kafka_security_protocol
    text = f"{settings.kafka_bootstrap} ({protocol}"
    if protocol.startswith("SASL_"):
        text += f", {settings.kafka_sasl_mechanism} user {settings.kafka_sasl_username!r}"
    return text + ")"


async def check_kafka(settings: Settings, timeout: float = 15.0) -> None:
    """Open one authenticated connection to a bootstrap server, or raise ConnectionCheckError
    naming the cause (aiokafka itself only says "Unable to bootstrap" and logs the reason)."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaError

    kwargs = aiokafka_kwargs(settings)
    errors: list[str] = []
    for server in settings.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host.strip("[]") or server, int(port or 9092), **kwargs), timeout
            )
        except (TimeoutError, OSError, KafkaError, ValueError) as exc:
            errors.append(f"{server.strip()}: {_explain_kafka(exc)}")
            continue
        conn.close()
        return
    raise ConnectionCheckError(f"cannot connect to Kafka at {describe_kafka(settings)}: " + "; ".join(errors))


def _explain_kafka(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc) or name
    if "Authentication" in name or "authentication" in text.lower() or "SaslHandshake" in name:
        return (
            f"authentication failed ({name}: {text}); check KPI_KAFKA_SASL_USERNAME, "
            f"KPI_KAFKA_SASL_PASSWORD and KPI_KAFKA_SASL_MECHANISM"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS handshake failed ({name}: {text}); check KPI_KAFKA_SSL_CAFILE (the CA of the "
            f"broker's certificate), KPI_KAFKA_SSL_CHECK_HOSTNAME and KPI_KAFKA_SECURITY_PROTOCOL"
        )
    if isinstance(exc, ConnectionResetError):
        return (
            f"{name}: the broker closed the connection "
            f"(is KPI_KAFKA_SECURITY_PROTOCOL the protocol of this listener?)"
        )
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out (is KPI_KAFKA_SECURITY_PROTOCOL the protocol of this listener?)"
    return f"{name}: {text}"


def redis_store_url(settings: Settings) -> str:
    """KPI_REDIS_URL, plus `ssl_ca_certs=` when KPI_REDIS_SSL_CA_CERTS is set (a file path, not
    a secret: the password is passed separately, see `redis_store_options`)."""
    url = settings.redis_url
    if settings.redis_ssl_ca_certs is None:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "ssl_ca_certs"]
    query.append(("ssl_ca_certs", str(settings.redis_ssl_ca_certs)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def redis_store_options(settings: Settings) -> dict[str, Any]:
    """Options of the Redis store (`app.Table(options=...)`): the password of KPI_REDIS_PASSWORD."""
    if settings.redis_password is None:
        return {}
    return {"password": settings.redis_password.get_secret_value()}


async def check_redis(settings: Settings, timeout: float = 10.0, strict: bool = False) -> None:
    """PING Redis with the store's URL and options; raise ConnectionCheckError (the URL in the
    message has its password hidden) when Redis refuses the credentials or the TLS handshake
    fails, or (only if `strict`) when it cannot be reached at all."""
    import redis.asyncio as aioredis
    from redis.exceptions import AuthenticationError, RedisError, ResponseError

    from streams.store.url import redact_url

    url = redis_store_url(settings)
    safe = redact_url(settings.redis_url)
    if not url.startswith(("redis://", "rediss://")):
        return  # unix:// and friends: left to the store
    client = aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        **redis_store_options(settings),
    )
    try:
        await client.ping()
    except (AuthenticationError, ResponseError) as exc:
        text = str(exc)
        if not isinstance(exc, AuthenticationError) and "auth" not in text.lower():
            raise ConnectionCheckError(f"Redis at {safe}: {text}") from None
        given = settings.redis_password is not None or urlsplit(settings.redis_url).password is not None
        what = "refused the password" if given else "requires a password"
        raise ConnectionCheckError(
            f"Redis at {safe} {what} ({type(exc).__name__}: {text}): give the right password in "
            f"KPI_REDIS_PASSWORD or in KPI_REDIS_URL (rediss://:PASSWORD@host:port/db)"
        ) from None
    except (TimeoutError, RedisError, OSError) as exc:
        text = f"{type(exc).__name__}: {exc}"
        if any(word in text.lower() for word in ("ssl", "tls", "certificate")):
            raise ConnectionCheckError(
                f"cannot connect to Redis at {safe}: {text}; check KPI_REDIS_SSL_CA_CERTS (the CA "
                f"of the server's certificate) and that the URL is rediss:// for a TLS port"
            ) from None
        if not strict:
            # Unreachable is not a configuration error: the store reports and retries as usual.
            log.warning(
                "Redis at %s not reachable at start (%s); a rediss:// URL on a plain port (or the "
                "reverse) also looks like this",
                safe,
                text,
            )
            return
        raise ConnectionCheckError(f"cannot connect to Redis at {safe}: {text}") from None
    finally:
        await client.aclose()
