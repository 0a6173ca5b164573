"""End-to-end fuzzing through a real worker: over 10,000 malformed messages (seeded malformations of
valid events, see tests/unit/test_fuzz_decoder.py) interleaved with valid events. Every malformed
one reaches the dead-letter topic with its reason, the rejection counter adds up, the worker
stays alive and ready, and the valid events are all applied (the API equals the report)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from kpi_core.events import REASONS, Rejection, decode_event
from kpi_monitor.simulate import key_for
from kpi_rules import load_rules
from kpi_rules.vocabulary import TOPIC_OF
from kpi_testkit import Deployment, sample
from tests.integration.workers import (
    REPO,
    api_mismatches,
    consume_topic,
    report,
    report_reps,
    simulate_file,
    wait_all_handled,
)
from tests.unit.test_fuzz_decoder import malformed

MALFORMED = 10_000
MAX_LARGE = 150  # messages near or over max_event_bytes (64 KiB each): enough, and quick


def generate(seed: int, bases: list[dict[str, Any]]) -> list[tuple[str, bytes, str]]:
    """(topic, raw, expected reason) of MALFORMED messages that the decoder rejects, in a fixed
    order; malformations that happen to be valid are left out (they would change the figures)."""
    rules = load_rules(REPO / "kpi_rules" / "rules.yaml")
    rng = random.Random(seed)
    out: list[tuple[str, bytes, str]] = []
    large = 0
    while len(out) < MALFORMED:
        base = rng.choice(bases)
        raw = malformed(rng, base, rules.max_event_bytes)
        if len(raw) > 8192:
            if large >= MAX_LARGE:
                continue
            large += 1
        try:
            decode_event(raw, rules)
        except Rejection as rejection:
            # The compacted targets topic needs keys: malformed target events go to deals.
            topic = TOPIC_OF[base["type"]]
            out.append(("deals" if topic == "targets" else topic, raw, rejection.reason))
    return out


def produce(deployment: Deployment, messages: list[tuple[str, bytes, bytes | None]]) -> None:
    """Send (topic, value, key) in order, pipelined (acks=all, awaited at the end)."""
    from aiokafka import AIOKafkaProducer

    async def send() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=deployment.kafka_bootstrap,
            acks="all",
            linger_ms=5,
            max_request_size=4 * 1024 * 1024,
        )
        await producer.start()
        try:
            futures = [
                await producer.send(deployment.topic(topic), value, key=key) for topic, value, key in messages
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(send())


def test_fuzz_through_the_worker(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path)
    valid_path = tmp_path / "valid.jsonl"
    valid = simulate_file(deployment, valid_path, 1500, days=20, reps=10, seed=11)
    events = [orjson.loads(v) for v in valid]
    bad = generate(20261123, events)
    reasons = Counter(reason for _, _, reason in bad)
    assert sum(reasons.values()) == MALFORMED
    assert len(reasons) >= 6, reasons  # many kinds of rejection, not one
    expected_reason = {raw: reason for _, raw, reason in bad}

    # Valid events in order; malformed ones at seeded random places among all but the last 50
    # valid events (which come after every malformed one: nothing stalls behind bad input).
    stream: list[tuple[str, bytes, bytes | None]] = []
    for event, raw in zip(events, valid, strict=True):
        key = key_for(event) if event["type"] == "target.set" else None
        stream.append((TOPIC_OF[event["type"]], raw, key))
    rng = random.Random(7)
    head, tail = stream[:-50], stream[-50:]
    for topic, raw, _ in bad:
        head.insert(rng.randrange(len(head) + 1), (topic, raw, None))
    document = report(deployment, valid_path)

    worker = deployment.worker().start()
    try:
        worker.wait_ready()
        produce(deployment, head + tail)
        total = len(valid) + MALFORMED
        wait_all_handled([worker], total, timeout=120)

        metrics = worker.metrics()
        assert sample(metrics, "kpi_events_rejected_total") == MALFORMED
        for reason in REASONS:
            assert sample(metrics, "kpi_events_rejected_total", reason=reason) == reasons[reason], reason
        assert sample(metrics, "kpi_events_applied_total") + sample(
            metrics, "kpi_events_duplicate_total"
        ) == len(valid)

        assert worker.alive()
        assert worker.get("/healthz")[0] == 200
        assert worker.get("/readyz")[0] == 200
        problems = api_mismatches(worker, document, ("day", "month"), report_reps(document))
        assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:10])

        letters = consume_topic(deployment, "deadletter", MALFORMED, timeout=90)
        assert len(letters) == MALFORMED
        assert Counter(r.value for r in letters) == Counter(raw for _, raw, _ in bad)
        for record in letters:
            headers = {name: value.decode("utf-8", "replace") for name, value in record.headers}
            assert headers["kpi.reason"] == expected_reason[record.value], (headers, record.value[:200])
            assert headers["kpi.error"].strip()
        assert worker.alive()
    finally:
        worker.stop()
    elapsed = time.monotonic() - started
    print(f"fuzz: {MALFORMED} malformed {dict(reasons)} + {len(valid)} valid in {elapsed:.0f}s")
