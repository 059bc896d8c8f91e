"""What a payment provider tells us (Stripe's webhook events), kept as received.

Every verified event is recorded once, under an id derived from the provider's event id, with
its raw payload exactly as delivered: it is evidence, and a later replay can act on it again.
A second delivery of the same event collides with the first record and changes nothing.

An event that named nothing we knew (`unmatched`), that a rule refused (`refused`) or that was
never handled can be handled again on an operator's request (`ledger webhooks reprocess`): each
time is a `Reprocessed` event of its own beside the first `Handled`, so the history shows every
attempt and what it gave.

The port the web layer calls to check a delivery's signature (`WebhookVerifier`) lives here
too; adapters/stripe implements it, since only that package may import `stripe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate

from commands.ingestion.provider_reports import Report
from ledger.errors import NotFoundError, RuleViolationError
from ledger.events import CopiedCheaply, SharedWhenCopied
from ledger.named_ids import named_id

_NAMESPACE = UUID("6d3f1c2a-8e4b-4f7a-9a51-3c0b2e7d9f10")

# What was done with an event.
APPLIED = "applied"  # it moved money or changed a payment, an invoice or a checkout
UNMATCHED = "unmatched"  # it names nothing we know (no invoice, no payment): kept for reconciliation
REFUSED = "refused"  # a rule forbids what it reports (a refund beyond what was paid, say)
IGNORED = "ignored"  # a type we do not act on, or nothing new
WAITING = "waiting"  # a refund or dispute for a payment not reported yet: applied when it arrives
# it reports what another event reported and was applied (or kept waiting) already:
# `charge.succeeded` after `payment_intent.succeeded`, say. Events stored before this outcome
# existed say `ignored` for it.
DUPLICATE = "duplicate"

# What an operator may have handled again: what found nothing of ours or was refused may find
# it now (the invoice was created, a bug was fixed); None: recorded, never handled. The others
# are done, or (waiting) are released by their payment.
REPROCESSABLE = frozenset({UNMATCHED, REFUSED, None})


def provider_event_id(provider: str, event_id: str) -> UUID:
    return named_id(_NAMESPACE, f"{provider}:{event_id}")


class ProviderEvent(CopiedCheaply, Aggregate):
    """One event a provider sent, as received: its id, type, creation time and raw payload."""

    TOPIC = "provider-event"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Received(Event, Aggregate.Created):
        TOPIC = "provider-event.received"
        class_version = 2
        provider: str
        event_id: str
        event_type: str
        created: int  # the provider's own timestamp (Unix seconds)
        livemode: bool
        payload: str  # the body exactly as delivered (UTF-8 text)
        api_version: str | None  # the version the payload is written in (v2); None: not said

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Version 1 did not keep it apart; the payload still says it, for whoever re-reads it.
            state["api_version"] = None

    Created = Received

    class Handled(Event):
        """What the ledger did with the event: `applied`, `duplicate` (what it reports was applied
        already), `unmatched` (names nothing we know), `refused` (a rule forbids it), `ignored` (a
        type the ledger does not act on), `waiting` (for its payment). A waiting event is handled
        once more, when its payment arrives."""

        TOPIC = "provider-event.handled"
        outcome: str
        detail: str

        def apply(self, aggregate: ProviderEvent) -> None:
            aggregate.outcome = self.outcome
            aggregate.detail = self.detail

    class Reprocessed(Event):
        """Handled again on an operator's request: the new outcome and detail, the outcome it
        had before (None: never handled) and which reprocessing this is (1 for the first)."""

        TOPIC = "provider-event.reprocessed"
        outcome: str
        detail: str
        previous_outcome: str | None
        reprocessing: int

        def apply(self, aggregate: ProviderEvent) -> None:
            aggregate.outcome = self.outcome
            aggregate.detail = self.detail
            aggregate.reprocessings = self.reprocessing

    def __init__(
        self,
        provider: str,
        event_id: str,
        event_type: str,
        created: int,
        livemode: bool,
        payload: str,
        api_version: str | None = None,
    ) -> None:
        self.provider = provider
        self.api_version = api_version
        self.event_id = event_id
        self.event_type = event_type
        self.created = created
        self.livemode = livemode
        self.payload = payload
        self.outcome: str | None = None  # None until handled
        self.detail = ""
        self.reprocessings = 0

    @property
    def settled(self) -> bool:
        """Handled for good: nothing more will be done with it."""
        return self.outcome is not None and self.outcome != WAITING

    def handled(self, *, outcome: str, detail: str, at: datetime) -> None:
        if self.settled:
            raise ValueError(f"event {self.event_id} was handled already ({self.outcome})")
        self.trigger_event(self.Handled, timestamp=at, outcome=outcome, detail=detail[:1000])

    @property
    def reprocessable(self) -> bool:
        return self.outcome in REPROCESSABLE

    def reprocess(self, *, outcome: str, detail: str, at: datetime) -> None:
        """Record what handling it again gave (ProviderEventNotReprocessableError unless it is
        `reprocessable`)."""
        if not self.reprocessable:
            raise ProviderEventNotReprocessableError(self.event_id, self.outcome)
        self.trigger_event(
            self.Reprocessed,
            timestamp=at,
            outcome=outcome,
            detail=detail[:1000],
            previous_outcome=self.outcome,
            reprocessing=self.reprocessings + 1,
        )

    @classmethod
    def receive(cls, *, provider: str, event: VerifiedEvent, at: datetime) -> ProviderEvent:
        return cls._create(
            cls.Received,
            id=provider_event_id(provider, event.event_id),
            timestamp=at,
            provider=provider,
            event_id=event.event_id,
            event_type=event.event_type,
            created=event.created,
            livemode=event.livemode,
            payload=event.payload,
            api_version=event.api_version,
        )


class ProviderEventNotFoundError(NotFoundError):
    """No event of that provider with that id was ever received."""

    def __init__(self, provider: str, event_id: str) -> None:
        super().__init__(f"no {provider} event {event_id} was received")
        self.provider = provider
        self.event_id = event_id


class ProviderEventNotReprocessableError(RuleViolationError):
    """Only an unmatched, refused or never-handled event is handled again: an applied one would
    add nothing (its money is in), a waiting one is released by its payment."""

    def __init__(self, event_id: str, outcome: str | None) -> None:
        why = {
            WAITING: "it waits for its payment and is applied when the payment arrives",
            APPLIED: "it was applied already",
            DUPLICATE: "what it reports was applied already",
            IGNORED: "it is a type the ledger does not act on, or reported nothing new",
        }.get(outcome or "", "only unmatched, refused or never-handled events are")
        super().__init__(f"event {event_id} is {outcome} and is not handled again: {why}")
        self.event_id = event_id
        self.outcome = outcome


class WebhookRejectedError(Exception):
    """A delivery that is not a genuine, readable event: bad or missing signature, a timestamp
    outside the tolerance, a body that is not an event. Nothing is recorded; answered 400."""


@dataclass(frozen=True)
class VerifiedEvent:
    """An event whose signature checked out, its object decoded by the adapter.

    `subject` is the object the event reports, typed (commands/ingestion/provider_reports.py), when it is
    of a kind the ledger reads; `unreadable` says why it could not be decoded (the field named),
    in which case `subject` is None and the event is recorded as refused. `api_version` is the
    version the provider wrote the payload in (Stripe: the webhook endpoint's, not ours).
    """

    event_id: str
    event_type: str
    created: int
    livemode: bool
    payload: str  # the raw body, as text
    api_version: str | None = None
    subject: Report | None = None
    unreadable: str | None = None


class WebhookVerifier(Protocol):
    provider: str

    def verify(self, payload: bytes, signature: str | None) -> VerifiedEvent:
        """The event, if the body is signed with our secret within the tolerance; else
        WebhookRejectedError."""
        ...
