"""Invoice rules as given events / when a command / then events or an error.

Each test builds the invoice through its commands (the given), clears the pending events with
`collect_events()`, runs one command (the when) and asserts on the events it triggered or on the
error it raised, in which case nothing was triggered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger.errors import (
    CurrencyMismatchError,
    DisputeExceedsPaidError,
    DuplicatePaymentError,
    EmptyInvoiceError,
    InvalidAmountError,
    InvalidDateError,
    InvalidMetadataError,
    InvalidTextError,
    InvoiceHasPaymentsError,
    InvoiceNotEditableError,
    InvoiceNotOpenError,
    InvoiceNotPayableError,
    LedgerError,
    LineNotFoundError,
    NegativeTotalError,
    RefundExceedsPaidError,
    TooManyLinesError,
    UnknownCurrencyError,
    UnknownDisputeError,
)
from ledger.invoices import BANK, MAX_LINES, PROCESSOR_BALANCE, Invoice, format_number
from ledger.lines import Line
from ledger.money import MAX_MINOR_UNITS, Money
from tests.unit.given import CUSTOMER, T0, at, drain


def usd(amount: int) -> Money:
    return Money(amount, "usd")


def line(line_id: str = "l1", unit_amount: int = 1000, *, quantity: object = 1, tax_rate: object = None) -> Line:
    return Line.price(
        line_id=line_id, description="Consulting", quantity=quantity, unit_amount=unit_amount, tax_rate=tax_rate
    )


def draft(*lines: Line, currency: str = "usd", **details: Any) -> Invoice:
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency=currency, at=T0, **details)
    for minute, each in enumerate(lines, start=1):
        invoice.add_line(each, at=at(minute))
    drain(invoice)
    return invoice


def issued(total: int = 1000, *, currency: str = "usd", sequence: int = 1) -> Invoice:
    """An open invoice of one untaxed line of `total`, its events already collected."""
    invoice = draft(line("l1", total), currency=currency)
    invoice.issue(sequence=sequence, at=at(10))
    drain(invoice)
    return invoice


def pay(
    invoice: Invoice,
    amount: int,
    *,
    payment_id: str = "pay_1",
    fee: int = 0,
    cash_account: str = PROCESSOR_BALANCE,
    minute: int = 20,
) -> list[Any]:
    invoice.apply_payment(
        payment_id=payment_id, amount=Money(amount, invoice.currency), fee=fee, cash_account=cash_account, at=at(minute)
    )
    return drain(invoice)


def refund(invoice: Invoice, amount: int, *, refund_id: str = "re_1", minute: int = 30) -> list[Any]:
    invoice.apply_refund(
        payment_id="pay_1",
        refund_id=refund_id,
        amount=Money(amount, invoice.currency),
        cash_account=PROCESSOR_BALANCE,
        at=at(minute),
    )
    return drain(invoice)


def dispute(invoice: Invoice, amount: int, *, dispute_id: str = "dp_1", minute: int = 40) -> list[Any]:
    invoice.open_dispute(
        payment_id="pay_1", dispute_id=dispute_id, amount=Money(amount, invoice.currency), at=at(minute)
    )
    return drain(invoice)


def paid(total: int = 1000) -> Invoice:
    invoice = issued(total)
    pay(invoice, total)
    return invoice


def uncollectible(total: int = 1000, *, paid_first: int = 0) -> Invoice:
    invoice = issued(total)
    if paid_first:
        pay(invoice, paid_first, minute=15)
    invoice.mark_uncollectible(at=at(50))
    drain(invoice)
    return invoice


def voided(total: int = 1000) -> Invoice:
    invoice = issued(total)
    invoice.void(at=at(50))
    drain(invoice)
    return invoice


def deleted() -> Invoice:
    invoice = draft(line())
    invoice.delete_draft(at=at(5))
    drain(invoice)
    return invoice


def kinds(events: list[Any]) -> list[type]:
    return [type(event) for event in events]


def refused(invoice: Invoice, error: type[LedgerError], command: Callable[[], object]) -> LedgerError:
    """Run a command that must fail with `error`, and check that it triggered nothing."""
    version = invoice.version
    with pytest.raises(error) as info:
        command()
    assert drain(invoice) == []
    assert invoice.version == version
    return info.value


# ------------------------------------------------------------------------------ create draft


def test_a_draft_is_created_with_its_details() -> None:
    invoice_id = uuid4()
    invoice = Invoice.create_draft(
        invoice_id=invoice_id,
        customer=CUSTOMER,
        currency="eur",
        at=T0,
        due_date=date(2026, 4, 1),
        memo="Thanks",
        metadata={"order": "42"},
    )
    [created] = drain(invoice)
    assert isinstance(created, Invoice.Created)
    assert created.originator_id == invoice_id
    assert created.timestamp == T0
    assert (created.customer, created.currency, created.due_date, created.memo, created.metadata, created.series) == (
        CUSTOMER,
        "eur",
        "2026-04-01",
        "Thanks",
        {"order": "42"},
        "INV",
    )
    assert (invoice.id, invoice.status, invoice.number, invoice.total, invoice.amount_due) == (
        invoice_id,
        "draft",
        None,
        0,
        0,
    )


def test_a_draft_has_sensible_defaults() -> None:
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer={"email": "a@example.com"}, currency="usd", at=T0)
    [created] = drain(invoice)
    assert (created.customer, created.due_date, created.memo, created.metadata, created.series) == (
        {"email": "a@example.com", "name": ""},
        None,
        "",
        {},
        "INV",
    )


def test_a_due_date_given_as_text_is_stored_as_an_iso_date() -> None:
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency="usd", at=T0, due_date="2026-04-01")
    assert invoice.due_date == "2026-04-01"


@pytest.mark.parametrize("due_date", ["01/04/2026", "2026-13-01", "tomorrow", 20260401])
def test_an_unreadable_due_date_is_refused(due_date: object) -> None:
    with pytest.raises(InvalidDateError):
        Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency="usd", at=T0, due_date=due_date)


@pytest.mark.parametrize("email", ["not-an-email", "", "a@b", "a b@example.com", None, 42, "x" * 250 + "@e.co"])
def test_a_customer_without_a_valid_email_is_refused(email: object) -> None:
    with pytest.raises(InvalidTextError) as info:
        Invoice.create_draft(invoice_id=uuid4(), customer={"email": email, "name": "A"}, currency="usd", at=T0)
    assert info.value.field == "customer.email"


def test_a_customer_name_over_200_characters_is_refused() -> None:
    with pytest.raises(InvalidTextError) as info:
        Invoice.create_draft(
            invoice_id=uuid4(), customer={"email": "a@example.com", "name": "x" * 201}, currency="usd", at=T0
        )
    assert info.value.field == "customer.name"


@pytest.mark.parametrize(
    "customer", ["a@example.com", None, ["a@example.com"], {"email": "a@example.com", "phone": "1"}]
)
def test_a_customer_that_is_not_an_email_and_name_object_is_refused(customer: object) -> None:
    with pytest.raises(InvalidTextError) as info:
        Invoice.create_draft(invoice_id=uuid4(), customer=customer, currency="usd", at=T0)
    assert info.value.field == "customer"


@pytest.mark.parametrize("currency", ["USD", "xyz", "", None])
def test_a_draft_in_an_unknown_or_uppercase_currency_is_refused(currency: object) -> None:
    with pytest.raises(UnknownCurrencyError):
        Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency=currency, at=T0)


def test_metadata_at_its_limits_is_accepted() -> None:
    metadata = {f"k{i:02d}" + "x" * 37: "v" * 500 for i in range(50)}
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency="usd", at=T0, metadata=metadata)
    assert invoice.metadata == metadata
    assert all(len(key) == 40 for key in metadata)


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(51)},
        {"k" * 41: "v"},
        {"": "v"},
        {"k": "v" * 501},
        {"k": 1},
        {"k": None},
        {1: "v"},
        ["k", "v"],
        "k=v",
    ],
    ids=["51-keys", "key-41", "empty-key", "value-501", "int-value", "none-value", "int-key", "list", "text"],
)
def test_metadata_beyond_its_limits_is_refused(metadata: object) -> None:
    with pytest.raises(InvalidMetadataError):
        Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency="usd", at=T0, metadata=metadata)


def test_a_memo_of_5000_characters_is_accepted_and_one_more_is_refused() -> None:
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency="usd", at=T0, memo="m" * 5000)
    assert len(invoice.memo) == 5000
    with pytest.raises(InvalidTextError) as info:
        Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency="usd", at=T0, memo="m" * 5001)
    assert info.value.field == "memo"


@pytest.mark.parametrize("series", ["", "S" * 21, None])
def test_an_empty_or_oversized_series_is_refused(series: object) -> None:
    with pytest.raises(InvalidTextError):
        Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency="usd", at=T0, series=series)


# ------------------------------------------------------------------------------ lines


def test_adding_a_line_to_a_draft_records_the_priced_line() -> None:
    invoice = draft()
    new = line("l1", 333, quantity="2.5", tax_rate="10")
    invoice.add_line(new, at=at(1))
    [added] = drain(invoice)
    assert isinstance(added, Invoice.LineAdded)
    assert added.timestamp == at(1)
    assert (added.line_id, added.quantity, added.unit_amount, added.tax_rate, added.amount, added.tax) == (
        "l1",
        "2.5",
        333,
        "10",
        833,
        83,
    )
    assert invoice.lines == {"l1": new}
    assert (invoice.subtotal, invoice.tax, invoice.total) == (833, 83, 916)


def test_totals_of_a_draft_are_sums_of_rounded_lines() -> None:
    invoice = draft(line("a", 333, quantity="2.5", tax_rate="10"), line("b", 5000), line("c", -500, tax_rate="20"))
    assert (invoice.subtotal, invoice.tax, invoice.total) == (833 + 5000 - 500, 83 - 100, 5833 - 500 - 17)


def test_changing_a_line_replaces_it() -> None:
    invoice = draft(line("l1", 1000), line("l2", 500))
    invoice.change_line(line("l1", 700, quantity=2), at=at(5))
    [changed] = drain(invoice)
    assert isinstance(changed, Invoice.LineChanged)
    assert (changed.line_id, changed.quantity, changed.amount) == ("l1", "2", 1400)
    assert invoice.total == 1900
    assert list(invoice.lines) == ["l1", "l2"]


def test_removing_a_line_drops_it_from_the_totals() -> None:
    invoice = draft(line("l1", 1000), line("l2", 500))
    invoice.remove_line("l1", at=at(5))
    [removed] = drain(invoice)
    assert isinstance(removed, Invoice.LineRemoved)
    assert removed.line_id == "l1"
    assert list(invoice.lines) == ["l2"]
    assert invoice.total == 500


def test_changing_an_unknown_line_is_refused() -> None:
    invoice = draft(line("l1"))
    error = refused(invoice, LineNotFoundError, lambda: invoice.change_line(line("nope"), at=at(5)))
    assert isinstance(error, LineNotFoundError)
    assert error.line_id == "nope"


def test_removing_an_unknown_line_is_refused() -> None:
    invoice = draft(line("l1"))
    refused(invoice, LineNotFoundError, lambda: invoice.remove_line("nope", at=at(5)))


def test_a_draft_takes_250_lines_and_refuses_the_251st() -> None:
    invoice = draft(*(line(f"l{i}", 1) for i in range(MAX_LINES)))
    assert len(invoice.lines) == 250
    refused(invoice, TooManyLinesError, lambda: invoice.add_line(line("one-more", 1), at=at(300)))


def test_a_line_that_would_push_the_total_beyond_the_limit_is_refused() -> None:
    invoice = draft(line("l1", MAX_MINOR_UNITS))
    refused(invoice, InvalidAmountError, lambda: invoice.add_line(line("l2", 1), at=at(5)))
    refused(
        invoice, InvalidAmountError, lambda: invoice.change_line(line("l1", MAX_MINOR_UNITS, tax_rate="1"), at=at(5))
    )


@pytest.mark.parametrize(
    "edit",
    [
        lambda inv: inv.add_line(line("l2"), at=at(60)),
        lambda inv: inv.change_line(line("l1", 1), at=at(60)),
        lambda inv: inv.remove_line("l1", at=at(60)),
        lambda inv: inv.change_details(memo="late", at=at(60)),
        lambda inv: inv.delete_draft(at=at(60)),
        lambda inv: inv.issue(sequence=2, at=at(60)),
    ],
    ids=["add_line", "change_line", "remove_line", "change_details", "delete_draft", "issue"],
)
@pytest.mark.parametrize("given", [issued, paid, voided, uncollectible, deleted])
def test_only_a_draft_can_be_edited(given: Callable[[], Invoice], edit: Callable[[Invoice], None]) -> None:
    invoice = given()
    error = refused(invoice, InvoiceNotEditableError, lambda: edit(invoice))
    assert isinstance(error, InvoiceNotEditableError)
    assert error.status == invoice.status


# ------------------------------------------------------------------------------ details and deletion


def test_changing_details_keeps_what_is_left_out() -> None:
    invoice = draft(line(), due_date="2026-04-01", memo="Old", metadata={"a": "1"})
    invoice.change_details(memo="New", at=at(5))
    [changed] = drain(invoice)
    assert isinstance(changed, Invoice.DetailsChanged)
    assert (changed.customer, changed.due_date, changed.memo, changed.metadata) == (
        CUSTOMER,
        "2026-04-01",
        "New",
        {"a": "1"},
    )
    assert invoice.memo == "New"


def test_changing_details_replaces_customer_due_date_and_metadata() -> None:
    invoice = draft(line(), due_date="2026-04-01")
    invoice.change_details(
        customer={"email": "new@example.com", "name": "New"},
        due_date="2026-05-01",
        metadata={"po": "7"},
        at=at(5),
    )
    drain(invoice)
    assert (invoice.customer, invoice.due_date, invoice.metadata) == (
        {"email": "new@example.com", "name": "New"},
        "2026-05-01",
        {"po": "7"},
    )


def test_changing_the_due_date_to_none_clears_it() -> None:
    invoice = draft(line(), due_date="2026-04-01")
    invoice.change_details(due_date=None, at=at(5))
    [changed] = drain(invoice)
    assert changed.due_date is None
    assert invoice.due_date is None


@pytest.mark.parametrize(
    ("details", "error"),
    [
        ({"customer": {"email": "nope"}}, InvalidTextError),
        ({"due_date": "someday"}, InvalidDateError),
        ({"memo": "m" * 5001}, InvalidTextError),
        ({"metadata": {"k" * 41: "v"}}, InvalidMetadataError),
    ],
)
def test_invalid_details_are_refused(details: dict[str, object], error: type[LedgerError]) -> None:
    invoice = draft(line())
    refused(invoice, error, lambda: invoice.change_details(at=at(5), **details))


def test_deleting_a_draft_marks_it_deleted() -> None:
    invoice = draft(line())
    invoice.delete_draft(at=at(5))
    assert kinds(drain(invoice)) == [Invoice.DraftDeleted]
    assert (invoice.status, invoice.amount_due) == ("deleted", 0)


# ------------------------------------------------------------------------------ issue


def test_issuing_an_empty_draft_is_refused() -> None:
    invoice = draft()
    refused(invoice, EmptyInvoiceError, lambda: invoice.issue(sequence=1, at=at(10)))


def test_issuing_a_draft_with_a_negative_total_is_refused() -> None:
    invoice = draft(line("l1", 1000), line("l2", -1001))
    refused(invoice, NegativeTotalError, lambda: invoice.issue(sequence=1, at=at(10)))
    assert invoice.status == "draft"


def test_issuing_numbers_the_invoice_and_freezes_its_totals() -> None:
    invoice = draft(line("a", 1000, tax_rate="20"), line("b", 500), due_date="2026-04-01")
    invoice.issue(sequence=7, at=at(10))
    [issued_event] = drain(invoice)
    assert isinstance(issued_event, Invoice.Issued)
    assert issued_event.timestamp == at(10)
    assert (
        issued_event.number,
        issued_event.sequence,
        issued_event.series,
        issued_event.due_date,
        issued_event.subtotal,
        issued_event.tax,
        issued_event.total,
    ) == ("INV-000007", 7, "INV", "2026-04-01", 1500, 200, 1700)
    assert (invoice.status, invoice.number, invoice.issued_at) == ("open", "INV-000007", at(10))
    assert invoice.frozen_totals == {"subtotal": 1500, "tax": 200, "total": 1700}
    assert (invoice.subtotal, invoice.tax, invoice.total, invoice.amount_due) == (1500, 200, 1700, 1700)


def test_a_due_date_given_at_issue_replaces_the_drafts() -> None:
    invoice = draft(line(), due_date="2026-04-01")
    invoice.issue(sequence=1, at=at(10), due_date=date(2026, 4, 30))
    [issued_event] = drain(invoice)
    assert issued_event.due_date == "2026-04-30"
    assert invoice.due_date == "2026-04-30"


def test_an_invoice_number_carries_its_series_and_six_digits() -> None:
    assert format_number("INV", 7) == "INV-000007"
    assert format_number("CRD", 42) == "CRD-000042"
    assert format_number("INV", 1234567) == "INV-1234567"
    invoice = draft(line(), series="CRD")
    invoice.issue(sequence=42, at=at(10))
    assert invoice.number == "CRD-000042"


def test_a_zero_total_invoice_is_paid_as_soon_as_it_is_issued() -> None:
    invoice = draft(line("a", 1000), line("b", -1000))
    invoice.issue(sequence=1, at=at(10))
    events = drain(invoice)
    assert kinds(events) == [Invoice.Issued, Invoice.Paid]
    assert events[1].amount_paid == 0
    assert (invoice.status, invoice.paid_at, invoice.amount_due, invoice.amount_paid) == ("paid", at(10), 0, 0)


# ------------------------------------------------------------------------------ payments


@pytest.mark.parametrize("given", [lambda: draft(line()), voided, deleted])
def test_a_payment_on_a_draft_void_or_deleted_invoice_is_refused(given: Callable[[], Invoice]) -> None:
    invoice = given()
    refused(
        invoice,
        InvoiceNotPayableError,
        lambda: invoice.apply_payment(payment_id="p", amount=usd(100), fee=0, cash_account=BANK, at=at(20)),
    )


def test_a_payment_in_another_currency_is_refused() -> None:
    invoice = issued(1000)
    error = refused(
        invoice,
        CurrencyMismatchError,
        lambda: invoice.apply_payment(
            payment_id="p", amount=Money(1000, "eur"), fee=0, cash_account=PROCESSOR_BALANCE, at=at(20)
        ),
    )
    assert isinstance(error, CurrencyMismatchError)
    assert (error.expected, error.actual) == ("usd", "eur")


@pytest.mark.parametrize(
    ("amount", "fee", "cash_account"),
    [(0, 0, BANK), (-100, 0, BANK), (100, 101, BANK), (100, -1, BANK), (100, 0, "cash_drawer")],
    ids=["zero", "negative", "fee-over-amount", "negative-fee", "unknown-cash-account"],
)
def test_an_invalid_payment_is_refused(amount: int, fee: int, cash_account: str) -> None:
    invoice = issued(1000)
    refused(
        invoice,
        InvalidAmountError,
        lambda: invoice.apply_payment(
            payment_id="p", amount=usd(amount), fee=fee, cash_account=cash_account, at=at(20)
        ),
    )


def test_a_partial_payment_keeps_the_invoice_open() -> None:
    invoice = issued(1000)
    [applied] = pay(invoice, 400, fee=12)
    assert isinstance(applied, Invoice.PaymentApplied)
    assert (applied.payment_id, applied.amount, applied.fee, applied.cash_account, applied.recovered) == (
        "pay_1",
        400,
        12,
        PROCESSOR_BALANCE,
        0,
    )
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("open", 400, 600)


def test_an_exact_payment_pays_the_invoice() -> None:
    invoice = issued(1000)
    events = pay(invoice, 1000, minute=21)
    assert kinds(events) == [Invoice.PaymentApplied, Invoice.Paid]
    assert events[1].amount_paid == 1000
    assert (invoice.status, invoice.paid_at, invoice.amount_paid, invoice.amount_due) == ("paid", at(21), 1000, 0)
    assert invoice.payment_ids == ["pay_1"]


def test_payments_that_add_up_to_the_total_pay_the_invoice() -> None:
    invoice = issued(1000)
    pay(invoice, 600, payment_id="pay_1")
    events = pay(invoice, 400, payment_id="pay_2", cash_account=BANK)
    assert kinds(events) == [Invoice.PaymentApplied, Invoice.Paid]
    assert events[0].cash_account == BANK
    assert events[1].amount_paid == 1000
    assert invoice.payment_ids == ["pay_1", "pay_2"]


def test_an_overpayment_pays_the_invoice_and_records_the_excess() -> None:
    invoice = issued(1000)
    events = pay(invoice, 1250)
    assert kinds(events) == [Invoice.PaymentApplied, Invoice.Paid, Invoice.Overpaid]
    overpaid = events[2]
    assert (overpaid.payment_id, overpaid.amount) == ("pay_1", 250)
    assert (invoice.status, invoice.amount_paid, invoice.amount_overpaid, invoice.amount_due) == ("paid", 1250, 250, 0)


def test_an_overpayment_of_one_minor_unit_is_recorded() -> None:
    invoice = issued(1000)
    events = pay(invoice, 1001)
    assert kinds(events) == [Invoice.PaymentApplied, Invoice.Paid, Invoice.Overpaid]
    assert events[2].amount == 1


def test_an_overpayment_after_a_partial_payment_records_only_the_excess() -> None:
    invoice = issued(1000)
    pay(invoice, 700, payment_id="pay_1")
    events = pay(invoice, 500, payment_id="pay_2")
    assert kinds(events) == [Invoice.PaymentApplied, Invoice.Paid, Invoice.Overpaid]
    assert events[2].amount == 200


def test_a_payment_on_a_paid_invoice_is_recorded_entirely_as_overpaid() -> None:
    invoice = paid(1000)
    events = pay(invoice, 300, payment_id="pay_2")
    assert kinds(events) == [Invoice.PaymentApplied, Invoice.Overpaid]
    assert (events[1].payment_id, events[1].amount) == ("pay_2", 300)
    assert (invoice.status, invoice.amount_paid, invoice.amount_overpaid, invoice.amount_due) == ("paid", 1300, 300, 0)


def test_a_fee_equal_to_the_payment_is_accepted() -> None:
    invoice = issued(1000)
    [applied] = pay(invoice, 100, fee=100)
    assert applied.fee == 100


def test_amount_due_never_goes_negative() -> None:
    invoice = issued(1000)
    for number, amount in enumerate([600, 600, 600]):
        pay(invoice, amount, payment_id=f"pay_{number}")
        assert invoice.amount_due >= 0
    assert (invoice.amount_paid, invoice.amount_overpaid, invoice.amount_due) == (1800, 800, 0)


def test_a_failed_attempt_is_recorded_on_an_open_invoice() -> None:
    invoice = issued(1000)
    invoice.record_failed_attempt(payment_id="pay_1", code="card_declined", message="Declined", at=at(20))
    [failed] = drain(invoice)
    assert isinstance(failed, Invoice.PaymentAttemptFailed)
    assert (failed.payment_id, failed.code, failed.message) == ("pay_1", "card_declined", "Declined")
    assert invoice.failed_attempts == [
        {"payment_id": "pay_1", "code": "card_declined", "message": "Declined", "at": at(20).isoformat()}
    ]
    assert invoice.status == "open"


def test_a_failed_attempt_on_a_draft_is_refused() -> None:
    invoice = draft(line())
    refused(
        invoice,
        InvoiceNotPayableError,
        lambda: invoice.record_failed_attempt(payment_id="p", code="x", message="y", at=at(20)),
    )


# ------------------------------------------------------------------------------ refunds


def test_a_refund_on_a_draft_is_refused() -> None:
    invoice = draft(line())
    refused(
        invoice,
        InvoiceNotPayableError,
        lambda: invoice.apply_refund(payment_id="p", refund_id="r", amount=usd(1), cash_account=BANK, at=at(30)),
    )


def test_a_partial_refund_leaves_the_invoice_paid() -> None:
    invoice = paid(1000)
    [refunded] = refund(invoice, 300)
    assert isinstance(refunded, Invoice.RefundApplied)
    assert (refunded.payment_id, refunded.refund_id, refunded.amount, refunded.cash_account, refunded.from_credit) == (
        "pay_1",
        "re_1",
        300,
        PROCESSOR_BALANCE,
        0,
    )
    assert (invoice.status, invoice.amount_paid, invoice.amount_refunded, invoice.amount_due) == ("paid", 1000, 300, 0)


def test_a_full_refund_leaves_the_invoice_paid() -> None:
    invoice = paid(1000)
    refund(invoice, 1000)
    assert (invoice.status, invoice.amount_paid, invoice.amount_refunded, invoice.amount_due) == ("paid", 1000, 1000, 0)


def test_repeated_refunds_add_up_and_stop_at_what_was_paid() -> None:
    invoice = paid(1000)
    refund(invoice, 300, refund_id="re_1")
    refund(invoice, 700, refund_id="re_2")
    assert (invoice.amount_refunded, invoice.refund_ids, invoice.refundable) == (1000, ["re_1", "re_2"], 0)
    refused(
        invoice,
        RefundExceedsPaidError,
        lambda: invoice.apply_refund(
            payment_id="pay_1", refund_id="re_3", amount=usd(1), cash_account=PROCESSOR_BALANCE, at=at(31)
        ),
    )


def test_a_refund_beyond_what_was_paid_is_refused() -> None:
    invoice = issued(1000)
    pay(invoice, 400)
    refused(
        invoice,
        RefundExceedsPaidError,
        lambda: invoice.apply_refund(
            payment_id="pay_1", refund_id="re_1", amount=usd(401), cash_account=PROCESSOR_BALANCE, at=at(30)
        ),
    )


def test_a_refund_on_a_partly_paid_invoice_does_not_change_what_is_due() -> None:
    invoice = issued(1000)
    pay(invoice, 400)
    refund(invoice, 100)
    assert (invoice.status, invoice.amount_paid, invoice.amount_refunded, invoice.amount_due) == ("open", 400, 100, 600)


@pytest.mark.parametrize(
    ("amount", "cash_account", "error"),
    [
        (Money(100, "eur"), PROCESSOR_BALANCE, CurrencyMismatchError),
        (usd(0), PROCESSOR_BALANCE, InvalidAmountError),
        (usd(-5), PROCESSOR_BALANCE, InvalidAmountError),
        (usd(100), "wallet", InvalidAmountError),
    ],
    ids=["currency", "zero", "negative", "cash-account"],
)
def test_an_invalid_refund_is_refused(amount: Money, cash_account: str, error: type[LedgerError]) -> None:
    invoice = paid(1000)
    refused(
        invoice,
        error,
        lambda: invoice.apply_refund(
            payment_id="pay_1", refund_id="re_1", amount=amount, cash_account=cash_account, at=at(30)
        ),
    )


def test_a_refund_consumes_the_overpayment_first() -> None:
    invoice = issued(1000)
    pay(invoice, 1250)
    [first] = refund(invoice, 300, refund_id="re_1")
    assert first.from_credit == 250
    [second] = refund(invoice, 100, refund_id="re_2")
    assert second.from_credit == 0
    assert (invoice.credit_refunded, invoice.amount_refunded, invoice.status) == (250, 400, "paid")


def test_a_refund_smaller_than_the_overpayment_is_entirely_from_credit() -> None:
    invoice = issued(1000)
    pay(invoice, 1250)
    [first] = refund(invoice, 100, refund_id="re_1")
    [second] = refund(invoice, 200, refund_id="re_2")
    assert (first.from_credit, second.from_credit) == (100, 150)


# ------------------------------------------------------------------------------ disputes


def test_opening_a_dispute_holds_the_amount_back() -> None:
    invoice = paid(1000)
    [opened] = dispute(invoice, 400)
    assert isinstance(opened, Invoice.DisputeOpened)
    assert (opened.payment_id, opened.dispute_id, opened.amount) == ("pay_1", "dp_1", 400)
    assert (invoice.amount_disputed, invoice.amount_dispute_lost, invoice.refundable) == (400, 0, 600)
    assert invoice.status == "paid"


def test_a_won_dispute_releases_the_amount() -> None:
    invoice = paid(1000)
    dispute(invoice, 400)
    invoice.close_dispute(dispute_id="dp_1", won=True, at=at(45))
    [closed] = drain(invoice)
    assert isinstance(closed, Invoice.DisputeClosed)
    assert (closed.dispute_id, closed.amount, closed.outcome) == ("dp_1", 400, "won")
    assert (invoice.amount_disputed, invoice.amount_dispute_lost, invoice.refundable) == (0, 0, 1000)
    assert (invoice.status, invoice.amount_paid, invoice.amount_refunded) == ("paid", 1000, 0)


def test_a_lost_dispute_is_shown_apart_from_payments_and_refunds() -> None:
    invoice = paid(1000)
    dispute(invoice, 400)
    invoice.close_dispute(dispute_id="dp_1", won=False, at=at(45))
    [closed] = drain(invoice)
    assert (closed.dispute_id, closed.amount, closed.outcome) == ("dp_1", 400, "lost")
    assert (invoice.amount_disputed, invoice.amount_dispute_lost, invoice.refundable) == (0, 400, 600)
    assert (invoice.status, invoice.amount_paid, invoice.amount_refunded, invoice.amount_due) == ("paid", 1000, 0, 0)


def test_a_refund_after_a_lost_dispute_is_limited_to_what_remains() -> None:
    invoice = paid(1000)
    dispute(invoice, 400)
    invoice.close_dispute(dispute_id="dp_1", won=False, at=at(45))
    drain(invoice)
    refused(
        invoice,
        RefundExceedsPaidError,
        lambda: invoice.apply_refund(
            payment_id="pay_1", refund_id="re_1", amount=usd(601), cash_account=PROCESSOR_BALANCE, at=at(50)
        ),
    )
    refund(invoice, 600, minute=51)
    assert invoice.refundable == 0


@pytest.mark.parametrize("dispute_id", ["dp_unknown", "dp_1"])
def test_closing_a_dispute_that_is_not_open_is_refused(dispute_id: str) -> None:
    invoice = paid(1000)
    dispute(invoice, 400)
    invoice.close_dispute(dispute_id="dp_1", won=True, at=at(45))
    drain(invoice)
    error = refused(
        invoice, UnknownDisputeError, lambda: invoice.close_dispute(dispute_id=dispute_id, won=False, at=at(46))
    )
    assert isinstance(error, UnknownDisputeError)
    assert error.dispute_id == dispute_id


def test_a_dispute_beyond_what_was_paid_is_refused() -> None:
    invoice = issued(1000)
    pay(invoice, 500)
    refused(
        invoice,
        DisputeExceedsPaidError,
        lambda: invoice.open_dispute(payment_id="pay_1", dispute_id="dp_1", amount=usd(501), at=at(40)),
    )


def test_a_dispute_beyond_what_was_paid_less_refunds_is_refused() -> None:
    invoice = paid(1000)
    refund(invoice, 700)
    refused(
        invoice,
        DisputeExceedsPaidError,
        lambda: invoice.open_dispute(payment_id="pay_1", dispute_id="dp_1", amount=usd(301), at=at(40)),
    )


def test_a_dispute_on_a_draft_is_refused() -> None:
    invoice = draft(line())
    refused(
        invoice,
        InvoiceNotPayableError,
        lambda: invoice.open_dispute(payment_id="p", dispute_id="dp_1", amount=usd(1), at=at(40)),
    )


@pytest.mark.parametrize(
    ("amount", "error"),
    [(Money(100, "eur"), CurrencyMismatchError), (usd(0), InvalidAmountError)],
    ids=["currency", "zero"],
)
def test_an_invalid_dispute_is_refused(amount: Money, error: type[LedgerError]) -> None:
    invoice = paid(1000)
    refused(
        invoice, error, lambda: invoice.open_dispute(payment_id="pay_1", dispute_id="dp_1", amount=amount, at=at(40))
    )


# ------------------------------------------------------------------------------ void


def test_voiding_an_open_invoice_leaves_nothing_due() -> None:
    invoice = draft(line("a", 1000, tax_rate="20"))
    invoice.issue(sequence=1, at=at(10))
    drain(invoice)
    invoice.void(at=at(50))
    [voided_event] = drain(invoice)
    assert isinstance(voided_event, Invoice.Voided)
    assert (voided_event.subtotal, voided_event.tax, voided_event.total, voided_event.written_off) == (
        1000,
        200,
        1200,
        0,
    )
    assert (invoice.status, invoice.amount_due) == ("void", 0)


def test_voiding_an_uncollectible_invoice_reverses_the_write_off() -> None:
    invoice = uncollectible(1000)
    invoice.void(at=at(60))
    [voided_event] = drain(invoice)
    assert (voided_event.total, voided_event.written_off) == (1000, 1000)
    assert (invoice.status, invoice.amount_due) == ("void", 0)


@pytest.mark.parametrize("given", [lambda: draft(line()), paid, voided, deleted])
def test_only_an_open_or_uncollectible_invoice_can_be_voided(given: Callable[[], Invoice]) -> None:
    invoice = given()
    refused(invoice, InvoiceNotOpenError, lambda: invoice.void(at=at(60)))


def test_a_zero_total_invoice_is_paid_and_cannot_be_voided() -> None:
    invoice = draft(line("a", 0))
    invoice.issue(sequence=1, at=at(10))
    drain(invoice)
    refused(invoice, InvoiceNotOpenError, lambda: invoice.void(at=at(60)))


def test_a_partly_paid_invoice_cannot_be_voided() -> None:
    invoice = issued(1000)
    pay(invoice, 1)
    refused(invoice, InvoiceHasPaymentsError, lambda: invoice.void(at=at(60)))


def test_a_partly_paid_invoice_cannot_be_voided_even_once_refunded() -> None:
    invoice = issued(1000)
    pay(invoice, 400)
    refund(invoice, 400)
    refused(invoice, InvoiceHasPaymentsError, lambda: invoice.void(at=at(60)))


# ------------------------------------------------------------------------------ uncollectible


def test_marking_an_open_invoice_uncollectible_writes_off_what_is_due() -> None:
    invoice = issued(1000)
    pay(invoice, 400)
    invoice.mark_uncollectible(at=at(50))
    [marked] = drain(invoice)
    assert isinstance(marked, Invoice.MarkedUncollectible)
    assert marked.amount == 600
    assert (invoice.status, invoice.written_off, invoice.amount_due) == ("uncollectible", 600, 600)


@pytest.mark.parametrize("given", [lambda: draft(line()), paid, voided, uncollectible, deleted])
def test_only_an_open_invoice_can_be_marked_uncollectible(given: Callable[[], Invoice]) -> None:
    invoice = given()
    refused(invoice, InvoiceNotOpenError, lambda: invoice.mark_uncollectible(at=at(60)))


def test_a_payment_on_an_uncollectible_invoice_is_recovered_and_pays_it() -> None:
    invoice = uncollectible(1000)
    events = pay(invoice, 1000, minute=70)
    assert kinds(events) == [Invoice.PaymentApplied, Invoice.Paid]
    assert events[0].recovered == 1000
    assert (invoice.status, invoice.recovered, invoice.amount_due, invoice.paid_at) == ("paid", 1000, 0, at(70))


def test_a_partial_payment_on_an_uncollectible_invoice_is_recovered_and_keeps_it_uncollectible() -> None:
    invoice = uncollectible(1000)
    [applied] = pay(invoice, 400, minute=70)
    assert applied.recovered == 400
    assert (invoice.status, invoice.recovered, invoice.amount_due) == ("uncollectible", 400, 600)


def test_only_the_written_off_part_counts_as_recovered() -> None:
    invoice = uncollectible(1000, paid_first=300)
    assert invoice.written_off == 700
    events = pay(invoice, 900, payment_id="pay_2", minute=70)
    assert kinds(events) == [Invoice.PaymentApplied, Invoice.Paid, Invoice.Overpaid]
    assert (events[0].recovered, events[2].amount) == (700, 200)
    assert (invoice.status, invoice.recovered, invoice.amount_overpaid) == ("paid", 700, 200)


def test_a_recovered_invoice_cannot_be_voided() -> None:
    invoice = uncollectible(1000)
    pay(invoice, 100, minute=70)
    refused(invoice, InvoiceHasPaymentsError, lambda: invoice.void(at=at(80)))


# ------------------------------------------------------------------------------ overdue


@pytest.mark.parametrize(
    ("given", "today", "overdue"),
    [
        ("open", date(2026, 4, 2), True),
        ("open", date(2026, 4, 1), False),
        ("open", date(2026, 3, 31), False),
        ("uncollectible", date(2026, 4, 2), True),
        ("draft", date(2026, 4, 2), False),
        ("paid", date(2026, 4, 2), False),
        ("void", date(2026, 4, 2), False),
    ],
)
def test_an_invoice_is_overdue_once_its_due_date_has_passed_while_unpaid(
    given: str, today: date, overdue: bool
) -> None:
    invoice = draft(line(), due_date="2026-04-01")
    if given != "draft":
        invoice.issue(sequence=1, at=at(10))
    if given == "uncollectible":
        invoice.mark_uncollectible(at=at(20))
    if given == "paid":
        invoice.apply_payment(payment_id="p", amount=usd(1000), fee=0, cash_account=BANK, at=at(20))
    if given == "void":
        invoice.void(at=at(20))
    assert invoice.status == given
    assert invoice.is_overdue(today) is overdue


def test_an_invoice_without_a_due_date_is_never_overdue() -> None:
    invoice = issued(1000)
    assert invoice.is_overdue(date(2099, 1, 1)) is False


# ------------------------------------------------------------------------------ identity


def test_events_carry_the_invoice_id_and_consecutive_versions() -> None:
    invoice_id = UUID("00000000-0000-4000-8000-000000000001")
    invoice = Invoice.create_draft(invoice_id=invoice_id, customer=CUSTOMER, currency="usd", at=T0)
    invoice.add_line(line(), at=at(1))
    invoice.issue(sequence=1, at=at(2))
    events = drain(invoice)
    assert [event.originator_id for event in events] == [invoice_id] * 3
    assert [event.originator_version for event in events] == [1, 2, 3]
    assert [event.timestamp for event in events] == [T0, at(1), at(2)]


def test_a_payment_id_already_applied_is_refused_and_changes_nothing() -> None:
    invoice = issued(1000)
    pay(invoice, 600, payment_id="pay_1", cash_account=BANK)
    with pytest.raises(DuplicatePaymentError) as raised:
        pay(invoice, 600, payment_id="pay_1", cash_account=BANK, minute=22)
    assert raised.value.payment_id == "pay_1"
    assert (invoice.amount_paid, invoice.amount_due, invoice.payment_ids) == (600, 400, ["pay_1"])
    assert drain(invoice) == []
