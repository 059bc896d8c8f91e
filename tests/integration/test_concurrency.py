"""Several writers on one invoice at once: no update lost, none doubled (both backends)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from uuid import UUID

from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.accounting import postings_for, totals_by_currency
from ledger.errors import RefundExceedsCapturedError, RefundExceedsPaidError
from ledger.invoices import Invoice
from ledger.money import Money
from ledger.payments import offline_payment_id
from tests.conftest import AppFactory

CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}
WRITERS = 4
PAYMENTS_EACH = 12


def _in_threads(work: Callable[[int], None], count: int) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(n: int) -> None:
        try:
            start.wait()
            work(n)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_concurrent_payments_on_one_invoice_are_all_applied_once(make_app: AppFactory) -> None:
    setup = make_app()
    invoice_id = setup.create_draft(
        customer=CUSTOMER, currency="usd", lines=[NewLine("Big order", 1, 1_000_000)]
    ).result
    setup.issue(invoice_id)
    apps = [make_app() for _ in range(WRITERS)]

    def pay(n: int) -> None:
        for i in range(PAYMENTS_EACH):
            apps[n].record_offline_payment(
                invoice_id, Money(100 + n, "usd"), reference=f"wire {n}-{i}", idempotency_key=f"pay-{n}-{i}"
            )
            # Every payment is also retried once, as a client that lost the response would.
            apps[n].record_offline_payment(
                invoice_id, Money(100 + n, "usd"), reference=f"wire {n}-{i}", idempotency_key=f"pay-{n}-{i}"
            )

    _in_threads(pay, WRITERS)
    invoice = setup.invoice(invoice_id)
    expected = sum((100 + n) * PAYMENTS_EACH for n in range(WRITERS))
    assert invoice.amount_paid == expected
    assert len(invoice.payment_ids) == WRITERS * PAYMENTS_EACH
    assert invoice.amount_due == 1_000_000 - expected


def test_concurrent_reports_of_the_same_provider_payment_apply_it_once(make_app: AppFactory) -> None:
    setup = make_app()
    invoice_ids = []
    for _ in range(5):
        invoice_id = setup.create_draft(customer=CUSTOMER, currency="eur", lines=[NewLine("x", 1, 5_000)]).result
        setup.issue(invoice_id)
        invoice_ids.append(invoice_id)
    apps = [make_app() for _ in range(WRITERS)]

    def report(n: int) -> None:  # every writer delivers every payment: webhooks in parallel
        for k, invoice_id in enumerate(invoice_ids):
            apps[n].record_provider_payment_succeeded(
                provider="stripe",
                provider_payment_id=f"pi_{k}",
                invoice_id=invoice_id,
                amount_captured=Money(5_000, "eur"),
                fee=150,
            )

    _in_threads(report, WRITERS)
    for invoice_id in invoice_ids:
        invoice = setup.invoice(invoice_id)
        assert (invoice.status, invoice.amount_paid, invoice.amount_overpaid) == ("paid", 5_000, 0)


def test_an_offline_payment_sent_by_several_writers_at_once_is_recorded_once(make_app: AppFactory) -> None:
    setup = make_app()
    invoice_ids = []
    for _ in range(5):
        invoice_id = setup.create_draft(customer=CUSTOMER, currency="eur", lines=[NewLine("x", 1, 5_000)]).result
        setup.issue(invoice_id)
        invoice_ids.append(invoice_id)
    apps = [make_app() for _ in range(WRITERS)]
    recorded: list[set[UUID]] = [set() for _ in invoice_ids]

    def pay(n: int) -> None:  # a client retrying on every worker at once, without a key
        for k, invoice_id in enumerate(invoice_ids):
            recorded[k].add(
                apps[n].record_offline_payment(invoice_id, Money(2_000, "eur"), reference=f"SEPA {k}").result
            )

    _in_threads(pay, WRITERS)
    for k, invoice_id in enumerate(invoice_ids):
        invoice = setup.invoice(invoice_id)
        assert recorded[k] == {offline_payment_id(invoice_id, f"SEPA {k}")}
        assert (invoice.amount_paid, invoice.payment_ids) == (2_000, [str(*recorded[k])])


def test_concurrent_refunds_never_exceed_what_was_paid(make_app: AppFactory) -> None:
    setup = make_app()
    invoice_id = setup.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    setup.issue(invoice_id)
    payment_id = setup.record_provider_payment_succeeded(
        provider="stripe", provider_payment_id="pi_r", invoice_id=invoice_id, amount_captured=Money(10_000, "usd")
    ).result
    apps = [make_app() for _ in range(WRITERS)]
    refused: list[int] = []

    def refund(n: int) -> None:
        for i in range(5):  # 4 writers x 5 refunds x 600 = 12,000 asked, only 10,000 paid
            try:
                apps[n].record_refund(payment_id, refund_id=f"re_{n}_{i}", amount=600)
            except (RefundExceedsPaidError, RefundExceedsCapturedError):
                refused.append(1)

    _in_threads(refund, WRITERS)
    invoice = setup.invoice(invoice_id)
    payment = setup.payment(payment_id)
    assert invoice.amount_refunded == payment.amount_refunded == 600 * (WRITERS * 5 - len(refused))
    assert invoice.amount_refunded <= 10_000
    assert len(refused) == 4  # 16 x 600 = 9,600 fit; the other 4 cannot
    assert invoice.status == "paid"
    _assert_ledger_balances(setup)


def _assert_ledger_balances(app: BillingApplication) -> None:
    postings = []
    for notification in app.recorder.select_notifications(start=None, limit=1_000_000):
        event = app.mapper.to_domain_event(notification)
        if isinstance(event, Invoice.Event):
            currency = app.invoice(event.originator_id).currency
            postings.extend(postings_for(event, currency))
    assert set(totals_by_currency(postings).values()) <= {0}
