"""The steps that move a provider's money into the ledger, each keyed by the provider's own ids.

Every step works on a `Work` (one attempt of one command) and says whether it changed
anything: a second report of the same capture, refund, dispute or failed attempt finds it
recorded and changes nothing. The application's commands run one step each; a webhook event
runs the steps it reports, in one transaction with its own record (commands/ingestion/stripe_events.py).

A refund or dispute reported before its payment is deferred (ledger/deferred.py) and applied
when the payment succeeds, in the same transaction as the success.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from commands.ingestion.provider_events import APPLIED, REFUSED, ProviderEvent, provider_event_id
from commands.work import StaleReadError, Work
from ledger.deferred import DISPUTE_CLOSED, DISPUTE_OPENED, REFUND, DeferredMovements, deferred_id_for
from ledger.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    PaymentAlreadySucceededError,
    PaymentNotFoundError,
    RuleViolationError,
)
from ledger.money import Money
from ledger.payments import SUCCEEDED, Payment, payment_id_for
from ledger.payouts import Payout, payout_id_for

REFUSALS = (RuleViolationError, InvalidInputError, CurrencyMismatchError)


def provider_payment(
    work: Work, provider: str, provider_payment_id: str, invoice_id: UUID | None, amount: Money | None, at: datetime
) -> Payment:
    """The payment a provider reports on; created from the report if we never saw it before,
    when the report names its invoice (PaymentNotFoundError otherwise)."""
    existing = work.get(payment_id_for(provider, provider_payment_id), Payment)
    if existing is not None:
        return existing
    if invoice_id is None:
        raise PaymentNotFoundError(f"{provider}:{provider_payment_id}")
    invoice = work.invoice(invoice_id)
    if amount is not None and amount.currency != invoice.currency:
        raise CurrencyMismatchError(invoice.currency, amount.currency)
    payment = Payment.initiate(
        payment_id=payment_id_for(provider, provider_payment_id),
        invoice_id=invoice.id,
        provider=provider,
        provider_payment_id=provider_payment_id,
        amount=amount if amount is not None else Money(invoice.amount_due, invoice.currency),
        at=at,
    )
    work.add(payment)
    return payment


def payment_succeeded(
    work: Work,
    *,
    provider: str,
    provider_payment_id: str,
    amount_captured: Money,
    at: datetime,
    fee: int = 0,
    charge_id: str | None = None,
    invoice_id: UUID | None = None,
) -> tuple[Payment, bool]:
    """Apply captured money once, then whatever was waiting for it; (payment, changed)."""
    payment = provider_payment(work, provider, provider_payment_id, invoice_id, amount_captured, at)
    if payment.status == SUCCEEDED:
        return payment, False
    invoice = work.invoice(UUID(payment.invoice_id))
    if str(payment.id) in invoice.payment_ids:  # another writer committed between our two reads
        raise StaleReadError(f"payment {provider}:{provider_payment_id} was applied meanwhile")
    payment.succeed(amount_captured=amount_captured.amount, fee=fee, charge_id=charge_id, at=at)
    invoice.apply_payment(
        payment_id=str(payment.id), amount=amount_captured, fee=fee, cash_account=payment.cash_account, at=at
    )
    work.touch(payment, invoice)
    _release_deferred(work, payment, at)
    return payment, True


def payment_failed(
    work: Work,
    *,
    provider: str,
    provider_payment_id: str,
    attempt_id: str,
    code: str,
    message: str,
    at: datetime,
    invoice_id: UUID | None = None,
    amount: Money | None = None,
) -> bool:
    """Record a failed attempt on the payment and its invoice, once per attempt id. False when
    there is nothing to record: the attempt is known, or the payment has succeeded since."""
    payment = provider_payment(work, provider, provider_payment_id, invoice_id, amount, at)
    if payment.has_failed_attempt(attempt_id):
        return False
    try:
        payment.fail(attempt_id=attempt_id, code=code, message=message, at=at)
    except PaymentAlreadySucceededError:
        return False  # a stale failure after the success: keep the success
    invoice = work.invoice(UUID(payment.invoice_id))
    invoice.record_failed_attempt(payment_id=str(payment.id), code=code, message=message, at=at)
    work.touch(payment, invoice)
    return True


def payment_processing(
    work: Work, *, provider: str, provider_payment_id: str, at: datetime, invoice_id: UUID | None, amount: Money
) -> bool:
    payment = provider_payment(work, provider, provider_payment_id, invoice_id, amount, at)
    changed = payment.start_processing(at=at)
    work.add(payment)
    return changed


def payment_canceled(
    work: Work,
    *,
    provider: str,
    provider_payment_id: str,
    reason: str,
    at: datetime,
    invoice_id: UUID | None,
    amount: Money,
) -> bool:
    payment = provider_payment(work, provider, provider_payment_id, invoice_id, amount, at)
    changed = payment.cancel(reason=reason, at=at)
    work.add(payment)
    return changed


def refund(
    work: Work, payment_id: UUID, *, refund_id: str, amount: int, at: datetime, currency: str | None = None
) -> bool:
    """Refund part or all of a payment, once per refund id. False if already recorded. `currency`,
    when the report names one, must be the payment's (CurrencyMismatchError: refused)."""
    payment = work.payment(payment_id)
    _require_currency_of(payment, currency)
    if payment.has_refund(refund_id):
        return False
    invoice = work.invoice(UUID(payment.invoice_id))
    payment.refund(refund_id=refund_id, amount=amount, at=at)
    invoice.apply_refund(
        payment_id=str(payment.id),
        refund_id=refund_id,
        amount=Money(amount, payment.currency),
        cash_account=payment.cash_account,
        at=at,
    )
    work.touch(payment, invoice)
    return True


def open_dispute(
    work: Work,
    payment_id: UUID,
    *,
    dispute_id: str,
    amount: int,
    reason: str,
    at: datetime,
    currency: str | None = None,
) -> bool:
    payment = work.payment(payment_id)
    _require_currency_of(payment, currency)
    if payment.has_dispute(dispute_id):
        return False
    invoice = work.invoice(UUID(payment.invoice_id))
    payment.dispute(dispute_id=dispute_id, amount=amount, reason=reason, at=at)
    invoice.open_dispute(
        payment_id=str(payment.id), dispute_id=dispute_id, amount=Money(amount, payment.currency), at=at
    )
    work.touch(payment, invoice)
    return True


def close_dispute(
    work: Work,
    payment_id: UUID,
    *,
    dispute_id: str,
    won: bool,
    at: datetime,
    amount: int | None = None,
    reason: str = "",
    currency: str | None = None,
) -> bool:
    """Close a dispute as won or lost, once. A closing reported before the opening opens it
    first when the report says how much was disputed (Stripe's dispute object does)."""
    payment = work.payment(payment_id)
    _require_currency_of(payment, currency)
    dispute = payment.disputes.get(dispute_id)
    if dispute is None and amount is not None:
        open_dispute(work, payment_id, dispute_id=dispute_id, amount=amount, reason=reason, at=at)
        dispute = payment.disputes.get(dispute_id)
    if dispute is not None and dispute["status"] != "open":
        return False
    invoice = work.invoice(UUID(payment.invoice_id))
    payment.close_dispute(dispute_id=dispute_id, won=won, at=at)
    invoice.close_dispute(dispute_id=dispute_id, won=won, at=at)
    work.touch(payment, invoice)
    return True


def payout(
    work: Work,
    *,
    provider: str,
    provider_payout_id: str,
    amount: Money,
    paid: bool,
    at: datetime,
    code: str = "",
    message: str = "",
) -> bool:
    """Record a payout paid into the bank, or failed (reversed if it had been paid), once."""
    kept = work.get(payout_id_for(provider, provider_payout_id), Payout)
    if kept is None:
        kept = Payout.report(provider=provider, provider_payout_id=provider_payout_id, amount=amount, at=at)
    elif kept.amount != amount.amount or kept.currency != amount.currency:
        raise InvalidAmountError(f"payout {provider_payout_id} was reported as {kept.amount} {kept.currency}")
    changed = kept.pay(at=at) if paid else kept.fail(code=code, message=message, at=at)
    work.add(kept)
    return changed


def defer(
    work: Work,
    *,
    provider: str,
    provider_payment_id: str,
    kind: str,
    movement_id: str,
    fields: dict[str, Any],
    event_id: str,
    at: datetime,
) -> bool:
    """Keep a refund or dispute reported before its payment; False if it is kept already."""
    kept = work.get(deferred_id_for(provider, provider_payment_id), DeferredMovements)
    if kept is None:
        kept = DeferredMovements.start(provider=provider, provider_payment_id=provider_payment_id, at=at)
    elif kept.payment_arrived:
        # The payment was committed after we looked for it: decide again, and apply, not defer.
        raise StaleReadError(f"payment {provider}:{provider_payment_id} arrived meanwhile")
    changed = kept.defer(kind=kind, movement_id=movement_id, fields=fields, event_id=event_id, at=at)
    work.add(kept)
    return changed


def _require_currency_of(payment: Payment, currency: str | None) -> None:
    """A refund or dispute moves money in its payment's currency; a report in another one is not
    this payment's money (refused, never applied at another currency's scale)."""
    if currency is not None and currency != payment.currency:
        raise CurrencyMismatchError(payment.currency, currency)


def _release_deferred(work: Work, payment: Payment, at: datetime) -> None:
    """Record the payment's arrival and apply what was waiting for it; each movement all or
    nothing, and the event that reported it marked with what was done."""
    kept = work.get(deferred_id_for(payment.provider, payment.provider_payment_id), DeferredMovements)
    if kept is None:
        kept = DeferredMovements.start(
            provider=payment.provider, provider_payment_id=payment.provider_payment_id, at=at
        )
    kept.arrive(at=at)
    work.add(kept)
    for key, movement in kept.waiting():
        try:
            work.attempt(lambda m=movement: _apply(work, payment.id, m, at))  # type: ignore[misc]
            outcome, detail = APPLIED, f"{key} applied when payment {payment.provider_payment_id} succeeded"
        except REFUSALS as error:
            outcome, detail = REFUSED, f"{key}: {error}"
        kept.release(key, outcome=outcome, detail=detail, at=at)
        reported = work.get(provider_event_id(payment.provider, movement["event_id"]), ProviderEvent)
        if reported is not None and not reported.settled:
            reported.handled(outcome=outcome, detail=detail, at=at)
            work.add(reported)


def _apply(work: Work, payment_id: UUID, movement: dict[str, Any], at: datetime) -> bool:
    fields = movement["fields"]
    if movement["kind"] == REFUND:
        return refund(
            work,
            payment_id,
            refund_id=fields["refund_id"],
            amount=fields["amount"],
            at=at,
            currency=fields.get("currency"),  # kept since the reports carry it; absent in older ones
        )
    if movement["kind"] == DISPUTE_OPENED:
        return open_dispute(
            work,
            payment_id,
            dispute_id=fields["dispute_id"],
            amount=fields["amount"],
            reason=fields["reason"],
            at=at,
            currency=fields.get("currency"),
        )
    if movement["kind"] == DISPUTE_CLOSED:
        return close_dispute(
            work,
            payment_id,
            dispute_id=fields["dispute_id"],
            won=fields["won"],
            amount=fields["amount"],
            reason=fields["reason"],
            at=at,
            currency=fields.get("currency"),
        )
    raise ValueError(f"unknown movement kind {movement['kind']!r}")
