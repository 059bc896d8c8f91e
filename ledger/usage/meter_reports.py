"""What was reported to the payment provider's meters: an outbox's progress, as events.

Accepted usage records of customers billed by Stripe are reported one by one as Stripe
meter events. The reporter reads the event log from its position, reports each such record
(the record's id as the meter event's `identifier`, which Stripe counts once), then records a
`Reported` event with the identifiers and the new position. A restart resumes at the recorded
position: nothing is lost. A record reported just before a crash, and not yet recorded, is
reported again after it with the same identifier and idempotency key, and Stripe counts it
once: nothing is counted twice.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

_REPORTER_NAMESPACE = UUID("2f4e6a8c-0b1d-4f3e-a5c7-9e8d7c6b5a41")


def reporter_id(provider: str) -> UUID:
    return uuid5(_REPORTER_NAMESPACE, provider)


class MeterReporter(Aggregate):
    TOPIC = "meter-reporter"

    class Event(Aggregate.Event):
        pass

    class Started(Event, Aggregate.Created):
        TOPIC = "meter-reporter.started"
        provider: str

    Created = Started  # the library looks for a "Created" event; ours has a domain name

    class Reported(Event):
        TOPIC = "meter-reporter.reported"
        through: int  # the log position read up to (inclusive)
        reported: list[str]  # identifiers the provider accepted
        skipped: list[dict[str, str]]  # {identifier, reason}: records the provider would refuse

        def apply(self, aggregate: MeterReporter) -> None:
            aggregate.position = self.through
            aggregate.reported += len(self.reported)
            aggregate.skipped += len(self.skipped)

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.position = 0
        self.reported = 0
        self.skipped = 0

    @classmethod
    def start(cls, provider: str, *, at: datetime) -> MeterReporter:
        return cls._create(cls.Started, id=reporter_id(provider), timestamp=at, provider=provider)

    def record(self, *, through: int, reported: list[str], skipped: list[dict[str, str]], at: datetime) -> None:
        if through <= self.position:
            return  # another reporter got there first: nothing new
        self.trigger_event(self.Reported, timestamp=at, through=through, reported=reported, skipped=skipped)
