"""The Invoice aggregate and its events.

Lifecycle, as Stripe's: draft -> open (issued, numbered) -> paid | void | uncollectible, and
uncollectible -> paid | void. A draft can also be deleted. Each command method validates first,
then triggers events whose `apply` only mutates state. The amounts are those of docs/db/invoice-model.md:

- `amount_paid` is the gross of applied payments; `amount_refunded` the sum of distinct refunds;
- lost disputes are kept apart in `amount_dispute_lost`;
- `amount_due` is what remains to be paid: `total - amount_paid` while open or uncollectible,
  never negative (money beyond the total is an `Overpaid` event), 0 once paid, void or deleted;
- `paid` is final: refunds and disputes afterwards are recorded, never reopen the invoice.

Events carry plain JSON values only (str, int, dict, list, None), never Enums or tuples.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.currencies import require_currency
from ledger.errors import (
    CurrencyMismatchError,
    DisputeExceedsPaidError,
    DuplicateDisputeError,
    DuplicatePaymentError,
    DuplicateRefundError,
    EmptyInvoiceError,
    InvalidAmountError,
    InvalidTextError,
    InvoiceHasPaymentsError,
    InvoiceNotEditableError,
    InvoiceNotOpenError,
    InvoiceNotPayableError,
    LineNotFoundError,
    NegativeTotalError,
    RefundExceedsPaidError,
    TooManyLinesError,
    UnknownDisputeError,
)
from ledger.events import CopiedCheaply, MovesMoney, SharedWhenCopied
from ledger.lines import Line
from ledger.money import Money, require_minor_units
from ledger.validation import (
    MEMO_LIMIT,
    NAME_LIMIT,
    require_date,
    require_email,
    require_metadata,
    require_text,
)

DRAFT = "draft"
OPEN = "open"
PAID = "paid"
VOID = "void"
UNCOLLECTIBLE = "uncollectible"
DELETED = "deleted"

PROCESSOR_BALANCE = "processor_balance"
BANK = "bank"
CASH_ACCOUNTS = (PROCESSOR_BALANCE, BANK)

CHECKOUT_OPEN = "open"
CHECKOUT_COMPLETED = "completed"
CHECKOUT_EXPIRED = "expired"

DISPUTE_OPEN = "open"
DISPUTE_WON = "won"
DISPUTE_LOST = "lost"

MAX_LINES = 250
SERIES_LIMIT = 20


def require_customer(value: object) -> dict[str, str]:
    """A customer as {'email': ..., 'name': ...}; the name may be empty."""
    if not isinstance(value, dict):
        raise InvalidTextError("customer must be an object with email and name", field="customer")
    unknown = set(value) - {"email", "name"}
    if unknown:
        raise InvalidTextError(f"customer has unknown fields: {sorted(unknown)}", field="customer")
    return {
        "email": require_email(value.get("email")),
        "name": require_text(value.get("name", ""), field="customer.name", limit=NAME_LIMIT, required=False),
    }


class Invoice(CopiedCheaply, Aggregate):
    TOPIC = "invoice"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "invoice.created"
        customer: dict[str, str]
        currency: str
        due_date: str | None
        memo: str
        metadata: dict[str, str]
        series: str

    class LineAdded(Event):
        TOPIC = "invoice.line-added"
        line_id: str
        description: str
        quantity: str
        unit_amount: int
        tax_rate: str | None
        amount: int
        tax: int

        def apply(self, aggregate: Invoice) -> None:
            aggregate.lines[self.line_id] = _line_from(self)

    class LineChanged(Event):
        TOPIC = "invoice.line-changed"
        line_id: str
        description: str
        quantity: str
        unit_amount: int
        tax_rate: str | None
        amount: int
        tax: int

        def apply(self, aggregate: Invoice) -> None:
            aggregate.lines[self.line_id] = _line_from(self)

    class LineRemoved(Event):
        TOPIC = "invoice.line-removed"
        line_id: str

        def apply(self, aggregate: Invoice) -> None:
            del aggregate.lines[self.line_id]

    class DetailsChanged(Event):
        TOPIC = "invoice.details-changed"
        customer: dict[str, str]
        due_date: str | None
        memo: str
        metadata: dict[str, str]

        def apply(self, aggregate: Invoice) -> None:
            aggregate.customer = dict(self.customer)
            aggregate.due_date = self.due_date
            aggregate.memo = self.memo
            aggregate.metadata = dict(self.metadata)

    class DraftDeleted(Event):
        TOPIC = "invoice.draft-deleted"

        def apply(self, aggregate: Invoice) -> None:
            aggregate.status = DELETED

    class Issued(MovesMoney, Event):
        TOPIC = "invoice.issued"
        number: str
        sequence: int
        series: str
        due_date: str | None
        subtotal: int
        tax: int
        total: int

        def apply(self, aggregate: Invoice) -> None:
            aggregate.status = OPEN
            aggregate.number = self.number
            aggregate.issued_at = self.timestamp
            aggregate.due_date = self.due_date
            aggregate.frozen_totals = {"subtotal": self.subtotal, "tax": self.tax, "total": self.total}

    class PaymentApplied(MovesMoney, Event):
        TOPIC = "invoice.payment-applied"
        payment_id: str
        amount: int
        fee: int
        cash_account: str
        recovered: int

        def apply(self, aggregate: Invoice) -> None:
            aggregate.amount_paid += self.amount
            aggregate.recovered += self.recovered
            aggregate.payment_ids.append(self.payment_id)

    class PaymentAttemptFailed(Event):
        TOPIC = "invoice.payment-attempt-failed"
        payment_id: str
        code: str
        message: str

        def apply(self, aggregate: Invoice) -> None:
            aggregate.failed_attempts.append(
                {
                    "payment_id": self.payment_id,
                    "code": self.code,
                    "message": self.message,
                    "at": self.timestamp.isoformat(),
                }
            )

    class CheckoutStarted(Event):
        """A hosted payment page was opened for the invoice. It moves no money: the money comes
        with the provider's report of the payment, keyed by the provider's payment id."""

        TOPIC = "invoice.checkout-started"
        provider: str
        session_id: str
        amount: int
        expires_at: str  # ISO 8601, UTC

        def apply(self, aggregate: Invoice) -> None:
            aggregate.checkouts[self.session_id] = {
                "provider": self.provider,
                "amount": self.amount,
                "expires_at": self.expires_at,
                "status": CHECKOUT_OPEN,
            }

    class CheckoutClosed(Event):
        TOPIC = "invoice.checkout-closed"
        session_id: str
        outcome: str  # CHECKOUT_COMPLETED or CHECKOUT_EXPIRED

        def apply(self, aggregate: Invoice) -> None:
            aggregate.checkouts[self.session_id]["status"] = self.outcome

    class Paid(Event):
        TOPIC = "invoice.paid"
        amount_paid: int

        def apply(self, aggregate: Invoice) -> None:
            aggregate.status = PAID
            aggregate.paid_at = self.timestamp

    class Overpaid(MovesMoney, Event):
        TOPIC = "invoice.overpaid"
        payment_id: str
        amount: int

        def apply(self, aggregate: Invoice) -> None:
            aggregate.amount_overpaid += self.amount

    class RefundApplied(MovesMoney, Event):
        TOPIC = "invoice.refund-applied"
        payment_id: str
        refund_id: str
        amount: int
        cash_account: str
        from_credit: int

        def apply(self, aggregate: Invoice) -> None:
            aggregate.amount_refunded += self.amount
            aggregate.credit_refunded += self.from_credit
            aggregate.refund_ids.append(self.refund_id)

    class DisputeOpened(MovesMoney, Event):
        TOPIC = "invoice.dispute-opened"
        payment_id: str
        dispute_id: str
        amount: int

        def apply(self, aggregate: Invoice) -> None:
            aggregate.disputes[self.dispute_id] = {
                "payment_id": self.payment_id,
                "amount": self.amount,
                "status": DISPUTE_OPEN,
            }

    class DisputeClosed(MovesMoney, Event):
        TOPIC = "invoice.dispute-closed"
        dispute_id: str
        amount: int
        outcome: str

        def apply(self, aggregate: Invoice) -> None:
            aggregate.disputes[self.dispute_id]["status"] = self.outcome

    class Voided(MovesMoney, Event):
        TOPIC = "invoice.voided"
        subtotal: int
        tax: int
        total: int
        written_off: int

        def apply(self, aggregate: Invoice) -> None:
            aggregate.status = VOID

    class MarkedUncollectible(MovesMoney, Event):
        TOPIC = "invoice.marked-uncollectible"
        amount: int

        def apply(self, aggregate: Invoice) -> None:
            aggregate.status = UNCOLLECTIBLE
            aggregate.written_off += self.amount

    def __init__(
        self,
        customer: dict[str, str],
        currency: str,
        due_date: str | None,
        memo: str,
        metadata: dict[str, str],
        series: str,
    ) -> None:
        self.customer = dict(customer)
        self.currency = currency
        self.due_date = due_date
        self.memo = memo
        self.metadata = dict(metadata)
        self.series = series
        self.status = DRAFT
        self.number: str | None = None
        self.issued_at: datetime | None = None
        self.paid_at: datetime | None = None
        self.lines: dict[str, Line] = {}
        self.frozen_totals: dict[str, int] | None = None
        self.amount_paid = 0
        self.amount_refunded = 0
        self.amount_overpaid = 0
        self.credit_refunded = 0
        self.written_off = 0
        self.recovered = 0
        self.payment_ids: list[str] = []
        self.refund_ids: list[str] = []
        self.disputes: dict[str, dict[str, Any]] = {}
        self.failed_attempts: list[dict[str, str]] = []
        self.checkouts: dict[str, dict[str, Any]] = {}

    # ----------------------------------------------------------------------------- commands

    @classmethod
    def create_draft(
        cls,
        *,
        invoice_id: UUID,
        customer: object,
        currency: object,
        at: datetime,
        due_date: object = None,
        memo: object = "",
        metadata: object = None,
        series: object = "INV",
    ) -> Invoice:
        return cls._create(
            cls.Created,
            id=invoice_id,
            timestamp=at,
            customer=require_customer(customer),
            currency=require_currency(currency),
            due_date=None if due_date is None else require_date(due_date).isoformat(),
            memo=require_text(memo, field="memo", limit=MEMO_LIMIT, required=False),
            metadata=require_metadata(metadata),
            series=require_text(series, field="series", limit=SERIES_LIMIT),
        )

    def add_line(self, line: Line, *, at: datetime) -> None:
        self._require_draft()
        if len(self.lines) >= MAX_LINES:
            raise TooManyLinesError(self.id, MAX_LINES)
        self._require_totals_in_range(extra=line)
        self.trigger_event(self.LineAdded, timestamp=at, **line.as_event_fields())

    def change_line(self, line: Line, *, at: datetime) -> None:
        self._require_draft()
        old = self._require_line(line.line_id)
        self._require_totals_in_range(extra=line, without=old)
        self.trigger_event(self.LineChanged, timestamp=at, **line.as_event_fields())

    def remove_line(self, line_id: str, *, at: datetime) -> None:
        self._require_draft()
        self._require_line(line_id)
        self.trigger_event(self.LineRemoved, timestamp=at, line_id=line_id)

    def change_details(
        self,
        *,
        at: datetime,
        customer: object = None,
        due_date: object = ...,
        memo: object = None,
        metadata: object = None,
    ) -> None:
        """Change any of the draft's details; arguments left out keep their value."""
        self._require_draft()
        self.trigger_event(
            self.DetailsChanged,
            timestamp=at,
            customer=self.customer if customer is None else require_customer(customer),
            due_date=self.due_date
            if due_date is ...
            else (None if due_date is None else require_date(due_date).isoformat()),
            memo=self.memo if memo is None else require_text(memo, field="memo", limit=MEMO_LIMIT, required=False),
            metadata=self.metadata if metadata is None else require_metadata(metadata),
        )

    def delete_draft(self, *, at: datetime) -> None:
        self._require_draft()
        self.trigger_event(self.DraftDeleted, timestamp=at)

    def issue(self, *, sequence: int, at: datetime, due_date: object = None) -> None:
        """Open the invoice with its number; an invoice of zero is paid at once, as Stripe does."""
        self._require_draft()
        if not self.lines:
            raise EmptyInvoiceError(self.id)
        if self.total < 0:
            raise NegativeTotalError(self.id, self.total)
        self.trigger_event(
            self.Issued,
            timestamp=at,
            number=format_number(self.series, sequence),
            sequence=sequence,
            series=self.series,
            due_date=self.due_date if due_date is None else require_date(due_date).isoformat(),
            subtotal=self.subtotal,
            tax=self.tax,
            total=self.total,
        )
        if self.total == 0:
            self.trigger_event(self.Paid, timestamp=at, amount_paid=0)

    def apply_payment(self, *, payment_id: str, amount: Money, fee: int, cash_account: str, at: datetime) -> None:
        self._require_payable()
        self._require_currency(amount)
        if amount.amount <= 0:
            raise InvalidAmountError(f"payment amount must be positive, got {amount.amount}", field="amount")
        require_minor_units(fee, field="fee")
        if fee > amount.amount:
            raise InvalidAmountError(f"fee {fee} exceeds the payment of {amount.amount}", field="fee")
        _require_cash_account(cash_account)
        if payment_id in self.payment_ids:  # a second report of the same money is not more money
            raise DuplicatePaymentError(self.id, payment_id)
        due = self.amount_due
        recovered = min(amount.amount, self.written_off - self.recovered)
        self.trigger_event(
            self.PaymentApplied,
            timestamp=at,
            payment_id=payment_id,
            amount=amount.amount,
            fee=fee,
            cash_account=cash_account,
            recovered=recovered,
        )
        if self.status != PAID and self.amount_paid >= self.total:
            self.trigger_event(self.Paid, timestamp=at, amount_paid=self.amount_paid)
        excess = amount.amount - due
        if excess > 0:
            self.trigger_event(self.Overpaid, timestamp=at, payment_id=payment_id, amount=excess)

    def record_failed_attempt(self, *, payment_id: str, code: str, message: str, at: datetime) -> None:
        if self.status in (DRAFT, DELETED):
            raise InvoiceNotPayableError(self.id, self.status)
        self.trigger_event(
            self.PaymentAttemptFailed,
            timestamp=at,
            payment_id=payment_id,
            code=require_text(code, field="code", limit=200, required=False),
            message=require_text(message, field="message", limit=MEMO_LIMIT, required=False),
        )

    def start_checkout(
        self, *, provider: str, session_id: str, amount: Money, expires_at: datetime, at: datetime
    ) -> bool:
        """Record a hosted payment page opened for the amount due; False if it was recorded before."""
        if session_id in self.checkouts:
            return False
        self.require_collectible()
        self._require_currency(amount)
        if not 0 < amount.amount <= self.amount_due:
            raise InvalidAmountError(f"checkout amount {amount.amount} is not within the {self.amount_due} due")
        self.trigger_event(
            self.CheckoutStarted,
            timestamp=at,
            provider=require_text(provider, field="provider", limit=40),
            session_id=require_text(session_id, field="session_id", limit=255),
            amount=amount.amount,
            expires_at=expires_at.isoformat().replace("+00:00", "Z"),
        )
        return True

    def close_checkout(self, *, session_id: str, completed: bool, at: datetime) -> bool:
        """The page was paid (completed) or expired; False for a page we did not open or closed already."""
        checkout = self.checkouts.get(session_id)
        if checkout is None or checkout["status"] != CHECKOUT_OPEN:
            return False
        outcome = CHECKOUT_COMPLETED if completed else CHECKOUT_EXPIRED
        self.trigger_event(self.CheckoutClosed, timestamp=at, session_id=session_id, outcome=outcome)
        return True

    def apply_refund(self, *, payment_id: str, refund_id: str, amount: Money, cash_account: str, at: datetime) -> None:
        if self.status in (DRAFT, DELETED):
            raise InvoiceNotPayableError(self.id, self.status)
        self._require_currency(amount)
        if amount.amount <= 0:
            raise InvalidAmountError(f"refund amount must be positive, got {amount.amount}", field="amount")
        _require_cash_account(cash_account)
        if refund_id in self.refund_ids:
            raise DuplicateRefundError(self.id, refund_id)
        if amount.amount > self.refundable:
            raise RefundExceedsPaidError(self.id, amount.amount, self.refundable)
        from_credit = min(amount.amount, self.amount_overpaid - self.credit_refunded)
        self.trigger_event(
            self.RefundApplied,
            timestamp=at,
            payment_id=payment_id,
            refund_id=refund_id,
            amount=amount.amount,
            cash_account=cash_account,
            from_credit=from_credit,
        )

    def open_dispute(self, *, payment_id: str, dispute_id: str, amount: Money, at: datetime) -> None:
        if self.status in (DRAFT, DELETED):
            raise InvoiceNotPayableError(self.id, self.status)
        self._require_currency(amount)
        if amount.amount <= 0:
            raise InvalidAmountError(f"dispute amount must be positive, got {amount.amount}", field="amount")
        if dispute_id in self.disputes:
            raise DuplicateDisputeError(self.id, dispute_id)
        if amount.amount > self.refundable:
            raise DisputeExceedsPaidError(self.id, amount.amount, self.refundable)
        self.trigger_event(
            self.DisputeOpened,
            timestamp=at,
            payment_id=payment_id,
            dispute_id=dispute_id,
            amount=amount.amount,
        )

    def close_dispute(self, *, dispute_id: str, won: bool, at: datetime) -> None:
        dispute = self.disputes.get(dispute_id)
        if dispute is None or dispute["status"] != DISPUTE_OPEN:
            raise UnknownDisputeError(self.id, dispute_id)
        self.trigger_event(
            self.DisputeClosed,
            timestamp=at,
            dispute_id=dispute_id,
            amount=dispute["amount"],
            outcome=DISPUTE_WON if won else DISPUTE_LOST,
        )

    def void(self, *, at: datetime) -> None:
        if self.status not in (OPEN, UNCOLLECTIBLE):
            raise InvoiceNotOpenError(self.id, self.status, "void")
        if self.amount_paid:
            raise InvoiceHasPaymentsError(self.id, self.amount_paid)
        self.trigger_event(
            self.Voided,
            timestamp=at,
            subtotal=self.subtotal,
            tax=self.tax,
            total=self.total,
            written_off=self.written_off - self.recovered,
        )

    def mark_uncollectible(self, *, at: datetime) -> None:
        if self.status != OPEN:
            raise InvoiceNotOpenError(self.id, self.status, "mark uncollectible")
        self.trigger_event(self.MarkedUncollectible, timestamp=at, amount=self.amount_due)

    # ----------------------------------------------------------------------------- queries

    @property
    def subtotal(self) -> int:
        if self.frozen_totals is not None:
            return self.frozen_totals["subtotal"]
        return sum(line.amount for line in self.lines.values())

    @property
    def tax(self) -> int:
        if self.frozen_totals is not None:
            return self.frozen_totals["tax"]
        return sum(line.tax for line in self.lines.values())

    @property
    def total(self) -> int:
        return self.subtotal + self.tax

    @property
    def amount_due(self) -> int:
        if self.status in (PAID, VOID, DELETED):
            return 0
        return max(0, self.total - self.amount_paid)

    @property
    def amount_disputed(self) -> int:
        """Open disputes: money the processor is holding back until the dispute closes."""
        return sum(d["amount"] for d in self.disputes.values() if d["status"] == DISPUTE_OPEN)

    @property
    def amount_dispute_lost(self) -> int:
        return sum(d["amount"] for d in self.disputes.values() if d["status"] == DISPUTE_LOST)

    @property
    def refundable(self) -> int:
        """What can still be refunded or disputed: paid, less refunds and disputes."""
        return self.amount_paid - self.amount_refunded - self.amount_disputed - self.amount_dispute_lost

    def is_overdue(self, today: date) -> bool:
        return (
            self.status in (OPEN, UNCOLLECTIBLE)
            and self.due_date is not None
            and date.fromisoformat(self.due_date) < today
        )

    # ----------------------------------------------------------------------------- guards

    def require_collectible(self) -> None:
        """Something is left to collect: open or uncollectible, with an amount due (else 409)."""
        if self.status not in (OPEN, UNCOLLECTIBLE) or self.amount_due <= 0:
            raise InvoiceNotPayableError(self.id, self.status)

    def _require_draft(self) -> None:
        if self.status != DRAFT:
            raise InvoiceNotEditableError(self.id, self.status)

    def _require_payable(self) -> None:
        if self.status not in (OPEN, UNCOLLECTIBLE, PAID):
            raise InvoiceNotPayableError(self.id, self.status)

    def _require_currency(self, amount: Money) -> None:
        if amount.currency != self.currency:
            raise CurrencyMismatchError(self.currency, amount.currency)

    def _require_line(self, line_id: str) -> Line:
        try:
            return self.lines[line_id]
        except KeyError:
            raise LineNotFoundError(self.id, line_id) from None

    def _require_totals_in_range(self, *, extra: Line, without: Line | None = None) -> None:
        total = self.total + extra.amount + extra.tax
        if without is not None:
            total -= without.amount + without.tax
        require_minor_units(total, field="total", allow_negative=True)


def format_number(series: str, sequence: int) -> str:
    """Invoice numbers read as SERIES-000042, gap-free within their series."""
    return f"{series}-{sequence:06d}"


def _line_from(event: Invoice.LineAdded | Invoice.LineChanged) -> Line:
    return Line(
        line_id=event.line_id,
        description=event.description,
        quantity=event.quantity,
        unit_amount=event.unit_amount,
        tax_rate=event.tax_rate,
        amount=event.amount,
        tax=event.tax,
    )


def _require_cash_account(account: str) -> None:
    if account not in CASH_ACCOUNTS:
        raise InvalidAmountError(f"unknown cash account {account!r}", field="cash_account")
