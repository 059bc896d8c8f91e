"""Payment rules: pending -> succeeded | failed, refunds and disputes never beyond what was captured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger.errors import (
    DisputeExceedsCapturedError,
    DuplicateRefundError,
    InvalidAmountError,
    InvalidTextError,
    LedgerError,
    PaymentAlreadySucceededError,
    PaymentStateError,
    RefundExceedsCapturedError,
    UnknownCurrencyError,
    UnknownDisputeError,
)
from ledger.money import Money
from ledger.payments import OFFLINE, Payment, offline_payment_id, payment_id_for, require_payment_reference
from tests.unit.given import T0, at, drain

INVOICE_ID = UUID("00000000-0000-4000-8000-0000000000aa")


def pending(amount: int = 1000, *, provider: str = "stripe", currency: str = "usd") -> Payment:
    payment = Payment.initiate(
        payment_id=payment_id_for(provider, "pi_1"),
        invoice_id=INVOICE_ID,
        provider=provider,
        provider_payment_id="pi_1",
        amount=Money(amount, currency),
        at=T0,
    )
    drain(payment)
    return payment


def succeeded(captured: int = 1000, *, fee: int = 30) -> Payment:
    payment = pending(captured)
    payment.succeed(amount_captured=captured, fee=fee, charge_id="ch_1", at=at(1))
    drain(payment)
    return payment


def failed() -> Payment:
    payment = pending()
    payment.fail(attempt_id="ch_0", code="card_declined", message="Your card was declined.", at=at(1))
    drain(payment)
    return payment


def kinds(events: list[Any]) -> list[type]:
    return [type(event) for event in events]


def refused(payment: Payment, error: type[LedgerError], command: Callable[[], object]) -> LedgerError:
    """Run a command that must fail with `error`, and check that it triggered nothing."""
    version = payment.version
    with pytest.raises(error) as info:
        command()
    assert drain(payment) == []
    assert payment.version == version
    return info.value


# ------------------------------------------------------------------------------ initiate


def test_initiating_a_payment_records_what_is_asked_for() -> None:
    payment_id = uuid4()
    payment = Payment.initiate(
        payment_id=payment_id,
        invoice_id=INVOICE_ID,
        provider="stripe",
        provider_payment_id="pi_123",
        amount=Money(1500, "eur"),
        at=T0,
    )
    [initiated] = drain(payment)
    assert isinstance(initiated, Payment.Initiated)
    assert (initiated.originator_id, initiated.timestamp) == (payment_id, T0)
    assert (
        initiated.invoice_id,
        initiated.provider,
        initiated.provider_payment_id,
        initiated.amount,
        initiated.currency,
    ) == (str(INVOICE_ID), "stripe", "pi_123", 1500, "eur")
    assert (payment.status, payment.amount_captured, payment.refundable) == ("pending", 0, 0)


@pytest.mark.parametrize("amount", [0, -1])
def test_a_payment_of_zero_or_less_is_refused(amount: int) -> None:
    with pytest.raises(InvalidAmountError):
        Payment.initiate(
            payment_id=uuid4(),
            invoice_id=INVOICE_ID,
            provider="stripe",
            provider_payment_id="pi_1",
            amount=Money(amount, "usd"),
            at=T0,
        )


@pytest.mark.parametrize(("provider", "provider_payment_id"), [("", "pi_1"), ("stripe", ""), ("stripe", "x" * 256)])
def test_a_payment_without_its_provider_ids_is_refused(provider: str, provider_payment_id: str) -> None:
    with pytest.raises(InvalidTextError):
        Payment.initiate(
            payment_id=uuid4(),
            invoice_id=INVOICE_ID,
            provider=provider,
            provider_payment_id=provider_payment_id,
            amount=Money(100, "usd"),
            at=T0,
        )


def test_a_payment_in_an_unknown_currency_cannot_even_be_expressed() -> None:
    with pytest.raises(UnknownCurrencyError):
        Money(100, "USD")


def test_an_offline_payment_lands_in_the_bank_and_a_provider_payment_in_the_processor_balance() -> None:
    assert pending(provider="offline").cash_account == "bank"
    assert pending(provider="stripe").cash_account == "processor_balance"


# ------------------------------------------------------------------------------ succeed and fail


def test_a_pending_payment_succeeds_with_what_was_captured() -> None:
    payment = pending(1000)
    payment.succeed(amount_captured=1000, fee=59, charge_id="ch_1", at=at(1))
    [event] = drain(payment)
    assert isinstance(event, Payment.Succeeded)
    assert (event.amount_captured, event.fee, event.charge_id, event.timestamp) == (1000, 59, "ch_1", at(1))
    assert (payment.status, payment.amount_captured, payment.fee, payment.charge_id, payment.refundable) == (
        "succeeded",
        1000,
        59,
        "ch_1",
        1000,
    )


def test_a_payment_may_succeed_without_a_charge_id() -> None:
    payment = pending(1000)
    payment.succeed(amount_captured=1000, fee=0, charge_id=None, at=at(1))
    [event] = drain(payment)
    assert event.charge_id is None


def test_a_failed_payment_may_still_succeed_on_retry() -> None:
    payment = failed()
    payment.succeed(amount_captured=1000, fee=30, charge_id="ch_2", at=at(5))
    assert kinds(drain(payment)) == [Payment.Succeeded]
    assert payment.status == "succeeded"


def test_a_payment_cannot_succeed_twice() -> None:
    payment = succeeded()
    error = refused(
        payment, PaymentStateError, lambda: payment.succeed(amount_captured=1000, fee=0, charge_id="ch_2", at=at(5))
    )
    assert isinstance(error, PaymentStateError)
    assert error.status == "succeeded"


@pytest.mark.parametrize(
    ("captured", "fee", "charge_id"),
    [(0, 0, "ch_1"), (-1, 0, "ch_1"), (100, 101, "ch_1"), (100, -1, "ch_1"), (100.0, 0, "ch_1"), (100, 0, "")],
    ids=["zero", "negative", "fee-over-captured", "negative-fee", "float", "empty-charge-id"],
)
def test_an_invalid_success_is_refused(captured: Any, fee: int, charge_id: str) -> None:
    payment = pending()
    refused(
        payment,
        LedgerError,
        lambda: payment.succeed(amount_captured=captured, fee=fee, charge_id=charge_id, at=at(1)),
    )


def test_a_pending_payment_fails_with_the_providers_reason() -> None:
    payment = pending()
    payment.fail(attempt_id="ch_0", code="card_declined", message="Declined", at=at(1))
    [event] = drain(payment)
    assert isinstance(event, Payment.Failed)
    assert (event.attempt_id, event.code, event.message) == ("ch_0", "card_declined", "Declined")
    assert (payment.status, payment.failure) == ("failed", {"code": "card_declined", "message": "Declined"})
    assert payment.has_failed_attempt("ch_0")
    assert not payment.has_failed_attempt("ch_9")


def test_a_failed_payment_may_fail_again() -> None:
    payment = failed()
    payment.fail(attempt_id="ch_1", code="expired_card", message="Expired", at=at(2))
    assert kinds(drain(payment)) == [Payment.Failed]
    assert payment.failure == {"code": "expired_card", "message": "Expired"}


def test_a_late_failure_cannot_undo_a_success() -> None:
    payment = succeeded()
    error = refused(
        payment,
        PaymentAlreadySucceededError,
        lambda: payment.fail(attempt_id="ch_0", code="card_declined", message="late", at=at(9)),
    )
    assert isinstance(error, PaymentStateError)
    assert payment.status == "succeeded"


# ------------------------------------------------------------------------------ refunds


@pytest.mark.parametrize("given", [pending, failed])
def test_only_a_succeeded_payment_can_be_refunded(given: Callable[[], Payment]) -> None:
    payment = given()
    error = refused(payment, PaymentStateError, lambda: payment.refund(refund_id="re_1", amount=100, at=at(10)))
    assert isinstance(error, PaymentStateError)
    assert error.status == payment.status


def test_a_partial_refund_is_recorded_by_its_provider_id() -> None:
    payment = succeeded(1000)
    payment.refund(refund_id="re_1", amount=300, at=at(10))
    [event] = drain(payment)
    assert isinstance(event, Payment.Refunded)
    assert (event.refund_id, event.amount) == ("re_1", 300)
    assert (payment.amount_refunded, payment.refundable, payment.status) == (300, 700, "succeeded")
    assert payment.has_refund("re_1")
    assert not payment.has_refund("re_2")


def test_repeated_refunds_add_up_to_the_whole_capture() -> None:
    payment = succeeded(1000)
    for number, amount in enumerate([100, 200, 700]):
        payment.refund(refund_id=f"re_{number}", amount=amount, at=at(10 + number))
    assert len(drain(payment)) == 3
    assert (payment.amount_refunded, payment.refundable, payment.refunds) == (
        1000,
        0,
        {"re_0": 100, "re_1": 200, "re_2": 700},
    )


def test_a_refund_beyond_what_was_captured_is_refused() -> None:
    payment = succeeded(1000)
    refused(payment, RefundExceedsCapturedError, lambda: payment.refund(refund_id="re_1", amount=1001, at=at(10)))


def test_refunds_together_beyond_what_was_captured_are_refused() -> None:
    payment = succeeded(1000)
    payment.refund(refund_id="re_1", amount=600, at=at(10))
    drain(payment)
    refused(payment, RefundExceedsCapturedError, lambda: payment.refund(refund_id="re_2", amount=401, at=at(11)))
    assert payment.refundable == 400


def test_a_refund_is_limited_by_what_was_captured_not_by_what_was_asked() -> None:
    payment = pending(1000)
    payment.succeed(amount_captured=800, fee=0, charge_id="ch_1", at=at(1))
    drain(payment)
    refused(payment, RefundExceedsCapturedError, lambda: payment.refund(refund_id="re_1", amount=801, at=at(10)))


@pytest.mark.parametrize(
    ("refund_id", "amount", "error"),
    [
        ("re_1", 0, InvalidAmountError),
        ("re_1", -5, InvalidAmountError),
        ("re_1", 1.5, InvalidAmountError),
        ("", 5, InvalidTextError),
    ],
    ids=["zero", "negative", "float", "empty-id"],
)
def test_an_invalid_refund_is_refused(refund_id: str, amount: Any, error: type[LedgerError]) -> None:
    payment = succeeded(1000)
    refused(payment, error, lambda: payment.refund(refund_id=refund_id, amount=amount, at=at(10)))


# ------------------------------------------------------------------------------ disputes


def test_a_dispute_holds_back_its_amount() -> None:
    payment = succeeded(1000)
    payment.dispute(dispute_id="dp_1", amount=400, reason="fraudulent", at=at(20))
    [event] = drain(payment)
    assert isinstance(event, Payment.Disputed)
    assert (event.dispute_id, event.amount, event.reason) == ("dp_1", 400, "fraudulent")
    assert payment.disputes == {"dp_1": {"amount": 400, "reason": "fraudulent", "status": "open"}}
    assert payment.refundable == 600
    assert payment.has_dispute("dp_1")


def test_a_won_dispute_gives_the_amount_back() -> None:
    payment = succeeded(1000)
    payment.dispute(dispute_id="dp_1", amount=400, reason="fraudulent", at=at(20))
    payment.close_dispute(dispute_id="dp_1", won=True, at=at(30))
    events = drain(payment)
    assert kinds(events) == [Payment.Disputed, Payment.DisputeWon]
    assert events[1].dispute_id == "dp_1"
    assert (payment.disputes["dp_1"]["status"], payment.refundable) == ("won", 1000)


def test_a_lost_dispute_keeps_the_amount_out_of_reach() -> None:
    payment = succeeded(1000)
    payment.dispute(dispute_id="dp_1", amount=400, reason="fraudulent", at=at(20))
    payment.close_dispute(dispute_id="dp_1", won=False, at=at(30))
    events = drain(payment)
    assert kinds(events) == [Payment.Disputed, Payment.DisputeLost]
    assert (payment.disputes["dp_1"]["status"], payment.refundable, payment.amount_refunded) == ("lost", 600, 0)
    refused(payment, RefundExceedsCapturedError, lambda: payment.refund(refund_id="re_1", amount=601, at=at(40)))


def test_a_dispute_beyond_what_remains_after_refunds_is_refused() -> None:
    payment = succeeded(1000)
    payment.refund(refund_id="re_1", amount=700, at=at(10))
    drain(payment)
    refused(
        payment,
        DisputeExceedsCapturedError,
        lambda: payment.dispute(dispute_id="dp_1", amount=301, reason="fraudulent", at=at(20)),
    )


@pytest.mark.parametrize("given", [pending, failed])
def test_only_a_succeeded_payment_can_be_disputed(given: Callable[[], Payment]) -> None:
    payment = given()
    refused(
        payment, PaymentStateError, lambda: payment.dispute(dispute_id="dp_1", amount=1, reason="fraudulent", at=at(20))
    )


@pytest.mark.parametrize("dispute_id", ["dp_unknown", "dp_1"])
def test_closing_a_dispute_that_is_not_open_is_refused(dispute_id: str) -> None:
    payment = succeeded(1000)
    payment.dispute(dispute_id="dp_1", amount=400, reason="fraudulent", at=at(20))
    payment.close_dispute(dispute_id="dp_1", won=False, at=at(30))
    drain(payment)
    refused(payment, UnknownDisputeError, lambda: payment.close_dispute(dispute_id=dispute_id, won=True, at=at(31)))


# ------------------------------------------------------------------------------ ids


def test_a_provider_payment_always_gets_the_same_id() -> None:
    first = payment_id_for("stripe", "pi_123")
    assert first == payment_id_for("stripe", "pi_123")
    assert first.version == 5
    assert first == UUID(str(first))


def test_different_provider_payments_get_different_ids() -> None:
    ids = {
        payment_id_for("stripe", "pi_123"),
        payment_id_for("stripe", "pi_124"),
        payment_id_for("offline", "pi_123"),
    }
    assert len(ids) == 3


def test_the_payment_id_does_not_change_between_releases() -> None:
    # Stored aggregates are found by this id: changing the namespace would orphan every payment.
    assert payment_id_for("stripe", "pi_123") == UUID("f80b9d5a-2ee1-59f8-b58a-7012d7d3e799")


def test_an_offline_payment_cannot_be_disputed() -> None:
    payment = Payment.initiate(
        payment_id=uuid4(),
        invoice_id=uuid4(),
        provider="offline",
        provider_payment_id="BACS 1",
        amount=Money(1000, "usd"),
        at=at(0),
    )
    payment.succeed(amount_captured=1000, fee=0, charge_id=None, at=at(1))
    drain(payment)
    refused(payment, PaymentStateError, lambda: payment.dispute(dispute_id="dp_1", amount=100, reason="", at=at(2)))


def test_a_refund_id_is_applied_once() -> None:
    payment = succeeded(1000)
    payment.refund(refund_id="re_1", amount=100, at=at(10))
    drain(payment)
    refused(payment, DuplicateRefundError, lambda: payment.refund(refund_id="re_1", amount=100, at=at(11)))


# ------------------------------------------------------------------------------ offline payments


def test_an_offline_payment_id_is_derived_from_the_invoice_and_the_reference() -> None:
    first = offline_payment_id(INVOICE_ID, "BACS 88213")
    assert first == offline_payment_id(INVOICE_ID, "BACS 88213")
    assert first == offline_payment_id(INVOICE_ID, " BACS 88213 ")  # the same cheque, typed with a stray space
    assert first != offline_payment_id(INVOICE_ID, "BACS 88214")
    assert first != offline_payment_id(uuid4(), "BACS 88213")  # one reference may pay several invoices
    assert first != payment_id_for(OFFLINE, "BACS 88213")


def test_the_offline_payment_id_does_not_change_between_releases() -> None:
    # A retry after an upgrade must find the payment recorded before it.
    assert offline_payment_id(INVOICE_ID, "wire 42") == UUID("65466131-dcf1-5d5f-9792-2d2406021ae4")


@pytest.mark.parametrize("reference", ["", "   ", None, 42, "x" * 256, "nul\x00"])
def test_an_offline_payment_reference_is_non_empty_text_of_bounded_length(reference: object) -> None:
    with pytest.raises(InvalidTextError) as raised:
        require_payment_reference(reference)
    assert raised.value.field == "reference"


def test_an_offline_payment_reference_is_kept_without_surrounding_spaces() -> None:
    assert require_payment_reference("  cheque 001234 ") == "cheque 001234"
    assert require_payment_reference("x" * 255) == "x" * 255
