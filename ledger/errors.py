"""Every error the ledger raises, in one tree.

    LedgerError
    ├── InvalidInputError                 bad input: the command is refused, nothing stored (422)
    │   ├── UnknownCurrencyError
    │   ├── InvalidAmountError            not an integer count of minor units, or out of range
    │   ├── InvalidQuantityError          not a positive decimal within limits
    │   ├── InvalidTaxRateError
    │   ├── InvalidTextError              wrong type, empty where required, or over its limit
    │   ├── InvalidDateError
    │   ├── InvalidMetadataError
    │   ├── InvalidMeterError             a meter's aggregation or event_name is not one we know
    │   ├── InvalidPriceError             a usage price's model, tiers or package terms are malformed
    │   ├── InvalidTimezoneError          not an IANA timezone name the tz database knows
    │   ├── UnknownReferenceError         a body names a meter, price or usage customer that does not exist
    │   ├── InvalidUsageBatchError        usage records refused: `errors` names each `records[i].field`
    │   ├── InvalidDunningPolicyError     a dunning schedule or max attempts that cannot be followed
    │   └── WeakPasswordError             a dashboard user's password under the minimum length
    ├── CurrencyMismatchError             two currencies met where one is required (422)
    ├── NotFoundError                     (404)
    │   ├── InvoiceNotFoundError
    │   │   └── InvoiceDeletedError       a deleted draft: gone, as in Stripe (its history stays)
    │   ├── PaymentNotFoundError
    │   ├── LineNotFoundError
    │   ├── MeterNotFoundError
    │   ├── PriceNotFoundError
    │   ├── UsageCustomerNotFoundError
    │   └── AdminUserNotFoundError        no dashboard user has that email
    ├── RuleViolationError                the command is valid but the state forbids it (409)
    │   ├── InvoiceNotEditableError       no edits after issue
    │   ├── EmptyInvoiceError             no issuing an invoice without lines
    │   ├── NegativeTotalError            no issuing an invoice whose total is below zero
    │   ├── TooManyLinesError
    │   ├── InvoiceNotPayableError        payments only on open, uncollectible or paid invoices
    │   ├── InvoiceNotOpenError           void / mark uncollectible need an open invoice
    │   ├── InvoiceHasPaymentsError       no void of a paid or partially paid invoice
    │   ├── RefundExceedsPaidError        no refund beyond what was paid
    │   ├── DuplicatePaymentError         one payment id, applied once (an offline reference again, with another amount)
    │   ├── DuplicateRefundError          one refund id, applied once
    │   ├── DuplicateDisputeError         one dispute id, opened once
    │   ├── DisputeExceedsPaidError
    │   ├── UnknownDisputeError
    │   ├── PaymentStateError             a payment transition its state forbids
    │   │   └── PaymentAlreadySucceededError  a late failure cannot undo a success
    │   ├── RefundExceedsCapturedError    no refund beyond what a payment captured
    │   ├── DisputeExceedsCapturedError   no dispute beyond what a payment still holds
    │   ├── MeterExistsError              a meter key is defined once (meters never change)
    │   ├── PriceExistsError              a price key is defined once (prices never change)
    │   ├── UsageCustomerExistsError      a usage customer key is set up once
    │   ├── PeriodNotEndedError           a billing period is closed only after it ends, and only once
    │   ├── AdminUserExistsError          a dashboard user's email is taken once (ids derive from it)
    │   └── DunningStateError             a dunning step out of order, or after the dunning finished
    ├── StaleVersionError                 the caller's expected version is not the current one (412)
    ├── IdempotencyKeyReusedError         the same key with a different request (422)
    ├── ConcurrencyRetriesExhaustedError  too many concurrent writers, try again (503)
    ├── StoreUnavailableError             the event store could not commit (lock timeout, connection lost) (503)
    └── ProviderError                     the payment provider refused or failed; nothing was recorded
        ├── PaymentDeclinedError          the provider declined the payment (402)
        ├── ProviderUnavailableError      the provider is down, slow or rate limiting: retry (503)
        └── ProviderConfigurationError    our provider setup is missing or wrong (no or bad key) (503)
            └── ProviderRecordsError      the provider's records do not read as documented: a field
                                          of the wrong type, named (another API version, or not
                                          the provider's API at its address)

The web layer maps the branches to the HTTP statuses shown; nothing above the adapters ever
sees a storage or provider exception (adapters/stripe maps every Stripe error into the
ProviderError branch).

Errors of one feature live beside the aggregate that raises them, in the branch they belong to:
ledger/reconciliation/items.py has ReconciliationActionError (InvalidInputError),
ReconciliationItemNotFoundError (NotFoundError), ItemSettledError and ApplyRefusedError, with its
PaymentNotInLedgerError (RuleViolationError); ledger/mail/emails.py has InvoiceEmailNotFoundError
(NotFoundError), InvoiceNotSendableError, EmailNotDueError and EmailNotWithdrawableError
(RuleViolationError).
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error raised on purpose by the ledger."""


class InvalidInputError(LedgerError):
    """The input is malformed or out of range; nothing was stored.

    `field` names the offending input where one can be named.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownCurrencyError(InvalidInputError):
    """Not a lowercase ISO 4217 code that the ledger knows."""


class InvalidAmountError(InvalidInputError):
    """An amount that is not an integer count of minor units, or is out of range."""


class InvalidQuantityError(InvalidInputError):
    """A quantity that is not a positive decimal within limits."""


class InvalidTaxRateError(InvalidInputError):
    """A tax rate that is not a percentage between 0 and 100."""


class InvalidTextError(InvalidInputError):
    """A string of the wrong type, empty where required, or over its length limit."""


class InvalidDateError(InvalidInputError):
    """A date or timestamp that cannot be read."""


class InvalidMetadataError(InvalidInputError):
    """Metadata that breaks the key, value or size limits."""


class InvalidMeterError(InvalidInputError):
    """A meter definition with an unknown aggregation or an unusable event_name."""


class InvalidPriceError(InvalidInputError):
    """A usage price whose model, tiers or package terms are malformed."""


class InvalidTimezoneError(InvalidInputError):
    """Not an IANA timezone name that the tz database knows."""


class UnknownReferenceError(InvalidInputError):
    """The request names (in its body) a meter, price or usage customer that does not exist."""


class InvalidUsageBatchError(InvalidInputError):
    """Usage records refused as a whole: `errors` names each bad `records[i].field`; nothing stored."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first['field']}: {first['message']}{more}", field=first["field"])
        self.errors = errors


class InvalidDunningPolicyError(InvalidInputError):
    """A dunning schedule or maximum of attempts that cannot be followed (LEDGER_DUNNING_*)."""


class WeakPasswordError(InvalidInputError):
    """A dashboard user's password shorter than the minimum: refused before it is hashed."""

    def __init__(self, minimum: int) -> None:
        super().__init__(f"password must be at least {minimum} characters long", field="password")
        self.minimum = minimum


class CurrencyMismatchError(LedgerError):
    """Two amounts in different currencies were combined, or paid against each other."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"currency mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class NotFoundError(LedgerError):
    """The thing asked for does not exist."""


class InvoiceNotFoundError(NotFoundError):
    def __init__(self, invoice_id: object) -> None:
        super().__init__(f"invoice {invoice_id} not found")
        self.invoice_id = invoice_id


class InvoiceDeletedError(InvoiceNotFoundError):
    """A deleted draft: reads, lists and commands treat it as gone; its events are still there."""

    def __init__(self, invoice_id: object) -> None:
        NotFoundError.__init__(self, f"invoice {invoice_id} was a deleted draft")
        self.invoice_id = invoice_id


class PaymentNotFoundError(NotFoundError):
    def __init__(self, payment_ref: object) -> None:
        super().__init__(f"payment {payment_ref} not found")
        self.payment_ref = payment_ref


class LineNotFoundError(NotFoundError):
    def __init__(self, invoice_id: object, line_id: str) -> None:
        super().__init__(f"line {line_id} not found on invoice {invoice_id}")
        self.invoice_id = invoice_id
        self.line_id = line_id


class MeterNotFoundError(NotFoundError):
    def __init__(self, key: str) -> None:
        super().__init__(f"meter {key!r} not found")
        self.key = key


class PriceNotFoundError(NotFoundError):
    def __init__(self, key: str) -> None:
        super().__init__(f"price {key!r} not found")
        self.key = key


class UsageCustomerNotFoundError(NotFoundError):
    def __init__(self, key: str) -> None:
        super().__init__(f"usage customer {key!r} not found")
        self.key = key


class AdminUserNotFoundError(NotFoundError):
    def __init__(self, email: str) -> None:
        super().__init__(f"no dashboard user {email!r}")
        self.email = email


class RuleViolationError(LedgerError):
    """The command is well formed, but the aggregate's state forbids it."""


class InvoiceNotEditableError(RuleViolationError):
    """Only drafts can be edited or deleted; an issued invoice is voided, credited or paid."""

    def __init__(self, invoice_id: object, status: str) -> None:
        super().__init__(f"invoice {invoice_id} is {status}: only drafts can be changed")
        self.invoice_id = invoice_id
        self.status = status


class EmptyInvoiceError(RuleViolationError):
    def __init__(self, invoice_id: object) -> None:
        super().__init__(f"invoice {invoice_id} has no lines and cannot be issued")
        self.invoice_id = invoice_id


class NegativeTotalError(RuleViolationError):
    def __init__(self, invoice_id: object, total: int) -> None:
        super().__init__(f"invoice {invoice_id} totals {total}: a negative invoice cannot be issued")
        self.invoice_id = invoice_id


class TooManyLinesError(RuleViolationError):
    def __init__(self, invoice_id: object, limit: int) -> None:
        super().__init__(f"invoice {invoice_id} already has the maximum of {limit} lines")
        self.invoice_id = invoice_id


class InvoiceNotPayableError(RuleViolationError):
    def __init__(self, invoice_id: object, status: str) -> None:
        super().__init__(f"invoice {invoice_id} is {status} and cannot take payments or refunds")
        self.invoice_id = invoice_id
        self.status = status


class InvoiceNotOpenError(RuleViolationError):
    def __init__(self, invoice_id: object, status: str, action: str) -> None:
        super().__init__(f"cannot {action} invoice {invoice_id}: it is {status}")
        self.invoice_id = invoice_id
        self.status = status


class InvoiceHasPaymentsError(RuleViolationError):
    def __init__(self, invoice_id: object, amount_paid: int) -> None:
        super().__init__(f"invoice {invoice_id} has {amount_paid} paid against it and cannot be voided")
        self.invoice_id = invoice_id


class RefundExceedsPaidError(RuleViolationError):
    def __init__(self, invoice_id: object, amount: int, refundable: int) -> None:
        super().__init__(f"refund of {amount} on invoice {invoice_id} exceeds the {refundable} still refundable")
        self.invoice_id = invoice_id


class DuplicatePaymentError(RuleViolationError):
    """The payment id was applied already: the same money cannot be received twice.

    For an offline payment the id comes from the invoice and the client's reference, so this is
    also the answer to the same reference sent again with another amount or currency.
    """

    def __init__(self, owner_id: object, payment_id: object, detail: str = "") -> None:
        super().__init__(f"payment {payment_id} was already applied to {owner_id}{detail}")
        self.payment_id = payment_id


class DuplicateRefundError(RuleViolationError):
    """The refund id was applied already: the same money cannot be returned twice."""

    def __init__(self, owner_id: object, refund_id: str) -> None:
        super().__init__(f"refund {refund_id} was already applied to {owner_id}")
        self.refund_id = refund_id


class DuplicateDisputeError(RuleViolationError):
    def __init__(self, owner_id: object, dispute_id: str) -> None:
        super().__init__(f"dispute {dispute_id} is already open on {owner_id}")
        self.dispute_id = dispute_id


class DisputeExceedsPaidError(RuleViolationError):
    def __init__(self, invoice_id: object, amount: int, paid: int) -> None:
        super().__init__(f"dispute of {amount} on invoice {invoice_id} exceeds the {paid} paid")
        self.invoice_id = invoice_id


class UnknownDisputeError(RuleViolationError):
    def __init__(self, owner_id: object, dispute_id: str) -> None:
        super().__init__(f"dispute {dispute_id} is not open on {owner_id}")
        self.dispute_id = dispute_id


class PaymentStateError(RuleViolationError):
    def __init__(self, payment_id: object, status: str, action: str) -> None:
        super().__init__(f"cannot {action} payment {payment_id}: it is {status}")
        self.payment_id = payment_id
        self.status = status


class RefundExceedsCapturedError(RuleViolationError):
    def __init__(self, payment_id: object, amount: int, refundable: int) -> None:
        super().__init__(f"refund of {amount} on payment {payment_id} exceeds the {refundable} still refundable")
        self.payment_id = payment_id


class DisputeExceedsCapturedError(RuleViolationError):
    def __init__(self, payment_id: object, amount: int, disputable: int) -> None:
        super().__init__(f"dispute of {amount} on payment {payment_id} exceeds the {disputable} it still holds")
        self.payment_id = payment_id


class DunningStateError(RuleViolationError):
    """A dunning step taken out of the schedule's order, twice, or after the dunning finished."""

    def __init__(self, dunning_id: object, reason: str) -> None:
        super().__init__(f"dunning {dunning_id}: {reason}")
        self.dunning_id = dunning_id


class PaymentAlreadySucceededError(PaymentStateError):
    """A failure reported after the payment succeeded (a stale event) cannot undo it."""

    def __init__(self, payment_id: object) -> None:
        super().__init__(payment_id, "succeeded", "fail")


class MeterExistsError(RuleViolationError):
    """Meters are defined once and never change: define a new key instead."""

    def __init__(self, key: str) -> None:
        super().__init__(f"meter {key!r} is already defined")
        self.key = key


class PriceExistsError(RuleViolationError):
    """Prices are defined once and never change (as Stripe's): define a new key instead."""

    def __init__(self, key: str) -> None:
        super().__init__(f"price {key!r} is already defined")
        self.key = key


class UsageCustomerExistsError(RuleViolationError):
    def __init__(self, key: str) -> None:
        super().__init__(f"usage customer {key!r} is already set up")
        self.key = key


class PeriodNotEndedError(RuleViolationError):
    """The next billing period to close has not ended yet (each period is closed once, in order)."""

    def __init__(self, key: str, period_start: str, period_end: str) -> None:
        super().__init__(
            f"the next period of usage customer {key!r} to close, [{period_start}, {period_end}), has not ended"
        )
        self.key = key


class AdminUserExistsError(RuleViolationError):
    """A dashboard user's email is taken once: the user's id is derived from it."""

    def __init__(self, email: str) -> None:
        super().__init__(f"dashboard user {email!r} already exists")
        self.email = email


class StaleVersionError(LedgerError):
    """The caller expected another version: someone changed the aggregate in between."""

    def __init__(self, aggregate_id: object, expected: int, actual: int) -> None:
        super().__init__(f"{aggregate_id} is at version {actual}, not {expected}")
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual


class IdempotencyKeyReusedError(LedgerError):
    """The idempotency key was already used for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")
        self.key = key


class ConcurrencyRetriesExhaustedError(LedgerError):
    """Concurrent writers kept winning; the command changed nothing and may be retried."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} conflicting attempts; nothing was changed")
        self.attempts = attempts


class StoreUnavailableError(LedgerError):
    """The event store could not commit (a lock timeout, a lost connection); nothing was changed."""


class ProviderError(LedgerError):
    """The payment provider refused the request or could not be reached; nothing was recorded.

    `request_id` is the provider's id for the failed request (Stripe's `req_...`), for support.
    """

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class PaymentDeclinedError(ProviderError):
    """The provider declined the payment (a card error): another payment method may work."""


class ProviderUnavailableError(ProviderError):
    """The provider is down, timed out or is rate limiting us: the same request may be retried."""


class ProviderConfigurationError(ProviderError):
    """Our side of the provider is set up wrong: no API key, a bad or restricted key, a request
    the provider refuses as invalid. An operator has to act; retrying will not help."""


class ProviderRecordsError(ProviderConfigurationError):
    """The provider answered records we cannot read: a field missing or of the wrong type, or an
    amount the ledger cannot hold. `field` names it (`data[3].amount` of the page, with the
    object's id when known). Like any configuration error an operator has to act (an API version
    we were not checked against, or not the provider's API at its address); retrying will not help."""

    def __init__(self, message: str, *, field: str | None = None, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.field = field
