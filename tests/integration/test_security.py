"""Secured connections end to end: a dedicated Kafka (KRaft) whose only client listener is
SASL_SSL with SCRAM-SHA-256, and a dedicated Redis that only speaks TLS and requires a password,
both with a self-signed CA and server certificate made here with the `openssl` CLI. A real worker
configured by the KPI_* security settings consumes a file published with `kpi-monitor publish`
and its /kpis equal the embedded report; a wrong Kafka password and a missing Redis password stop
the worker at start with a message saying so.

Nothing here touches the shared dev stack (only the cached Kafka jars are reused); every process
started here is stopped by its PID at the end, also on failure."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kpi_monitor.devstack import (
    DevConfig,
    _kafka_java,
    fetch_kafka,
    new_cluster_id,
    port_open,
)
from kpi_monitor.devstack_config import find_repo_dir, kafka_log4j2, kafka_properties
from kpi_testkit import Deployment, WorkerProcess, free_port, sample
from tests.integration.workers import api_mismatches, report, report_reps, simulate_file, wait_all_handled

KAFKA_USER = "kpi"
KAFKA_PASSWORD = "kafka-s3cret-Pa55"
REDIS_PASSWORD = "redis-s3cret-Pa55"
MECHANISM = "SCRAM-SHA-256"
EVENTS = 2000

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("redis-server") is None,
    reason="needs the openssl CLI and redis-server (with TLS support)",
)


@dataclass
class SecureStack:
    kafka_bootstrap: str
    redis_port: int
    ca: Path
    tmp: Path

    def env(
        self, kafka_password: str = KAFKA_PASSWORD, redis_password: str | None = REDIS_PASSWORD
    ) -> dict[str, str]:
        env = {
            "KPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KPI_KAFKA_SASL_MECHANISM": MECHANISM,
            "KPI_KAFKA_SASL_USERNAME": KAFKA_USER,
            "KPI_KAFKA_SASL_PASSWORD": kafka_password,
            "KPI_KAFKA_SSL_CAFILE": str(self.ca),
            "KPI_REDIS_SSL_CA_CERTS": str(self.ca),
        }
        if redis_password is not None:
            env["KPI_REDIS_PASSWORD"] = redis_password
        return env

    @property
    def redis_url(self) -> str:
        return f"rediss://127.0.0.1:{self.redis_port}/0"


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"openssl {' '.join(args)} failed:\n{done.stderr}"


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1 / localhost signed by it:
    (ca.pem, server.pem, server.key) with an unencrypted PKCS#8 key."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=kpi-monitor test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost", cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectKeyIdentifier=hash\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL: only this PID."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _secure_kafka_properties(cfg: DevConfig, certs: Path, keystore: Path, ca: Path) -> str:
    """The dev stack's single-node KRaft properties with the client listener made SASL_SSL."""
    props = dict(line.split("=", 1) for line in kafka_properties(cfg).splitlines() if "=" in line)
    h, p, c = cfg.host, cfg.kafka_port, cfg.kafka_controller_port
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{KAFKA_USER}" password="{KAFKA_PASSWORD}";'
    )
    props.update(
        {
            "listeners": f"SASL_SSL://{h}:{p},CONTROLLER://{h}:{c}",
            "advertised.listeners": f"SASL_SSL://{h}:{p},CONTROLLER://{h}:{c}",
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            # PLAIN too (same user, JAAS-configured), to check that mechanism from the clients.
            "sasl.enabled.mechanisms": f"{MECHANISM},PLAIN",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{KAFKA_USER}" password="{KAFKA_PASSWORD}" user_{KAFKA_USER}="{KAFKA_PASSWORD}";'
            ),
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(ca),
            "ssl.client.auth": "none",
        }
    )
    return "".join(f"{key}={value}\n" for key, value in props.items())


def _kafka_accepts(stack_env: dict[str, str], bootstrap: str) -> bool:
    import asyncio

    from streams.connections import ConnectionCheckError, check_kafka
    from streams.settings import load_settings

    settings = load_settings(
        kafka_bootstrap=bootstrap,
        **{k[4:].lower(): v for k, v in stack_env.items() if k.startswith("KPI_KAFKA_")},
    )
    try:
        asyncio.run(check_kafka(settings, timeout=5.0))
    except ConnectionCheckError:
        return False
    return True


@pytest.fixture(scope="module")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureStack]:
    tmp = tmp_path_factory.mktemp("secure")
    ca, cert, key = make_certificates(tmp / "certs")
    keystore = tmp / "certs" / "server-keystore.pem"  # Kafka's PEM keystore: key + chain
    keystore.write_text(key.read_text() + cert.read_text())

    cfg = DevConfig(
        data_dir=tmp,
        kafka_home=DevConfig.from_env(str(tmp)).kafka_home,
        repo_dir=find_repo_dir(),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
    )
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        fetch_kafka(cfg)  # the cached jars of the dev stack
        kdir = tmp / "kafka"
        kdir.mkdir()
        props = kdir / "server.properties"
        props.write_text(_secure_kafka_properties(cfg, tmp / "certs", keystore, ca))
        log4j = kdir / "log4j2.properties"
        log4j.write_text(kafka_log4j2())
        java = _kafka_java(cfg, log4j)
        # The SCRAM user is created with the storage, before the broker first starts.
        scram = f"{MECHANISM}=[name={KAFKA_USER},password={KAFKA_PASSWORD}]"
        fmt = subprocess.run(
            [*java, "kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(props),
             "--standalone", "--add-scram", scram],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert fmt.returncode == 0, f"kafka-storage format failed:\n{fmt.stdout}\n{fmt.stderr}"
        kafka_log = cfg.logs_dir / "kafka.log"
        with kafka_log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [*java, "kafka.Kafka", str(props)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=tmp,
                    start_new_session=True,
                )  # fmt: skip
            )

        redis_port = free_port()
        (tmp / "redis").mkdir()
        redis_log = cfg.logs_dir / "redis.log"
        with redis_log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port",
                        "0",
                        "--tls-port",
                        str(redis_port),
                        "--bind",
                        "127.0.0.1",
                        "--tls-cert-file",
                        str(cert),
                        "--tls-key-file",
                        str(key),
                        "--tls-ca-cert-file",
                        str(ca),
                        "--tls-auth-clients",
                        "no",
                        "--requirepass",
                        REDIS_PASSWORD,
                        "--dir",
                        str(tmp / "redis"),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=tmp,
                    start_new_session=True,
                )  # fmt: skip
            )
        stack = SecureStack(f"127.0.0.1:{cfg.kafka_port}", redis_port, ca, tmp)

        deadline = time.monotonic() + 90
        while not (
            port_open("127.0.0.1", cfg.kafka_port) and _kafka_accepts(stack.env(), stack.kafka_bootstrap)
        ):
            assert procs[0].poll() is None, f"Kafka exited:\n{_tail(kafka_log)}"
            assert time.monotonic() < deadline, f"secured Kafka not ready in 90s:\n{_tail(kafka_log)}"
            time.sleep(1.0)
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", redis_port):
            assert procs[1].poll() is None, f"redis-server exited:\n{_tail(redis_log)}"
            assert time.monotonic() < deadline, f"TLS Redis not ready in 20s:\n{_tail(redis_log)}"
            time.sleep(0.2)
        yield stack
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _exit_log(worker: WorkerProcess, timeout: float = 60.0) -> tuple[int, str]:
    """Wait for a worker that must fail at start; its exit code and whole log."""
    assert worker.proc is not None
    try:
        code = worker.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        worker.stop()
        raise AssertionError(f"worker still running after {timeout}s; log:\n{worker.log_tail()}") from None
    return code, worker.log_path.read_text(errors="replace")


def test_plain_clients_are_refused(secure_stack: SecureStack) -> None:
    """The dedicated services really are secured (else the rest proves nothing)."""
    import redis

    plain = redis.Redis(
        host="127.0.0.1", port=secure_stack.redis_port, ssl=True, ssl_ca_certs=str(secure_stack.ca)
    )
    with pytest.raises(redis.exceptions.AuthenticationError):
        plain.ping()
    plain.close()
    assert not _kafka_accepts(
        {"KPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KPI_KAFKA_SASL_USERNAME": KAFKA_USER,
         "KPI_KAFKA_SASL_PASSWORD": "wrong", "KPI_KAFKA_SSL_CAFILE": str(secure_stack.ca)},
        secure_stack.kafka_bootstrap,
    )  # fmt: skip


def test_plain_mechanism_and_untrusted_certificate(secure_stack: SecureStack) -> None:
    """PLAIN works through the same settings; a CA that did not sign the broker's certificate
    is reported as a TLS problem naming KPI_KAFKA_SSL_CAFILE."""
    import asyncio

    from streams.connections import ConnectionCheckError, check_kafka
    from streams.settings import load_settings

    env = secure_stack.env() | {"KPI_KAFKA_SASL_MECHANISM": "PLAIN"}
    assert _kafka_accepts(env, secure_stack.kafka_bootstrap)

    other_ca, _, _ = make_certificates(secure_stack.tmp / "other-ca")
    settings = load_settings(
        kafka_bootstrap=secure_stack.kafka_bootstrap,
        **{k[4:].lower(): v for k, v in secure_stack.env().items() if k.startswith("KPI_KAFKA_")}
        | {"kafka_ssl_cafile": str(other_ca)},
    )
    with pytest.raises(ConnectionCheckError) as info:
        asyncio.run(check_kafka(settings, timeout=10.0))
    assert "TLS handshake failed" in str(info.value) and "KPI_KAFKA_SSL_CAFILE" in str(info.value)


def test_wrong_kafka_password_fails_at_start(secure_stack: SecureStack, tmp_path: Path) -> None:
    deployment = Deployment(
        secure_stack.kafka_bootstrap, secure_stack.redis_url, tmp_path,
        extra_env=secure_stack.env(kafka_password="not-the-password"),
    )  # fmt: skip
    code, log = _exit_log(deployment.worker().start())
    assert code != 0, log
    assert "authentication failed" in log and "KPI_KAFKA_SASL_PASSWORD" in log, log
    assert "not-the-password" not in log


def test_redis_without_password_fails_at_start(secure_stack: SecureStack, tmp_path: Path) -> None:
    deployment = Deployment(
        secure_stack.kafka_bootstrap, secure_stack.redis_url, tmp_path,
        extra_env=secure_stack.env(redis_password=None),
    )  # fmt: skip
    code, log = _exit_log(deployment.worker().start())
    assert code != 0, log
    assert "requires a password" in log and "KPI_REDIS_PASSWORD" in log, log


def test_worker_over_sasl_ssl_and_redis_tls_equals_report(secure_stack: SecureStack, tmp_path: Path) -> None:
    deployment = Deployment(
        secure_stack.kafka_bootstrap, secure_stack.redis_url, tmp_path, partitions=2,
        extra_env=secure_stack.env(),
    )  # fmt: skip
    path = tmp_path / "events.jsonl"
    lines = simulate_file(deployment, path, EVENTS, days=10, reps=8, per_hour=40)
    assert len(lines) == EVENTS
    expected = report(deployment, path)
    reps = report_reps(expected)

    worker = deployment.worker().start()
    try:
        worker.wait_ready(timeout=120)
        published = deployment.cli("publish", str(path))
        assert f"sent {EVENTS}" in published.stderr, published.stderr
        wait_all_handled([worker], EVENTS, timeout=90)
        metrics = worker.metrics()
        assert sample(metrics, "kpi_events_applied_total") == EVENTS
        problems = api_mismatches(worker, expected, ("day", "week", "month"), reps)
        assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:10])
        assert worker.alive()
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert KAFKA_PASSWORD not in log and REDIS_PASSWORD not in log
