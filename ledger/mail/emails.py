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

An email whose message would be wrong by the time its attempt comes is `withdrawn` instead
(`withdrawal_reason`): a reminder of an invoice paid, voided or marked uncollectible since it
was queued (say, while the mail server was down), or the email of an invoice voided since.

Events carry plain JSON values only; moments are ISO 8601 text.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.errors import InvalidInputError, NotFoundError, RuleViolationError
from ledger.events import CopiedCheaply, SharedWhenCopied
from ledger.invoices import OPEN, PAID, UNCOLLECTIBLE, VOID, Invoice
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
WITHDRAWN = "withdrawn"  # no longer worth sending (withdrawal_reason): final
STATUSES = (QUEUED, SENDING, SENT, FAILED, BOUNCED, GAVE_UP, WITHDRAWN)
SETTLED = (SENT, BOUNCED, GAVE_UP, WITHDRAWN)

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

    class Withdrawn(Event):
        """Not sent, and never will be: what it says is no longer so (`withdrawal_reason`).
        Final. The reason shows where an error would (`last_error`)."""

        TOPIC = "invoice-email.withdrawn"
        reason: str

        def apply(self, aggregate: InvoiceEmail) -> None:
            aggregate.status = WITHDRAWN
            aggregate.last_error = self.reason
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

    def withdraw(self, *, reason: str, at: datetime) -> bool:
        """Settle the email unsent. Only between attempts (queued, or failed and waiting for its
        retry): an attempt in progress may be on the wire, and a settled email stays as it is
        (EmailNotWithdrawableError); False when it was withdrawn already."""
        if self.status == WITHDRAWN:
            return False
        if self.status not in (QUEUED, FAILED):
            raise EmailNotWithdrawableError(self.id, self.status)
        self.trigger_event(self.Withdrawn, timestamp=at, reason=reason[:REASON_LIMIT])
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


def withdrawal_reason(purpose: str, queued: Invoice, current: Invoice) -> str | None:
    """Why an email of `queued` (the invoice as it stood when the email was queued) should no
    longer go out now that the invoice is `current`; None while it should.

    A reminder says the invoice is due: not once it is paid (or nothing is due), voided, or
    marked uncollectible after the reminder was queued (one asked for while it was
    uncollectible already still goes). An invoice email goes to a paid invoice too (the PDF
    shows it paid), not to one voided after it was queued: the customer would be asked to pay
    an invoice that no longer stands. Only what changed since the queueing counts, so an email
    asked for knowingly (a voided invoice's, by hand) is sent."""
    number = current.number or str(current.id)
    if current.status == VOID and queued.status != VOID:
        return f"invoice {number} was voided after the email was queued"
    if purpose != REMINDER:
        return None
    if current.status == PAID or current.amount_due <= 0:
        return f"invoice {number} was paid after the reminder was queued: nothing is due"
    if current.status == UNCOLLECTIBLE and queued.status != UNCOLLECTIBLE:
        return f"invoice {number} was marked uncollectible after the reminder was queued"
    if current.status not in (OPEN, UNCOLLECTIBLE):
        return f"invoice {number} is {current.status}: nothing to remind of"
    return None


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


class EmailNotWithdrawableError(RuleViolationError):
    """Withdrawing an email that is being sent or is settled (409)."""

    def __init__(self, email_id: object, status: str) -> None:
        super().__init__(f"email {email_id} cannot be withdrawn: it is {status}")
        self.email_id = email_id
        self.status = status


class InvoiceEmailNotFoundError(NotFoundError):
    def __init__(self, email_id: object) -> None:
        super().__init__(f"email {email_id} not found")
        self.email_id = email_id
