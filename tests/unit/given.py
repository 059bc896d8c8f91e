"""What unit tests share: a fixed start of time, a customer, and a way to read triggered events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.domain import Aggregate

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}


def drain(aggregate: Aggregate) -> list[Any]:
    """The events the aggregate triggered since the last drain (typed loosely, to read fields)."""
    return list(aggregate.collect_events())


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
