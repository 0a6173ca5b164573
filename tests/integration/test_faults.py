"""Faults: the worker survives a Redis outage and a Kafka broker restart under load, by itself,
and ends with exactly the figures of `kpi-monitor report`: nothing lost, nothing counted twice."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson

from tests.integration.workers import (
    DedicatedKafka,
    DedicatedRedis,
    Deployment,
    api_mismatches,
    eventually,
    input_end_offsets,
    log_tail,
    publisher,
    publisher_log,
    report,
    report_reps,
    sample,
    simulate_file,
    stop_process,
    wait_all_handled,
)


def _say(message: str) -> None:
    print(f"[fault] {message}", flush=True)


def _exact(worker: object, document: dict, reps: list[str], timeout: float = 60.0) -> None:
    def check() -> bool:
        problems = api_mismatches(worker, document, ("month", "day"), reps)  # type: ignore[arg-type]
        assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:5])
        return True

    eventually(check, timeout=timeout, interval=2.0)


def test_redis_outage_under_load(kafka_bootstrap: str, tmp_path: Path) -> None:
    redis = DedicatedRedis(tmp_path / "redis").start()
    pub = None
    worker = None
    try:
        deployment = Deployment(kafka_bootstrap, redis.url, tmp_path)
        path = tmp_path / "events.jsonl"
        lines = simulate_file(deployment, path, 4000, days=20, reps=30, per_hour=150, seed=21)
        document = report(deployment, path)
        reps = report_reps(document)
        worker = deployment.worker().start()
        worker.wait_ready()
        started = time.monotonic()
        pub = publisher(deployment, path, rate=100)  # about 40 s of traffic
        time.sleep(8.0)
        before = sample(worker.metrics(), "kpi_events_applied_total")
        redis.stop()  # SIGTERM: AOF fsynced, process gone, port closed
        outage_started = time.monotonic()
        _say(
            f"Redis outage: redis-server pid {redis.last_pid} stopped (SIGTERM, port {redis.port} "
            f"closed) {outage_started - started:.1f}s into publishing, {before:.0f} events applied"
        )

        def unhealthy() -> bool:
            assert worker.alive(), f"worker died during the Redis outage:\n{worker.log_tail()}"
            status, body = worker.get("/readyz")
            ready = orjson.loads(body)
            assert status == 503 and ready["store_healthy"] is False, (status, ready)
            assert sample(worker.metrics(), "kpi_store_healthy") == 0
            return True

        eventually(unhealthy, timeout=30, interval=1.0)
        _say(
            f"during the outage ({time.monotonic() - outage_started:.1f}s in): worker alive, "
            "/readyz 503 with store_healthy=false, kpi_store_healthy 0"
        )
        applied_during: list[float] = []
        while time.monotonic() - outage_started < 60.0:
            assert worker.alive(), f"worker died during the Redis outage:\n{worker.log_tail()}"
            status, _ = worker.get("/readyz")
            assert status == 503, "ready while Redis is down"
            applied_during.append(sample(worker.metrics(), "kpi_events_applied_total"))
            time.sleep(5.0)
        _say(
            f"outage held {time.monotonic() - outage_started:.1f}s; worker alive and not ready "
            f"throughout; applied counter during outage {applied_during[0]:.0f} -> "
            f"{applied_during[-1]:.0f} (paused, not dropped)"
        )
        assert applied_during[-1] - applied_during[0] <= 2 * 200, "batches acked while Redis down"
        redis.start()
        _say(f"Redis restarted (pid {redis.last_pid}) on port {redis.port} with the same AOF dir")
        assert pub.wait(120) == 0, log_tail(publisher_log(deployment))
        worker.wait_ready(timeout=60)
        recovered = time.monotonic() - outage_started - 60.0
        wait_all_handled([worker], len(lines), timeout=90)
        _exact(worker, document, reps)
        metrics = worker.metrics()
        applied = sample(metrics, "kpi_events_applied_total")
        duplicates = sample(metrics, "kpi_events_duplicate_total")
        assert sample(metrics, "kpi_store_healthy") == 1
        assert worker.alive()
        _say(
            f"after restart: ready again {recovered:.1f}s after Redis came back; all {len(lines)} "
            f"events handled ({applied:.0f} applied, {duplicates:.0f} duplicates); /kpis month "
            f"and day of all {len(reps)} reps equal the report; kpi_store_healthy 1"
        )
    finally:
        if pub is not None:
            stop_process(pub)
        if worker is not None:
            worker.stop()
        redis.stop()


def test_kafka_broker_restart_under_load(redis_url: str, tmp_path: Path) -> None:
    kafka = DedicatedKafka(tmp_path / "kafka-dev").start()
    pub = None
    worker = None
    try:
        deployment = Deployment(kafka.bootstrap, redis_url, tmp_path)
        path = tmp_path / "events.jsonl"
        lines = simulate_file(deployment, path, 3000, days=20, reps=30, per_hour=150, seed=22)
        document = report(deployment, path)
        reps = report_reps(document)
        worker = deployment.worker().start()
        worker.wait_ready(timeout=120)
        pub = publisher(deployment, path, rate=150)  # about 20 s of traffic
        time.sleep(5.0)
        before = sample(worker.metrics(), "kpi_events_applied_total")
        pid = kafka.pid
        kafka.stop()
        down_at = time.monotonic()
        _say(
            f"Kafka broker restart: broker pid {pid} stopped (SIGTERM) mid-stream, "
            f"{before:.0f} events applied so far"
        )
        time.sleep(5.0)
        assert worker.alive(), f"worker died with the broker down:\n{worker.log_tail()}"
        time.sleep(max(0.0, 15.0 - (time.monotonic() - down_at)))
        assert worker.alive(), f"worker died with the broker down:\n{worker.log_tail()}"
        first_rc = pub.poll()
        stopped_for = time.monotonic() - down_at
        kafka.start()
        _say(
            f"broker process gone {stopped_for:.1f}s, restarted (pid {kafka.pid}), answering again "
            f"{time.monotonic() - down_at:.1f}s after the stop; worker alive throughout (not "
            f"restarted); publisher {'still running' if first_rc is None else f'exit {first_rc}'}"
        )
        try:
            first_rc = pub.wait(20)
            outcome = f"exit {first_rc}"
        except subprocess.TimeoutExpired:  # its producer did not get over the restart: stop it
            stop_process(pub)
            outcome = "still blocked 20s after the broker was back: stopped"
        said = log_tail(publisher_log(deployment), 1)
        outcome += f" (its last line: {said[:160]})"
        # Whatever the first publisher could not get acknowledged: publish the whole file again
        # (event_id dedupe makes that exact).
        done = deployment.cli("publish", str(path))
        _say(f"first publisher {outcome}; whole file republished: {done.stderr.strip()[-100:]}")
        total = input_end_offsets(deployment)
        assert total >= len(lines)  # the republish alone holds every event
        handled = wait_all_handled([worker], total, timeout=120)
        _exact(worker, document, reps, timeout=60)
        metrics = worker.metrics()
        applied = sample(metrics, "kpi_events_applied_total")
        duplicates = sample(metrics, "kpi_events_duplicate_total")
        assert worker.alive()
        distinct = len(lines) - sum(document["rejected"].values())
        assert applied == distinct, f"{applied} applied, {distinct} distinct valid events"
        _say(
            f"after restart: same worker process (pid {worker.proc.pid if worker.proc else '?'}) "
            f"reconnected by itself; {total} messages in the input topics, {handled:.0f} handled "
            f"({applied:.0f} applied = distinct events, {duplicates:.0f} duplicates ignored); "
            f"/kpis month and day of all {len(reps)} reps equal the report"
        )
    finally:
        if pub is not None:
            stop_process(pub)
        if worker is not None:
            worker.stop()
        kafka.stop()


def test_ingest_rewind_retries_while_broker_down() -> None:
    """A failed ingest batch is read again from the committed offsets. With the broker down,
    reading those offsets fails too: the rewind must retry (not end the ingest loop), and a
    partition without a committed offset goes back to the beginning (not past the batch)."""
    import asyncio

    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaConnectionError
    from prometheus_client import CollectorRegistry

    from kpi_rules import load_rules
    from streams.ingest import IngestService
    from streams.metrics import KpiMetrics
    from streams.settings import Settings
    from tests.integration.workers import REPO

    committed_tp, fresh_tp = TopicPartition("crm.deals", 0), TopicPartition("crm.deals", 1)

    class BrokerDownTwice:
        def __init__(self) -> None:
            self.failures = 2
            self.seeks: dict[TopicPartition, object] = {}

        def assignment(self) -> set[TopicPartition]:
            return {committed_tp, fresh_tp}

        async def committed(self, tp: TopicPartition) -> int | None:
            if self.failures:
                self.failures -= 1
                raise KafkaConnectionError("Connection at 127.0.0.1:9092 closed")
            return 5 if tp == committed_tp else None

        def seek(self, tp: TopicPartition, offset: int) -> None:
            self.seeks[tp] = offset

        async def seek_to_beginning(self, *tps: TopicPartition) -> None:
            self.seeks.update({tp: "beginning" for tp in tps})

    async def run() -> BrokerDownTwice:
        ingest = IngestService(
            Settings(), load_rules(REPO / "kpi_rules" / "rules.yaml"), KpiMetrics(CollectorRegistry())
        )
        fake = BrokerDownTwice()
        ingest.consumer = fake  # type: ignore[assignment]
        await asyncio.wait_for(ingest._rewind(), timeout=10)
        return fake

    fake = asyncio.run(run())
    assert fake.failures == 0
    assert fake.seeks == {committed_tp: 5, fresh_tp: "beginning"}
    _say("ingest rewind with the broker unreachable twice: retried, then sought back (no skip)")
