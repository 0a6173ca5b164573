"""Shared pieces of the benchmark suite (`suite.py` and the `bench_*.py` sections): worker processes
started and stopped by process group, HTTP and Redis probes, fast and paced Kafka producers, RSS,
machine facts, small statistics and Markdown tables.

Every process started here is registered and stopped by its process group (SIGTERM, then SIGKILL)
when the suite ends, fails or is interrupted. Every deployment has its own app id and topic prefix
(`Deployment.name`), and its Kafka topics and Redis keys are deleted afterwards (unless kept).

The paced producer runs in its own process: `python benchmarks/harness.py paced SPEC.json`."""

from __future__ import annotations

import asyncio
import atexit
import json
import math
import os
import pickle
import platform
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _path in (str(REPO), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import orjson  # noqa: E402

T = TypeVar("T")
TOPICS = {"deal": "deals", "visit": "visits", "quote": "quotes", "target": "targets"}
TABLE_NAME = "kpi_state"  # streams.app.TABLE_NAME (not imported: that pulls in Faust)
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def say(message: str) -> None:
    """Progress to stderr (RESULTS.md gets the figures)."""
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


_LIVE: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    command: Sequence[str], env: dict[str, str] | None, log: Path, cwd: Path = REPO
) -> subprocess.Popen[bytes]:
    """Start a command in its own session (process group = its pid), output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(command), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _LIVE[proc.pid] = proc
    return proc


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group led by `proc`, only while `proc` is not reaped: until then its pid
    (the group id) cannot belong to anyone else."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 30.0) -> int | None:
    """Signal the process group of `proc` (started by `spawn`); SIGKILL it if still alive after
    `grace` seconds. Returns the exit code."""
    try:
        _signal_group(proc, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(30)
    finally:
        _LIVE.pop(proc.pid, None)
    return proc.returncode


def stop_all() -> None:
    """Stop every process this suite started and has not stopped yet (at exit, on error)."""
    for proc in list(_LIVE.values()):
        stop_group(proc, signal.SIGTERM, grace=10.0)


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the `finally` blocks, then atexit stops the rest


def install_cleanup() -> None:
    """Stop started processes at exit, on SIGTERM/SIGHUP and on Ctrl-C (KeyboardInterrupt)."""
    atexit.register(stop_all)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], T | None], timeout: float, interval: float = 0.1, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy (OSError counts as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"benchmark step timed out after {timeout:.0f} s: {what or predicate}")
        time.sleep(interval)


def rss_mib(pid: int) -> float | None:
    """VmRSS of a process in MiB (None once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


# --------------------------------------------------------------------------- HTTP


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def get_json(url: str, timeout: float = 10.0) -> Any:
    status, body = http_get(url, timeout)
    if status != 200:
        raise OSError(f"GET {url}: HTTP {status}")
    return orjson.loads(body)


# --------------------------------------------------------------------------- deployments and workers


def worker_env(
    name: str,
    bootstrap: str,
    redis_url: str,
    *,
    partitions: int = 4,
    clock: str = "event",
    rules: Path | None = None,
    batch: int | None = None,
    data_dir: Path | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a `kpi-monitor worker` of app `name` (topic prefix `<name>.crm.`); the
    caller's KPI_* variables are dropped so nothing leaks in from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    env |= {
        "KPI_APP_ID": name,
        "KPI_TOPIC_PREFIX": f"{name}.crm.",
        "KPI_KAFKA_BOOTSTRAP": bootstrap,
        "KPI_REDIS_URL": redis_url,
        "KPI_PARTITIONS": str(partitions),
        "KPI_CLOCK": clock,
        "KPI_LOG_LEVEL": "warning",
        "KPI_DATA_DIR": str(data_dir or Path("/tmp") / name),
        "KPI_RULES": str(rules or REPO / "kpi_rules" / "rules.yaml"),
    }
    if batch is not None:
        env["KPI_BATCH_MAX_EVENTS"] = str(batch)
    return env | (extra or {})


@dataclass
class Worker:
    """One `kpi-monitor worker` process (its own process group)."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float  # time.perf_counter() just before the process was created
    ready_after: float | None = None  # seconds from creation to the first /readyz 200

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> None:
        """Raise (with the log's tail) when the process has exited."""
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"worker {self.pid} exited with {self.proc.returncode}; log tail:\n{tail}")

    def status(self) -> dict[str, Any]:
        return dict(get_json(self.base + "/status"))

    def processed(self) -> int:
        """Events this worker has finished with: applied, found duplicate, or rejected at ingest."""
        status = self.status()
        return int(status["applied"] + status["duplicates"] + status["ingest"]["rejected"])

    def ready(self) -> bool:
        self.alive()
        return http_get(self.base + "/readyz", timeout=5)[0] == 200

    def wait_ready(self, timeout: float = 180.0, interval: float = 0.05) -> float:
        """Seconds from process creation until `/readyz` answers 200."""
        wait_for(self.ready, timeout, interval, f"worker {self.pid} /readyz 200")
        self.ready_after = time.perf_counter() - self.started
        return self.ready_after

    def wait_processed(self, total: int, timeout: float, interval: float = 0.1) -> None:
        def done() -> bool:
            self.alive()
            return self.processed() >= total

        wait_for(done, timeout, interval, f"worker {self.pid} processing {total} events")

    def rss_mib(self) -> float | None:
        return rss_mib(self.pid)

    def stop(self) -> int | None:
        return stop_group(self.proc, signal.SIGTERM, grace=60.0)

    def kill(self) -> None:
        """SIGKILL the whole process group (no flush, no goodbye to the broker)."""
        _signal_group(self.proc, signal.SIGKILL)
        self.proc.wait(30)
        _LIVE.pop(self.pid, None)


@dataclass
class Deployment:
    """One isolated deployment on the shared stack: app id = `name`, topics `<name>.crm.*`."""

    name: str
    bootstrap: str
    redis_url: str
    workdir: Path
    partitions: int = 4
    clock: str = "event"
    rules: Path | None = None
    batch: int | None = None

    @property
    def prefix(self) -> str:
        return f"{self.name}.crm."

    @property
    def env(self) -> dict[str, str]:
        return worker_env(
            self.name,
            self.bootstrap,
            self.redis_url,
            partitions=self.partitions,
            clock=self.clock,
            rules=self.rules,
            batch=self.batch,
            data_dir=self.workdir / "data",
        )

    def start_worker(self, port: int | None = None) -> Worker:
        port = port or free_port()
        log = self.workdir / f"{self.name}-worker.log"
        started = time.perf_counter()
        proc = spawn(
            [sys.executable, "-m", "kpi_monitor.cli", "worker", "--web-port", str(port)], self.env, log
        )
        return Worker(proc, port, log, started)

    def cli(self, *args: str, log_name: str = "cli") -> subprocess.Popen[bytes]:
        """A `kpi-monitor` command with this deployment's settings, in its own process group."""
        log = self.workdir / f"{self.name}-{log_name}.log"
        return spawn([sys.executable, "-m", "kpi_monitor.cli", *args], self.env, log)

    def cleanup(self, keep: bool = False) -> None:
        """Delete this deployment's topics and Redis keys (its name is unique to this run)."""
        if keep:
            return
        try:
            # Its own topics, Faust's internal ones, and those of any app reading them (the Quix peer
            # names its repartition and changelog topics after the source topics).
            asyncio.run(delete_topics(self.bootstrap, lambda topic: self.name in topic))
        except Exception as exc:  # cleanup must not hide the figures
            say(f"cleanup: topics of {self.name} not deleted: {exc}")
        try:
            RedisProbe(self.redis_url).delete_app(self.name)
        except Exception as exc:
            say(f"cleanup: Redis keys of {self.name} not deleted: {exc}")


def unique_name(kind: str, token: str) -> str:
    """An app id / topic prefix unique to this run and section (Kafka and Faust accept it)."""
    return f"bench-{token}-{kind}-{uuid.uuid4().hex[:4]}"


# --------------------------------------------------------------------------- Redis


class RedisProbe:
    """Read-only figures from the state store (plus deletion of a finished benchmark's keys)."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def version(self) -> str:
        return str(self.client.info("server")["redis_version"])

    def data_keys(self, app_id: str, partitions: int) -> list[str]:
        from streams.store.keys import data_key

        return [data_key(app_id, TABLE_NAME, p) for p in range(partitions)]

    def state_keys(self, app_id: str, partitions: int) -> int:
        """How many state parts (store keys) the app holds in Redis: HLEN of its partition hashes."""
        pipe = self.client.pipeline(transaction=False)
        for key in self.data_keys(app_id, partitions):
            pipe.hlen(key)
        return int(sum(pipe.execute()))

    def state_bytes(self, app_id: str, partitions: int) -> int:
        """Redis' own accounting of the app's state hashes (MEMORY USAGE ... SAMPLES 0)."""
        total = 0
        for key in self.data_keys(app_id, partitions):
            total += int(self.client.memory_usage(key, samples=0) or 0)
        return total

    def part_sizes(self, app_id: str, partitions: int) -> dict[str, tuple[int, int, int]]:
        """kind of part (b|slot, b|day, ..., d, s, t, m) -> (parts, key + value bytes, items), by
        HSCAN; items are the event ids held for `s` (seen-id chunks), else the parts."""
        from kpi_core.codec import split_store_key

        out: dict[str, list[int]] = {}
        for key in self.data_keys(app_id, partitions):
            for name, value in self.client.hscan_iter(key, count=5000):
                _, part = split_store_key(name)
                tag = part.split("|", 2)
                kind = "|".join(tag[:2]) if tag[0] == "b" else tag[0]
                entry = out.setdefault(kind, [0, 0, 0])
                entry[0] += 1
                entry[1] += len(name) + len(value)
                entry[2] += len(orjson.loads(value)) if kind == "s" else 1
        return {kind: (count, size, items) for kind, (count, size, items) in sorted(out.items())}

    def delete_app(self, app_id: str) -> int:
        from streams.store.keys import escape_key_component

        pattern = f"kpi:{{{escape_key_component(app_id)}:*"
        deleted = 0
        for key in list(self.client.scan_iter(match=pattern, count=1000)):
            deleted += int(self.client.unlink(key))
        return deleted


# --------------------------------------------------------------------------- Kafka


async def delete_topics(bootstrap: str, wanted: Callable[[str], bool]) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if wanted(t)]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


async def end_offsets_total(bootstrap: str, topics: Iterable[str], partitions: int) -> int:
    """Messages ever written to `topics` (sum of their partitions' end offsets)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(t, p) for t in topics for p in range(partitions)])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def ensure_contract_topics(bootstrap: str, prefix: str, partitions: int) -> None:
    from streams.settings import Settings
    from streams.topics import ensure_topics

    await ensure_topics(Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, partitions=partitions))


def topic_of(event: dict[str, Any]) -> str:
    return TOPICS[str(event["type"]).split(".")[0]]


async def produce(bootstrap: str, prefix: str, events: list[bytes], partitions: int) -> None:
    """Produce encoded events to the contract topics of `prefix` as fast as possible (targets keyed
    for the compacted topic), creating the topics first; returns once all are acknowledged."""
    from aiokafka import AIOKafkaProducer

    from kpi_monitor.simulate import key_for

    await ensure_contract_topics(bootstrap, prefix, partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        for raw in events:
            event = orjson.loads(raw)
            await producer.send(prefix + topic_of(event), raw, key=key_for(event))
        await producer.flush()
    finally:
        await producer.stop()


# --------------------------------------------------------------------------- paced live traffic

_ID = "@@ID@@"
_TS = "@@TS@@"
_HEAD = b'{"event_id":"'


_CYCLE = "~C~"  # in every id of a template; replaced by a token unique to the run and the cycle
# A generated event with its time left open, `_HEAD + id + mid + occurred_at + tail` with every
# `_CYCLE` replaced: (contract topic suffix, event id, mid, tail). Plain tuples: pickled for the
# producer process.
Template = tuple[str, bytes, bytes, bytes]


def live_templates(count: int, reps: int, seed: int = 7) -> list[Template]:
    """`count` realistic activity events (visits, deal funnels, quotes) of `reps` reps from the
    simulator's generator, to be stamped with the wall clock when they are produced. Their event,
    deal, visit and quote ids carry `_CYCLE`, so each pass over the templates is a new set of
    events and deals (a deal never collects the events of many passes)."""
    from kpi_monitor.traffic import TrafficGenerator
    from kpi_rules import load_rules

    gen = TrafficGenerator(load_rules(REPO / "kpi_rules" / "rules.yaml"), reps=reps, seed=seed)
    at = datetime.now(UTC)
    out: list[Template] = []
    while len(out) < count:
        event = gen.next_activity(at, at)
        if event is None:
            continue
        event_id = f"{_CYCLE}-{event.pop('event_id')}"
        for name in ("deal_id", "visit_id", "quote_id"):
            if name in event:
                event[name] = f"{_CYCLE}-{event[name]}"
        raw = orjson.dumps({"event_id": _ID, **event, "occurred_at": _TS})
        head, _, rest = raw.partition(_ID.encode())
        mid, _, tail = rest.partition(_TS.encode())
        assert head == _HEAD, head
        out.append((topic_of(event), event_id.encode(), mid, tail))
    return out


@dataclass
class PacedSpec:
    """What the paced producer process does (written as JSON for `harness.py paced`)."""

    bootstrap: str
    prefix: str
    templates: str  # pickle of list[Template]
    rate: float  # events per second
    seconds: float
    id_prefix: str  # with the pass number, replaces `_CYCLE`: ids unique across passes and runs
    progress: str  # JSON file rewritten about every 0.25 s
    partitions: int = 4
    tick_s: float = 0.005


def stamp() -> bytes:
    return datetime.now(UTC).isoformat(timespec="milliseconds").encode()


async def paced_produce(spec: PacedSpec) -> dict[str, Any]:
    """Produce templates at `spec.rate` for `spec.seconds`, stamped with the wall clock at the
    send, through aiokafka batches (one per topic partition per tick: no per-message send cost)."""
    from aiokafka import AIOKafkaProducer

    with open(spec.templates, "rb") as handle:
        templates: list[Template] = pickle.load(handle)
    producer = AIOKafkaProducer(
        bootstrap_servers=spec.bootstrap, linger_ms=5, max_batch_size=1024 * 1024, acks=1
    )
    await producer.start()
    n = len(templates)
    id_prefix = spec.id_prefix.encode()
    marker = _CYCLE.encode()
    acked = 0
    failed = 0
    sent = 0
    progress = Path(spec.progress)
    pending: set[asyncio.Future[Any]] = set()

    def on_done(count: int) -> Callable[[asyncio.Future[Any]], None]:
        def done(future: asyncio.Future[Any]) -> None:
            nonlocal acked, failed
            pending.discard(future)
            if future.cancelled() or future.exception() is not None:
                failed += count
            else:
                acked += count

        return done

    def write(final: bool = False) -> None:
        doc = {
            "t": time.time(),
            "sent": sent,
            "acked": acked,
            "failed": failed,
            "rate": spec.rate,
            "final": final,
        }
        tmp = progress.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, progress)

    loop_start = time.monotonic()
    last_write = 0.0
    behind_max = 0
    try:
        while True:
            now = time.monotonic()
            elapsed = now - loop_start
            if elapsed >= spec.seconds:
                break
            due = int(spec.rate * elapsed) - sent
            behind_max = max(behind_max, due)
            due = min(due, max(int(spec.rate * 0.1), 1))  # never a burst of more than 100 ms
            if due > 0:
                ts = stamp()
                batches: dict[tuple[str, int], Any] = {}
                counts: dict[tuple[str, int], int] = {}
                for i in range(sent, sent + due):
                    topic, event_id, mid, tail = templates[i % n]
                    token = b"%s%d" % (id_prefix, i // n)
                    value = b"".join((_HEAD, event_id, mid, ts, tail)).replace(marker, token)
                    key = (spec.prefix + topic, i % spec.partitions)
                    batch = batches.get(key)
                    if batch is None:
                        batch = batches[key] = producer.create_batch()
                        counts[key] = 0
                    if batch.append(key=None, value=value, timestamp=None) is None:
                        future = await producer.send_batch(batch, key[0], partition=key[1])
                        pending.add(future)
                        future.add_done_callback(on_done(counts[key]))
                        batch = batches[key] = producer.create_batch()
                        counts[key] = 0
                        batch.append(key=None, value=value, timestamp=None)
                    counts[key] += 1
                for key, batch in batches.items():
                    future = await producer.send_batch(batch, key[0], partition=key[1])
                    pending.add(future)
                    future.add_done_callback(on_done(counts[key]))
                sent += due
            if now - last_write >= 0.25:
                write()
                last_write = now
            next_tick = loop_start + (math.floor(elapsed / spec.tick_s) + 1) * spec.tick_s
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        if pending:
            await asyncio.wait(list(pending), timeout=60)
    finally:
        await producer.stop()
    write(final=True)
    return {"sent": sent, "acked": acked, "failed": failed, "behind_max": behind_max}


def start_paced(spec: PacedSpec, log: Path) -> subprocess.Popen[bytes]:
    spec_file = Path(spec.progress).with_suffix(".spec.json")
    spec_file.write_text(json.dumps(asdict(spec)))
    return spawn([sys.executable, str(Path(__file__).resolve()), "paced", str(spec_file)], None, log)


def read_progress(path: Path) -> dict[str, Any]:
    try:
        return dict(orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError):
        return {}


# --------------------------------------------------------------------------- machine


def _run(command: Sequence[str]) -> str:
    try:
        return subprocess.run(
            list(command), cwd=REPO, capture_output=True, text=True, timeout=30
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


def machine(bootstrap: str, redis_url: str) -> Machine:
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


# --------------------------------------------------------------------------- statistics and tables


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def slope(points: Iterable[tuple[float, float]]) -> float:
    """Least-squares slope dy/dx of (x, y) points (0.0 with fewer than two distinct x)."""
    pts = list(points)
    if len(pts) < 2:
        return 0.0
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    align: str = ""  # one char per column: l or r (default: first left, others right)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        align = self.align or "l" + "r" * (len(self.headers) - 1)
        rule = ["---:" if a == "r" else "---" for a in align]
        lines = ["| " + " | ".join(self.headers) + " |", "|" + "|".join(rule) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def num(value: float | None, digits: int = 0) -> str:
    """A figure with thousands separators ('-' when missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def ratio(value: float | None, reference: float | None, digits: int = 2) -> str:
    if value is None or not reference:
        return "-"
    return f"{value / reference:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) == 2 and args[0] == "paced":
        spec = PacedSpec(**json.loads(Path(args[1]).read_text()))
        result = asyncio.run(paced_produce(spec))
        print(json.dumps(result))
        return 0
    print("usage: harness.py paced SPEC.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
