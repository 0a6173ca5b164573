"""Paced live traffic: events stamped with the wall clock when sent, at a fixed rate, from a process
of its own (`python -m benchmarks.paced SPEC.json`, started by `start_paced`)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness import topic_of
from kpi_testkit import CHECKOUT, spawn

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

    gen = TrafficGenerator(load_rules(CHECKOUT / "kpi_rules" / "rules.yaml"), reps=reps, seed=seed)
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
    """What the paced producer process does (written as JSON for `python -m benchmarks.paced`)."""

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
    return spawn([sys.executable, "-m", "benchmarks.paced", str(spec_file)], None, log, cwd=CHECKOUT)


def read_progress(path: Path) -> dict[str, Any]:
    try:
        return dict(orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError):
        return {}


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m benchmarks.paced SPEC.json", file=sys.stderr)
        return 2
    spec = PacedSpec(**json.loads(Path(args[0]).read_text()))
    print(json.dumps(asyncio.run(paced_produce(spec))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
