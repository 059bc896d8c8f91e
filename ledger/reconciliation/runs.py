"""A reconciliation run is a fact too: when, for which period, from which source, what it found.

A run's events hold everything its report showed (the items as found, in pages of at most
`ITEMS_PER_EVENT`, and the summary), so a past run's report is shown again exactly, from the
log, whatever has been settled since.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.events import CopiedCheaply, SharedWhenCopied
from ledger.validation import require_text

STRIPE = "stripe"
LEDGER = "ledger"
SOURCES = (STRIPE, LEDGER)

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"

ITEMS_PER_EVENT = 500  # a run with many items is stored as several events of bounded size


class ReconciliationRun(CopiedCheaply, Aggregate):
    TOPIC = "reconciliation-run"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Started(Event, Aggregate.Created):
        TOPIC = "reconciliation-run.started"
        period_start: str  # ISO 8601, UTC
        period_end: str
        source: str
        requested_by: str

    Created = Started

    class ItemsFound(Event):
        """Items of the report, as they stood when the run found them (fixed JSON shape)."""

        TOPIC = "reconciliation-run.items-found"
        items: list[dict[str, Any]]

        def apply(self, aggregate: ReconciliationRun) -> None:
            aggregate.item_count += len(self.items)

    class Completed(Event):
        TOPIC = "reconciliation-run.completed"
        summary: dict[str, Any]

        def apply(self, aggregate: ReconciliationRun) -> None:
            aggregate.status = COMPLETED
            aggregate.summary = dict(self.summary)

    class Failed(Event):
        TOPIC = "reconciliation-run.failed"
        reason: str

        def apply(self, aggregate: ReconciliationRun) -> None:
            aggregate.status = FAILED
            aggregate.failure = self.reason

    def __init__(self, period_start: str, period_end: str, source: str, requested_by: str) -> None:
        self.period_start = period_start
        self.period_end = period_end
        self.source = source
        self.requested_by = requested_by
        self.status = RUNNING
        self.summary: dict[str, Any] | None = None
        self.item_count = 0
        self.failure = ""

    @classmethod
    def start(
        cls, *, run_id: UUID, start: datetime, end: datetime, source: str, requested_by: str, at: datetime
    ) -> ReconciliationRun:
        if source not in SOURCES:
            raise ValueError(f"unknown reconciliation source {source!r}")
        return cls._create(
            cls.Started,
            id=run_id,
            timestamp=at,
            period_start=start.isoformat(),
            period_end=end.isoformat(),
            source=source,
            requested_by=require_text(requested_by, field="by", limit=200),
        )

    def found(self, items: list[dict[str, Any]], *, at: datetime) -> None:
        for first in range(0, len(items), ITEMS_PER_EVENT):
            self.trigger_event(self.ItemsFound, timestamp=at, items=items[first : first + ITEMS_PER_EVENT])

    def complete(self, summary: dict[str, Any], *, at: datetime) -> None:
        self.trigger_event(self.Completed, timestamp=at, summary=summary)

    def fail(self, reason: str, *, at: datetime) -> None:
        self.trigger_event(self.Failed, timestamp=at, reason=reason[:2000])
