"""Errors raised by the Redis store."""

from __future__ import annotations

__all__ = [
    "PartitionNotLoadedError",
    "RedisStoreConnectionError",
    "RedisStoreError",
    "RedisStoreFlushError",
]


class RedisStoreError(Exception):
    """Base class of the errors raised by the Redis store."""


class RedisStoreConnectionError(RedisStoreError):
    """Redis cannot be reached (message names the URL without its password)."""


class RedisStoreFlushError(RedisStoreError):
    """A flush failed; the dirty keys and offsets are kept for the next attempt."""


class PartitionNotLoadedError(RedisStoreError, KeyError):
    """A write (or a partition-scoped read) for a partition this store does not hold."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""
