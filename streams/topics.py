"""Create the contract topics if they are missing: partitions from settings, targets compacted."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from kpi_monitor.settings import Settings

log = logging.getLogger(__name__)


def contract_topics(settings: Settings) -> list[NewTopic]:
    topics = []
    for name in (*settings.input_topics, settings.deadletter_topic):
        config = {"cleanup.policy": "compact"} if name == settings.topic("targets") else {}
        topics.append(
            NewTopic(
                name,
                num_partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs=config,
            )
        )
    return topics


async def ensure_topics(settings: Settings) -> list[str]:
    """Create what is missing; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in contract_topics(settings) if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker created them at the same time
            log.info("created topics: %s", ", ".join(t.name for t in missing))
        return [t.name for t in missing]
    finally:
        await admin.close()
