"""Crashes lose nothing and count nothing twice; a restart recovers its state from Redis and
only processes what arrived since."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from kpi_testkit import Deployment, Metrics, WorkerProcess, eventually, sample
from tests.integration.workers import (
    REPO,
    api_mismatches,
    consume_topic,
    report,
    report_reps,
    sales_mismatches,
    simulate_file,
    wait_all_handled,
    write_lines,
)


def _applied(worker: WorkerProcess) -> str:
    try:
        return f"{sample(worker.metrics(), 'kpi_events_applied_total'):.0f}"
    except (AssertionError, OSError):
        return "?"


def test_kill9_five_times_exact(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path)
    path = tmp_path / "events.jsonl"
    lines = simulate_file(deployment, path, 20_000, days=20, reps=30, per_hour=150, seed=5)
    assert len(lines) == 20_000
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    rng.seed(seed)
    print(f"\nkill schedule seed {seed}")
    # Bad messages spread through the stream: each must reach the dead-letter topic, crashes or
    # not (rejected where the rep's events are applied, and one kind at the ingest).
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="seconds")
    bad = []
    for n in range(120):
        event = orjson.loads(lines[rng.randrange(len(lines))]) | {"event_id": f"bad-{n}"}
        if n % 6 == 5:
            event["notes"] = "x" * 70_000  # too_large, rejected at the ingest
        elif n % 2:
            event["occurred_at"] = event["occurred_at"][:19]  # naive_timestamp
        else:
            event["occurred_at"] = future
        bad.append(orjson.dumps(event))
    for raw in bad:
        lines.insert(rng.randrange(len(lines) + 1), raw)
    write_lines(path, lines)
    document = report(deployment, path)
    reps = report_reps(document)
    assert len(reps) == 30
    assert document["rejected"] == {"future": 60, "naive_timestamp": 40, "too_large": 20}
    worker = deployment.worker().start()
    publisher: subprocess.Popen[bytes] | None = None
    try:
        worker.wait_ready()
        publisher = subprocess.Popen(
            [sys.executable, "-m", "kpi_monitor.cli", "publish", str(path), "--rate", "400"],
            env=deployment.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        kills_while_publishing = 0
        for kill in range(1, 6):
            if kill == 3:
                # Once during start-up: before the worker has even finished joining / loading.
                time.sleep(rng.uniform(1.0, 5.0))
            else:
                worker.wait_ready()
                time.sleep(rng.uniform(0.3, 4.0))
            publishing = publisher.poll() is None
            kills_while_publishing += publishing
            applied = _applied(worker)
            worker.kill9()
            print(f"kill -9 #{kill}: {applied} applied since its start; publishing: {publishing}")
            worker = deployment.worker().start()
        assert publisher.wait(120) == 0, publisher.stderr.read() if publisher.stderr else ""
        assert kills_while_publishing >= 3, "the kills should land while events are arriving"
        worker.wait_ready()
        started = time.monotonic()

        def exact() -> bool:
            problems = api_mismatches(worker, document, ("month", "day"), reps)
            assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:5])
            return True

        eventually(exact, timeout=90, interval=2.0)
        print(f"exact {time.monotonic() - started:.1f}s after the last restart was ready")
        letters = consume_topic(deployment, "deadletter")
        values = Counter(record.value for record in letters)
        assert set(values) == set(bad), f"{len(set(bad) - set(values))} dead letters missing"
        print(f"{len(bad)} bad messages, {len(letters)} dead letters (at least once each)")
        assert worker.alive()
    finally:
        if publisher is not None and publisher.poll() is None:
            publisher.kill()
            publisher.wait(10)
        worker.stop()


def test_restart_recovers_from_redis_reads_only_tail(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path)
    main, tail, both = tmp_path / "main.jsonl", tmp_path / "tail.jsonl", tmp_path / "both.jsonl"
    main_lines = simulate_file(deployment, main, 5000, days=20, reps=30, per_hour=40, seed=11)
    # Another seed: new event, deal and visit ids for the same reps, early in the same 20 days
    # (so the tail's newest event is older than the history's: the event clock must survive).
    tail_lines = simulate_file(deployment, tail, 100, days=20, reps=30, per_hour=40, seed=12)
    main_ids = {orjson.loads(line)["event_id"] for line in main_lines}
    assert not main_ids & {orjson.loads(line)["event_id"] for line in tail_lines}
    write_lines(both, main_lines + tail_lines)
    before, after = report(deployment, main), report(deployment, both)
    reps = report_reps(after)

    first = deployment.worker().start()
    try:
        first.wait_ready()
        deployment.cli("publish", str(main))
        wait_all_handled([first], len(main_lines), timeout=90)
    finally:
        first.stop()
    assert not first.alive()

    second = deployment.worker().start()
    try:
        started = time.monotonic()
        second.wait_ready()
        ready = time.monotonic() - started
        # Nothing new yet: the API (asked first: before any scrape or batch builds the states)
        # and the very first scrape already show the recovered state, at the recovered event
        # clock (not the wall clock of the restart).
        problems = api_mismatches(second, before, ("day", "month"), reps)
        problems += sales_mismatches(second.metrics(), before)
        assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:10])

        deployment.cli("publish", str(tail))
        wait_all_handled([second], len(tail_lines), timeout=60)
        time.sleep(2.0)  # anything replayed beyond the tail would show up by now

        def recovered() -> Metrics | None:
            metrics = second.metrics()
            return metrics if sample(metrics, "kpi_recovery_keys_loaded") > 0 else None

        metrics = eventually(recovered, timeout=30)
        keys = sample(metrics, "kpi_recovery_keys_loaded")
        seconds = sample(metrics, "kpi_recovery_seconds")
        print(
            f"\nrecovery from Redis: {keys:.0f} keys in {seconds * 1000:.1f} ms; "
            f"worker ready {ready:.1f}s after start"
        )
        assert keys > 0
        # Only the tail is processed after the restart: no replay of the history.
        assert sample(metrics, "kpi_events_applied_total") == len(tail_lines)
        assert sample(metrics, "kpi_events_duplicate_total") == 0
        assert sample(metrics, "kpi_events_rejected_total") == 0
        assert sample(metrics, "kpi_batch_events_sum") == len(tail_lines)

        problems = sales_mismatches(metrics, after)
        problems += api_mismatches(second, after, ("day", "week", "month", "quarter", "year"), reps)
        assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:10])
    finally:
        second.stop()
