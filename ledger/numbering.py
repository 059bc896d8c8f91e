"""Gap-free invoice numbers: one NumberSeries aggregate per series.

Issuing saves the invoice and the series' `NumberAllocated` event in one transaction, so a
number exists exactly when its invoice was issued: no gaps, no repeats. Two concurrent issues
in one series collide on the series' version; the loser retries with the next number.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.events import CopiedCheaply, SharedWhenCopied

_SERIES_NAMESPACE = UUID("0b3c52d4-8a3f-4f0e-bb61-2b8f2f6a9c07")


def series_id(series: str) -> UUID:
    return uuid5(_SERIES_NAMESPACE, series)


class NumberSeries(CopiedCheaply, Aggregate):
    TOPIC = "number-series"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Started(Event, Aggregate.Created):
        TOPIC = "number-series.started"
        series: str

    Created = Started  # the library looks for a "Created" event; ours has a domain name

    class NumberAllocated(Event):
        TOPIC = "number-series.number-allocated"
        sequence: int
        invoice_id: str

        def apply(self, aggregate: NumberSeries) -> None:
            aggregate.last = self.sequence

    def __init__(self, series: str) -> None:
        self.series = series
        self.last = 0

    @classmethod
    def start(cls, series: str, *, at: datetime) -> NumberSeries:
        return cls._create(cls.Started, id=series_id(series), timestamp=at, series=series)

    def allocate(self, invoice_id: UUID, *, at: datetime) -> int:
        self.trigger_event(self.NumberAllocated, timestamp=at, sequence=self.last + 1, invoice_id=str(invoice_id))
        return self.last
