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

from kpi_monitor.settings import Settings
from kpi_rules import load_rules
from streams.ingest import IngestService
from streams.metrics import KpiMetrics


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
