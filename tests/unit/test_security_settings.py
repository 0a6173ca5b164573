"""Security settings: validation (errors name the variables) and the one place that turns them
into aiokafka / Faust / Redis store arguments. No services."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from streams.connections import (
    aiokafka_kwargs,
    describe_kafka,
    faust_credentials,
    kafka_ssl_context,
    redis_store_options,
    redis_store_url,
)
from streams.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("KPI_"):
            monkeypatch.delenv(name)


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    """A real CA certificate (Python's test CA is not shipped): the certifi bundle if present,
    else the system bundle; ssl only needs to load it."""
    for candidate in (ssl.get_default_verify_paths().cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("no CA bundle on this machine")


def sasl_ssl(ca: Path, **extra: object) -> Settings:
    return load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="kpi",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=ca,
        **extra,
    )


def test_defaults_are_plaintext() -> None:
    settings = load_settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert aiokafka_kwargs(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None
    assert redis_store_options(settings) == {}
    assert redis_store_url(settings) == settings.redis_url


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, ca: Path) -> None:
    monkeypatch.setenv("KPI_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")  # case-insensitive
    monkeypatch.setenv("KPI_KAFKA_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("KPI_KAFKA_SASL_USERNAME", "kpi")
    monkeypatch.setenv("KPI_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("KPI_KAFKA_SSL_CAFILE", str(ca))
    monkeypatch.setenv("KPI_KAFKA_SSL_CHECK_HOSTNAME", "false")
    settings = load_settings()
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_ssl_check_hostname is False
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "s3cret"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"kafka_security_protocol": "SASL_TLS"}, "KPI_KAFKA_SECURITY_PROTOCOL"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "KPI_KAFKA_SASL_MECHANISM"),
        ({"kafka_ssl_cafile": "/no/such/ca.pem"}, "KPI_KAFKA_SSL_CAFILE"),
        ({"redis_ssl_ca_certs": "/no/such/ca.pem"}, "KPI_REDIS_SSL_CA_CERTS"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_password": "x"},
            "KPI_KAFKA_SASL_USERNAME is required",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "kpi"},
            "KPI_KAFKA_SASL_PASSWORD is required",
        ),
        ({"kafka_security_protocol": "SSL"}, "KPI_KAFKA_SSL_CAFILE"),
        ({"kafka_sasl_username": "kpi", "kafka_sasl_password": "x"}, "does not use SASL"),
    ],
)
def test_invalid_settings_name_the_variable(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(**overrides)
    assert needle in str(info.value)
    assert "s3cret" not in str(info.value)


def test_tls_files_need_a_tls_protocol(ca: Path) -> None:
    with pytest.raises(SettingsError, match="does not use TLS"):
        load_settings(kafka_ssl_cafile=ca)


def test_client_certificate_needs_its_key(ca: Path) -> None:
    with pytest.raises(SettingsError, match="KPI_KAFKA_SSL_KEYFILE"):
        sasl_ssl(ca, kafka_ssl_certfile=ca)


def test_ssl_without_ca_allowed_only_without_hostname_check() -> None:
    settings = load_settings(kafka_security_protocol="SSL", kafka_ssl_check_hostname=False)
    context = kafka_ssl_context(settings)
    assert context is not None and context.check_hostname is False


def test_redis_ca_needs_rediss(ca: Path) -> None:
    with pytest.raises(SettingsError, match="rediss://"):
        load_settings(redis_ssl_ca_certs=ca)


def test_redis_password_given_once() -> None:
    with pytest.raises(SettingsError, match="give the password once"):
        load_settings(redis_url="rediss://:pw@127.0.0.1:6380/0", redis_password="pw")


def test_password_is_never_shown(ca: Path) -> None:
    settings = sasl_ssl(ca, redis_url="rediss://127.0.0.1:6380/0", redis_password="r3dis")
    for text in (str(settings), repr(settings), describe_kafka(settings), repr(faust_credentials(settings))):
        assert "s3cret" not in text and "r3dis" not in text
    assert describe_kafka(settings) == "127.0.0.1:9092 (SASL_SSL, SCRAM-SHA-256 user 'kpi')"


def test_aiokafka_kwargs_sasl_ssl(ca: Path) -> None:
    kwargs = aiokafka_kwargs(sasl_ssl(ca))
    context = kwargs.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is True and context.verify_mode == ssl.CERT_REQUIRED
    assert kwargs == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "kpi",
        "sasl_plain_password": "s3cret",
    }


def test_aiokafka_kwargs_sasl_plaintext_plain() -> None:
    settings = load_settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="kpi",
        kafka_sasl_password="s3cret",
    )
    assert aiokafka_kwargs(settings) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "kpi",
        "sasl_plain_password": "s3cret",
    }


def test_aiokafka_kwargs_ssl_only(ca: Path) -> None:
    kwargs = aiokafka_kwargs(load_settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca))
    assert kwargs["security_protocol"] == "SSL"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert not any(key.startswith("sasl") for key in kwargs)


def test_faust_credentials_match_aiokafka_kwargs(ca: Path) -> None:
    """Faust turns its credentials into the same aiokafka arguments the other clients get."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    settings = sasl_ssl(ca)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    through_faust = dict(credentials_to_aiokafka_auth(credentials))
    ours = aiokafka_kwargs(settings)
    assert isinstance(through_faust.pop("ssl_context"), ssl.SSLContext)
    ours.pop("ssl_context")
    assert through_faust == ours

    plain = load_settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="kpi",
        kafka_sasl_password="s3cret",
    )
    through_faust = dict(credentials_to_aiokafka_auth(faust_credentials(plain)))
    assert through_faust.pop("ssl_context") is None
    assert through_faust == aiokafka_kwargs(plain)

    ssl_only = load_settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca)
    assert isinstance(faust_credentials(ssl_only), faust.SSLCredentials)
    assert credentials_to_aiokafka_auth(faust_credentials(ssl_only))["security_protocol"] == "SSL"


def test_faust_app_gets_the_credentials(ca: Path) -> None:
    app = faust.App(
        "security-unit", broker="kafka://127.0.0.1:9092", broker_credentials=faust_credentials(sasl_ssl(ca))
    )
    assert app.conf.broker_credentials.mechanism.value == "SCRAM-SHA-256"


def test_redis_store_url_and_options(ca: Path) -> None:
    settings = load_settings(
        redis_url="rediss://127.0.0.1:6380/0?cluster=false", redis_password="r3dis", redis_ssl_ca_certs=ca
    )
    url = redis_store_url(settings)
    assert url.startswith("rediss://127.0.0.1:6380/0?") and "cluster=false" in url
    assert "r3dis" not in url

    from streams.store.url import parse_store_url

    parsed = parse_store_url(url)
    assert parsed.ssl and parsed.redis_params["ssl_ca_certs"] == str(ca)
    assert redis_store_options(settings) == {"password": "r3dis"}
