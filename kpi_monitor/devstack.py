"""The local stack without Docker: Kafka (KRaft), Redis, Prometheus and Alertmanager."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kpi_monitor.devstack_config import (
    DEPENDENCY_PLUGIN,
    DevConfig,
    alertmanager_config,
    generated_files,
    kafka_log4j2,
    kafka_pom,
    kafka_properties,
    prometheus_config,
    redis_conf,
)

__all__ = ["DevConfig", "DevStackError", "dev_down", "dev_status", "dev_up", "main"]

DEBIAN_PACKAGES = {
    "java": "default-jre-headless",
    "mvn": "maven",
    "redis-server": "redis-server",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
}
KAFKA_HEAP = ["-Xms256m", "-Xmx768m"]
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class DevStackError(RuntimeError):
    """The stack could not be started or stopped; the message says what to do."""


@dataclass(frozen=True)
class Component:
    """One service of the stack: how to prepare and launch it and how to tell it is ready."""

    name: str
    port: Callable[[DevConfig], int]
    marker: str
    prepare: Callable[[DevConfig], list[str]]
    ready: Callable[[DevConfig], bool]
    timeout: float = 30.0


def _say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def require_binary(name: str) -> str:
    """The absolute path of a program, or an error naming the Debian package that has it."""
    path = shutil.which(name)
    if path is None:
        package = DEBIAN_PACKAGES.get(name, name)
        raise DevStackError(
            f"'{name}' was not found on PATH. Install the Debian package '{package}' "
            f"(apt-get install -y {package}) or run scripts/install-system-deps.sh."
        )
    return path


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- PID files and processes ---------------------------------------------------------------


def pid_file(cfg: DevConfig, name: str) -> Path:
    return cfg.run_dir / f"{name}.pid"


def read_pid(path: Path) -> int | None:
    """The PID stored in a PID file, or None when it is missing or garbage."""
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """True when pid is a live (not zombie) process whose command line contains marker."""
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    return marker is None or marker in cmdline


def live_pid(cfg: DevConfig, comp: Component) -> int | None:
    """The component's PID if its PID file names a live process of ours; stale files go."""
    path = pid_file(cfg, comp.name)
    pid = read_pid(path)
    if pid is not None and pid_alive(pid, comp.marker):
        return pid
    path.unlink(missing_ok=True)
    return None


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.poll()
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _spawn(cfg: DevConfig, comp: Component, argv: list[str]) -> int:
    log_path = cfg.logs_dir / f"{comp.name}.log"
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%F %T')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cfg.data_dir,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    _write(pid_file(cfg, comp.name), f"{proc.pid}\n")
    return proc.pid


def _stop_pid(pid: int, marker: str, timeout: float) -> None:
    """SIGTERM, wait up to timeout, then SIGKILL; only ever the given PID."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_alive(pid, marker):
                return
            time.sleep(0.2)


# --- probes --------------------------------------------------------------------------------


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def redis_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


async def _kafka_metadata(bootstrap: str) -> bool:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    except Exception:
        return False
    finally:
        await client.close()


def _run_async(factory: Callable[[], Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def kafka_ready(cfg: DevConfig) -> bool:
    if not port_open(cfg.host, cfg.kafka_port):
        return False
    return bool(_run_async(lambda: _kafka_metadata(cfg.kafka_bootstrap)))


# --- Kafka ---------------------------------------------------------------------------------


def kafka_libs(cfg: DevConfig) -> Path:
    return cfg.kafka_home / "libs"


def fetch_kafka(cfg: DevConfig) -> Path:
    """Kafka's jars in the Maven cache dir, fetched once; a marker file says it completed."""
    libs = kafka_libs(cfg)
    done = libs / ".complete"
    pom = kafka_pom(cfg)
    digest = hashlib.sha256(pom.encode()).hexdigest()
    if done.exists() and done.read_text(encoding="ascii").strip() == digest:
        return libs
    mvn = require_binary("mvn")
    _say(f"fetching Kafka {cfg.kafka_version} with Maven into {cfg.kafka_home} (first run only)")
    _write(cfg.kafka_home / "pom.xml", pom)
    shutil.rmtree(libs, ignore_errors=True)
    log_path = cfg.logs_dir / "maven.log"
    argv = [
        mvn, "-q", "-B", f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DoutputDirectory=libs", "-DincludeScope=runtime",
    ]  # fmt: skip
    started = time.monotonic()
    with log_path.open("wb") as log:
        result = subprocess.run(
            argv, cwd=cfg.kafka_home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    if result.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        raise DevStackError(f"Maven could not fetch Kafka (see {log_path}):\n{_tail(log_path)}")
    done.write_text(f"{digest}\n", encoding="ascii")
    _say(f"Kafka fetched in {time.monotonic() - started:.1f}s")
    return libs


def _kafka_java(cfg: DevConfig, log4j: Path) -> list[str]:
    return [
        require_binary("java"),
        *KAFKA_HEAP,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={cfg.logs_dir}",
        "-cp",
        str(kafka_libs(cfg) / "*"),
    ]


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64 without padding. Like Kafka's own
    Uuid.randomUuid(), never one starting with '-', which the storage tool's argument parser
    would take for an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def format_kafka(cfg: DevConfig, java: list[str], props: Path) -> None:
    """Format the KRaft log dir once (standalone dynamic quorum); later starts reuse it."""
    kdir = cfg.data_dir / "kafka"
    stamp = kdir / "formatted-controller-port"
    if (kdir / "data" / "meta.properties").exists():
        if stamp.exists() and stamp.read_text().strip() != str(cfg.kafka_controller_port):
            raise DevStackError(
                f"Kafka storage in {kdir} was formatted for controller port "
                f"{stamp.read_text().strip()}; delete {kdir} to reformat for "
                f"{cfg.kafka_controller_port}."
            )
        return
    log_path = cfg.logs_dir / "kafka-format.log"
    argv = [*java, "kafka.tools.StorageTool", "format", "-t", new_cluster_id(),
            "-c", str(props), "--standalone"]  # fmt: skip
    with log_path.open("wb") as log:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    if result.returncode != 0:
        raise DevStackError(f"formatting Kafka storage failed:\n{_tail(log_path)}")
    stamp.write_text(f"{cfg.kafka_controller_port}\n")


def prepare_kafka(cfg: DevConfig) -> list[str]:
    require_binary("java")  # checked before Maven runs, so a missing JRE is reported first
    fetch_kafka(cfg)
    kdir = cfg.data_dir / "kafka"
    props = _write(kdir / "server.properties", kafka_properties(cfg))
    log4j = _write(kdir / "log4j2.properties", kafka_log4j2())
    base = _kafka_java(cfg, log4j)
    format_kafka(cfg, base, props)
    return [*base, "kafka.Kafka", str(props)]


# --- Redis, Prometheus, Alertmanager -------------------------------------------------------


def prepare_redis(cfg: DevConfig) -> list[str]:
    binary = require_binary("redis-server")
    (cfg.data_dir / "redis").mkdir(parents=True, exist_ok=True)
    conf = _write(cfg.data_dir / "redis" / "redis.conf", redis_conf(cfg))
    return [binary, str(conf)]


def write_rule_files(cfg: DevConfig) -> bool:
    """With a rules file, (re)write the Prometheus rules generated from it; True if any changed.
    Files of alerts the rules file no longer has are removed."""
    if cfg.rules_file is None:
        return False
    files = {name: text for name, text in generated_files(cfg).items() if name != "alertmanager.yml"}
    changed = False
    cfg.generated_rules_dir.mkdir(parents=True, exist_ok=True)
    for stale in cfg.generated_rules_dir.glob("*.yml"):
        if stale.name not in files:
            stale.unlink()
            changed = True
    for name, text in files.items():
        path = cfg.generated_rules_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            _write(path, text)
            changed = True
    return changed


def _rewrite(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    _write(path, text)
    return True


def _reload(url: str) -> None:
    request = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as exc:
        raise DevStackError(f"could not reload the configuration at {url}: {exc}") from None


def reconfigure_running(cfg: DevConfig) -> None:
    """A running Prometheus and Alertmanager take the rules file's generated configuration
    (a reload, no restart) when it differs from what they run. Only with a rules file."""
    if cfg.rules_file is None:
        return
    prometheus = next(c for c in COMPONENTS if c.name == "prometheus")
    alertmanager = next(c for c in COMPONENTS if c.name == "alertmanager")
    if live_pid(cfg, prometheus) is not None:
        pdir = cfg.data_dir / "prometheus"
        changed = _rewrite(pdir / "prometheus.yml", prometheus_config(cfg))
        if write_rule_files(cfg) or changed:
            _say(f"prometheus: reloading the rules generated from {cfg.rules_file}")
            _reload(f"http://{cfg.host}:{cfg.prometheus_port}/-/reload")
    if live_pid(cfg, alertmanager) is not None:
        adir = cfg.data_dir / "alertmanager"
        if _rewrite(adir / "alertmanager.yml", alertmanager_config(cfg)):
            _say(f"alertmanager: reloading the routing generated from {cfg.rules_file}")
            _reload(f"http://{cfg.host}:{cfg.alertmanager_port}/-/reload")


def prepare_prometheus(cfg: DevConfig) -> list[str]:
    binary = require_binary("prometheus")
    pdir = cfg.data_dir / "prometheus"
    write_rule_files(cfg)
    conf = _write(pdir / "prometheus.yml", prometheus_config(cfg))
    return [
        binary,
        f"--config.file={conf}",
        f"--storage.tsdb.path={pdir / 'data'}",
        "--storage.tsdb.retention.time=7d",
        f"--web.listen-address={cfg.host}:{cfg.prometheus_port}",
        "--web.enable-lifecycle",
    ]


def prepare_alertmanager(cfg: DevConfig) -> list[str]:
    binary = require_binary("prometheus-alertmanager")
    adir = cfg.data_dir / "alertmanager"
    conf = _write(adir / "alertmanager.yml", alertmanager_config(cfg))
    return [
        binary,
        f"--config.file={conf}",
        f"--storage.path={adir / 'data'}",
        f"--web.listen-address={cfg.host}:{cfg.alertmanager_port}",
        "--cluster.listen-address=",
    ]


COMPONENTS: tuple[Component, ...] = (
    Component(
        "kafka", lambda c: c.kafka_port, "kafka.Kafka", prepare_kafka, kafka_ready, timeout=90.0
    ),
    Component(
        "redis", lambda c: c.redis_port, "redis-server", prepare_redis,
        lambda c: redis_ping(c.host, c.redis_port),
    ),
    Component(
        "alertmanager", lambda c: c.alertmanager_port, "alertmanager", prepare_alertmanager,
        lambda c: http_ok(f"http://{c.host}:{c.alertmanager_port}/-/ready"),
    ),
    Component(
        "prometheus", lambda c: c.prometheus_port, "prometheus", prepare_prometheus,
        lambda c: http_ok(f"http://{c.host}:{c.prometheus_port}/-/ready"),
    ),
)  # fmt: skip


# --- up / down / status --------------------------------------------------------------------


def _ports_of(cfg: DevConfig, comp: Component) -> list[int]:
    ports = [comp.port(cfg)]
    if comp.name == "kafka":
        ports.append(cfg.kafka_controller_port)
    return ports


def _check_ports_free(cfg: DevConfig, comp: Component) -> None:
    for port in _ports_of(cfg, comp):
        if port_open(cfg.host, port, timeout=0.5):
            raise DevStackError(
                f"{comp.name}: port {port} on {cfg.host} is already in use by a process this "
                f"stack did not start; stop it or choose another port (KPI_*_PORT)."
            )


def _wait_ready(cfg: DevConfig, comp: Component) -> None:
    deadline = time.monotonic() + comp.timeout
    while time.monotonic() < deadline:
        if live_pid(cfg, comp) is None:
            log = cfg.logs_dir / f"{comp.name}.log"
            raise DevStackError(f"{comp.name} exited during start-up ({log}):\n{_tail(log)}")
        if comp.ready(cfg):
            return
        time.sleep(0.5)
    log = cfg.logs_dir / f"{comp.name}.log"
    raise DevStackError(
        f"{comp.name} did not become ready on port {comp.port(cfg)} within "
        f"{comp.timeout:.0f}s ({log}):\n{_tail(log)}"
    )


def _ensure_dirs(cfg: DevConfig) -> None:
    for directory in (cfg.data_dir, cfg.logs_dir, cfg.run_dir):
        directory.mkdir(parents=True, exist_ok=True)


def dev_up(cfg: DevConfig) -> None:
    """Start whatever is not running yet and wait until every component answers."""
    _ensure_dirs(cfg)
    reconfigure_running(cfg)
    for comp in COMPONENTS:
        pid = live_pid(cfg, comp)
        if pid is not None:
            _say(f"{comp.name} already running (pid {pid})")
            continue
        _check_ports_free(cfg, comp)
        argv = comp.prepare(cfg)
        pid = _spawn(cfg, comp, argv)
        _say(f"{comp.name} started (pid {pid}), log {cfg.logs_dir / (comp.name + '.log')}")
    for comp in COMPONENTS:
        _wait_ready(cfg, comp)
        _say(f"{comp.name} ready on {cfg.host}:{comp.port(cfg)}")


def dev_down(cfg: DevConfig) -> None:
    """Stop, by the PIDs in the PID files, only what dev_up started; newest first."""
    for comp in reversed(COMPONENTS):
        pid = live_pid(cfg, comp)
        if pid is None:
            continue
        _say(f"stopping {comp.name} (pid {pid})")
        _stop_pid(pid, comp.marker, timeout=30.0 if comp.name == "kafka" else 15.0)
        if pid_alive(pid, comp.marker):
            raise DevStackError(f"{comp.name} (pid {pid}) did not stop")
        pid_file(cfg, comp.name).unlink(missing_ok=True)


def dev_status(cfg: DevConfig) -> dict[str, str]:
    """component -> 'running pid N port P', 'starting pid N port P' or 'stopped'."""
    status: dict[str, str] = {}
    for comp in COMPONENTS:
        pid = live_pid(cfg, comp)
        port = comp.port(cfg)
        if pid is None:
            status[comp.name] = "stopped"
        elif port_open(cfg.host, port, timeout=0.5):
            status[comp.name] = f"running pid {pid} port {port}"
        else:
            status[comp.name] = f"starting pid {pid} port {port}"
    return status


def print_status(cfg: DevConfig) -> None:
    for name, state in dev_status(cfg).items():
        print(f"{name:<13} {state}")


def main(argv: Sequence[str] | None = None) -> int:
    """python -m kpi_monitor.devstack up|down|status [--data-dir DIR]."""
    parser = argparse.ArgumentParser(prog="python -m kpi_monitor.devstack", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--data-dir", default=None, help="default $KPI_DEV_DIR or ./.kpi-dev")
    args = parser.parse_args(argv)
    cfg = DevConfig.from_env(args.data_dir)
    try:
        if args.action == "up":
            dev_up(cfg)
        elif args.action == "down":
            dev_down(cfg)
    except DevStackError as exc:
        print(f"dev {args.action} failed: {exc}", file=sys.stderr)
        return 1
    print_status(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
