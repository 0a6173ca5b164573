"""The local stack works: Kafka round trip, Redis, Prometheus, Alertmanager, idempotent up."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis import Redis

from kpi_monitor.devstack import DevConfig, dev_status, dev_up


def _http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)


async def test_kafka_produce_and_consume(kafka_bootstrap: str) -> None:
    topic = f"it.devstack.{uuid.uuid4().hex[:12]}"
    payload = b'{"event_id": "e-1", "type": "visit.completed"}'
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, payload, key=b"rep-1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"it-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        message = await consumer.getone()
    finally:
        await consumer.stop()
    assert message.value == payload
    assert (message.partition, message.offset) == (meta.partition, meta.offset)


async def test_auto_created_topic_has_four_partitions(kafka_bootstrap: str) -> None:
    topic = f"it.partitions.{uuid.uuid4().hex[:12]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x")
        partitions = await producer.partitions_for(topic)
    finally:
        await producer.stop()
    assert len(partitions) == 4


def test_redis_set_get(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    key = f"it:devstack:{uuid.uuid4().hex}"
    try:
        client.set(key, "42", ex=60)
        assert client.get(key) == b"42"
    finally:
        client.delete(key)
        client.close()


def test_prometheus_ready_and_config_valid(stack: DevConfig) -> None:
    assert _http_status(f"http://{stack.host}:{stack.prometheus_port}/-/ready") == 200
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: apt-get install -y prometheus"
    config = stack.data_dir / "prometheus" / "prometheus.yml"
    result = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_loaded_service_rules(stack: DevConfig) -> None:
    url = f"http://{stack.host}:{stack.prometheus_port}/api/v1/rules"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read().decode()
    assert "KpiWorkerDown" in body


def test_alertmanager_ready(stack: DevConfig) -> None:
    assert _http_status(f"http://{stack.host}:{stack.alertmanager_port}/-/ready") == 200


def test_second_up_is_a_noop(stack: DevConfig) -> None:
    before = dev_status(stack)
    assert all(state.startswith("running") for state in before.values()), before
    dev_up(stack)
    assert dev_status(stack) == before
