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
    processor-fee.recorded       Dr processor_fees amount     Cr processor_balance amount

Processor fees reach the books from the provider's balance transactions (reconciliation reads
them; ledger/fees.py): webhooks never carry them, so a provider payment posts its whole amount
to `processor_balance` and the fee is taken from it when it is known.

Cash is `processor_balance` for provider payments and `bank` for offline ones. A lost dispute
posts nothing more: the processor already withdrew the money when the dispute opened.

Rules are found by the event's stored topic (`TOPIC`), the name that stays when a class is
renamed or moved. Every event class marked `MovesMoney` has a rule (a test walks them all); an
event so marked without one raises `NoPostingRuleError` rather than posting nothing. Each rule
has a `revision`: change what a rule posts and its revision goes up by one. The journal keeps
the revision on each row, so `ledger rebuild --check` names a rule that changed since the rows
were written instead of a rebuild silently rewriting the past.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ledger.events import MovesMoney
from ledger.invoices import DISPUTE_WON

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


class Posting(NamedTuple):
    """One side of a journal entry. Exactly one of debit and credit is non-zero."""

    # A named tuple, not a frozen dataclass: as immutable, and made in a third of the time (a
    # frozen dataclass sets each field through object.__setattr__); a rebuild makes one per
    # journal row (docs/throughput.md §Replay).

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


Post = Callable[[Any, str], list[Posting]]


@dataclass(frozen=True, slots=True)
class PostingRule:
    """How one topic posts, and which revision of that rule it is (raise it on every change)."""

    revision: int
    post: Post


def posting_rule(event: object, rules: Mapping[str, PostingRule] | None = None) -> PostingRule | None:
    """The rule for the event's topic; None for an event that moves no money.

    Raises NoPostingRuleError for an event marked `MovesMoney` that has no rule.
    """
    return class_posting_rule(type(event), rules)


def class_posting_rule(cls: type, rules: Mapping[str, PostingRule] | None = None) -> PostingRule | None:
    """`posting_rule` for any event of `cls`: the rule depends on the class alone (its stored
    topic, whether it moves money), so a caller meeting many events may ask once per class."""
    topic = getattr(cls, "TOPIC", None)
    rule = (RULES if rules is None else rules).get(topic) if isinstance(topic, str) else None
    if rule is None and issubclass(cls, MovesMoney):
        raise NoPostingRuleError(topic)
    return rule


def postings_for(event: object, currency: str, rules: Mapping[str, PostingRule] | None = None) -> list[Posting]:
    """The postings one event yields, in the invoice's (or the payout's) currency; [] for events
    that move no money."""
    rule = posting_rule(event, rules)
    return rule.post(event, currency) if rule else []


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


def _fee_recorded(e: Any, c: str) -> list[Posting]:
    return _entries(c, (_debit, PROCESSOR_FEES, e.amount), (_credit, PROCESSOR_BALANCE, e.amount))


#: The posting rule of every topic that moves money. Raise a rule's revision whenever what it
#: posts changes.
RULES: Mapping[str, PostingRule] = {
    "invoice.issued": PostingRule(1, _issued),
    "invoice.payment-applied": PostingRule(1, _payment_applied),
    "invoice.overpaid": PostingRule(1, _overpaid),
    "invoice.refund-applied": PostingRule(1, _refund_applied),
    "invoice.dispute-opened": PostingRule(1, _dispute_opened),
    "invoice.dispute-closed": PostingRule(1, _dispute_closed),
    "invoice.marked-uncollectible": PostingRule(1, _marked_uncollectible),
    "invoice.voided": PostingRule(1, _voided),
    "payout.paid": PostingRule(1, _payout_paid),
    "payout.failed": PostingRule(1, _payout_failed),
    "processor-fee.recorded": PostingRule(1, _fee_recorded),
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


class NoPostingRuleError(LookupError):
    """An event that moves money has no posting rule: a bug in the ledger, never bad input.

    Raised rather than posting nothing, which would leave the books silently unbalanced.
    """

    def __init__(self, topic: object) -> None:
        super().__init__(f"no posting rule for {topic!r}, an event that moves money (ledger/accounting.py RULES)")
        self.topic = topic
