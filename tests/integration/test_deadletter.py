"""Bad input is rejected, explained and kept (dead-letter topic), never fatal; duplicates count
once."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from kpi_testkit import Deployment, sample
from tests.integration.workers import (
    api_mismatches,
    consume_topic,
    produce_raw,
    report,
    report_reps,
    simulate_file,
    wait_all_handled,
    write_lines,
)

REASONS = (
    "invalid_json",
    "schema",
    "unknown_type",
    "naive_timestamp",
    "negative_amount",
    "currency_mismatch",
    "too_large",
    "future",
    "too_late",
)


def _bad_messages(base: dict[str, Any], deal: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(expected reason, raw bytes) of malformed messages: every reason, some several times,
    each message unique so its dead letter can be told apart."""
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="seconds")

    def ev(n: str, **fields: Any) -> bytes:
        return orjson.dumps(base | {"event_id": f"bad-{n}"} | fields)

    def deal_ev(n: str, **fields: Any) -> bytes:
        return orjson.dumps(deal | {"event_id": f"bad-{n}"} | fields)

    return [
        ("invalid_json", b'{"event_id": "bad-j1", "type": "visit.completed", "rep_id": '),
        ("invalid_json", b"\xff\xfe not json at all"),
        (
            "schema",
            orjson.dumps({k: v for k, v in orjson.loads(ev("s1")).items() if k != "visit_id"}),
        ),
        ("schema", deal_ev("s2", stage="daydreaming")),
        ("schema", deal_ev("s3", channel="carrier-pigeon")),
        ("unknown_type", ev("u1", type="call.logged")),
        ("unknown_type", ev("u2", type="deal.archived")),
        ("naive_timestamp", ev("n1", occurred_at="2026-11-10T10:00:00")),
        ("negative_amount", deal_ev("a1", amount="-5")),
        ("negative_amount", deal_ev("a2", amount=-0.01)),
        ("currency_mismatch", deal_ev("c1", currency="JPY")),
        ("too_large", ev("l1", notes="x" * 70_000)),
        ("future", ev("f1", occurred_at=future)),
        ("future", deal_ev("f2", occurred_at=future)),
        ("too_late", ev("t1", occurred_at="2019-03-01T10:00:00+00:00")),
    ]


def test_duplicates_and_malformed(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path)
    rng = random.Random(20261123)
    valid = simulate_file(deployment, tmp_path / "valid.jsonl", 1500, days=20, reps=10, seed=3)
    visit = next(orjson.loads(v) for v in valid if b'"visit.completed"' in v)
    deal = next(orjson.loads(v) for v in valid if b'"deal.created"' in v)
    bad = _bad_messages(visit, deal)
    assert {reason for reason, _ in bad} == set(REASONS)
    expected_reason = {raw: reason for reason, raw in bad}
    assert len(expected_reason) == len(bad)

    # Exact duplicates: some right after the original, some much later, some twice.
    lines = list(valid)
    duplicates = [lines[i] for i in rng.sample(range(len(valid)), 60)]
    duplicates += duplicates[:10]
    for line in duplicates:
        lines.insert(rng.randrange(lines.index(line) + 1, len(lines) + 1), line)
    # `kpi-monitor publish` sends lines with a contract event type; the rest goes in raw.
    publishable = [raw for _, raw in bad if _has_contract_type(raw)]
    raw_only = [raw for _, raw in bad if not _has_contract_type(raw)]
    for raw in publishable:
        lines.insert(rng.randrange(len(lines) + 1), raw)
    everything = write_lines(tmp_path / "everything.jsonl", lines + raw_only)
    document = report(deployment, everything)
    rejected = Counter(reason for reason, _ in bad)
    assert document["rejected"] == dict(rejected), "the report itself sees every bad message"

    worker = deployment.worker().start()
    try:
        worker.wait_ready()
        deployment.cli("publish", str(write_lines(tmp_path / "publish.jsonl", lines)))
        produce_raw(deployment, [("visits", raw) for raw in raw_only])
        total = len(lines) + len(raw_only)
        wait_all_handled([worker], total, timeout=90)

        metrics = worker.metrics()
        assert sample(metrics, "kpi_events_applied_total") == len(valid)
        assert sample(metrics, "kpi_events_duplicate_total") == len(duplicates)
        for reason in REASONS:
            got = sample(metrics, "kpi_events_rejected_total", reason=reason)
            assert got == rejected[reason], (reason, got, rejected[reason])
        assert sample(metrics, "kpi_events_rejected_total") == len(bad)

        problems = api_mismatches(worker, document, ("day", "month"), report_reps(document))
        assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:10])

        # Every bad message is in the dead-letter topic, once, as it was sent, and explained.
        letters = consume_topic(deployment, "deadletter", len(bad), timeout=60)
        assert len(letters) == len(bad), [r.value[:80] for r in letters]
        sources = _source_records(deployment, {h["kpi.topic"] for h in map(_headers, letters)})
        seen: set[bytes] = set()
        for record in letters:
            headers = _headers(record)
            assert record.value in expected_reason, record.value[:200]
            assert headers["kpi.reason"] == expected_reason[record.value], (
                headers,
                record.value[:200],
            )
            assert headers["kpi.error"].strip(), headers
            where = (
                headers["kpi.topic"],
                int(headers["kpi.partition"]),
                int(headers["kpi.offset"]),
            )
            assert sources.get(where) == record.value, f"{where} does not hold the dead letter"
            seen.add(record.value)
        assert seen == set(expected_reason)

        assert worker.alive()
        assert worker.get("/readyz")[0] == 200
        assert worker.get("/healthz")[0] == 200
    finally:
        worker.stop()


def _has_contract_type(raw: bytes) -> bool:
    try:
        kind = orjson.loads(raw).get("type")
    except (orjson.JSONDecodeError, AttributeError):
        return False
    return isinstance(kind, str) and kind.startswith(("deal.", "visit.", "quote.", "target."))


def _headers(record: Any) -> dict[str, str]:
    return {name: value.decode("utf-8", "replace") for name, value in record.headers}


def _source_records(deployment: Deployment, topics: set[str]) -> dict[tuple[str, int, int], bytes]:
    """Every record of the given source topics by (topic, partition, offset)."""
    out: dict[tuple[str, int, int], bytes] = {}
    prefix = deployment.topic("")
    for topic in topics:
        assert topic.startswith(prefix), topic
        for record in consume_topic(deployment, topic.removeprefix(prefix), timeout=30):
            out[(record.topic, record.partition, record.offset)] = record.value
    return out
