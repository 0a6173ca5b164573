"""Rebuild partitions from the input topics: read them from the oldest message Kafka keeps to
their current end, and route again the events of those partitions (the event-id dedupe drops
those already applied); then say whether the input still held everything that matters."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from mode import Service

from kpi_core.engine import KpiEngine
from kpi_core.events import Event, Rejection, decode_event
from kpi_core.owners import owner_key
from kpi_core.transitions import check_time
from streams.connections import aiokafka_kwargs
from streams.integrity.markers import INCOMPLETE, REBUILD
from streams.integrity.resume import ResumableStore
from streams.routing import Routed, encode_batch, partition_for
from streams.settings import Settings

__all__ = ["InputCoverage", "RebuildService"]

log = logging.getLogger(__name__)
# Routed messages stay well under Kafka's default 1 MiB message limit (as the ingest's).
MAX_BATCH_BYTES = 512 * 1024


@dataclass
class InputCoverage:
    """What the input topics still held when read from their start: per input partition, the
    first offset kept and the time stamp of its first message (when messages were deleted)."""

    earliest: dict[str, int] = field(default_factory=dict)
    first_time: dict[str, datetime] = field(default_factory=dict)

    def lost_before(self) -> datetime | None:
        """The latest first-message time of the input partitions that lost messages: events
        before it may be gone (None: no input partition lost any)."""
        times = [self.first_time[name] for name, offset in self.earliest.items() if offset > 0]
        return max(times) if times else None


class RebuildService(Service):
    """Rebuilds the partitions asked for (``request``), one pass over the input topics at a time;
    ``rebuilding`` is what is pending or in progress."""

    def __init__(
        self,
        settings: Settings,
        engine: KpiEngine,
        store: Callable[[], ResumableStore],
        topic: str | None = None,
        key_of: Callable[[Event], str | None] = owner_key,
        after: Callable[[set[int]], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        # Where events go again, and by what key: the rep side's routed topic by owner (rep or
        # scope), or the customer side's topic by customer (facts only).
        self.topic = topic or settings.routed_topic
        self.key_of = key_of
        self.after = after  # run once the events are routed again (the rep side asks the
        # customer side to send its summaries again: they travelled in the lost messages too)
        self.rebuilding: set[int] = set()
        self.last: dict[str, Any] | None = None
        self._wanted: set[int] = set()
        self._wake = asyncio.Event()
        super().__init__(**kwargs)

    def request(self, partitions: Iterable[int]) -> None:
        new = set(partitions) - self.rebuilding
        if new:
            self._wanted |= new
            self.rebuilding |= new
            self._wake.set()

    @Service.task
    async def _run(self) -> None:
        while not self.should_stop:
            await self._wake.wait()
            self._wake.clear()
            partitions, self._wanted = self._wanted, set()
            if not partitions:
                continue
            while not self.should_stop:
                try:
                    await self.rebuild(partitions)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:  # Kafka or Redis unavailable: try again, never give up silently
                    log.exception("rebuild of partitions %s failed; retrying", sorted(partitions))
                    await asyncio.sleep(5.0)
            self.rebuilding -= partitions - self._wanted

    async def rebuild(self, partitions: set[int]) -> None:
        s = self.settings
        started = datetime.now(UTC)
        log.warning(
            "partitions %s: reading the input topics again to rebuild their state", sorted(partitions)
        )
        security = aiokafka_kwargs(s)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **security,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap, acks="all", max_request_size=4 * 1024 * 1024, **security
        )
        await consumer.start()
        await producer.start()
        try:
            routed, coverage = await self._route_again(consumer, producer, partitions)
        finally:
            await consumer.stop()
            await producer.stop()
        before = coverage.lost_before()
        incomplete = None
        if before is not None:
            # An event can be up to max_future_skew_seconds ahead of the time Kafka stamped it.
            incomplete = before.timestamp() + self.engine.rules.max_future_skew_seconds
        store = self.store()
        done = partitions & store.partitions()  # a partition that moved is finished by its new owner
        for partition in done:
            store.set_meta(partition, REBUILD, None)
            if incomplete is not None:
                store.set_meta(partition, INCOMPLETE, datetime.fromtimestamp(incomplete, UTC).isoformat())
        await store.flush(done)
        self.last = {
            "partitions": sorted(partitions),
            "events_routed": routed,
            "started": started.isoformat(timespec="seconds"),
            "seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
            "input_lost_before": None if before is None else before.isoformat(),
        }
        log.warning(
            "partitions %s rebuilt from the input topics: %s events routed again%s",
            sorted(partitions),
            routed,
            "" if before is None else f"; the input topics no longer hold events before {before.isoformat()}",
        )

    async def _route_again(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, partitions: set[int]
    ) -> tuple[int, InputCoverage]:
        s = self.settings
        tps = [
            TopicPartition(topic, p)
            for topic, count in (await _partition_counts(s)).items()
            for p in range(count)
        ]
        consumer.assign(tps)
        earliest = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > earliest[tp]}
        first_time: dict[str, datetime] = {}
        pending: dict[int, list[Routed]] = defaultdict(list)
        sizes: dict[int, int] = defaultdict(int)
        sends: list[asyncio.Future[Any]] = []
        routed = 0
        rules = self.engine.rules
        while remaining and not self.should_stop:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            ctx = self.engine.context()
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset >= ends[tp]:
                        break
                    name = f"{tp.topic}:{tp.partition}"
                    if name not in first_time:
                        first_time[name] = datetime.fromtimestamp(message.timestamp / 1000, UTC)
                    raw = message.value
                    if raw is None:
                        continue
                    try:  # only what the agent would apply: the rest was dead-lettered already
                        event = decode_event(raw, rules)
                        check_time(event, ctx)
                    except Rejection:
                        continue
                    key = self.key_of(event)
                    if key is None:
                        continue
                    partition = partition_for(key, s.partitions)
                    if partition not in partitions:
                        continue
                    pending[partition].append(
                        tuple.__new__(Routed, (raw, tp.topic, tp.partition, message.offset))
                    )
                    sizes[partition] += len(raw) + 32
                    routed += 1
                    if sizes[partition] >= MAX_BATCH_BYTES:
                        sends.append(await self._send(producer, partition, pending.pop(partition)))
                        sizes[partition] = 0
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        for partition, items in pending.items():
            if items:
                sends.append(await self._send(producer, partition, items))
        if sends:
            await asyncio.gather(*sends)  # in Kafka before the rebuild counts as done
        if self.after is not None:
            await self.after(partitions)
        now = datetime.now(UTC)
        for tp in tps:  # messages deleted and none left: anything up to now may be gone
            first_time.setdefault(f"{tp.topic}:{tp.partition}", now)
        coverage = InputCoverage({f"{tp.topic}:{tp.partition}": int(earliest[tp]) for tp in tps}, first_time)
        return routed, coverage

    async def _send(
        self, producer: AIOKafkaProducer, partition: int, items: list[Routed]
    ) -> asyncio.Future[Any]:
        return await producer.send(self.topic, encode_batch(items), partition=partition)


async def _partition_counts(settings: Settings) -> dict[str, int]:
    """Partitions of each input topic, as the broker describes them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **aiokafka_kwargs(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(list(settings.input_topics))
    finally:
        await admin.close()
    return {str(topic["topic"]): len(topic.get("partitions") or ()) for topic in described}
