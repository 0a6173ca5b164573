"""Fast ingest: a plain aiokafka consumer on the contract topics that validates, dead-letters the bad
and routes the good by rep into the internal topic as micro-batches (Faust's per-message cost is
paid once per batch, not once per event)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from mode import Service

from kpi_core.events import Rejection, decode_event
from kpi_core.owners import route_key
from kpi_rules import Rules
from kpi_rules.vocabulary import EventType, Reason
from streams.connections import aiokafka_kwargs
from streams.deadletter import dead_letter_headers
from streams.metrics import KpiMetrics
from streams.routing import Routed, encode_batch, partition_for
from streams.settings import Settings

log = logging.getLogger(__name__)
# Keep routed messages well under Kafka's default 1 MiB message limit.
MAX_BATCH_BYTES = 512 * 1024
# Polls whose sends may still await the broker's acks while the next poll is processed: the
# loop keeps working instead of idling through each round trip. Commits stay in poll order.
MAX_POLLS_IN_FLIGHT = 3


@dataclass(slots=True)
class IngestStats:
    polled: int = 0
    routed: int = 0
    rejected: int = 0
    batches_sent: int = 0


class IngestService(Service):
    """Consumes the contract topics as group `<app_id>-ingest` and feeds the rep-partitioned topic."""

    def __init__(self, settings: Settings, rules: Rules, metrics: KpiMetrics, **kwargs: Any) -> None:
        self.settings = settings
        self.rules = rules
        self.metrics = metrics
        self.stats = IngestStats()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.running = False
        self._in_flight: deque[asyncio.Task[None]] = deque()
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        s = self.settings
        security = aiokafka_kwargs(s)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap,
            acks="all",
            linger_ms=5,
            max_request_size=4 * 1024 * 1024,
            compression_type=None,
            **security,
        )
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            *s.input_topics,
            bootstrap_servers=s.kafka_bootstrap,
            group_id=f"{s.app_id}-ingest",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
            **security,
        )
        await self.consumer.start()
        self.add_future(self._run())

    async def on_stop(self) -> None:
        self.running = False
        try:  # what was routed gets committed, so a restart does not route it again
            await self._drain()
        except Exception as exc:
            log.warning("ingest: last polls not committed at stop (%s); they will be read again", exc)
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def _run(self) -> None:
        assert self.consumer is not None
        self.running = True
        while not self.should_stop:
            try:
                records = await self._poll()
                if records:
                    await self.process(records)
                while len(self._in_flight) > MAX_POLLS_IN_FLIGHT or (
                    not records and self._in_flight
                ):
                    await self._in_flight.popleft()
            except asyncio.CancelledError:
                raise
            except Exception:  # the worker must not die: log, back off, retry the same records
                log.exception("ingest: batch failed; retrying after a pause")
                self.metrics.ingest_errors.inc()
                await self._abandon_in_flight()
                await self._rewind()
                await asyncio.sleep(1.0)

    async def _poll(self) -> dict[TopicPartition, list[Any]]:
        """One batch: polls until `batch_max_events` records or `batch_max_wait_ms` after the first.

        A poll returns as soon as anything has arrived, so trickling traffic would otherwise make
        batches of one event, each paying the whole per-batch cost (a routed message, a round of
        the agent, a Redis transaction): the worker then saturated at a few hundred events/s."""
        assert self.consumer is not None
        limit = self.settings.batch_max_events
        wait_s = self.settings.batch_max_wait_ms / 1000
        records = await self.consumer.getmany(timeout_ms=self.settings.batch_max_wait_ms, max_records=limit)
        count = sum(len(messages) for messages in records.values())
        if not count:
            return records
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while count < limit and not self.should_stop:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            more = await self.consumer.getmany(
                timeout_ms=max(int(remaining * 1000), 1), max_records=limit - count
            )
            for tp, messages in more.items():
                records.setdefault(tp, []).extend(messages)
                count += len(messages)
        return records

    async def _drain(self) -> None:
        while self._in_flight:
            await self._in_flight.popleft()

    async def _abandon_in_flight(self) -> None:
        """After a failure nothing later may commit: the rewind reads those polls again (what
        they already routed is routed twice; the event-id dedupe makes that harmless)."""
        while self._in_flight:
            task = self._in_flight.popleft()
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    async def _rewind(self) -> None:
        """Seek back to the last committed offsets so a failed batch is read again.

        Retried until it succeeds: with the broker down, `committed` fails too, and neither
        letting that end `_run` (ingest stopped for good) nor reading on past the failed batch
        (its records skipped at the next commit) is acceptable."""
        assert self.consumer is not None
        while True:
            try:
                for tp in self.consumer.assignment():
                    committed = await self.consumer.committed(tp)
                    if committed is None:  # nothing committed yet: auto_offset_reset=earliest
                        await self.consumer.seek_to_beginning(tp)
                    else:
                        self.consumer.seek(tp, committed)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.should_stop:
                    return
                log.warning("ingest: cannot rewind to the committed offsets (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def process(self, records: dict[TopicPartition, list[Any]]) -> None:
        """Validate, route and dead-letter one poll; its commit follows (in the background, in
        poll order) once every send of it is acknowledged."""
        assert self.producer is not None and self.consumer is not None
        partitions = self.settings.partitions
        routed: dict[int, list[Routed]] = defaultdict(list)
        by_customer: dict[int, list[Routed]] = defaultdict(list)
        sends: list[asyncio.Future[Any]] = []
        commits: dict[TopicPartition, int] = {}
        rules = self.rules
        max_bytes = rules.max_event_bytes
        for tp, messages in records.items():
            topic = tp.topic
            for message in messages:
                raw = message.value
                if raw is None:
                    # A tombstone (deletion marker on the compacted targets topic) is not an event.
                    self.metrics.tombstones.inc()
                    continue
                keys = _keys_of(raw, max_bytes)
                if keys is None:
                    # Full validation only to explain the rejection precisely.
                    try:
                        decode_event(raw, rules)
                        rejection = Rejection(Reason.SCHEMA, "rep_id: missing or not a string")
                    except Rejection as exc:
                        rejection = exc
                    sends.append(await self._dead_letter(raw, message.key, rejection, tp, message.offset))
                    continue
                owner, customer = keys
                # Full validation happens once, where the event is applied (the owner's worker;
                # the customer side validates its own copy).
                # tuple.__new__ skips the NamedTuple constructor's Python-level cost (per event).
                item = tuple.__new__(Routed, (raw, topic, tp.partition, message.offset))
                routed[partition_for(owner, partitions)].append(item)
                if customer is not None:
                    by_customer[partition_for(customer, partitions)].append(item)
            self.stats.polled += len(messages)
            commits[tp] = messages[-1].offset + 1
        for partition, items in routed.items():
            for chunk in _chunks(items):
                sends.append(
                    await self.producer.send(
                        self.settings.routed_topic, encode_batch(chunk), partition=partition
                    )
                )
                self.stats.batches_sent += 1
            self.stats.routed += len(items)
        for partition, items in by_customer.items():
            self.metrics.customer_routed.inc(len(items))
            for chunk in _chunks(items):
                sends.append(
                    await self.producer.send(
                        self.settings.customer_topic, encode_batch(chunk), partition=partition
                    )
                )
        previous = self._in_flight[-1] if self._in_flight else None
        self._in_flight.append(asyncio.ensure_future(self._settle(previous, sends, commits)))

    async def _settle(
        self,
        previous: asyncio.Task[None] | None,
        sends: list[asyncio.Future[Any]],
        commits: dict[TopicPartition, int],
    ) -> None:
        """Commit one poll after the poll before it and after every send of its own is acked."""
        assert self.consumer is not None
        if previous is not None:
            await previous  # raises if it failed: then this poll must not commit either
        if sends:
            await asyncio.gather(*sends)
        await self.consumer.commit(commits)

    async def _dead_letter(
        self, raw: bytes, key: bytes | None, rejection: Rejection, tp: TopicPartition, offset: int
    ) -> asyncio.Future[Any]:
        assert self.producer is not None
        self.stats.rejected += 1
        self.metrics.rejected.labels(rejection.reason).inc()
        return await self.producer.send(
            self.settings.deadletter_topic,
            raw,
            key=key,
            headers=dead_letter_headers(rejection.reason, rejection.error, tp.topic, tp.partition, offset),
        )


def _keys_of(raw: bytes, max_bytes: int) -> tuple[str, str | None] | None:
    """(owner, customer) of a message that is plausibly an event: the rep or scope its state
    belongs to, and the customer it is a fact of (purchases, visits and quotes, for the customer
    side); None when it cannot belong to anyone."""
    if len(raw) > max_bytes:
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    owner = route_key(obj)
    if owner is None:
        return None
    customer, kind = obj.get("customer_id"), obj.get("type")
    # (a malformed `type` may be a list or an object: unhashable, so checked as a string first)
    fact = type(kind) is str and kind in CUSTOMER_FACTS
    if not fact or type(customer) is not str or not customer.strip():
        customer = None
    return owner, customer


CUSTOMER_FACTS = frozenset({EventType.DEAL_WON, EventType.VISIT_COMPLETED, EventType.QUOTE_SENT})


def _chunks(items: list[Routed]) -> list[list[Routed]]:
    chunks: list[list[Routed]] = [[]]
    size = 0
    for item in items:
        if size + len(item.raw) > MAX_BATCH_BYTES and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += len(item.raw) + 32
    return chunks
