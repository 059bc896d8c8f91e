"""Accounting rules: the exact, balanced double-entry postings of each invoice event."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate

from ledger.accounting import (
    BAD_DEBT,
    BANK,
    CUSTOMER_CREDIT,
    DISPUTES,
    PROCESSOR_BALANCE,
    PROCESSOR_FEES,
    RECEIVABLES,
    REFUNDS,
    REVENUE,
    RULES,
    TAX_PAYABLE,
    NoPostingRuleError,
    Posting,
    balances,
    posting_rule,
    postings_for,
    totals_by_currency,
)
from ledger.errors import InvalidAmountError
from ledger.events import MovesMoney
from ledger.fees import ProcessorFee
from ledger.invoices import Invoice
from ledger.lines import Line
from ledger.money import Money
from ledger.numbering import NumberSeries
from ledger.payments import Payment
from tests.unit.event_classes import stored_event_classes
from tests.unit.given import CUSTOMER, T0, at, drain


def dr(account: str, amount: int, currency: str = "usd") -> Posting:
    return Posting(account, currency, amount, 0)


def cr(account: str, amount: int, currency: str = "usd") -> Posting:
    return Posting(account, currency, 0, amount)


def line(line_id: str, unit_amount: int, tax_rate: str | None = None) -> Line:
    return Line.price(line_id=line_id, description="Work", quantity=1, unit_amount=unit_amount, tax_rate=tax_rate)


def draft(*lines: Line, currency: str = "usd") -> Invoice:
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency=currency, at=T0)
    for each in lines:
        invoice.add_line(each, at=T0)
    return invoice


def issued(*lines: Line, currency: str = "usd") -> Invoice:
    """An open invoice; its events are still pending, so a test can post the whole history."""
    invoice = draft(*(lines or (line("l1", 1000, "20"),)), currency=currency)
    invoice.issue(sequence=1, at=at(1))
    return invoice


def pay(invoice: Invoice, amount: int, *, fee: int = 0, cash_account: str = PROCESSOR_BALANCE, minute: int = 2) -> None:
    invoice.apply_payment(
        payment_id=f"pay_{minute}",
        amount=Money(amount, invoice.currency),
        fee=fee,
        cash_account=cash_account,
        at=at(minute),
    )


def refund(invoice: Invoice, amount: int, *, cash_account: str = PROCESSOR_BALANCE, minute: int = 3) -> None:
    invoice.apply_refund(
        payment_id="pay_2",
        refund_id=f"re_{minute}",
        amount=Money(amount, invoice.currency),
        cash_account=cash_account,
        at=at(minute),
    )


def last_event_postings(invoice: Invoice, event_type: type) -> list[Posting]:
    """The postings of the one pending event of `event_type` (the others are the given)."""
    [event] = [e for e in drain(invoice) if type(e) is event_type]
    return postings_for(event, invoice.currency)


def all_postings(events: list[Any], currency: str) -> list[Posting]:
    return [posting for event in events for posting in postings_for(event, currency)]


def kinds(events: list[Any]) -> list[type]:
    return [type(event) for event in events]


def debits(postings: list[Posting]) -> int:
    return sum(posting.debit for posting in postings)


def credits(postings: list[Posting]) -> int:
    return sum(posting.credit for posting in postings)


# ------------------------------------------------------------------------------ each rule


def test_issuing_debits_receivables_and_credits_revenue_and_tax() -> None:
    invoice = draft(line("l1", 1000, "20"))
    invoice.issue(sequence=1, at=at(1))
    assert last_event_postings(invoice, Invoice.Issued) == [
        dr(RECEIVABLES, 1200),
        cr(REVENUE, 1000),
        cr(TAX_PAYABLE, 200),
    ]


def test_issuing_an_untaxed_invoice_posts_no_tax_line() -> None:
    invoice = draft(line("l1", 1000))
    invoice.issue(sequence=1, at=at(1))
    assert last_event_postings(invoice, Invoice.Issued) == [dr(RECEIVABLES, 1000), cr(REVENUE, 1000)]


def test_postings_are_in_the_invoice_currency() -> None:
    invoice = draft(line("l1", 264000), currency="jpy")
    invoice.issue(sequence=1, at=at(1))
    assert last_event_postings(invoice, Invoice.Issued) == [dr(RECEIVABLES, 264000, "jpy"), cr(REVENUE, 264000, "jpy")]


def test_a_provider_payment_debits_the_processor_balance_net_of_its_fee() -> None:
    invoice = issued()
    pay(invoice, 1200, fee=65)
    assert last_event_postings(invoice, Invoice.PaymentApplied) == [
        dr(PROCESSOR_BALANCE, 1135),
        dr(PROCESSOR_FEES, 65),
        cr(RECEIVABLES, 1200),
    ]


def test_an_offline_payment_debits_the_bank() -> None:
    invoice = issued()
    pay(invoice, 500, cash_account=BANK)
    assert last_event_postings(invoice, Invoice.PaymentApplied) == [dr(BANK, 500), cr(RECEIVABLES, 500)]


def test_a_payment_on_an_uncollectible_invoice_credits_bad_debt_with_what_it_recovers() -> None:
    invoice = issued(line("l1", 1000))
    pay(invoice, 300, minute=2)
    invoice.mark_uncollectible(at=at(3))
    drain(invoice)
    pay(invoice, 1000, fee=10, minute=4)
    events = drain(invoice)
    assert kinds(events) == [Invoice.PaymentApplied, Invoice.Paid, Invoice.Overpaid]
    assert postings_for(events[0], "usd") == [
        dr(PROCESSOR_BALANCE, 990),
        dr(PROCESSOR_FEES, 10),
        cr(RECEIVABLES, 300),
        cr(BAD_DEBT, 700),
    ]
    assert postings_for(events[2], "usd") == [dr(RECEIVABLES, 300), cr(CUSTOMER_CREDIT, 300)]


def test_an_overpayment_moves_the_excess_from_receivables_to_customer_credit() -> None:
    invoice = issued()
    pay(invoice, 1500)
    assert last_event_postings(invoice, Invoice.Overpaid) == [dr(RECEIVABLES, 300), cr(CUSTOMER_CREDIT, 300)]


def test_a_refund_debits_refunds_and_credits_cash() -> None:
    invoice = issued()
    pay(invoice, 1200)
    refund(invoice, 400)
    assert last_event_postings(invoice, Invoice.RefundApplied) == [dr(REFUNDS, 400), cr(PROCESSOR_BALANCE, 400)]


def test_a_refund_of_an_offline_payment_credits_the_bank() -> None:
    invoice = issued()
    pay(invoice, 1200, cash_account=BANK)
    refund(invoice, 400, cash_account=BANK)
    assert last_event_postings(invoice, Invoice.RefundApplied) == [dr(REFUNDS, 400), cr(BANK, 400)]


def test_a_refund_draws_on_customer_credit_first() -> None:
    invoice = issued()
    pay(invoice, 1500)
    refund(invoice, 500)
    assert last_event_postings(invoice, Invoice.RefundApplied) == [
        dr(CUSTOMER_CREDIT, 300),
        dr(REFUNDS, 200),
        cr(PROCESSOR_BALANCE, 500),
    ]


def test_a_refund_within_customer_credit_posts_no_refund_expense() -> None:
    invoice = issued()
    pay(invoice, 1500)
    refund(invoice, 300)
    assert last_event_postings(invoice, Invoice.RefundApplied) == [dr(CUSTOMER_CREDIT, 300), cr(PROCESSOR_BALANCE, 300)]


def test_an_opened_dispute_moves_the_amount_out_of_the_processor_balance() -> None:
    invoice = issued()
    pay(invoice, 1200)
    invoice.open_dispute(payment_id="pay_2", dispute_id="dp_1", amount=Money(700, "usd"), at=at(5))
    assert last_event_postings(invoice, Invoice.DisputeOpened) == [dr(DISPUTES, 700), cr(PROCESSOR_BALANCE, 700)]


def test_a_won_dispute_moves_the_amount_back() -> None:
    invoice = issued()
    pay(invoice, 1200)
    invoice.open_dispute(payment_id="pay_2", dispute_id="dp_1", amount=Money(700, "usd"), at=at(5))
    invoice.close_dispute(dispute_id="dp_1", won=True, at=at(6))
    assert last_event_postings(invoice, Invoice.DisputeClosed) == [dr(PROCESSOR_BALANCE, 700), cr(DISPUTES, 700)]


def test_a_lost_dispute_posts_nothing() -> None:
    invoice = issued()
    pay(invoice, 1200)
    invoice.open_dispute(payment_id="pay_2", dispute_id="dp_1", amount=Money(700, "usd"), at=at(5))
    invoice.close_dispute(dispute_id="dp_1", won=False, at=at(6))
    assert last_event_postings(invoice, Invoice.DisputeClosed) == []


def test_marking_uncollectible_writes_what_is_due_off_to_bad_debt() -> None:
    invoice = issued()
    pay(invoice, 200)
    invoice.mark_uncollectible(at=at(5))
    assert last_event_postings(invoice, Invoice.MarkedUncollectible) == [dr(BAD_DEBT, 1000), cr(RECEIVABLES, 1000)]


def test_voiding_reverses_the_issue() -> None:
    invoice = issued()
    invoice.void(at=at(5))
    assert last_event_postings(invoice, Invoice.Voided) == [
        dr(REVENUE, 1000),
        dr(TAX_PAYABLE, 200),
        cr(RECEIVABLES, 1200),
    ]


def test_voiding_an_uncollectible_invoice_reverses_the_write_off_instead_of_receivables() -> None:
    invoice = issued()
    invoice.mark_uncollectible(at=at(5))
    invoice.void(at=at(6))
    assert last_event_postings(invoice, Invoice.Voided) == [
        dr(REVENUE, 1000),
        dr(TAX_PAYABLE, 200),
        cr(BAD_DEBT, 1200),
    ]


# ------------------------------------------------------------------------------ credit lines


def test_a_negative_tax_from_a_credit_line_lands_in_the_debit_column() -> None:
    # 2000 untaxed, -1000 at 20%: subtotal 1000, tax -200, total 800.
    invoice = draft(line("l1", 2000), line("l2", -1000, "20"))
    invoice.issue(sequence=1, at=at(1))
    postings = last_event_postings(invoice, Invoice.Issued)
    assert postings == [dr(RECEIVABLES, 800), cr(REVENUE, 1000), dr(TAX_PAYABLE, 200)]
    assert debits(postings) == credits(postings) == 1000


def test_a_negative_subtotal_lands_in_the_debit_column_of_revenue() -> None:
    # -1000 untaxed, 500 at 100%: subtotal -500, tax 500, total 0 (issued and paid at once).
    invoice = draft(line("l1", -1000), line("l2", 500, "100"))
    invoice.issue(sequence=1, at=at(1))
    assert last_event_postings(invoice, Invoice.Issued) == [dr(REVENUE, 500), cr(TAX_PAYABLE, 500)]


def test_every_posting_has_one_non_negative_side() -> None:
    invoice = draft(line("l1", 2000), line("l2", -1000, "20"))
    invoice.issue(sequence=1, at=at(1))
    invoice.void(at=at(2))
    for posting in all_postings(drain(invoice), "usd"):
        assert posting.debit >= 0
        assert posting.credit >= 0
        assert (posting.debit == 0) != (posting.credit == 0)


# ------------------------------------------------------------------------------ balance


def a_full_history() -> list[Any]:
    """Issue 1200 (tax 200), overpay 1500 with a fee, refund the credit and more, dispute and lose."""
    invoice = issued()
    pay(invoice, 1500, fee=45, minute=2)
    refund(invoice, 400, minute=3)
    invoice.open_dispute(payment_id="pay_2", dispute_id="dp_1", amount=Money(500, "usd"), at=at(4))
    invoice.close_dispute(dispute_id="dp_1", won=False, at=at(5))
    invoice.open_dispute(payment_id="pay_2", dispute_id="dp_2", amount=Money(100, "usd"), at=at(6))
    invoice.close_dispute(dispute_id="dp_2", won=True, at=at(7))
    return drain(invoice)


def uncollectible_then_recovered_history() -> list[Any]:
    invoice = issued()
    pay(invoice, 200, cash_account=BANK, minute=2)
    invoice.mark_uncollectible(at=at(3))
    pay(invoice, 1100, minute=4)
    return drain(invoice)


def voided_uncollectible_history() -> list[Any]:
    invoice = issued()
    invoice.mark_uncollectible(at=at(3))
    invoice.void(at=at(4))
    return drain(invoice)


HISTORIES = [a_full_history, uncollectible_then_recovered_history, voided_uncollectible_history]


@pytest.mark.parametrize("history", HISTORIES)
def test_every_events_postings_balance(history: Any) -> None:
    for event in history():
        postings = postings_for(event, "usd")
        assert debits(postings) == credits(postings), type(event).__qualname__


def test_a_full_history_leaves_the_expected_balances() -> None:
    postings = all_postings(a_full_history(), "usd")
    assert balances(postings) == {
        ("usd", RECEIVABLES): 0,
        ("usd", REVENUE): -1000,
        ("usd", TAX_PAYABLE): -200,
        ("usd", PROCESSOR_BALANCE): 1455 - 400 - 500 - 100 + 100,
        ("usd", PROCESSOR_FEES): 45,
        ("usd", CUSTOMER_CREDIT): 0,
        ("usd", REFUNDS): 100,
        ("usd", DISPUTES): 500,
    }
    assert totals_by_currency(postings) == {"usd": 0}


def test_a_recovered_invoice_leaves_nothing_in_receivables_or_bad_debt() -> None:
    totals = balances(all_postings(uncollectible_then_recovered_history(), "usd"))
    assert totals[("usd", RECEIVABLES)] == 0
    assert totals[("usd", BAD_DEBT)] == 0
    assert totals[("usd", CUSTOMER_CREDIT)] == -100
    assert (totals[("usd", BANK)], totals[("usd", PROCESSOR_BALANCE)]) == (200, 1100)


def test_a_voided_uncollectible_invoice_leaves_every_account_at_zero() -> None:
    totals = balances(all_postings(voided_uncollectible_history(), "usd"))
    assert set(totals.values()) == {0}


def test_the_ledger_sums_to_zero_in_each_currency() -> None:
    usd_postings = all_postings(a_full_history(), "usd")
    jpy_invoice = issued(line("l1", 5000, "10"), currency="jpy")
    pay(jpy_invoice, 5500, fee=150)
    jpy_postings = all_postings(drain(jpy_invoice), "jpy")
    assert totals_by_currency(usd_postings + jpy_postings) == {"usd": 0, "jpy": 0}
    assert balances(jpy_postings)[("jpy", REVENUE)] == -5000


# ------------------------------------------------------------------------------ no money, no postings


def test_events_that_move_no_money_post_nothing() -> None:
    invoice = draft(line("l1", 1000), line("l2", 500))
    invoice.change_line(line("l1", 900), at=at(1))
    invoice.remove_line("l2", at=at(1))
    invoice.change_details(memo="Thanks", at=at(1))
    invoice.issue(sequence=1, at=at(2))
    invoice.record_failed_attempt(payment_id="pay_0", code="card_declined", message="Declined", at=at(3))
    pay(invoice, 900, minute=4)
    events = drain(invoice)
    silent = [e for e in events if not isinstance(e, Invoice.Issued | Invoice.PaymentApplied)]
    assert kinds(silent) == [
        Invoice.Created,
        Invoice.LineAdded,
        Invoice.LineAdded,
        Invoice.LineChanged,
        Invoice.LineRemoved,
        Invoice.DetailsChanged,
        Invoice.PaymentAttemptFailed,
        Invoice.Paid,
    ]
    assert all(postings_for(event, "usd") == [] for event in silent)


def test_a_deleted_draft_posts_nothing() -> None:
    invoice = draft(line("l1", 1000))
    invoice.delete_draft(at=at(1))
    assert all_postings(drain(invoice), "usd") == []


def test_payment_and_number_series_events_post_nothing() -> None:
    payment = Payment.initiate(
        payment_id=uuid4(),
        invoice_id=uuid4(),
        provider="stripe",
        provider_payment_id="pi_1",
        amount=Money(1000, "usd"),
        at=T0,
    )
    payment.succeed(amount_captured=1000, fee=30, charge_id="ch_1", at=at(1))
    payment.refund(refund_id="re_1", amount=100, at=at(2))
    payment.dispute(dispute_id="dp_1", amount=100, reason="fraudulent", at=at(3))
    payment.close_dispute(dispute_id="dp_1", won=False, at=at(4))
    numbers = NumberSeries.start("INV", at=T0)
    numbers.allocate(uuid4(), at=T0)
    events = drain(payment) + drain(numbers)
    assert len(events) == 7
    assert all_postings(events, "usd") == []


def test_postings_for_something_that_is_not_an_event_is_empty() -> None:
    assert postings_for(object(), "usd") == []


def test_a_postings_signed_amount_is_debit_minus_credit() -> None:
    assert dr(BANK, 5).signed == 5
    assert cr(BANK, 5).signed == -5


def _payout(amount: int = 5_000) -> Any:
    from ledger.payouts import Payout

    return Payout.report(provider="stripe", provider_payout_id="po_1", amount=Money(amount, "eur"), at=T0)


def test_a_paid_payout_moves_the_processor_balance_to_the_bank() -> None:
    payout = _payout()
    payout.pay(at=at(1))
    [_, paid] = drain(payout)
    assert postings_for(paid, "eur") == [
        Posting(BANK, "eur", 5_000, 0),
        Posting(PROCESSOR_BALANCE, "eur", 0, 5_000),
    ]


def test_a_payout_failing_after_it_was_paid_is_reversed_and_one_failing_before_posts_nothing() -> None:
    paid_first = _payout()
    paid_first.pay(at=at(1))
    paid_first.fail(code="account_closed", message="", at=at(2))
    [_, _, reversed_] = drain(paid_first)
    assert postings_for(reversed_, "eur") == [
        Posting(PROCESSOR_BALANCE, "eur", 5_000, 0),
        Posting(BANK, "eur", 0, 5_000),
    ]
    never_paid = _payout()
    never_paid.fail(code="account_closed", message="", at=at(1))
    [_, failed] = drain(never_paid)
    assert postings_for(failed, "eur") == []
    assert never_paid.pay(at=at(2)) is False  # a late "paid" after the failure changes nothing


def test_a_processor_fee_is_taken_from_the_processor_balance_and_a_returned_one_goes_back() -> None:
    def fee(amount: int, transaction: str) -> list[Posting]:
        recorded = ProcessorFee.record(
            provider="stripe",
            balance_transaction_id=transaction,
            amount=Money(amount, "eur"),
            source_id="ch_1",
            invoice_id=None,
            at=at(1),
        )
        [event] = drain(recorded)
        return postings_for(event, "eur")

    assert fee(59, "txn_1") == [Posting(PROCESSOR_FEES, "eur", 59, 0), Posting(PROCESSOR_BALANCE, "eur", 0, 59)]
    assert fee(-59, "txn_2") == [Posting(PROCESSOR_FEES, "eur", 0, 59), Posting(PROCESSOR_BALANCE, "eur", 59, 0)]
    assert sum(p.signed for p in fee(1_234, "txn_3")) == 0
    with pytest.raises(InvalidAmountError):
        fee(0, "txn_4")


# ------------------------------------------------------------------------------ the rules themselves


def test_every_event_class_that_moves_money_has_a_posting_rule() -> None:
    moving = {cls.TOPIC for cls in stored_event_classes() if issubclass(cls, MovesMoney)}  # type: ignore[attr-defined]
    assert moving  # the walk found them: the invoice's and the payout's
    assert sorted(moving - set(RULES)) == []
    # and no rule for a topic that moves no money (a rule for a renamed topic would never run)
    assert sorted(set(RULES) - moving) == []


def test_the_rules_are_the_documented_ones() -> None:
    assert set(RULES) == {
        "invoice.issued",
        "invoice.payment-applied",
        "invoice.overpaid",
        "invoice.refund-applied",
        "invoice.dispute-opened",
        "invoice.dispute-closed",
        "invoice.marked-uncollectible",
        "invoice.voided",
        "payout.paid",
        "payout.failed",
        "processor-fee.recorded",
    }
    assert all(rule.revision >= 1 for rule in RULES.values())


class Minted(MovesMoney, Aggregate.Event):
    """An event that says it moves money, with no rule: a bug the journal must not hide."""

    TOPIC = "tests.minted"
    amount: int


def test_an_event_that_moves_money_without_a_rule_raises_instead_of_posting_nothing() -> None:
    minted = Minted(originator_id=uuid4(), originator_version=1, timestamp=T0, amount=100)
    with pytest.raises(NoPostingRuleError, match=r"tests\.minted"):
        postings_for(minted, "usd")


def test_rules_are_found_by_topic_not_by_class_name() -> None:
    # A class named like the invoice's event, of another topic: not an issued invoice.
    lookalike = type("Issued", (), {"TOPIC": "elsewhere.issued", "total": 100, "subtotal": 100, "tax": 0})
    lookalike.__qualname__ = "Invoice.Issued"
    assert postings_for(lookalike(), "usd") == []


def test_each_rule_names_its_revision() -> None:
    invoice = draft(line("l1", 1000))
    invoice.issue(sequence=1, at=at(1))
    issued = drain(invoice)[-1]
    rule = posting_rule(issued)
    assert rule is RULES["invoice.issued"]
    assert rule.post(issued, "usd") == postings_for(issued, "usd")
    assert posting_rule(object()) is None


def test_the_journal_stops_at_a_money_event_it_cannot_place_instead_of_skipping_it() -> None:
    from projections.journal import JournalProjection

    journal = JournalProjection(load=lambda invoice_id, version: draft())
    minted = Minted(originator_id=uuid4(), originator_version=1, timestamp=T0, amount=100)
    with pytest.raises(NoPostingRuleError, match=r"tests\.minted"):
        journal.process(None, [(1, minted)])  # type: ignore[arg-type]  # refused before any row is written


@pytest.mark.parametrize("cls", [*stored_event_classes(), Minted], ids=lambda cls: cls.__qualname__)
def test_the_journal_places_each_event_class_as_posting_rule_does(cls: type) -> None:
    """The journal decides once per class what `posting_rule` decides per event: the same rule,
    the same refusal (and its topic), nothing for a class that moves no money."""
    from projections.journal import _REFUSED, _place

    event = object.__new__(cls)  # posting_rule reads the class only
    where, rule, topic = _place(cls, RULES)
    refused: NoPostingRuleError | None = None
    expected = None
    try:
        expected = posting_rule(event)
    except NoPostingRuleError as error:
        refused = error
    if refused is not None:
        assert (where, rule, topic) == (_REFUSED, None, refused.topic)
    else:
        assert rule is expected
        assert where != _REFUSED
