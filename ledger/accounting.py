"""Accounting rules: a pure function from each event to balanced double-entry postings.

Invoice events post every customer's money. Every money movement is applied to exactly one
invoice in the same transaction as the Payment event that reports it, so posting from the
invoice side posts each movement once; the Payment aggregate's events are the provider's view
and post nothing. Payout events post the processor sending our balance to the bank.

    invoice.issued               Dr receivables total        Cr revenue subtotal, Cr tax_payable tax
    invoice.payment-applied      Dr cash (net of fee)         Cr receivables (amount - recovered)
                                 Dr processor_fees fee        Cr bad_debt recovered
    invoice.overpaid             Dr receivables excess        Cr customer_credit excess
    invoice.refund-applied       Dr customer_credit/refunds   Cr cash amount
    invoice.dispute-opened       Dr disputes amount           Cr processor_balance amount
    invoice.dispute-closed (won) Dr processor_balance         Cr disputes
    invoice.marked-uncollectible Dr bad_debt amount           Cr receivables amount
    invoice.voided               Dr revenue, Dr tax_payable   Cr receivables, Cr bad_debt
    payout.paid                  Dr bank amount               Cr processor_balance amount
    payout.failed (after paid)   Dr processor_balance         Cr bank (the payout reversed)

Cash is `processor_balance` for provider payments and `bank` for offline ones. A lost dispute
posts nothing more: the processor already withdrew the money when the dispute opened.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ledger.invoices import DISPUTE_WON, Invoice
from ledger.payouts import Payout

RECEIVABLES = "accounts_receivable"
REVENUE = "revenue"
TAX_PAYABLE = "tax_payable"
PROCESSOR_BALANCE = "processor_balance"
PROCESSOR_FEES = "processor_fees"
REFUNDS = "refunds"
BANK = "bank"
DISPUTES = "disputes"
BAD_DEBT = "bad_debt"
CUSTOMER_CREDIT = "customer_credit"

ACCOUNTS = (
    RECEIVABLES,
    REVENUE,
    TAX_PAYABLE,
    PROCESSOR_BALANCE,
    PROCESSOR_FEES,
    REFUNDS,
    BANK,
    DISPUTES,
    BAD_DEBT,
    CUSTOMER_CREDIT,
)


@dataclass(frozen=True, slots=True)
class Posting:
    """One side of a journal entry. Exactly one of debit and credit is non-zero."""

    account: str
    currency: str
    debit: int
    credit: int

    @property
    def signed(self) -> int:
        return self.debit - self.credit


def _debit(account: str, currency: str, amount: int) -> Posting:
    # A negative debit is a credit (a credit note line, say): keep both columns non-negative.
    if amount >= 0:
        return Posting(account, currency, amount, 0)
    return Posting(account, currency, 0, -amount)


def _credit(account: str, currency: str, amount: int) -> Posting:
    return _debit(account, currency, -amount)


def _entries(currency: str, *pairs: tuple[Callable[[str, str, int], Posting], str, int]) -> list[Posting]:
    return [side(account, currency, amount) for side, account, amount in pairs if amount != 0]


def postings_for(event: object, currency: str) -> list[Posting]:
    """The postings one event yields, in the invoice's (or the payout's) currency; [] for events
    that move no money."""
    rule = _RULES.get(type(event).__qualname__)
    return rule(event, currency) if rule else []


def _issued(e: Any, c: str) -> list[Posting]:
    return _entries(c, (_debit, RECEIVABLES, e.total), (_credit, REVENUE, e.subtotal), (_credit, TAX_PAYABLE, e.tax))


def _payment_applied(e: Any, c: str) -> list[Posting]:
    return _entries(
        c,
        (_debit, e.cash_account, e.amount - e.fee),
        (_debit, PROCESSOR_FEES, e.fee),
        (_credit, RECEIVABLES, e.amount - e.recovered),
        (_credit, BAD_DEBT, e.recovered),
    )


def _overpaid(e: Any, c: str) -> list[Posting]:
    return _entries(c, (_debit, RECEIVABLES, e.amount), (_credit, CUSTOMER_CREDIT, e.amount))


def _refund_applied(e: Any, c: str) -> list[Posting]:
    return _entries(
        c,
        (_debit, CUSTOMER_CREDIT, e.from_credit),
        (_debit, REFUNDS, e.amount - e.from_credit),
        (_credit, e.cash_account, e.amount),
    )


def _dispute_opened(e: Any, c: str) -> list[Posting]:
    return _entries(c, (_debit, DISPUTES, e.amount), (_credit, PROCESSOR_BALANCE, e.amount))


def _dispute_closed(e: Any, c: str) -> list[Posting]:
    if e.outcome != DISPUTE_WON:
        return []
    return _entries(c, (_debit, PROCESSOR_BALANCE, e.amount), (_credit, DISPUTES, e.amount))


def _marked_uncollectible(e: Any, c: str) -> list[Posting]:
    return _entries(c, (_debit, BAD_DEBT, e.amount), (_credit, RECEIVABLES, e.amount))


def _voided(e: Any, c: str) -> list[Posting]:
    return _entries(
        c,
        (_debit, REVENUE, e.subtotal),
        (_debit, TAX_PAYABLE, e.tax),
        (_credit, RECEIVABLES, e.total - e.written_off),
        (_credit, BAD_DEBT, e.written_off),
    )


def _payout_paid(e: Any, c: str) -> list[Posting]:
    return _entries(c, (_debit, BANK, e.amount), (_credit, PROCESSOR_BALANCE, e.amount))


def _payout_failed(e: Any, c: str) -> list[Posting]:
    return _entries(c, (_debit, PROCESSOR_BALANCE, e.reversed), (_credit, BANK, e.reversed))


_RULES: dict[str, Callable[[Any, str], list[Posting]]] = {
    Invoice.Issued.__qualname__: _issued,
    Invoice.PaymentApplied.__qualname__: _payment_applied,
    Invoice.Overpaid.__qualname__: _overpaid,
    Invoice.RefundApplied.__qualname__: _refund_applied,
    Invoice.DisputeOpened.__qualname__: _dispute_opened,
    Invoice.DisputeClosed.__qualname__: _dispute_closed,
    Invoice.MarkedUncollectible.__qualname__: _marked_uncollectible,
    Invoice.Voided.__qualname__: _voided,
    Payout.Paid.__qualname__: _payout_paid,
    Payout.Failed.__qualname__: _payout_failed,
}


def balances(postings: Iterable[Posting]) -> dict[tuple[str, str], int]:
    """Signed balance (debit positive) per (currency, account)."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for posting in postings:
        totals[(posting.currency, posting.account)] += posting.signed
    return dict(totals)


def totals_by_currency(postings: Iterable[Posting]) -> dict[str, int]:
    """Sum of signed postings per currency: zero for every currency in a balanced ledger."""
    totals: dict[str, int] = defaultdict(int)
    for posting in postings:
        totals[posting.currency] += posting.signed
    return dict(totals)
