"""Create the topics a worker needs if they are missing (partitions from settings, targets and the
changelog compacted) and wait until every partition has a leader."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from kpi_rules.vocabulary import COMPACTED_TOPICS
from streams.connections import aiokafka_kwargs
from streams.settings import Settings

log = logging.getLogger(__name__)


def contract_topics(settings: Settings) -> list[NewTopic]:
    topics = []
    compacted = {settings.topic(t) for t in COMPACTED_TOPICS}
    for name in (*settings.input_topics, settings.deadletter_topic):
        config = {"cleanup.policy": "compact"} if name in compacted else {}
        topics.append(
            NewTopic(
                name,
                num_partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs=config,
            )
        )
    return topics


def worker_topics(settings: Settings, table_names: tuple[str, ...]) -> list[NewTopic]:
    """The contract topics plus the internal ones Faust would create lazily: created up front,
    because a Faust consumer that subscribes before its topic exists ignores it for good."""
    internal = [
        NewTopic(
            name,
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
        )
        for name in (settings.routed_topic, settings.customer_topic)
    ]
    internal += [
        NewTopic(
            f"{settings.app_id}-{table_name}-changelog",
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            topic_configs={"cleanup.policy": "compact"},
        )
        for table_name in table_names
    ]
    return contract_topics(settings) + internal


async def ensure_topics(
    settings: Settings, topics: list[NewTopic] | None = None, timeout: float = 60.0
) -> list[str]:
    """Create what is missing and wait for partition leaders; returns the names created."""
    wanted = topics if topics is not None else contract_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **aiokafka_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker created them at the same time
            log.info("created topics: %s", ", ".join(t.name for t in missing))
            await _wait_for_leaders(admin, [t.name for t in missing], timeout)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(names)
        ready = all(
            topic.get("error_code", 0) == 0
            and topic.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in topic["partitions"])
            for topic in described
        )
        if ready or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.2)
