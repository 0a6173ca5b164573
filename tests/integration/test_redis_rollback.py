"""Redis forgets (restored from an older snapshot, emptied) while workers run, then workers are
killed during more traffic: the figures still equal `kpi-monitor report`, the lost writes are
counted, and what the input topics can no longer give back is reported, not served silently."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import orjson

from kpi_rules.vocabulary import COMPACTED_TOPICS, INPUT_TOPICS
from tests.integration.workers import (
    DedicatedRedis,
    Deployment,
    WorkerProcess,
    api_mismatches,
    consume_topic,
    delete_records,
    eventually,
    log_tail,
    publisher,
    publisher_log,
    read_lines,
    report,
    report_reps,
    sample,
    simulate_file,
    stop_process,
    wait_all_handled,
    write_lines,
)


def _say(message: str) -> None:
    print(f"[rollback] {message}", flush=True)


def _readyz(worker: WorkerProcess) -> dict[str, Any]:
    _, body = worker.get("/readyz")
    return dict(orjson.loads(body))


def _exact(worker: WorkerProcess, document: dict[str, Any], reps: list[str], timeout: float = 120.0) -> None:
    def check() -> bool:
        problems = api_mismatches(worker, document, ("month", "day"), reps)
        assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:5])
        return True

    eventually(check, timeout=timeout, interval=2.0)


def _lost_writes_logged(deployment: Deployment) -> int:
    """'Redis lost writes' lines in every worker log of the deployment (killed ones included)."""
    return sum(
        path.read_text(errors="replace").count("Redis lost writes")
        for path in deployment.workdir.glob(f"{deployment.name}-worker-*.log")
    )


def _publish(deployment: Deployment, path: Path, lines: list[bytes]) -> None:
    write_lines(path, lines)
    deployment.cli("publish", str(path))


def _forget_then_kill(tmp_path: Path, kafka_bootstrap: str, forget: str, seed: int) -> None:
    """Two workers; the first part of the traffic; Redis `forget`s ("restore": back to a
    snapshot taken before the second part, "empty": FLUSHALL) while they run; one is killed at
    once, the other during the third part. Where the parts split is drawn at random (the seed
    is printed): over runs, the rollback lands anywhere in the stream."""
    redis = DedicatedRedis(tmp_path / "redis", snapshots=True).start()
    pub = None
    workers: list[WorkerProcess] = []
    try:
        deployment = Deployment(kafka_bootstrap, redis.url, tmp_path)
        path = tmp_path / "events.jsonl"
        lines = simulate_file(deployment, path, 6000, days=20, reps=30, per_hour=150, seed=seed)
        # KPI_TEST_SPLIT_SEED replays a run's split (its seed is printed).
        split_seed = int(os.environ.get("KPI_TEST_SPLIT_SEED") or random.randrange(1_000_000))
        rng = random.Random(split_seed)
        at = rng.randrange(500, 3500)
        until = rng.randrange(at + 200, 5000)
        _say(f"split seed {split_seed}: snapshot after {at} events, Redis forgets after {until}")
        first, second, third = lines[:at], lines[at:until], lines[until:]
        document = report(deployment, path)
        reps = report_reps(document)
        workers = [deployment.worker().start(), deployment.worker().start()]
        for worker in workers:
            worker.wait_ready(timeout=120)
        _publish(deployment, tmp_path / "first.jsonl", first)
        wait_all_handled(workers, len(first), timeout=120)
        keys = redis.snapshot("after-first")
        _publish(deployment, tmp_path / "second.jsonl", second)
        wait_all_handled(workers, len(first) + len(second), timeout=120)
        time.sleep(1.5)  # the background flushes (the event clock) are in Redis too
        before = redis.dbsize()
        if forget == "restore":
            redis.restore("after-first")
            _say(
                f"Redis killed and started again from the snapshot taken after {len(first)} of "
                f"{len(lines)} events ({keys} keys; it had {before}): the next {len(second)} "
                f"events' writes are gone, while both workers run"
            )
        else:
            redis.flushall()
            _say(f"Redis emptied (FLUSHALL, {before} keys gone) after {len(first) + len(second)} events")
        workers[0].kill9()  # at once: no chance to notice and repair its partitions
        _say("worker 1 killed (-9) right after; a new one started")
        workers[0] = deployment.worker().start()
        survivor = workers[1]

        def survivor_repaired() -> int:
            count = int(_readyz(survivor)["store_rollbacks"])
            assert count > 0
            return count

        repaired = eventually(survivor_repaired, timeout=60)
        _say(f"the running worker found {repaired} partition(s) rolled back and rewrote them from memory")
        workers[0].wait_ready(timeout=120)
        third_path = tmp_path / "third.jsonl"
        write_lines(third_path, third)
        pub = publisher(deployment, third_path, rate=150)  # 1000 to 5500 events: 6 to 37 s
        time.sleep(4.0)
        survivor.kill9()
        _say(f"worker 2 killed (-9) while the last {len(third)} events were being published; restarted")
        workers[1] = deployment.worker().start()
        assert pub.wait(120) == 0, log_tail(publisher_log(deployment))
        for worker in workers:
            worker.wait_ready(timeout=120)
        started = time.monotonic()
        _exact(workers[0], document, reps)
        _exact(workers[1], document, reps)
        counted = sum(sample(w.metrics(), "kpi_store_rollbacks_total") for w in workers)
        logged = _lost_writes_logged(deployment)
        assert logged >= 1
        status = _readyz(workers[0])
        assert status["incomplete"] == {} and status["rebuilding"] == []
        _say(
            f"/kpis month and day of all {len(reps)} reps equal the report through both workers "
            f"({time.monotonic() - started:.1f}s after both were ready); lost writes logged "
            f"{logged} times over all worker processes, kpi_store_rollbacks_total of the live "
            f"workers {counted:.0f}"
        )

    finally:
        if pub is not None:
            stop_process(pub)
        for worker in workers:
            worker.stop()
        redis.stop()


def test_redis_restored_from_an_older_snapshot_while_workers_run(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    _forget_then_kill(tmp_path, kafka_bootstrap, "restore", seed=31)


def test_redis_emptied_while_workers_run(kafka_bootstrap: str, tmp_path: Path) -> None:
    _forget_then_kill(tmp_path, kafka_bootstrap, "empty", seed=32)


def test_rebuild_from_the_input_when_the_routed_topic_lost_its_messages(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Redis emptied and the routed topic's messages deleted (its retention passed): the worker
    reads the input topics again; with their messages all kept, the figures are exact."""
    redis = DedicatedRedis(tmp_path / "redis", snapshots=True).start()
    worker = None
    try:
        deployment = Deployment(kafka_bootstrap, redis.url, tmp_path)
        path = tmp_path / "events.jsonl"
        lines = simulate_file(deployment, path, 3000, days=20, reps=30, per_hour=150, seed=33)
        first, second = lines[:2000], lines[2000:]
        document = report(deployment, path)
        reps = report_reps(document)
        worker = deployment.worker().start()
        worker.wait_ready(timeout=120)
        _publish(deployment, tmp_path / "first.jsonl", first)
        wait_all_handled([worker], len(first), timeout=120)
        worker.stop()
        routed = f"{deployment.name}.events-by-rep"
        kept = delete_records(deployment, routed)
        # The customer side's topic is internal too, with the same retention: emptied as well.
        delete_records(deployment, f"{deployment.name}.events-by-customer")
        redis.flushall()
        _say(
            f"worker stopped; {routed} emptied by retention (earliest, end per partition: "
            f"{kept}); Redis emptied"
        )
        _publish(deployment, tmp_path / "second.jsonl", second)
        worker = deployment.worker().start()
        worker.wait_ready(timeout=180)  # not ready while rebuilding

        def rebuilt() -> dict[str, Any]:
            status = _readyz(worker)
            assert status["last_rebuild"] is not None and status["rebuilding"] == []
            return status

        status = eventually(rebuilt, timeout=120)
        assert status["incomplete"] == {}
        assert status["store_rollbacks"] >= 1  # Kafka said those partitions were processed
        _exact(worker, document, reps)

        def exported() -> bool:  # one series per owned partition, every one 0
            series = [v for (name, _), v in worker.metrics().items() if name == "kpi_state_incomplete"]
            assert len(series) == deployment.partitions and sum(series) == 0, series
            return True

        eventually(exported, timeout=30)
        _say(
            f"rebuilt from the input topics ({status['last_rebuild']}); /kpis month and day of all "
            f"{len(reps)} reps equal the report of all {len(lines)} events; nothing reported incomplete"
        )
    finally:
        if worker is not None:
            worker.stop()
        redis.stop()


def test_state_the_input_cannot_rebuild_is_reported_incomplete(kafka_bootstrap: str, tmp_path: Path) -> None:
    """As above, and the input topics lost their oldest half too: the worker rebuilds what is
    left (equal to the report of those events) and says which partitions and periods may miss
    events, in /readyz, /kpis and kpi_state_incomplete."""
    redis = DedicatedRedis(tmp_path / "redis", snapshots=True).start()
    worker = None
    try:
        deployment = Deployment(kafka_bootstrap, redis.url, tmp_path)
        path = tmp_path / "events.jsonl"
        lines = simulate_file(deployment, path, 2000, days=20, reps=30, per_hour=150, seed=34)
        worker = deployment.worker().start()
        worker.wait_ready(timeout=120)
        deployment.cli("publish", str(path))
        wait_all_handled([worker], len(lines), timeout=120)
        worker.stop()
        delete_records(deployment, f"{deployment.name}.events-by-rep")
        delete_records(deployment, f"{deployment.name}.events-by-customer")  # internal too
        for topic in INPUT_TOPICS:  # targets is compacted: Kafka deletes by key there
            if topic not in COMPACTED_TOPICS:
                delete_records(deployment, deployment.topic(topic), keep_from=0.5)
        redis.flushall()
        left = [
            record.value
            for topic in INPUT_TOPICS
            for record in consume_topic(deployment, topic)
            if record.value is not None
        ]
        remaining = write_lines(tmp_path / "remaining.jsonl", left)
        document = report(deployment, remaining)
        reps = report_reps(document)
        _say(f"input topics keep {len(left)} of {len(lines)} events; routed topic emptied; Redis emptied")
        worker = deployment.worker().start()
        worker.wait_ready(timeout=180)

        def flagged() -> dict[str, Any]:
            status = _readyz(worker)
            assert status["last_rebuild"] is not None and status["incomplete"], status
            return status

        status = eventually(flagged, timeout=120)
        incomplete = status["incomplete"]
        owned = set(orjson.loads(worker.get("/status")[1])["owned_partitions"])
        assert {int(p) for p in incomplete} == owned
        for entry in incomplete.values():
            assert set(entry["periods"]) >= {"day", "week", "month"}

        # The customer side lost its oldest facts too: each of its partitions is flagged as well.
        assert set(status["customers_incomplete"]) == {f"customers-{p}" for p in range(deployment.partitions)}

        def exported() -> bool:  # the gauges are refreshed every KPI_METRICS_INTERVAL_S
            series = {
                dict(labels)["partition"]: value
                for (name, labels), value in worker.metrics().items()
                if name == "kpi_state_incomplete"
            }
            assert sum(v for k, v in series.items() if not k.startswith("customers-")) == len(owned)
            assert sum(v for k, v in series.items() if k.startswith("customers-")) == deployment.partitions
            return True

        eventually(exported, timeout=30)
        status_code, body = worker.kpis(reps[0], "month")
        assert status_code == 200 and body["incomplete"]["last_period"] >= body["history"][-1]["start"]
        _exact(worker, document, reps)  # exactly what the input still holds
        _say(
            f"rebuilt from what the input still holds: /kpis equals the report of those "
            f"{len(read_lines(remaining))} events; partitions {sorted(owned)} reported incomplete "
            f"(before {next(iter(incomplete.values()))['before']}; month periods "
            f"{next(iter(incomplete.values()))['periods']['month']}) in /readyz, /kpis and "
            f"kpi_state_incomplete"
        )
    finally:
        if worker is not None:
            worker.stop()
        redis.stop()
