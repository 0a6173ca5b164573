"""`Rejection`: why an event cannot be applied (a contract reason) and a sentence that says so."""

from __future__ import annotations

from typing import Any

from kpi_rules.vocabulary import Reason


class Rejection(Exception):
    """An event that cannot be applied: `reason` says which contract reason, `error` what and why."""

    def __init__(self, reason: Reason | str, error: str) -> None:
        super().__init__(error)
        self.reason = Reason(reason)
        self.error = error

    def __str__(self) -> str:
        return self.error

    def __repr__(self) -> str:
        return f"Rejection({self.reason!r}, {self.error!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Rejection, (self.reason, self.error))

