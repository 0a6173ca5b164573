"""The ingest overlaps broker acks with the next poll, yet commits each poll only after every send
of it and of the polls before it is acknowledged, in poll order; a failed send commits nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from kpi_rules import load_rules
from streams.ingest import IngestService
from streams.metrics import KpiMetrics
from streams.settings import Settings


@dataclass
class Message:
    value: bytes
    offset: int
    key: bytes | None = None


class Producer:
    """Sends are acknowledged only when the test says so."""

    def __init__(self) -> None:
        self.acks: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> asyncio.Future[Any]:
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


class Consumer:
    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))


TP = TopicPartition("crm.visits", 0)


def poll(offset: int) -> dict[TopicPartition, list[Any]]:
    event = {"event_id": f"e{offset}", "type": "visit.completed", "rep_id": f"rep-{offset}"}
    return {TP: [Message(orjson.dumps(event), offset)]}


def ingest() -> tuple[IngestService, Producer, Consumer]:
    service = IngestService(Settings(), load_rules(), KpiMetrics(CollectorRegistry()))
    producer, consumer = Producer(), Consumer()
    service.producer, service.consumer = producer, consumer  # type: ignore[assignment]
    return service, producer, consumer


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_commits_follow_acks_in_poll_order() -> None:
    service, producer, consumer = ingest()
    await service.process(poll(10))
    await service.process(poll(11))
    assert len(producer.acks) == 2 and consumer.commits == []
    producer.acks[1].set_result(None)  # the later poll is acked first
    await settle()
    assert consumer.commits == []  # still waits for the earlier poll
    producer.acks[0].set_result(None)
    await service._drain()
    assert consumer.commits == [{TP: 11}, {TP: 12}]


async def test_a_failed_send_commits_neither_its_poll_nor_later_ones() -> None:
    service, producer, consumer = ingest()
    await service.process(poll(10))
    await service.process(poll(11))
    producer.acks[0].set_exception(RuntimeError("broker refused"))
    producer.acks[1].set_result(None)
    with pytest.raises(RuntimeError, match="broker refused"):
        await service._drain()
    await service._abandon_in_flight()
    assert consumer.commits == []


class TricklingConsumer(Consumer):
    """Returns one record per poll, as a consumer does when events trickle in."""

    def __init__(self, available: int) -> None:
        super().__init__()
        self.available = available
        self.polls = 0

    async def getmany(self, timeout_ms: int = 0, max_records: int = 0) -> dict[TopicPartition, list[Any]]:
        self.polls += 1
        if self.available == 0:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        self.available -= 1
        await asyncio.sleep(0.001)
        return {TP: [Message(b"{}", self.polls)]}


def trickle(available: int, max_events: int, wait_ms: int) -> tuple[IngestService, TricklingConsumer]:
    settings = Settings(batch_max_events=max_events, batch_max_wait_ms=wait_ms)
    service = IngestService(settings, load_rules(), KpiMetrics(CollectorRegistry()))
    consumer = TricklingConsumer(available)
    service.consumer = consumer  # type: ignore[assignment]
    return service, consumer


async def test_a_batch_fills_up_to_its_size_from_trickling_polls() -> None:
    service, consumer = trickle(available=100, max_events=20, wait_ms=10_000)
    records = await service._poll()
    assert len(records[TP]) == 20 and consumer.polls == 20
    assert [m.offset for m in records[TP]] == list(range(1, 21))  # in poll order


async def test_a_batch_closes_at_its_wait_after_the_first_record() -> None:
    service, consumer = trickle(available=3, max_events=1000, wait_ms=50)
    loop = asyncio.get_running_loop()
    started = loop.time()
    records = await service._poll()
    assert len(records[TP]) == 3  # all that came, not waiting for 1,000
    assert loop.time() - started < 5  # closed by the 50 ms wait, not stuck


async def test_no_record_no_batch() -> None:
    service, consumer = trickle(available=0, max_events=10, wait_ms=5)
    assert await service._poll() == {} and consumer.polls == 1
