"""Deletion of one app's Kafka topics and Redis keys once its isolated deployment is done."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def delete_topics(bootstrap: str, wanted: Callable[[str], bool]) -> list[str]:
    """Delete every topic of the broker for which `wanted(name)` is true; returns their names."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if wanted(t)]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


def delete_app_topics(bootstrap: str, app_id: str) -> list[str]:
    """Topics whose name contains `app_id`: its contract topics (`<app_id>.crm.*`), Faust's internal
    ones (`<app_id>-...`), and those of any app reading them (the Quix peer names its repartition
    and changelog topics after the source topics). The app id must be unique to the deployment."""
    return asyncio.run(delete_topics(bootstrap, lambda topic: app_id in topic))


def delete_app_keys(redis_url: str, app_id: str) -> int:
    """Delete every Redis key of `app_id`'s state store (`kpi:{<app>:<table>:<partition>}:*`)."""
    import redis

    # Imported here: the store module pulls in Faust, which a test process may not need.
    from streams.store.keys import DEFAULT_KEY_PREFIX, escape_key_component

    client = redis.Redis.from_url(redis_url)
    try:
        app = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in escape_key_component(app_id))
        pattern = f"{DEFAULT_KEY_PREFIX}:{{{app}:*"
        deleted = 0
        for key in list(client.scan_iter(match=pattern, count=1000)):
            deleted += int(client.unlink(key))
        return deleted
    finally:
        client.close()
