"""`kpi-monitor publish FILE`: send a CRM export (JSONL, or CSV with a mapping) to the contract topics."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from kpi_monitor.csv_mapping import CsvMapping, MappingError, load_mapping
from kpi_monitor.csv_rows import CsvRows
from kpi_monitor.progress import Progress, count_lines
from kpi_monitor.simulate import key_for, topic_for
from kpi_rules import Rules
from kpi_rules.vocabulary import EventType
from streams.settings import Settings

#: `deal.`, `visit.`, ...: the families of the contract's event types (an unknown type of a known
#: family is sent, and dead-lettered by the worker as `unknown_type`).
TYPE_PREFIXES = tuple(dict.fromkeys(f"{kind.value.split('.')[0]}." for kind in EventType))
SETTLE_EVERY = 5000  # sends in flight before waiting for the broker's answers


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send: the lines of the file it came from, its type, value and key."""

    line: int
    last_line: int
    kind: str
    value: bytes
    key: bytes | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """An input record that is not sent, and why."""

    line: int
    last_line: int
    reason: str
    message: str


Item = Outgoing | Refusal


@dataclass
class Tally:
    """What happened to the input: `sent` (acknowledged by Kafka, or in a dry run: would be sent)
    and `failed` by event type, `refused` by reason, `rejected` (dry run: what the worker would
    reject) by reason."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    repeated_ids: int = 0
    queued: int = 0
    stopped_at: int | None = None  # a Kafka error ended the run at this line


# --------------------------------------------------------------------------- input


def jsonl_items(handle: BinaryIO) -> Iterator[Item]:
    """Lines whose `type` names a contract topic, sent as they are (byte for byte: validating
    them is the worker's job, and bad ones reach the dead-letter topic)."""
    for number, line in enumerate(handle, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            event = orjson.loads(raw)
            kind = event["type"]
            if not isinstance(kind, str) or not kind.startswith(TYPE_PREFIXES):
                raise ValueError(kind)
            key = key_for(event) if kind == "target.set" else None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            yield Refusal(number, number, "no_type", "no contract event type")
            continue
        yield Outgoing(number, number, kind, raw, key)


def csv_items(rows: CsvRows, rules: Rules) -> Iterator[Item]:
    """Each row's events (a row of a snapshot export may give several, or none), or its refusal:
    a row gives all its events or none."""
    for row in rows:
        if row.refused is not None:
            yield Refusal(row.line, row.last_line, row.refused.reason, row.refused.message)
            continue
        values = [orjson.dumps(event) for event in row.events]
        large = next((len(v) for v in values if len(v) > rules.max_event_bytes), None)
        if large is not None:
            yield Refusal(
                row.line, row.last_line, "too_large",
                f"the event is {large} bytes; the limit (max_event_bytes) is {rules.max_event_bytes}",
            )  # fmt: skip
            continue
        for event, value in zip(row.events, values, strict=True):
            yield Outgoing(row.line, row.last_line, event["type"], value, key_for(event))


@contextmanager
def mapped_lines(
    path: Path, mapping: CsvMapping, rules: Rules, refused: Counter[str] | None = None
) -> Iterator[Iterator[bytes]]:
    """The JSON events `publish` would send for a CSV export (for `report`), refusals counted
    by reason in `refused`."""
    with open_items(path, mapping, rules) as items:

        def values() -> Iterator[bytes]:
            for item in items:
                if isinstance(item, Refusal):
                    if refused is not None:
                        refused[item.reason] += 1
                else:
                    yield item.value

        yield values()


@contextmanager
def open_items(path: Path, mapping: CsvMapping | None, rules: Rules | None) -> Iterator[Iterator[Item]]:
    """The file's records; a CSV header is checked against the mapping here, before any send."""
    if mapping is None:
        with open(path, "rb") as handle:
            yield jsonl_items(handle)
        return
    assert rules is not None
    # surrogateescape: an undecodable byte refuses its own row (with its line) instead of
    # stopping the whole file at an approximate position.
    with open(path, encoding=mapping.csv.encoding, errors="surrogateescape", newline="") as text:
        try:
            rows = CsvRows(text, mapping, rules)
        except MappingError as exc:
            raise MappingError(f"{path}: {exc}") from None
        yield csv_items(rows, rules)


# --------------------------------------------------------------------------- output


class Reporter:
    """Refusals and rejections on stderr: the first `show` with their line, then only counted."""

    def __init__(self, progress: Progress, show: int) -> None:
        self.progress = progress
        self.show = show
        self.hidden = 0

    def say(self, line: int, what: str, reason: str, message: str) -> None:
        if self.show > 0:
            self.show -= 1
            self.progress.note(f"publish: line {line} {what} ({reason}): {message}")
        else:
            self.hidden += 1


# --------------------------------------------------------------------------- Kafka


async def _settle(pending: list[tuple[asyncio.Future[Any], str]], tally: Tally, progress: Progress) -> None:
    """Wait for the broker's answer to every queued send: "sent" means acknowledged."""
    results = await asyncio.gather(*(future for future, _ in pending), return_exceptions=True)
    first: BaseException | None = None
    for (_, kind), result in zip(pending, results, strict=True):
        if isinstance(result, BaseException):
            tally.failed[kind] += 1
            first = first or result
        else:
            tally.sent[kind] += 1
    if first is not None:
        failed = sum(isinstance(r, BaseException) for r in results)
        progress.note(
            f"publish: {failed} events were not acknowledged by Kafka ({type(first).__name__}: {first})"
        )
    pending.clear()


async def send_items(
    settings: Settings, items: Iterator[Item], tally: Tally, progress: Progress, reporter: Reporter,
    rate: float = 0.0,
) -> None:  # fmt: skip
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    from streams.connections import aiokafka_kwargs, check_kafka
    from streams.topics import ensure_topics

    await check_kafka(settings)
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, linger_ms=10, acks="all", **aiokafka_kwargs(settings)
    )
    await producer.start()
    topics: dict[str, str] = {}
    pending: list[tuple[asyncio.Future[Any], str]] = []
    started = time.monotonic()
    line = 0
    try:
        try:
            for item in items:
                line = item.line
                if isinstance(item, Refusal):
                    tally.refused[item.reason] += 1
                    reporter.say(item.line, "not sent", item.reason, item.message)
                    progress.update(item.last_line, tally.queued)
                    continue
                topic = topics.get(item.kind)
                if topic is None:
                    topic = topics[item.kind] = topic_for(settings, {"type": item.kind})
                pending.append((await producer.send(topic, item.value, key=item.key), item.kind))
                tally.queued += 1
                progress.update(item.last_line, tally.queued)
                if len(pending) >= SETTLE_EVERY:
                    await _settle(pending, tally, progress)
                if rate > 0:
                    ahead = tally.queued / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        except KafkaError as exc:
            # Say where it stopped: the lines from here on were not sent (nor counted).
            tally.stopped_at = line
            progress.note(
                f"publish: stopped at line {line}: {type(exc).__name__}: {exc}; "
                "that line and the rest of the file were not sent"
            )
        await producer.flush()
        await _settle(pending, tally, progress)
    finally:
        await producer.stop()


# --------------------------------------------------------------------------- dry run


def newest_event_time(items: Iterator[Item], rules: Rules) -> datetime | None:
    """The latest `occurred_at` of the valid events: "now" for a worker with KPI_CLOCK=event
    that has read the whole file."""
    from kpi_core.events import Rejection, decode_event

    newest: datetime | None = None
    for item in items:
        if isinstance(item, Outgoing):
            try:
                at = decode_event(item.value, rules).occurred_at
            except Rejection:
                continue
            if newest is None or at > newest:
                newest = at
    return newest


def too_late_for_wall_clock(
    items: Iterator[Item], rules: Rules, wall: datetime | None = None
) -> tuple[int, str]:
    """(events a worker with KPI_CLOCK=wall would reject `too_late`, the start of what it keeps)."""
    from kpi_core.clock import KpiClock
    from kpi_core.engine import KpiEngine
    from kpi_core.events import Rejection, decode_event
    from kpi_core.transitions import check_time

    clock = KpiClock() if wall is None else KpiClock(wall=lambda: wall)
    context = KpiEngine(rules, clock).context()
    late = 0
    for item in items:
        if isinstance(item, Outgoing):
            try:
                check_time(decode_event(item.value, rules), context)
            except Rejection as rejection:
                late += rejection.reason == "too_late"
    return late, context.horizon.earliest_instant.date().isoformat()


def check_items(
    items: Iterator[Item], rules: Rules, tally: Tally, progress: Progress, reporter: Reporter,
    wall: datetime | None = None, now: datetime | None = None,
) -> None:  # fmt: skip
    """Decode each message as the worker would, and check its time: `future` against the wall
    clock, `too_late` against `now` (default the wall clock, as a worker with KPI_CLOCK=wall sees
    it; the newest event of the file for KPI_CLOCK=event). Nothing is sent."""
    from kpi_core.clock import KpiClock
    from kpi_core.engine import KpiEngine
    from kpi_core.events import Rejection, decode_event
    from kpi_core.transitions import check_time

    clock = KpiClock() if wall is None else KpiClock(wall=lambda: wall)
    context = KpiEngine(rules, clock).context(now=now)
    seen: set[str] = set()
    for item in items:
        if isinstance(item, Refusal):
            tally.refused[item.reason] += 1
            reporter.say(item.line, "refused", item.reason, item.message)
        else:
            tally.queued += 1
            tally.sent[item.kind] += 1
            try:
                event = decode_event(item.value, rules)
                check_time(event, context)
            except Rejection as rejection:
                tally.rejected[rejection.reason] += 1
                reporter.say(item.line, "would be rejected by the worker", rejection.reason, rejection.error)
            else:
                if event.event_id in seen:
                    # Not an error for the worker (it counts the event once), but from one
                    # export it usually means the mapping's event_id is not unique.
                    tally.repeated_ids += 1
                    if tally.repeated_ids == 1:
                        progress.note(
                            f"publish: line {item.line}: event_id {event.event_id!r} was seen before "
                            "in this file; the worker counts it once"
                        )
                seen.add(event.event_id)
        progress.update(item.last_line, tally.queued)


# --------------------------------------------------------------------------- the command


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items()))


def summary(tally: Tally, dry_run: bool, hidden: int) -> str:
    refused = sum(tally.refused.values())
    refused_text = f"refused {refused}" + (f" ({_counts(tally.refused)})" if refused else "")
    lines = []
    if hidden:
        lines.append(f"publish: {hidden} more refused or rejected lines not shown (--show-refused N)")
    if dry_run:
        rejected = sum(tally.rejected.values())
        line = (
            f"publish --dry-run: would send {sum(tally.sent.values())} ({_counts(tally.sent)}), of "
            f"which the worker would reject {rejected}"
            + (f" ({_counts(tally.rejected)})" if rejected else "")
            + f"; {refused_text}"
        )
        if tally.repeated_ids:
            line += f"; {tally.repeated_ids} repeated event_id"
        lines.append(line + "; nothing was sent to Kafka")
    else:
        failed = sum(tally.failed.values())
        lines.append(
            f"publish: sent {sum(tally.sent.values())} acknowledged by Kafka ({_counts(tally.sent)}); "
            f"failed {failed}" + (f" ({_counts(tally.failed)})" if failed else "") + f"; {refused_text}"
            + (f"; stopped at line {tally.stopped_at}" if tally.stopped_at is not None else "")
        )
    return "\n".join(lines)


def run_publish(
    settings: Settings | None,
    path: Path,
    rate: float = 0.0,
    mapping_path: Path | None = None,
    rules: Rules | None = None,
    dry_run: bool = False,
    show: int = 20,
    clock: str = "wall",
) -> int:
    """Publish (or, with `dry_run`, only check) a JSONL file, or a CSV file with a mapping.
    `clock` is the worker clock a dry run judges `too_late` by (`event`: the file's newest
    event). Exit status: 0 all sent, 1 some line refused, rejected (dry run) or not
    acknowledged, 2 unusable input (no file, bad mapping)."""
    if not path.exists() or path.is_dir():
        print(f"publish: no such file {path}", file=sys.stderr)
        return 2
    if mapping_path is None and path.suffix.lower() in (".csv", ".tsv"):
        print(
            f"publish: {path} is a CSV export: give --mapping MAPPING.yaml (an example is "
            "examples/salesforce-opportunities.mapping.yaml)",
            file=sys.stderr,
        )
        return 2
    if (mapping_path is not None or dry_run) and rules is None:
        raise ValueError("a rules file is needed to map or check events")
    mapping = load_mapping(mapping_path, rules) if mapping_path is not None else None
    now: datetime | None = None
    if dry_run and clock == "event":
        assert rules is not None
        with open_items(path, mapping, rules) as items:
            now = newest_event_time(items, rules)
    elif not dry_run and rules is not None:
        with open_items(path, mapping, rules) as items:
            late, kept_from = too_late_for_wall_clock(items, rules)
        if late:
            print(
                f"publish: warning: {late} events are older than a worker with KPI_CLOCK=wall keeps "
                f"(it keeps from {kept_from}: keep.* of the rules file) and it would reject them "
                "too_late; for a backfill of history run the workers with KPI_CLOCK=event "
                "(kpi-monitor worker --clock event), and check with --dry-run --clock event",
                file=sys.stderr,
            )
    tally = Tally()
    progress = Progress("checked" if dry_run else "sent", count_lines(path) if sys.stderr.isatty() else None)
    reporter = Reporter(progress, show)
    try:
        with open_items(path, mapping, rules) as items:
            if dry_run:
                assert rules is not None
                check_items(items, rules, tally, progress, reporter, now=now)
            else:
                assert settings is not None
                asyncio.run(send_items(settings, items, tally, progress, reporter, rate))
    finally:
        progress.finish()
    print(summary(tally, dry_run, reporter.hidden), file=sys.stderr)
    bad = tally.refused or tally.failed or tally.rejected or tally.stopped_at is not None
    return 1 if bad else 0
