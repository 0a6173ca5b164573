"""Dead-letter records: the original bytes as the value, the reason and source in headers."""

from __future__ import annotations

REASON_HEADER = "kpi.reason"
ERROR_HEADER = "kpi.error"


def dead_letter_headers(
    reason: str, error: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    return [
        (REASON_HEADER, reason.encode()),
        (ERROR_HEADER, error.encode("utf-8", "replace")[:2048]),
        ("kpi.topic", topic.encode()),
        ("kpi.partition", str(partition).encode()),
        ("kpi.offset", str(offset).encode()),
    ]

