"""Integration-test helpers on top of `kpi_testkit`: event files, report comparison, raw Kafka, faults."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import orjson

from kpi_core.events import EVENT_TYPES
from kpi_core.periods import PERIOD_KINDS
from kpi_testkit import Deployment, Metrics, WorkerProcess, eventually, free_port, sample

REPO = Path(__file__).resolve().parents[2]
#: Where simulated histories end (a Wednesday afternoon in mid-month). The tests that use them run
#: event-clock workers, for which a fixed past is as good as any.
HISTORY_END = "2026-11-18T16:30:00+00:00"


# --------------------------------------------------------------------------- event files, report,
# raw Kafka access and report comparison (used by the streaming exactness / recovery tests)

# The contract's names, from the one place the code defines them.
CONTRACT_TYPES: tuple[str, ...] = EVENT_TYPES


def simulate_file(
    deployment: Deployment,
    path: Path,
    count: int,
    *,
    days: int = 20,
    reps: int = 30,
    scenario: str = "steady",
    per_hour: float = 40.0,
    seed: int = 1,
    until: str = HISTORY_END,
) -> list[bytes]:
    """Write `count` simulated events to `path` (JSONL) and return its lines (without newline):
    the first `count` of `days` of business-hours history up to `until`, at about `per_hour`
    events an hour. A fixed `until` makes the file the same whatever day the test runs (cut
    where the history ends at wall-clock now, it sometimes ended in a month's targets or a
    Monday's spend, whose periods the tests did not take as the current ones)."""
    deployment.cli(
        "simulate",
        "--output",
        str(path),
        "--count",
        str(count),
        "--days",
        str(days),
        "--reps",
        str(reps),
        "--scenario",
        scenario,
        "--history-per-hour",
        str(per_hour),
        "--seed",
        str(seed),
        "--until",
        until,
    )
    lines = read_lines(path)
    # Past the history the simulator stamps live events with the wall clock: weeks after
    # `until`, which would move an event-clock worker to today. The history must suffice.
    assert len(lines) == count, f"{count} events asked, the history has {len(lines)}: raise days or per_hour"
    newest = max(datetime.fromisoformat(orjson.loads(line)["occurred_at"]) for line in lines)
    assert newest <= datetime.fromisoformat(until), (newest, until)
    return lines


def clear_of_midnight(zone: tzinfo, minutes: float) -> None:
    """A wall-clock test that checks the current day's or month's figures must not run across
    the business calendar's midnight (a new day, and maybe week, month or year, would start
    empty): started less than `minutes` before it, it waits until just after it."""
    now = datetime.now(UTC)
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), dt_time(), tzinfo=zone)
    left = (midnight.astimezone(UTC) - now).total_seconds()
    if left < minutes * 60:
        print(f"waiting {left + 1:.0f} s for midnight in {zone} to pass")
        time.sleep(left + 1)


def read_lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def report(deployment: Deployment, path: Path) -> dict[str, Any]:
    """The embedded report of an event file (same rules, event clock): the expected figures."""
    done = deployment.cli("report", str(path), "--format", "json", "--clock", "event")
    return dict(orjson.loads(done.stdout))


def report_rows(document: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The report's period rows by (rep, period kind), oldest first."""
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in document["periods"]:
        rows.setdefault((row["rep_id"], row["period"]), []).append(row)
    for value in rows.values():
        value.sort(key=lambda r: r["start"])
    return rows


def report_reps(document: dict[str, Any]) -> list[str]:
    return sorted({row["rep_id"] for row in document["periods"]})


def api_mismatches(
    worker: WorkerProcess,
    document: dict[str, Any],
    kinds: tuple[str, ...] = PERIOD_KINDS,
    reps: list[str] | None = None,
    now_exact: bool = True,
) -> list[str]:
    """Where `/kpis/reps/{rep}?period=K` of `worker` differs from the report (empty = equal):
    `history` must equal the report's rows of that rep and kind, `pipeline` its pipeline entry.
    `now_exact=False` ignores `projected_attainment_pct` (the only value that depends on the
    exact "now", to the second, in month and longer periods) for when the answering worker's
    event clock may lag the newest event of the whole file."""
    rows = report_rows(document)
    pipes = {p["rep_id"]: p for p in document["pipeline"]}
    problems: list[str] = []
    for rep in reps if reps is not None else report_reps(document):
        for kind in kinds:
            status, body = worker.kpis(rep, kind)
            if status != 200:
                problems.append(f"{rep} {kind}: HTTP {status} {body!r:.200}")
                continue
            # (the report also lists future periods a target is set for; the API's history ends
            # at the current period)
            current = body["current"]["start"]
            expected = [row for row in rows.get((rep, kind), []) if row["start"] <= current]
            history = body["history"]
            if not now_exact:
                expected, history = _without_projection(expected), _without_projection(history)
            if history != expected:
                difference = _first_difference(history, expected)
                problems.append(f"{rep} {kind}: history differs: {difference}")
            pipe = pipes.get(rep)
            if pipe is not None:
                got = {k: body["pipeline"].get(k) for k in pipe}
                if got != pipe:
                    problems.append(f"{rep} {kind}: pipeline {got} != report {pipe}")
            elif body["pipeline"]["open_deals"] != 0:
                problems.append(f"{rep} {kind}: pipeline {body['pipeline']} but none in report")
    return problems


def _without_projection(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        row | {"derived": {k: v for k, v in row["derived"].items() if k != "projected_attainment_pct"}}
        for row in rows
    ]


def _first_difference(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str:
    if len(got) != len(expected):
        return (
            f"{len(got)} rows (starts {[r['start'] for r in got]}) vs report {len(expected)} "
            f"(starts {[r['start'] for r in expected]})"
        )
    for a, b in zip(got, expected, strict=True):
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            return f"start {b['start']}: " + ", ".join(
                f"{k}: api={a.get(k)!r} report={b.get(k)!r}" for k in keys
            )
    return "?"


def applied_total(metrics: Metrics) -> float:
    """Events a worker has finished with: applied, ignored as duplicates, or rejected."""
    return (
        sample(metrics, "kpi_events_applied_total")
        + sample(metrics, "kpi_events_duplicate_total")
        + sample(metrics, "kpi_events_rejected_total")
    )


def wait_all_handled(
    workers: list[WorkerProcess],
    expected: int,
    timeout: float = 90.0,
    settle: list[WorkerProcess] | None = None,
) -> float:
    """Wait until the workers together have applied, ignored or rejected `expected` events, and
    the customer side of `settle` (default: the same workers; give every live worker of the
    deployment when they share the partitions) has caught up."""
    seen = [0.0]

    def done() -> bool:
        seen[0] = sum(applied_total(w.metrics()) for w in workers)
        return seen[0] >= expected

    try:
        eventually(done, timeout=timeout)
        eventually(lambda: customers_settled(settle or workers), timeout=timeout)
    except AssertionError:
        raise AssertionError(
            f"only {seen[0]:.0f} of {expected} events handled in {timeout}s, or the customer side "
            "not caught up; log:\n" + "\n".join(w.log_tail(30) for w in workers)
        ) from None
    return seen[0]


def customers_settled(workers: list[WorkerProcess]) -> bool:
    """The customer side has handled every fact the ingest routed to it, and the rep side has
    received every summary it sent (the figures that depend on customers are final)."""
    totals = dict.fromkeys(
        (
            "kpi_customer_facts_routed_total",
            "kpi_customer_facts_total",
            "kpi_customer_summaries_sent_total",
            "kpi_customer_summaries_received_total",
        ),
        0.0,
    )
    for worker in workers:
        metrics = worker.metrics()
        for name in totals:
            totals[name] += sample(metrics, name) or 0.0
    routed, handled, sent, received = totals.values()
    return handled >= routed and received >= sent


def produce_raw(deployment: Deployment, messages: list[tuple[str, bytes]]) -> list[Any]:
    """Send raw bytes to topics (names without the deployment prefix, e.g. `visits`), in order;
    returns each record's metadata (topic, partition, offset)."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def send() -> list[Any]:
        producer = AIOKafkaProducer(
            bootstrap_servers=deployment.kafka_bootstrap,
            acks="all",
            max_request_size=4 * 1024 * 1024,
        )
        await producer.start()
        try:
            return [await producer.send_and_wait(deployment.topic(topic), value) for topic, value in messages]
        finally:
            await producer.stop()

    return asyncio.run(send())


def consume_topic(
    deployment: Deployment, topic: str, expected: int | None = None, timeout: float = 60.0
) -> list[Any]:
    """Read a deployment topic (name without prefix) from the start: until `expected` records
    arrived (or the timeout passed) and 2 s more, to notice extra records; or, with `expected`
    None, up to the end offsets at the time of the call."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=deployment.kafka_bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        records: list[Any] = []
        try:
            name = deployment.topic(topic)
            # Every contract topic (dead-letter included) has the deployment's partition count.
            tps = [TopicPartition(name, p) for p in range(deployment.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            deadline = time.monotonic() + timeout
            grace: float | None = None
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for items in batch.values():
                    records.extend(items)
                if expected is None:
                    positions = {tp: await consumer.position(tp) for tp in tps}
                    if all(positions[tp] >= ends[tp] for tp in tps):
                        break
                elif len(records) >= expected:
                    grace = grace or time.monotonic() + 2.0
                    if time.monotonic() >= grace:
                        break
        finally:
            await consumer.stop()
        return records

    return asyncio.run(read())


ACTIVITY = ("visits", "deals_created", "deals_won", "deals_lost", "quotes_sent")


def current_start(document: dict[str, Any], kind: str) -> str:
    """The start of the report's current period of `kind`: the newest with activity (rows of
    later months, quarters or years may hold only the targets a plan sets ahead)."""
    return max(
        r["start"] for r in document["periods"] if r["period"] == kind and any(r[k] for k in ACTIVITY)
    )


def sales_mismatches(
    metrics: Metrics,
    document: dict[str, Any],
    kinds: tuple[str, ...] = ("day", "week", "month"),
    kpis: tuple[str, ...] = ("visits", "deals_won", "quotes_sent", "revenue"),
) -> list[str]:
    """Where the `sales_<kpi>{window="current"}` gauges of one worker that owns every rep differ
    from the report's rows of the current period (the newest period of each kind)."""
    rows = {(r["rep_id"], r["period"], r["start"]): r for r in document["periods"]}
    problems = []
    for kind in kinds:
        current = current_start(document, kind)
        for rep in report_reps(document):
            row = rows.get((rep, kind, current))
            for kpi in kpis:
                expected = float(row[kpi]) if row else 0.0
                got = sample(metrics, f"sales_{kpi}", rep=rep, period=kind, window="current")
                if abs(got - expected) > 1e-6 * max(1.0, abs(expected)):
                    problems.append(f"sales_{kpi}{{rep={rep},period={kind}}} {got} != {expected}")
    return problems


# --------------------------------------------------------------------------- fault injection:
# dedicated Redis / Kafka processes a test may stop and restart (never the shared dev stack)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`, of one process we started (by its PID only)."""
    if proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def publisher_log(deployment: Deployment) -> Path:
    return deployment.workdir / f"{deployment.name}-publish.log"


def publisher(deployment: Deployment, path: Path, rate: float = 0.0) -> subprocess.Popen[bytes]:
    """`kpi-monitor publish FILE --rate R` in the background, output to `publisher_log`: a file,
    not a pipe (with the broker down aiokafka logs errors in a loop; a full, unread pipe would
    block the publisher in a write)."""
    with publisher_log(deployment).open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "kpi_monitor.cli", "publish", str(path), "--rate", str(rate)],
            env=deployment.env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class DedicatedRedis:
    """A redis-server of its own on a free port, AOF persistence in `directory`: `stop()` is a
    real outage (SIGTERM: the AOF is fsynced, the process exits, the port closes) and `start()`
    brings it back on the same port with the same data.

    With `snapshots=True` it keeps no AOF: `snapshot(name)` SAVEs an RDB file and keeps a copy,
    and `restore(name)` kills the server (-9) and starts it again from that copy: what a
    restore from a backup, or a failover to a replica that lags, does to the data."""

    def __init__(self, directory: Path, snapshots: bool = False):
        self.directory = directory
        self.snapshots = snapshots
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.last_pid: int | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> DedicatedRedis:
        from kpi_monitor.devstack import redis_ping, require_binary

        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")
        options = f"--port {self.port} --bind 127.0.0.1 --appendonly yes --appendfsync always"
        if self.snapshots:
            options = f"--port {self.port} --bind 127.0.0.1 --appendonly no"
        argv = [require_binary("redis-server"), *options.split(), "--dir", str(self.directory)]
        self.proc = subprocess.Popen(
            [*argv, "--save", "", "--daemonize", "no"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.last_pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while not redis_ping("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"redis-server did not start; log:\n{self._log_tail()}")
            time.sleep(0.1)
        return self

    def _log_tail(self) -> str:
        path = self.directory / "redis.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:]) if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def _client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)

    def snapshot(self, name: str) -> int:
        """SAVE the data set now and keep the RDB file as `name`; returns the keys it holds."""
        import shutil

        client = self._client()
        try:
            client.save()
            keys = int(client.dbsize())
        finally:
            client.close()
        shutil.copyfile(self.directory / "dump.rdb", self.directory / f"{name}.rdb")
        return keys

    def restore(self, name: str) -> None:
        """Kill the server (-9: nothing saved) and start it again from snapshot `name`."""
        import shutil

        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        shutil.copyfile(self.directory / f"{name}.rdb", self.directory / "dump.rdb")
        self.start()

    def flushall(self) -> None:
        client = self._client()
        try:
            client.flushall()
        finally:
            client.close()

    def dbsize(self) -> int:
        client = self._client()
        try:
            return int(client.dbsize())
        finally:
            client.close()


class DedicatedKafka:
    """A single-node KRaft Kafka of its own (data dir under `directory`, free broker and
    controller ports), started with kpi_monitor.devstack's Kafka preparation (cached jars)."""

    def __init__(self, directory: Path):
        from kpi_monitor.devstack import DevConfig

        base = DevConfig.from_env(str(directory), env={})
        self.cfg = DevConfig(
            data_dir=directory.absolute(),
            kafka_home=base.kafka_home,
            repo_dir=REPO,
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
        )
        self.argv: list[str] | None = None

    @property
    def bootstrap(self) -> str:
        return self.cfg.kafka_bootstrap

    @property
    def _component(self) -> Any:
        from kpi_monitor.devstack import COMPONENTS

        return next(c for c in COMPONENTS if c.name == "kafka")

    @property
    def pid(self) -> int | None:
        from kpi_monitor.devstack import live_pid

        return live_pid(self.cfg, self._component)

    def start(self) -> DedicatedKafka:
        from kpi_monitor import devstack

        for directory in (self.cfg.data_dir, self.cfg.logs_dir, self.cfg.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if self.argv is None:
            self.argv = devstack.prepare_kafka(self.cfg)  # writes config, formats storage once
        devstack._spawn(self.cfg, self._component, self.argv)
        try:
            devstack._wait_ready(self.cfg, self._component)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        from kpi_monitor import devstack

        pid = self.pid
        if pid is not None:
            devstack._stop_pid(pid, self._component.marker, timeout=30.0)
            devstack.pid_file(self.cfg, "kafka").unlink(missing_ok=True)


def input_end_offsets(deployment: Deployment) -> int:
    """Messages in the deployment's contract input topics (sum of end offsets)."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def ends() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=deployment.kafka_bootstrap)
        await consumer.start()
        try:
            tps = [
                TopicPartition(deployment.topic(name), p)
                for name in ("deals", "visits", "quotes", "targets")
                for p in range(deployment.partitions)
            ]
            return sum((await consumer.end_offsets(tps)).values())
        finally:
            await consumer.stop()

    return asyncio.run(ends())


def delete_records(deployment: Deployment, topic: str, keep_from: float = 1.0) -> dict[int, tuple[int, int]]:
    """Delete the oldest records of a deployment topic (full name) as retention would: in each
    partition, everything before `keep_from` of the way to its end (1.0: all of it). Returns
    partition -> (new earliest offset, end offset)."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

    async def run() -> dict[int, tuple[int, int]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=deployment.kafka_bootstrap)
        admin = AIOKafkaAdminClient(bootstrap_servers=deployment.kafka_bootstrap)
        await consumer.start()
        await admin.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(deployment.partitions)]
            ends = await consumer.end_offsets(tps)
            cut = {tp: int(ends[tp] * keep_from) for tp in tps}
            await admin.delete_records({tp: RecordsToDelete(cut[tp]) for tp in tps if cut[tp] > 0})
            earliest = await consumer.beginning_offsets(tps)
            return {tp.partition: (int(earliest[tp]), int(ends[tp])) for tp in tps}
        finally:
            await admin.close()
            await consumer.stop()

    return asyncio.run(run())
