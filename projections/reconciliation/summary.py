"""The report's summary: per currency, what the ledger and Stripe each hold for the period.

Both sides use the same headings, in minor units of the currency:

    gross     money collected (Stripe: `charge` and `payment` balance transactions)
    refunds   money given back (Stripe: `refund`, `payment_refund`, less `refund_failure`; positive here)
    disputes  money withdrawn by disputes not won (Stripe: `adjustment`; positive here)
    fees      what the processor kept (Stripe: every transaction's `fee`)
    net       gross - refunds - disputes - fees (Stripe: the sum of `net`, payouts excluded)
    payouts   money sent on to the bank (Stripe: `payout`, less `payout_failure`/`payout_cancel`)

and `difference` = ledger net - Stripe net: zero when the books agree for the period; otherwise
the items explain it (an unattributed charge, a refund missing here, ...).

The ledger's side is what it holds for the period's Stripe objects (matched by id, whenever
the ledger recorded them), plus what it recorded in the period that Stripe does not show: the
same objects on both sides, whichever clock they were stamped by. Without Stripe (`--source
ledger`), the ledger's side is what it recorded in the period, and Stripe's is null.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, and_, exists, func, not_, or_, select, true

from ledger.reconciliation.items import DISPUTE_MISMATCH, MISSING_IN_LEDGER, PAYOUT_MISMATCH, REFUND_MISSING_IN_LEDGER
from projections.reconciliation import staging as s
from projections.reconciliation.matching import PROVIDER, Window, seen_at_stripe
from projections.tables import journal, payment_disputes, payment_refunds, payments, payouts, processor_fees

HEADINGS = ("gross", "refunds", "disputes", "fees", "net", "payouts")
GROSS_KINDS = ("charge", "payment")
# A refund that failed after it was made (the card closed) comes back as `refund_failure`, a
# positive amount: it takes the refund back out of the period's refunds, as it does out of net.
REFUND_KINDS = ("refund", "payment_refund", "refund_failure")
DISPUTE_KINDS = ("adjustment",)
PAYOUT_KINDS = ("payout", "payout_failure", "payout_cancel")

Side = dict[str, int]


def summarise(
    conn: Connection, window: Window, *, stripe: bool, classes: dict[str, int], matched: dict[str, int]
) -> dict[str, Any]:
    ledger = _ledger_side(conn, window, stripe=stripe)
    theirs = _stripe_side(conn) if stripe else {}
    currencies: dict[str, Any] = {}
    for currency in sorted(set(ledger) | set(theirs)):
        ours = ledger.get(currency) or _empty()
        _net(ours)
        entry: dict[str, Any] = {"ledger": ours, "stripe": None, "difference": None}
        if stripe:
            entry["stripe"] = theirs.get(currency) or _empty()
            entry["difference"] = ours["net"] - entry["stripe"]["net"]
        currencies[currency] = entry
    return {
        "currencies": currencies,
        "classes": classes,
        "matched": matched,
        "journal": _journal_totals(conn),
    }


def _empty() -> Side:
    return dict.fromkeys(HEADINGS, 0)


def _net(side: Side) -> None:
    side["net"] = side["gross"] - side["refunds"] - side["disputes"] - side["fees"]


def _add(sides: dict[str, Side], heading: str, rows: Any) -> None:
    for currency, amount in rows:
        side = sides.setdefault(currency, _empty())
        side[heading] += int(amount or 0)


def _stripe_side(conn: Connection) -> dict[str, Side]:
    t = s.transactions.c
    in_period = t.in_period == true()
    not_payout = t.kind.not_in(PAYOUT_KINDS)
    sides: dict[str, Side] = defaultdict(_empty)

    def total(heading: str, amount: Any, *where: Any) -> None:
        query = select(t.currency, func.sum(amount)).where(in_period, *where).group_by(t.currency)
        _add(sides, heading, conn.execute(query))

    total("gross", t.amount, t.kind.in_(GROSS_KINDS))
    total("refunds", -t.amount, t.kind.in_(REFUND_KINDS))
    total("disputes", -t.amount, t.kind.in_(DISPUTE_KINDS))
    total("fees", t.fee, not_payout)
    total("net", t.net, not_payout)
    total("payouts", -t.amount, t.kind.in_(PAYOUT_KINDS))
    return dict(sides)


def _ledger_side(conn: Connection, window: Window, *, stripe: bool) -> dict[str, Side]:
    """What the ledger holds for the period (see the module docstring)."""
    sides: dict[str, Side] = defaultdict(_empty)

    def ours(staged: Any, recorded_at: Any, seen: Any) -> Any:
        """The ledger's object is the period's: Stripe created it in the period, or Stripe does
        not show it and the ledger recorded it in the period, unless an earlier run read it at
        Stripe (`seen`: brought in late from another period's run, it is that period's)."""
        if not stripe:
            return window.ledger(recorded_at)
        unseen = and_(not_(staged(in_period=False)), not_(seen))
        return or_(staged(in_period=True), and_(unseen, window.ledger(recorded_at)))

    def charged(*, in_period: bool) -> Any:
        where = [
            s.charges.c.intent_key == payments.c.provider_payment_id,
            s.charges.c.status == "succeeded",
        ]
        if in_period:
            where.append(s.charges.c.in_period == true())
        return exists().where(*where)

    p = payments.c
    query = (
        select(p.currency, func.sum(p.amount_captured), func.sum(p.fee))
        .where(
            p.provider == PROVIDER,
            p.status == "succeeded",
            ours(charged, p.created_at, seen_at_stripe(MISSING_IN_LEDGER, p.provider_payment_id)),
        )
        .group_by(p.currency)
    )
    for currency, gross, fee in conn.execute(query):
        side = sides[currency]
        side["gross"] += int(gross or 0)
        side["fees"] += int(fee or 0)

    def refunded(*, in_period: bool) -> Any:
        where = [s.refunds.c.id == payment_refunds.c.refund_id]
        if in_period:
            where.append(s.refunds.c.in_period == true())
        return exists().where(*where)

    r = payment_refunds.c
    query = (
        select(r.currency, func.sum(r.amount))
        .select_from(payment_refunds.join(payments, p.payment_id == r.payment_id))
        .where(
            p.provider == PROVIDER, ours(refunded, r.recorded_at, seen_at_stripe(REFUND_MISSING_IN_LEDGER, r.refund_id))
        )
        .group_by(r.currency)
    )
    _add(sides, "refunds", conn.execute(query))

    def disputed(*, in_period: bool) -> Any:
        where = [s.disputes.c.id == payment_disputes.c.dispute_id]
        if in_period:
            where.append(s.disputes.c.in_period == true())
        return exists().where(*where)

    d = payment_disputes.c
    query = (
        select(d.currency, func.sum(d.amount))
        .select_from(payment_disputes.join(payments, p.payment_id == d.payment_id))
        .where(
            p.provider == PROVIDER,
            d.status != "won",
            ours(disputed, d.opened_at, seen_at_stripe(DISPUTE_MISMATCH, d.dispute_id)),
        )
        .group_by(d.currency)
    )
    _add(sides, "disputes", conn.execute(query))

    f = processor_fees.c
    if stripe:
        fee_query = (
            select(f.currency, func.sum(f.amount))
            .select_from(processor_fees.join(s.transactions, s.transactions.c.id == f.balance_transaction_id))
            .where(s.transactions.c.in_period == true())
            .group_by(f.currency)
        )
    else:
        fee_query = select(f.currency, func.sum(f.amount)).where(window.ledger(f.recorded_at)).group_by(f.currency)
    _add(sides, "fees", conn.execute(fee_query))

    def paid_out(*, in_period: bool) -> Any:
        return exists().where(s.payouts.c.id == payouts.c.provider_payout_id)

    o = payouts.c
    query = (
        select(o.currency, func.sum(o.amount))
        .where(
            o.provider == PROVIDER,
            o.status == "paid",
            ours(paid_out, o.reported_at, seen_at_stripe(PAYOUT_MISMATCH, o.provider_payout_id)),
        )
        .group_by(o.currency)
    )
    _add(sides, "payouts", conn.execute(query))
    return dict(sides)


def _journal_totals(conn: Connection) -> dict[str, int]:
    """The whole journal's debits less credits per currency: zero for every currency, or the
    books are broken (reported, never hidden)."""
    query = select(journal.c.currency, func.sum(journal.c.debit) - func.sum(journal.c.credit)).group_by(
        journal.c.currency
    )
    return {currency: int(total or 0) for currency, total in conn.execute(query)}
