"""Names of the store's Redis keys and of the fields of its offsets hash (pure)."""

from __future__ import annotations

from typing import Protocol

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "TopicPartition",
    "data_key",
    "escape_key_component",
    "hash_tag",
    "meta_key",
    "offset_field",
    "offsets_key",
    "parse_offset_field",
    "shared_max_key",
]

DEFAULT_KEY_PREFIX = "kpi"


class TopicPartition(Protocol):
    """What an offset field is named after (Faust's and aiokafka's TP both fit)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...


def escape_key_component(value: str) -> str:
    """Escape ``%``, ``:``, ``{`` and ``}`` so names cannot collide or break the hash tag."""
    return value.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D")


def hash_tag(app_id: str, table_name: str, partition: int) -> str:
    """The Redis Cluster hash tag content shared by one partition's keys."""
    if partition < 0:
        raise ValueError(f"partition must be >= 0, got {partition}")
    return f"{escape_key_component(app_id)}:{escape_key_component(table_name)}:{int(partition)}"


def data_key(app_id: str, table_name: str, partition: int, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """``kpi:{app:table:partition}:data``: hash of the partition's keys and values."""
    return f"{prefix}:{{{hash_tag(app_id, table_name, partition)}}}:data"


def offsets_key(app_id: str, table_name: str, partition: int, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """``kpi:{app:table:partition}:offsets``: hash ``"topic:partition" -> offset``."""
    return f"{prefix}:{{{hash_tag(app_id, table_name, partition)}}}:offsets"


def meta_key(app_id: str, table_name: str, partition: int, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """``kpi:{app:table:partition}:meta``: hash of the partition's version and bookkeeping."""
    return f"{prefix}:{{{hash_tag(app_id, table_name, partition)}}}:meta"


def shared_max_key(app_id: str, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """``kpi:{app:shared}:max``: sorted set of the app-wide maxima (see ``redis_io.shared_max``)."""
    return f"{prefix}:{{{escape_key_component(app_id)}:shared}}:max"


def offset_field(tp: TopicPartition) -> str:
    """Field of a topic partition in the offsets hash: ``"topic:partition"``."""
    return f"{tp.topic}:{int(tp.partition)}"


def parse_offset_field(value: str | bytes) -> tuple[str, int]:
    """Inverse of :func:`offset_field`: ``(topic, partition)``."""
    text = value.decode() if isinstance(value, bytes) else value
    topic, sep, partition = text.rpartition(":")
    if not sep or not topic:
        raise ValueError(f"not an offset field: {text!r}")
    return topic, int(partition)
