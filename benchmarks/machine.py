"""Facts about the machine, the stack and the checkout a benchmark ran on (for RESULTS.md)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.harness import RedisProbe
from kpi_testkit import CHECKOUT


def _run(command: Sequence[str]) -> str:
    try:
        return subprocess.run(
            list(command), cwd=CHECKOUT, capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def kafka_version(bootstrap: str) -> str:
    """The broker's version, read from the classpath of a local `kafka.Kafka` process."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "kafka.Kafka" in text:
            match = re.search(r"kafka[_-](?:2\.\d+-)?(\d+\.\d+\.\d+)", text)
            if match:
                return match.group(1)
    return f"unknown (no local broker process for {bootstrap})"


@dataclass
class Machine:
    cpu: str
    nproc: int
    ram_gib: float
    os: str
    python: str
    kafka: str
    redis: str
    commit: str
    dirty: bool
    date: str
    load: str

    def short(self) -> str:
        return (
            f"{self.cpu}, {self.nproc} CPUs, {self.ram_gib:.0f} GiB, Python {self.python}, "
            f"Kafka {self.kafka}, Redis {self.redis}, load average at start {self.load}"
        )

    @property
    def revision(self) -> str:
        return f"`{self.commit}`" + (" + uncommitted changes (dirty)" if self.dirty else " (clean)")


def machine_facts(bootstrap: str, redis_url: str) -> Machine:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0.0
    try:
        match = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.MULTILINE)
        ram = int(match.group(1)) / 1024 / 1024 if match else 0.0
    except OSError:
        pass
    os_name = platform.platform()
    try:
        release = Path("/etc/os-release").read_text()
        match = re.search(r'^PRETTY_NAME="?([^"\n]*)', release, re.MULTILINE)
        if match:
            os_name = f"{match.group(1)} ({platform.system()} {platform.release()}, {platform.machine()})"
    except OSError:
        pass
    try:
        redis_version = RedisProbe(redis_url).version()
    except Exception as exc:
        redis_version = f"unknown ({type(exc).__name__})"
    commit = _run(["git", "rev-parse", "--short=10", "HEAD"]) or "unknown"
    dirty = bool(_run(["git", "status", "--porcelain"]))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return Machine(
        cpu=cpu,
        nproc=len(os.sched_getaffinity(0)),
        ram_gib=ram,
        os=os_name,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        kafka=kafka_version(bootstrap),
        redis=redis_version,
        commit=commit,
        dirty=dirty,
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load=load,
    )
