"""The invoice email commands (`app.mail`), run on the application's command runner.

`queue` records that an invoice is to be mailed (the worker, adapters/mail/worker.py, sends it);
the rest are the worker's steps around one SMTP conversation: `start_attempt` claims an attempt
before the server is contacted (with the version the worker read: a second worker holding the
same version gets a StaleVersionError and leaves the email alone), then `record_sent`,
`record_failed` or `record_bounced` says how it ended; `withdraw` settles one that should no
longer go out (ledger.mail.emails.withdrawal_reason) instead. The invoice itself is only read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID, uuid4

from commands.runner import CommandRunner, Decision, Outcome
from ledger.errors import StaleVersionError
from ledger.invoices import DELETED, DRAFT, OPEN, UNCOLLECTIBLE
from ledger.mail.emails import (
    DEFAULT_MAX_ATTEMPTS,
    INVOICE,
    REMINDER,
    InvoiceEmail,
    InvoiceEmailNotFoundError,
    InvoiceNotSendableError,
    email_id_for,
    version_key,
)


def resend_key() -> str:
    """A key of its own for a resend: a new email even though the invoice did not change."""
    return f"resend-{uuid4()}"


class MailCommands:
    """Invoice emails: queue one, and the delivery steps the worker records."""

    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    def queue(
        self,
        invoice_id: UUID,
        *,
        purpose: str = INVOICE,
        trigger: str,
        key: str | None = None,
        recipient: str | None = None,
        resend: bool = False,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        idempotency_key: str | None = None,
    ) -> Outcome[UUID]:
        """Queue an email of the invoice (as it stands now) to its customer, or to `recipient`.

        `key` None: the invoice's current version, so the same unchanged invoice is mailed once
        however often this is asked (the email queued first answers); `resend`: a new email
        whatever was sent before. A draft or a deleted invoice is refused
        (InvoiceNotSendableError, 409), a reminder of an invoice with nothing due too."""
        chosen = resend_key() if resend and key is None else key

        def decide(at: datetime) -> Decision:
            invoice = self._runner.invoice(invoice_id)
            if invoice.status in (DRAFT, DELETED):
                raise InvoiceNotSendableError(invoice_id, invoice.status, purpose)
            if purpose == REMINDER and (invoice.status not in (OPEN, UNCOLLECTIBLE) or invoice.amount_due <= 0):
                raise InvoiceNotSendableError(invoice_id, f"{invoice.status} with nothing due", purpose)
            email_key = chosen or version_key(invoice.version)
            existing = self._runner.get(email_id_for(invoice.id, purpose, email_key), InvoiceEmail)
            if existing is not None:
                return {"email_id": str(existing.id)}, []
            email = InvoiceEmail.queue(
                invoice_id=invoice.id,
                invoice_version=invoice.version,
                purpose=purpose,
                recipient=recipient if recipient is not None else invoice.customer["email"],
                trigger=trigger,
                key=email_key,
                max_attempts=max_attempts,
                at=at,
            )
            return {"email_id": str(email.id)}, [email]

        arguments = {
            "invoice_id": invoice_id,
            "purpose": purpose,
            "trigger": trigger,
            "key": key,
            "recipient": recipient,
            "resend": resend,
            "max_attempts": max_attempts,
        }
        return self._runner.execute("queue_email", arguments, idempotency_key, decide).map(
            lambda result: UUID(result["email_id"])
        )

    def start_attempt(self, email_id: UUID, expected_version: int | None) -> Outcome[int]:
        """Claim the email's next attempt (its number). `expected_version` is the version the
        worker read: moved on means another worker claimed or settled it (StaleVersionError);
        an email not due is EmailNotDueError. Both leave it to the other worker."""

        def decide(at: datetime) -> Decision:
            email = self.email(email_id)
            if expected_version is not None and email.version != expected_version:
                raise StaleVersionError(email_id, expected_version, email.version)
            attempt = email.start_attempt(at=at)
            return {"attempt": attempt}, [email]

        arguments = {"email_id": email_id, "expected_version": expected_version}
        return self._runner.execute("start_email_attempt", arguments, None, decide).map(
            lambda result: int(result["attempt"])
        )

    def record_sent(self, email_id: UUID, *, attempt: int, message_id: str, reply: str) -> Outcome[bool]:
        """The server accepted the message; False when it was recorded sent already."""
        return self._record(
            "record_email_sent",
            email_id,
            lambda email, at: email.record_sent(attempt=attempt, message_id=message_id, reply=reply, at=at),
        )

    def record_failed(self, email_id: UUID, *, attempt: int, reason: str) -> Outcome[bool]:
        """The attempt failed (retried after the backoff, or given up after the last); False for
        a stale report."""
        return self._record(
            "record_email_failed",
            email_id,
            lambda email, at: email.record_failed(attempt=attempt, reason=reason, at=at),
        )

    def record_bounced(self, email_id: UUID, *, attempt: int, code: int, reason: str) -> Outcome[bool]:
        """The server refused the recipient; False for a stale report."""
        return self._record(
            "record_email_bounced",
            email_id,
            lambda email, at: email.record_bounced(attempt=attempt, code=code, reason=reason, at=at),
        )

    def _record(self, command: str, email_id: UUID, record: Callable[[InvoiceEmail, datetime], bool]) -> Outcome[bool]:
        """An attempt's outcome on the email, saved when `record` took it; when it says False (a
        stale or repeated report) nothing is saved."""

        def decide(at: datetime) -> Decision:
            email = self.email(email_id)
            recorded = record(email, at)
            return {"recorded": recorded}, [email] if recorded else []

        return self._runner.execute(command, {}, None, decide).map(lambda r: bool(r["recorded"]))

    def withdraw(self, email_id: UUID, expected_version: int | None, reason: str) -> Outcome[bool]:
        """Settle the email unsent, saying why (the worker, when `withdrawal_reason` gives one).
        `expected_version` as for `start_attempt`: an email that moved on since it was read is a
        StaleVersionError; one being sent or settled is EmailNotWithdrawableError. False when it
        was withdrawn already."""

        def decide(at: datetime) -> Decision:
            email = self.email(email_id)
            if expected_version is not None and email.version != expected_version:
                raise StaleVersionError(email_id, expected_version, email.version)
            withdrawn = email.withdraw(reason=reason, at=at)
            return {"withdrawn": withdrawn}, [email] if withdrawn else []

        arguments = {"email_id": email_id, "expected_version": expected_version, "reason": reason}
        return self._runner.execute("withdraw_email", arguments, None, decide).map(lambda r: bool(r["withdrawn"]))

    def email(self, email_id: UUID, *, version: int | None = None) -> InvoiceEmail:
        email = self._runner.get(email_id, InvoiceEmail, version=version)
        if email is None:
            raise InvoiceEmailNotFoundError(email_id)
        return email
