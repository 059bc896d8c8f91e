"""The InvoiceEmail aggregate: one email of an invoice to its customer, from queued to sent.

One per send, apart from the Invoice (ADR 0020): mailing an invoice never moves the invoice's
version or ETag. Its id is derived from the invoice, the purpose and a key
(`email_id_for`: uuid5), so queueing the same send twice is one email; the key is the invoice's
version unless the caller asks for a resend.

Delivery is a sequence of attempts. Each attempt is claimed first (`attempt-started`, saved with
optimistic concurrency before anyone talks to the mail server), so two workers never send the
same attempt; then the attempt ends `sent`, `failed` (retried later, on the BACKOFF schedule,
until `max_attempts`) or `bounced` (the server refused the recipient: retrying cannot help).
A worker that stopped mid-attempt leaves the email `sending`; after LEASE another worker may
take it up (the abandoned attempt counts as failed).

Events carry plain JSON values only; moments are ISO 8601 text.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.errors import InvalidInputError, NotFoundError, RuleViolationError
from ledger.events import CopiedCheaply, SharedWhenCopied
from ledger.validation import require_email, require_text

# Purposes: the invoice itself, or a reminder that it is due.
INVOICE = "invoice"
REMINDER = "reminder"
PURPOSES = (INVOICE, REMINDER)

# What asked for the email.
TRIGGERS = ("api", "cli", "on-issue", "dunning", "dashboard")

# Statuses (the read model's `status` column says the same).
QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"  # will be retried at retry_at
BOUNCED = "bounced"
GAVE_UP = "gave_up"
STATUSES = (QUEUED, SENDING, SENT, FAILED, BOUNCED, GAVE_UP)
SETTLED = (SENT, BOUNCED, GAVE_UP)

DEFAULT_MAX_ATTEMPTS = 5
MAX_ATTEMPTS_LIMIT = 20
# The wait after the nth failed attempt (the last one repeats): a mail server down for a
# deploy is retried within minutes, one down for the night still gets the email the next day.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
# How long an attempt may stay unreported before another worker takes the email up. An SMTP
# conversation that is still running after this is long past its own timeout.
LEASE = timedelta(minutes=10)
KEY_LIMIT = 200
REASON_LIMIT = 1_000

_EMAIL_NAMESPACE = UUID("7c1d9a4e-5b3f-4e62-9d8a-2f0c6b1e8a53")


def email_id_for(invoice_id: UUID, purpose: str, key: str) -> UUID:
    """One email per (invoice, purpose, key): the same send asked for twice is the same email."""
    return uuid5(_EMAIL_NAMESPACE, f"{invoice_id}:{purpose}:{key}")


def version_key(invoice_version: int) -> str:
    """The key of a send that is not a resend: the invoice's version, so an unchanged invoice is
    mailed once however often it is sent."""
    return f"v{invoice_version}"


def backoff_after(attempt: int) -> timedelta:
    """The wait after failed attempt number `attempt` (1-based)."""
    return BACKOFF[min(attempt, len(BACKOFF)) - 1]


class InvoiceEmail(CopiedCheaply, Aggregate):
    TOPIC = "invoice-email"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Queued(Event, Aggregate.Created):
        TOPIC = "invoice-email.queued"
        invoice_id: str
        invoice_version: int  # the invoice as it stood when queued: what the message shows
        purpose: str
        recipient: str
        trigger: str
        key: str
        max_attempts: int

    Created = Queued

    class AttemptStarted(Event):
        """The claim: saved before the server is contacted, so one worker sends each attempt."""

        TOPIC = "invoice-email.attempt-started"
        attempt: int

        def apply(self, aggregate: InvoiceEmail) -> None:
            aggregate.status = SENDING
            aggregate.attempts = self.attempt
            aggregate.attempt_started_at = self.timestamp
            aggregate.retry_at = None

    class Sent(Event):
        """The server accepted the message. `message_id` is our Message-ID header (stable per
        email: a receiver drops a resend after a crash); `reply` the server's answer (its queue id)."""

        TOPIC = "invoice-email.sent"
        attempt: int
        message_id: str
        reply: str

        def apply(self, aggregate: InvoiceEmail) -> None:
            aggregate.status = SENT
            aggregate.message_id = self.message_id
            aggregate.reply = self.reply
            aggregate.sent_at = self.timestamp
            aggregate.retry_at = None

    class Failed(Event):
        """The attempt did not get through (server down, timeout, 4xx): retried at `retry_at`, or
        given up when it is None (the attempts are used up)."""

        TOPIC = "invoice-email.failed"
        attempt: int
        reason: str
        retry_at: str | None

        def apply(self, aggregate: InvoiceEmail) -> None:
            aggregate.status = FAILED if self.retry_at is not None else GAVE_UP
            aggregate.last_error = self.reason
            aggregate.retry_at = None if self.retry_at is None else datetime.fromisoformat(self.retry_at)

    class Bounced(Event):
        """The server refused the recipient (5xx): final, no retry can help."""

        TOPIC = "invoice-email.bounced"
        attempt: int
        code: int  # the server's 5xx; 0 when refused before any server (an address SMTP cannot carry)
        reason: str

        def apply(self, aggregate: InvoiceEmail) -> None:
            aggregate.status = BOUNCED
            aggregate.last_error = f"{self.code} {self.reason}"
            aggregate.retry_at = None

    def __init__(
        self,
        invoice_id: str,
        invoice_version: int,
        purpose: str,
        recipient: str,
        trigger: str,
        key: str,
        max_attempts: int,
    ) -> None:
        self.invoice_id = invoice_id
        self.invoice_version = invoice_version
        self.purpose = purpose
        self.recipient = recipient
        self.trigger = trigger
        self.key = key
        self.max_attempts = max_attempts
        self.status = QUEUED
        self.attempts = 0
        self.attempt_started_at: datetime | None = None
        self.retry_at: datetime | None = None
        self.last_error: str | None = None
        self.message_id: str | None = None
        self.reply: str | None = None
        self.sent_at: datetime | None = None

    # ----------------------------------------------------------------------------- commands

    @classmethod
    def queue(
        cls,
        *,
        invoice_id: UUID,
        invoice_version: int,
        purpose: str,
        recipient: str,
        trigger: str,
        key: str,
        at: datetime,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> InvoiceEmail:
        if purpose not in PURPOSES:
            raise InvalidInputError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}", field="purpose")
        if trigger not in TRIGGERS:
            raise InvalidInputError(f"trigger must be one of {', '.join(TRIGGERS)}, not {trigger!r}", field="trigger")
        if (
            isinstance(max_attempts, bool)
            or not isinstance(max_attempts, int)
            or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT
        ):
            raise InvalidInputError(f"max_attempts must be 1 to {MAX_ATTEMPTS_LIMIT}", field="max_attempts")
        key = require_text(key, field="key", limit=KEY_LIMIT)
        return cls._create(
            cls.Queued,
            id=email_id_for(invoice_id, purpose, key),
            timestamp=at,
            invoice_id=str(invoice_id),
            invoice_version=invoice_version,
            purpose=purpose,
            recipient=require_email(recipient, field="recipient"),
            trigger=trigger,
            key=key,
            max_attempts=max_attempts,
        )

    def start_attempt(self, *, at: datetime) -> int:
        """Claim the next attempt; refused while it is not due (EmailNotDueError)."""
        if not self.is_due(at):
            raise EmailNotDueError(self.id, self._not_due_because(at))
        attempt = self.attempts + 1
        self.trigger_event(self.AttemptStarted, timestamp=at, attempt=attempt)
        return attempt

    def record_sent(self, *, attempt: int, message_id: str, reply: str, at: datetime) -> bool:
        """The server took the message; False (nothing recorded) when it was recorded sent already.

        A late report of an earlier attempt (its worker outlived the lease) still counts: the
        message went out, whatever the later attempt does."""
        self._require_attempt(attempt)
        if self.status == SENT:
            return False
        self.trigger_event(
            self.Sent, timestamp=at, attempt=attempt, message_id=message_id[:998], reply=reply[:REASON_LIMIT]
        )
        return True

    def record_failed(self, *, attempt: int, reason: str, at: datetime) -> bool:
        """The attempt failed; retried after the backoff, or given up on the last attempt. False
        when the report is stale (the attempt is not the current one, or it was settled)."""
        self._require_attempt(attempt)
        if self.status != SENDING or attempt != self.attempts:
            return False
        retry_at = None if attempt >= self.max_attempts else (at + backoff_after(attempt)).isoformat()
        self.trigger_event(self.Failed, timestamp=at, attempt=attempt, reason=reason[:REASON_LIMIT], retry_at=retry_at)
        return True

    def record_bounced(self, *, attempt: int, code: int, reason: str, at: datetime) -> bool:
        """The server refused the recipient. False when the report is stale, as for failures."""
        self._require_attempt(attempt)
        if self.status != SENDING or attempt != self.attempts:
            return False
        self.trigger_event(self.Bounced, timestamp=at, attempt=attempt, code=code, reason=reason[:REASON_LIMIT])
        return True

    # ----------------------------------------------------------------------------- queries

    def is_due(self, at: datetime) -> bool:
        """Whether a worker may start an attempt at `at`."""
        if self.status == QUEUED:
            return True
        if self.status == FAILED:
            return self.retry_at is not None and self.retry_at <= at
        if self.status == SENDING:
            return self.abandoned(at) and self.attempts < self.max_attempts
        return False

    def abandoned(self, at: datetime) -> bool:
        """An attempt started more than LEASE ago and never reported."""
        return self.status == SENDING and self.attempt_started_at is not None and self.attempt_started_at + LEASE <= at

    @property
    def next_attempt_at(self) -> datetime | None:
        """When a worker may take the email up next (None: never, it is settled)."""
        if self.status == QUEUED:
            return self.created_on
        if self.status == FAILED:
            return self.retry_at
        if self.status == SENDING and self.attempt_started_at is not None:
            return self.attempt_started_at + LEASE
        return None

    def _not_due_because(self, at: datetime) -> str:
        if self.status in SETTLED:
            return f"it is {self.status}"
        if self.status == FAILED:
            return f"its next attempt is at {self.retry_at.isoformat() if self.retry_at else '-'}"
        if self.attempts >= self.max_attempts:
            return f"its last attempt ({self.attempts} of {self.max_attempts}) was never reported"
        return f"attempt {self.attempts} is in progress"

    def _require_attempt(self, attempt: int) -> None:
        if not 1 <= attempt <= self.attempts:
            raise EmailNotDueError(self.id, f"attempt {attempt} was never started (attempts: {self.attempts})")


class InvoiceNotSendableError(RuleViolationError):
    """Only an issued invoice is mailed (a draft or a deleted one is refused, 409); a reminder
    only for an invoice with something due."""

    def __init__(self, invoice_id: object, status: str, purpose: str = INVOICE) -> None:
        what = "a reminder of" if purpose == REMINDER else "an email of"
        super().__init__(f"cannot send {what} invoice {invoice_id}: it is {status}")
        self.invoice_id = invoice_id
        self.status = status


class EmailNotDueError(RuleViolationError):
    """An attempt out of turn: the email is settled, being sent, or waiting for its retry (409)."""

    def __init__(self, email_id: object, reason: str) -> None:
        super().__init__(f"email {email_id}: no attempt now: {reason}")
        self.email_id = email_id


class InvoiceEmailNotFoundError(NotFoundError):
    def __init__(self, email_id: object) -> None:
        super().__init__(f"email {email_id} not found")
        self.email_id = email_id
