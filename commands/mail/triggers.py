"""The mail triggers: the events that make an email go out, turned into `app.mail.queue` commands.

A process manager following the event log from a position of its own:

- `invoice.issued`, when mail on issue is on (LEDGER_MAIL_ON_ISSUE=1): the invoice email
  (purpose `invoice`, trigger `on-issue`), keyed by the version the issue left the invoice at:
  the same email as a send of the unchanged invoice through the API or the CLI, so an invoice
  issued and then sent by hand is mailed once. An invoice voided before its email was queued
  gets none.
- `dunning.reminder-requested` (trigger `dunning`) and `dunning.reminded-by-hand` (trigger
  `dashboard`): a reminder (purpose `reminder`), keyed by the dunning event's id and version,
  so one reminder event is one email. An invoice paid (or voided) before its reminder was
  queued gets none: `queue` refuses a reminder with nothing due.

The queue command's id is derived from the invoice, the purpose and the key, so a stretch of
the log handled twice (a crash before the position was saved, two followers on one database)
queues each email once. The position is saved after the emails of a stretch are queued; a
store that fails mid-stretch leaves the position where it was and raises.

The position starts at the head of the log the first time the triggers run (`begin`): turning
mail on mails what happens from then on, never the invoices and reminders of the past.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from commands.application import BillingApplication
from commands.runner import storage_errors_as_unavailable
from ledger.dunning.aggregate import Dunning
from ledger.errors import InvalidInputError, RuleViolationError
from ledger.invoices import VOID, Invoice
from ledger.mail.emails import INVOICE, REMINDER, version_key

ON_ISSUE = "on-issue"
DUNNING = "dunning"
DASHBOARD = "dashboard"
TOPICS = (Invoice.Issued.TOPIC, Dunning.ReminderRequested.TOPIC, Dunning.RemindedByHand.TOPIC)
CHUNK = 500


class Position(Protocol):
    """Where the triggers have read the log up to (projections/positions.py keeps it in SQL)."""

    def read(self) -> int | None:
        """The position recorded, or None before the triggers ever ran."""

    def begin(self, position: int) -> int:
        """Record `position` unless one is recorded already; answer the one recorded."""

    def advance(self, position: int) -> None:
        """Move forward to `position`, never back."""


@dataclass(frozen=True)
class Triggered:
    """What one pass did: emails queued (or found queued already), triggers passed over, and
    the position reached."""

    queued: int
    passed_over: int
    position: int

    def __str__(self) -> str:
        return f"{self.queued} queued, {self.passed_over} passed over (log read up to {self.position})"


def reminder_key(event: Dunning.Event) -> str:
    """One reminder event, one email: its dunning's id and the event's version."""
    return f"dunning-{event.originator_id}-v{event.originator_version}"


class MailTriggers:
    def __init__(self, app: BillingApplication, position: Position, *, on_issue: bool, chunk: int = CHUNK) -> None:
        self.app = app
        self.position = position
        self.on_issue = on_issue
        self.chunk = chunk

    def begin(self) -> int:
        """The position to follow from: the one recorded, or the log's head on the first run."""
        return self.position.begin(self.app.head())

    def run_once(self) -> Triggered:
        """Queue the emails of every trigger logged since the position; the new position."""
        position = self.begin()
        queued = passed_over = 0
        while True:
            head = self.app.head()
            events = self._triggers_after(position, head)
            for event in events:
                if self._queue(event):
                    queued += 1
                else:
                    passed_over += 1
            # A short read covered the log up to the head read before it.
            reached = events[-1][0] if len(events) == self.chunk else head
            if reached > position:
                self.position.advance(reached)
                position = reached
            if len(events) < self.chunk:
                return Triggered(queued, passed_over, position)

    def _triggers_after(self, position: int, head: int) -> list[Any]:
        """The trigger events after `position` up to `head`, with their positions."""
        if head <= position:
            return []
        recorder, mapper = self.app.recorder, self.app.mapper
        with storage_errors_as_unavailable():
            found = recorder.select_notifications(start=position + 1, limit=self.chunk, stop=head, topics=TOPICS)
            return [(n.id, mapper.to_domain_event(n)) for n in found]

    def _queue(self, positioned: tuple[int, Any]) -> bool:
        """Queue the email the event asks for; False when it asks for none, or `queue` refuses it
        (a refusal is an answer about the invoice, which asking again would not change)."""
        _, event = positioned
        try:
            if isinstance(event, Invoice.Issued):
                return self._invoice_email(event)
            if isinstance(event, (Dunning.ReminderRequested, Dunning.RemindedByHand)):
                trigger = DUNNING if isinstance(event, Dunning.ReminderRequested) else DASHBOARD
                self.app.mail.queue(self._invoice_of(event), purpose=REMINDER, trigger=trigger, key=reminder_key(event))
                return True
        except (InvalidInputError, RuleViolationError):  # e.g. paid or voided since: nothing to remind of
            return False
        return False

    def _invoice_email(self, event: Invoice.Issued) -> bool:
        if not self.on_issue or self.app.invoice(event.originator_id).status == VOID:
            return False
        key = version_key(event.originator_version)
        self.app.mail.queue(event.originator_id, purpose=INVOICE, trigger=ON_ISSUE, key=key)
        return True

    def _invoice_of(self, event: Dunning.Event) -> UUID:
        dunning = self.app.runner.get(event.originator_id, Dunning)
        if dunning is None:
            raise LookupError(f"dunning {event.originator_id} is not in the log")  # the log gave one of its events
        return UUID(dunning.invoice_id)
