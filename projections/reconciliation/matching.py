"""Finding the differences: set-based queries joining the staged provider records with the ledger's
read models, one query per class of difference (never one per object).

Each function answers `Difference`s (ledger/reconciliation/items.py) with the report's fixed
shape: amounts in minor units of `currency`, the provider's and the ledger's ids, a sentence a
finance person understands, the ledger events involved, and `facts`: what `apply` needs to bring
the provider's side into the ledger without asking the provider again.

Whose clock: the provider's objects are in the period when the provider created them in it;
the ledger's when the ledger recorded them in it. A payment created just before the period
and recorded inside it is still matched: the staging reads a lookback (staging.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, case, cast, exists, func, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from commands.reconciliation.facts import Period
from ledger.money import Money
from ledger.reconciliation.items import (
    AMOUNT_MISMATCH,
    DISPUTE_MISMATCH,
    DUPLICATE_PAYMENT,
    FEE_MISMATCH,
    INVOICE_INCONSISTENT,
    MISSING_IN_LEDGER,
    MISSING_IN_STRIPE,
    PAYOUT_MISMATCH,
    REFUND_MISSING_IN_LEDGER,
    REFUND_MISSING_IN_STRIPE,
    RESOLVED,
    STUCK_EVENT,
    UNATTRIBUTED,
    Difference,
    item_id_for,
)
from projections.reconciliation import staging as s
from projections.tables import (
    invoice_status,
    payment_disputes,
    payment_refunds,
    payments,
    payouts,
    processor_fees,
    reconciliation_items,
    webhook_events,
)

PROVIDER = "stripe"
OPEN_DISPUTE = "open"
# Stripe's dispute statuses, as the ledger records a dispute: open until won or lost. An inquiry
# closed without a chargeback (`warning_closed`) took no money: the ledger's "won".
DISPUTE_OUTCOMES = {"won": "won", "lost": "lost", "warning_closed": "won"}


# An inquiry still open (`warning_needs_response`, `warning_under_review`) has taken no money from
# the balance: unlike an open dispute, which has. The ledger holds no such status.
INQUIRY = "inquiry"


def ledger_dispute_status(stripe_status: str) -> str:
    if stripe_status.startswith("warning_") and stripe_status not in DISPUTE_OUTCOMES:
        return INQUIRY
    return DISPUTE_OUTCOMES.get(stripe_status, OPEN_DISPUTE)


@dataclass(frozen=True)
class Window:
    """The period, as both clocks see it."""

    period: Period

    @property
    def start(self) -> datetime:
        return self.period.start

    @property
    def end(self) -> datetime:
        return self.period.end

    def ledger(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)


def money(amount: int | None, currency: str | None) -> str:
    if amount is None or currency is None:
        return "nothing"
    return Money(amount, currency).format()


def _events(*refs: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [ref for ref in refs if ref]


def _payment_ref(row: Any) -> dict[str, Any] | None:
    if row.get("payment_id") is None:
        return None
    return {"id": row["payment_id"], "version": row.get("payment_version")}


def _intent_key() -> ColumnElement[Any]:
    """The payment a charge belongs to: its PaymentIntent, or the charge itself when it has none
    (a charge made without one is keyed by its own id, as the webhooks key it)."""
    return s.charges.c.intent_key  # staged as such, and indexed: payments look their charge up by it


def _succeeded_charge() -> ColumnElement[bool]:
    return and_(s.charges.c.status == "succeeded", s.charges.c.captured == true())


# ------------------------------------------------------------------------------ payments


def payments_against_stripe(conn: Connection, window: Window) -> tuple[list[Difference], dict[str, int]]:
    """missing_in_ledger, unattributed and amount_mismatch, from Stripe's succeeded charges; and
    how many payments agreed."""
    key = _intent_key().label("intent")
    invoice = func.coalesce(s.charges.c.invoice_id, s.intents.c.invoice_id, payments.c.invoice_id).label("invoice")
    query = (
        select(
            s.charges.c.id.label("charge"),
            key,
            invoice,
            s.charges.c.currency,
            s.charges.c.amount_captured,
            s.charges.c.in_period,
            payments.c.payment_id,
            payments.c.version.label("payment_version"),
            payments.c.status.label("payment_status"),
            payments.c.amount_captured.label("ledger_amount"),
            payments.c.currency.label("ledger_currency"),
        )
        .select_from(
            s.charges.outerjoin(s.intents, s.intents.c.id == s.charges.c.payment_intent).outerjoin(
                payments, and_(payments.c.provider == PROVIDER, payments.c.provider_payment_id == _intent_key())
            )
        )
        .where(_succeeded_charge())
    )
    agreed = and_(
        payments.c.status == "succeeded",
        payments.c.amount_captured == s.charges.c.amount_captured,
        payments.c.currency == s.charges.c.currency,
    )
    # The period's: made at Stripe in it, or recorded here in it (the lookback's are not counted).
    periods = or_(s.charges.c.in_period == true(), window.ledger(payments.c.created_at))
    matched = conn.execute(select(func.count()).select_from(query.where(agreed, periods).subquery())).scalar_one()
    # Only what disagrees comes back: the rows that agree are counted, never held.
    query = query.where(
        or_(payments.c.payment_id.is_(None), not_(agreed)),  # no payment: NOT(NULL AND ...) is NULL
        periods,
    )
    rows = [dict(r) for r in conn.execute(query).mappings()]
    numbers = _invoice_numbers(conn, {r["invoice"] for r in rows if r["invoice"]})
    found: list[Difference] = []
    for row in rows:
        if row["payment_status"] == "succeeded":
            found.append(_amount_mismatch(row, numbers))
        elif not row["in_period"]:
            continue  # before the period, not applied: the run for that period reports it
        elif row["invoice"] and row["invoice"] in numbers:
            found.append(_missing_in_ledger(row, numbers))
        elif row["payment_id"] is None:
            found.append(_unattributed(row))
    return found, {"payments": matched}


def _missing_in_ledger(row: dict[str, Any], numbers: dict[str, str | None]) -> Difference:
    amount = money(row["amount_captured"], row["currency"])
    invoice = _invoice_name(row["invoice"], numbers)
    state = (
        f"the ledger's payment for it is {row['payment_status']}"
        if row["payment_status"]
        else "the ledger has no payment for it"
    )
    return _difference(
        MISSING_IN_LEDGER,
        row["intent"],
        currency=row["currency"],
        amount_ledger=None,
        amount_stripe=row["amount_captured"],
        stripe_id=row["intent"],
        invoice_id=row["invoice"],
        payment_id=row["payment_id"],
        explanation=(
            f"Stripe collected {amount} for {invoice} ({_charge_and_key(row['charge'], row['intent'])}) "
            f"and {state}: its webhook never arrived or was not applied."
        ),
        events=_events(_payment_ref(row)),
        facts={
            "kind": "payment",
            "payment_intent": row["intent"],
            "charge": row["charge"],
            "invoice_id": row["invoice"],
            "amount": row["amount_captured"],
            "currency": row["currency"],
        },
    )


def _unattributed(row: dict[str, Any]) -> Difference:
    amount = money(row["amount_captured"], row["currency"])
    named = f"names invoice {row['invoice']}, which the ledger does not have" if row["invoice"] else "names no invoice"
    return _difference(
        UNATTRIBUTED,
        row["charge"],
        currency=row["currency"],
        amount_ledger=None,
        amount_stripe=row["amount_captured"],
        stripe_id=row["charge"],
        invoice_id=None,
        payment_id=None,
        explanation=(
            f"Stripe charge {row['charge']} of {amount} {named}: money in the Stripe balance that "
            "belongs to no invoice of ours (another application on the account, or a manual charge)."
        ),
        facts={"kind": "none"},
    )


def _amount_mismatch(row: dict[str, Any], numbers: dict[str, str | None]) -> Difference:
    ours = money(row["ledger_amount"], row["ledger_currency"])
    theirs = money(row["amount_captured"], row["currency"])
    return _difference(
        AMOUNT_MISMATCH,
        row["intent"],
        currency=row["currency"],
        amount_ledger=row["ledger_amount"],
        amount_stripe=row["amount_captured"],
        stripe_id=row["intent"],
        invoice_id=row["invoice"],
        payment_id=row["payment_id"],
        explanation=(
            f"The ledger recorded {ours} for {_payment_key(row['intent'], row['charge'])} "
            f"({_invoice_name(row['invoice'], numbers)}); Stripe captured {theirs} (charge {row['charge']})."
        ),
        events=_events(_payment_ref(row)),
        facts={"kind": "none"},
    )


def payments_missing_in_stripe(conn: Connection, window: Window) -> list[Difference]:
    """Succeeded Stripe payments the ledger recorded in the period that Stripe does not show
    succeeded (no charge at all, or one that failed or is pending)."""
    stripe_side = (
        select(s.charges.c.status)
        .where(_intent_key() == payments.c.provider_payment_id)
        .order_by(s.charges.c.created.desc())
        .limit(1)
        .scalar_subquery()
    )
    succeeded_there = exists().where(_intent_key() == payments.c.provider_payment_id, _succeeded_charge())
    query = (
        select(
            payments.c.payment_id,
            payments.c.version.label("payment_version"),
            payments.c.invoice_id,
            payments.c.provider_payment_id,
            payments.c.charge_id,
            payments.c.currency,
            payments.c.amount_captured,
            stripe_side.label("stripe_status"),
            invoice_status.c.number,
        )
        .select_from(payments.outerjoin(invoice_status, invoice_status.c.invoice_id == payments.c.invoice_id))
        .where(
            payments.c.provider == PROVIDER,
            payments.c.status == "succeeded",
            window.ledger(payments.c.created_at),
            not_(succeeded_there),
            not_(seen_at_stripe(MISSING_IN_LEDGER, payments.c.provider_payment_id)),
        )
    )
    found = []
    for row in conn.execute(query).mappings():
        amount = money(row["amount_captured"], row["currency"])
        there = (
            f"Stripe shows its latest charge {row['stripe_status']}"
            if row["stripe_status"]
            else "Stripe has no charge for it in the period"
        )
        found.append(
            _difference(
                MISSING_IN_STRIPE,
                row["payment_id"],
                currency=row["currency"],
                amount_ledger=row["amount_captured"],
                amount_stripe=None,
                stripe_id=row["provider_payment_id"],
                invoice_id=row["invoice_id"],
                payment_id=row["payment_id"],
                explanation=(
                    f"The ledger recorded a payment of {amount} on {_name(row)} "
                    f"({_payment_key(row['provider_payment_id'], row['charge_id'])}) and {there}."
                ),
                events=_events(_payment_ref(row)),
                facts={"kind": "none"},
            )
        )
    return found


def duplicate_payments(conn: Connection, window: Window, *, stripe: bool) -> list[Difference]:
    """Invoices paid more than once beyond their total, net of what was refunded or taken back by
    a dispute: by Stripe's succeeded charges when Stripe is read (its charges say what was
    collected and given back), by the ledger's succeeded payments when the ledger is checked alone."""
    rows: dict[str, dict[str, Any]] = {}
    if not stripe:
        ledger_side = (
            select(
                payments.c.invoice_id,
                func.count().label("count"),
                _total(_ledger_kept()).label("paid"),
            )
            .where(payments.c.status == "succeeded")
            .group_by(payments.c.invoice_id)
            .having(func.count() > 1)
            .subquery()
        )
        query = select(
            invoice_status.c.invoice_id,
            invoice_status.c.number,
            invoice_status.c.currency,
            invoice_status.c.total,
            ledger_side.c.count,
            ledger_side.c.paid,
        ).select_from(invoice_status.join(ledger_side, ledger_side.c.invoice_id == invoice_status.c.invoice_id))
        query = query.where(ledger_side.c.paid > invoice_status.c.total)
        for paid_row in conn.execute(query).mappings():
            rows[paid_row["invoice_id"]] = dict(paid_row)
    else:
        # Stripe's charges say what was collected and what went back; a refund Stripe made that
        # the ledger has not heard of is an item of its own (refund_missing_in_ledger).
        invoice = func.coalesce(s.charges.c.invoice_id, s.intents.c.invoice_id).label("invoice_id")
        withdrawn = _withdrawn()
        charged = (
            select(
                invoice,
                func.count(func.distinct(_intent_key())).label("count"),
                _total(_stripe_kept(withdrawn)).label("paid"),
                # PostgreSQL has no max(boolean): count the charges in the period instead.
                func.sum(case((s.charges.c.in_period == true(), 1), else_=0)).label("in_period"),
            )
            .select_from(
                s.charges.outerjoin(s.intents, s.intents.c.id == s.charges.c.payment_intent).outerjoin(
                    withdrawn, withdrawn.c.charge_id == s.charges.c.id
                )
            )
            .where(_succeeded_charge())
            .group_by(invoice)
            .having(func.count(func.distinct(_intent_key())) > 1)
            .subquery()
        )
        query = select(
            invoice_status.c.invoice_id,
            invoice_status.c.number,
            invoice_status.c.currency,
            invoice_status.c.total,
            charged.c.count,
            charged.c.paid,
        ).select_from(invoice_status.join(charged, charged.c.invoice_id == invoice_status.c.invoice_id))
        query = query.where(charged.c.paid > invoice_status.c.total, charged.c.in_period > 0)
        for charged_row in conn.execute(query).mappings():
            rows[charged_row["invoice_id"]] = dict(charged_row)
    found = []
    for invoice_id, row in rows.items():
        latest = _latest_payment(conn, invoice_id, stripe=stripe)
        total = money(row["total"], row["currency"])
        paid = money(row["paid"], row["currency"])
        facts: dict[str, Any] = {"kind": "none"}
        refund = ""
        if latest is not None:
            # What goes back is the overpayment, no more (paid 30.00 twice for 50.00: 10.00), and
            # no more than the charge still holds.
            back = min(latest["amount"], row["paid"] - row["total"])
            refund = f" Refund {money(back, row['currency'])} of the latest payment, {latest['intent']}."
            if latest["charge"]:
                facts = {
                    "kind": "duplicate",
                    "payment_intent": latest["intent"],
                    "charge": latest["charge"],
                    "amount": back,
                    "currency": row["currency"],
                }
        found.append(
            _difference(
                DUPLICATE_PAYMENT,
                invoice_id,
                currency=row["currency"],
                amount_ledger=row["total"],
                amount_stripe=row["paid"],
                stripe_id=latest["charge"] if latest else None,
                invoice_id=invoice_id,
                payment_id=latest["payment_id"] if latest else None,
                explanation=(
                    f"{_sentence(_name(row))} totals {total} and was paid {row['count']} times, "
                    f"{paid} in all: an overpayment.{refund}"
                ),
                events=[],
                facts=facts,
            )
        )
    return found


# Dispute statuses under which Stripe has taken the money back from the balance: an inquiry
# (`warning_*`) takes nothing, a won dispute gave it back.
DISPUTE_WITHDRAWN = ("needs_response", "under_review", "lost")


def _withdrawn() -> Any:
    """Per charge, what its disputes took back (staged disputes, by their charge)."""
    return (
        select(s.disputes.c.charge_id, _total(s.disputes.c.amount).label("withdrawn"))
        .where(s.disputes.c.status.in_(DISPUTE_WITHDRAWN), s.disputes.c.charge_id.is_not(None))
        .group_by(s.disputes.c.charge_id)
        .subquery("withdrawn")
    )


def _stripe_kept(withdrawn: Any) -> ColumnElement[Any]:
    """What a charge still holds: captured, less refunded, less what its disputes took back. A
    payment charged back is not an overpayment, and Stripe refunds no disputed charge."""
    return s.charges.c.amount_captured - s.charges.c.amount_refunded - func.coalesce(withdrawn.c.withdrawn, 0)


def _ledger_kept() -> ColumnElement[Any]:
    """The ledger's own reading of the same: captured, less refunds, open and lost disputes."""
    p = payments.c
    return p.amount_captured - p.amount_refunded - p.amount_disputed - p.amount_dispute_lost


def _latest_payment(conn: Connection, invoice_id: str, *, stripe: bool) -> dict[str, Any] | None:
    """The newest succeeded payment of an invoice that still holds money (not refunded in full
    already): the one a duplicate refund gives back; `amount` is what it still holds."""
    if stripe:
        invoice = func.coalesce(s.charges.c.invoice_id, s.intents.c.invoice_id)
        withdrawn = _withdrawn()
        row = (
            conn.execute(
                select(
                    s.charges.c.id.label("charge"),
                    _intent_key().label("intent"),
                    _stripe_kept(withdrawn).label("amount"),
                )
                .select_from(
                    s.charges.outerjoin(s.intents, s.intents.c.id == s.charges.c.payment_intent).outerjoin(
                        withdrawn, withdrawn.c.charge_id == s.charges.c.id
                    )
                )
                .where(_succeeded_charge(), invoice == invoice_id, _stripe_kept(withdrawn) > 0)
                .order_by(s.charges.c.created.desc(), s.charges.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        if row is not None:
            payment = conn.execute(
                select(payments.c.payment_id).where(
                    payments.c.provider == PROVIDER, payments.c.provider_payment_id == row["intent"]
                )
            ).scalar()
            return {**row, "payment_id": payment}
    ledger = (
        conn.execute(
            select(
                payments.c.payment_id,
                payments.c.charge_id.label("charge"),
                payments.c.provider_payment_id.label("intent"),
                _ledger_kept().label("amount"),
                payments.c.provider,
            )
            .where(payments.c.invoice_id == invoice_id, payments.c.status == "succeeded", _ledger_kept() > 0)
            # The newest by when it was made (a refund of an older one changes its updated_at).
            .order_by(payments.c.created_at.desc(), payments.c.payment_id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if ledger is None:
        return None
    charge = ledger["charge"] if ledger["provider"] == PROVIDER else None
    return {**ledger, "charge": charge}


# ------------------------------------------------------------------------------ refunds


def refunds_against_stripe(conn: Connection, window: Window) -> tuple[list[Difference], dict[str, int]]:
    """refund_missing_in_ledger: Stripe's succeeded refunds of our payments that the ledger lacks."""
    # The payment's key as the ledger holds it: the PaymentIntent, or the charge made without one
    # (as `apply` keyed it): `apply` of the refund looks the payment up by it.
    intent = func.coalesce(s.refunds.c.payment_intent, s.charges.c.payment_intent, s.refunds.c.charge_id).label(
        "intent"
    )
    query = (
        select(
            s.refunds.c.id,
            s.refunds.c.charge_id,
            s.refunds.c.currency,
            s.refunds.c.amount,
            s.refunds.c.in_period,
            intent,
            payments.c.payment_id,
            payments.c.version.label("payment_version"),
            payments.c.invoice_id,
            payments.c.status.label("payment_status"),
            payment_refunds.c.amount.label("ledger_amount"),
            payment_refunds.c.position,
            invoice_status.c.number,
        )
        .select_from(
            s.refunds.outerjoin(s.charges, s.charges.c.id == s.refunds.c.charge_id)
            .outerjoin(payments, and_(payments.c.provider == PROVIDER, payments.c.provider_payment_id == intent))
            .outerjoin(payment_refunds, payment_refunds.c.refund_id == s.refunds.c.id)
            .outerjoin(invoice_status, invoice_status.c.invoice_id == payments.c.invoice_id)
        )
        .where(s.refunds.c.status == "succeeded")
    )
    known = payment_refunds.c.amount.is_not(None)
    periods = or_(s.refunds.c.in_period == true(), window.ledger(payment_refunds.c.recorded_at))
    matched = conn.execute(select(func.count()).select_from(query.where(known, periods).subquery())).scalar_one()
    # A refund of a payment that is not ours belongs to an unattributed charge; another period's
    # is that period's.
    query = query.where(not_(known), payments.c.payment_id.is_not(None), s.refunds.c.in_period == true())
    found = []
    for row in conn.execute(query).mappings():
        amount = money(row["amount"], row["currency"])
        pending = "" if row["payment_status"] == "succeeded" else " (apply the payment's own item first)"
        found.append(
            _difference(
                REFUND_MISSING_IN_LEDGER,
                row["id"],
                currency=row["currency"],
                amount_ledger=None,
                amount_stripe=row["amount"],
                stripe_id=row["id"],
                invoice_id=row["invoice_id"],
                payment_id=row["payment_id"],
                explanation=(
                    f"Stripe refunded {amount} of {_name(row)} (refund {row['id']} on {_payment_name(row)}) "
                    f"and the ledger has no such refund{pending}."
                ),
                events=_events(_payment_ref(row)),
                facts={
                    "kind": "refund",
                    "payment_intent": row["intent"],
                    "refund": row["id"],
                    "amount": row["amount"],
                    "currency": row["currency"],
                },
            )
        )
    return found, {"refunds": matched}


def refunds_missing_in_stripe(conn: Connection, window: Window) -> list[Difference]:
    stripe_status = select(s.refunds.c.status).where(s.refunds.c.id == payment_refunds.c.refund_id).scalar_subquery()
    query = (
        select(
            payment_refunds.c.refund_id,
            payment_refunds.c.payment_id,
            payment_refunds.c.invoice_id,
            payment_refunds.c.currency,
            payment_refunds.c.amount,
            payment_refunds.c.position,
            payments.c.provider_payment_id,
            payments.c.charge_id,
            stripe_status.label("stripe_status"),
            invoice_status.c.number,
        )
        .select_from(
            payment_refunds.join(payments, payments.c.payment_id == payment_refunds.c.payment_id).outerjoin(
                invoice_status, invoice_status.c.invoice_id == payment_refunds.c.invoice_id
            )
        )
        .where(
            payments.c.provider == PROVIDER,
            window.ledger(payment_refunds.c.recorded_at),
            or_(stripe_status.is_(None), stripe_status != "succeeded"),
            or_(
                stripe_status.is_not(None), not_(seen_at_stripe(REFUND_MISSING_IN_LEDGER, payment_refunds.c.refund_id))
            ),
        )
    )
    found = []
    for row in conn.execute(query).mappings():
        amount = money(row["amount"], row["currency"])
        there = f"it is {row['stripe_status']} there" if row["stripe_status"] else "Stripe has no such refund"
        explanation = (
            f"The ledger recorded refund {row['refund_id']} of {amount} on {_name(row)} "
            f"({_payment_key(row['provider_payment_id'], row['charge_id'])}) and {there}."
        )
        found.append(_only_in_the_ledger(REFUND_MISSING_IN_STRIPE, row, row["refund_id"], explanation))
    return found


# ------------------------------------------------------------------------------ disputes


def disputes_against_stripe(conn: Connection, window: Window) -> tuple[list[Difference], dict[str, int]]:
    """dispute_mismatch: a dispute of our payment missing here, or with another status or amount;
    and a dispute the ledger recorded in the period that Stripe does not have."""
    intent = func.coalesce(s.disputes.c.payment_intent, s.charges.c.payment_intent, s.disputes.c.charge_id)
    query = (
        select(
            s.disputes.c.id,
            s.disputes.c.currency,
            s.disputes.c.amount,
            s.disputes.c.status,
            s.disputes.c.reason,
            s.disputes.c.in_period,
            intent.label("intent"),
            payments.c.payment_id,
            payments.c.version.label("payment_version"),
            payments.c.invoice_id,
            payment_disputes.c.amount.label("ledger_amount"),
            payment_disputes.c.status.label("ledger_status"),
            payment_disputes.c.opened_at.label("ledger_at"),
            invoice_status.c.number,
        )
        .select_from(
            s.disputes.outerjoin(s.charges, s.charges.c.id == s.disputes.c.charge_id)
            .outerjoin(payments, and_(payments.c.provider == PROVIDER, payments.c.provider_payment_id == intent))
            .outerjoin(payment_disputes, payment_disputes.c.dispute_id == s.disputes.c.id)
            .outerjoin(invoice_status, invoice_status.c.invoice_id == payments.c.invoice_id)
        )
        .where(payments.c.payment_id.is_not(None))
    )
    found = []
    matched = 0
    for row in conn.execute(query).mappings():  # disputes are few: each is a case of its own
        status = ledger_dispute_status(row["status"])
        amount = money(row["amount"], row["currency"])
        ledger_in_period = row["ledger_at"] is not None and window.start <= _utc(row["ledger_at"]) < window.end
        if row["ledger_status"] is None:
            if not row["in_period"] or row["status"].startswith("warning_"):
                continue  # another period's; or an inquiry, which moved no money: nothing to bring in
            what = f"and the ledger has no such dispute (Stripe says {row['status']})"
        elif row["ledger_status"] != status or row["ledger_amount"] != row["amount"]:
            if not (row["in_period"] or ledger_in_period):
                continue
            ours = money(row["ledger_amount"], row["currency"])
            theirs = f"{row['status']}, an inquiry: no money was taken" if status == INQUIRY else row["status"]
            what = f"and the ledger holds it as {row['ledger_status']} for {ours} (Stripe: {theirs})"
        else:
            if row["in_period"] or ledger_in_period:  # the lookback's agree, but are not the period's
                matched += 1
            continue
        found.append(
            _difference(
                DISPUTE_MISMATCH,
                row["id"],
                currency=row["currency"],
                amount_ledger=row["ledger_amount"],
                amount_stripe=row["amount"],
                stripe_id=row["id"],
                invoice_id=row["invoice_id"],
                payment_id=row["payment_id"],
                explanation=f"The customer disputed {amount} of {_name(row)} (dispute {row['id']}) {what}.",
                events=_events(_payment_ref(row)),
                facts={
                    "kind": "dispute",
                    "payment_intent": row["intent"],
                    "dispute": row["id"],
                    "amount": row["amount"],
                    "currency": row["currency"],
                    "status": status,
                    "reason": row["reason"],
                }
                if status != INQUIRY
                else {"kind": "none"},  # the ledger has no way to hold an inquiry: explain it
            )
        )
    unknown = and_(
        not_(exists().where(s.disputes.c.id == payment_disputes.c.dispute_id)),
        not_(seen_at_stripe(DISPUTE_MISMATCH, payment_disputes.c.dispute_id)),
    )
    query = (
        select(payment_disputes, payments.c.provider_payment_id, invoice_status.c.number)
        .select_from(
            payment_disputes.join(payments, payments.c.payment_id == payment_disputes.c.payment_id).outerjoin(
                invoice_status, invoice_status.c.invoice_id == payment_disputes.c.invoice_id
            )
        )
        .where(payments.c.provider == PROVIDER, window.ledger(payment_disputes.c.opened_at), unknown)
    )
    for row in conn.execute(query).mappings():
        amount = money(row["amount"], row["currency"])
        explanation = (
            f"The ledger holds dispute {row['dispute_id']} of {amount} on {_name(row)} as "
            f"{row['status']} and Stripe has no such dispute."
        )
        found.append(_only_in_the_ledger(DISPUTE_MISMATCH, row, row["dispute_id"], explanation))
    return found, {"disputes": matched}


# ------------------------------------------------------------------------------ fees


def fee_mismatches(conn: Connection) -> tuple[list[Difference], dict[str, int]]:
    """A fee the ledger holds that differs from the balance transaction's: recorded from another
    reading of the transaction, or carried on the payment itself."""
    found = []
    recorded = (
        select(s.transactions, processor_fees.c.amount.label("ledger_fee"), processor_fees.c.position)
        .select_from(
            s.transactions.join(processor_fees, processor_fees.c.balance_transaction_id == s.transactions.c.id)
        )
        .where(s.transactions.c.in_period == true())
    )
    same = processor_fees.c.amount == s.transactions.c.fee
    matched = conn.execute(select(func.count()).select_from(recorded.where(same).subquery())).scalar_one()
    for row in conn.execute(recorded.where(not_(same))).mappings():
        found.append(_fee_mismatch(row, row["ledger_fee"], [{"position": row["position"]}]))
    on_payments = (
        select(
            s.transactions,
            payments.c.fee.label("ledger_fee"),
            payments.c.payment_id,
            payments.c.version.label("payment_version"),
            payments.c.invoice_id,
        )
        .select_from(
            s.transactions.join(s.charges, s.charges.c.balance_transaction == s.transactions.c.id).join(
                payments, and_(payments.c.provider == PROVIDER, payments.c.provider_payment_id == _intent_key())
            )
        )
        .where(payments.c.fee != 0, payments.c.fee != s.transactions.c.fee, s.transactions.c.in_period == true())
    )
    for row in conn.execute(on_payments).mappings():
        found.append(_fee_mismatch(row, row["ledger_fee"], _events(_payment_ref(row))))
    return found, {"fees": matched}


def _fee_mismatch(row: Any, ledger_fee: int, events: list[dict[str, Any]]) -> Difference:
    return _difference(
        FEE_MISMATCH,
        row["id"],
        currency=row["currency"],
        amount_ledger=ledger_fee,
        amount_stripe=row["fee"],
        stripe_id=row["id"],
        invoice_id=row.get("invoice_id"),
        payment_id=row.get("payment_id"),
        explanation=(
            f"Stripe kept a fee of {money(row['fee'], row['currency'])} on balance transaction {row['id']} "
            f"({row['kind']} {row['source']}); the ledger recorded {money(ledger_fee, row['currency'])}."
        ),
        events=events,
        facts={"kind": "none"},
    )


# ------------------------------------------------------------------------------ payouts


def payouts_against_stripe(conn: Connection) -> tuple[list[Difference], dict[str, int]]:
    """payout_mismatch: a paid or failed payout the ledger has not recorded (or holds otherwise),
    and a payout whose amount is not the sum of the balance transactions it carried."""
    query = select(
        s.payouts,
        payouts.c.payout_id.label("ledger_id"),
        payouts.c.amount.label("ledger_amount"),
        payouts.c.status.label("ledger_status"),
        payouts.c.version.label("ledger_version"),
    ).select_from(s.payouts.outerjoin(payouts, payouts.c.provider_payout_id == s.payouts.c.id))
    found = []
    matched = 0
    for row in conn.execute(query).mappings():
        amount = money(row["amount"], row["currency"])
        settled = row["status"] in ("paid", "failed")
        agreed = True
        if settled and (row["ledger_status"] != row["status"] or row["ledger_amount"] != row["amount"]):
            agreed = False
            if row["ledger_id"] is None:
                what = "the ledger has not recorded it"
            else:
                ours = money(row["ledger_amount"], row["currency"])
                what = f"the ledger holds it as {row['ledger_status']}, {ours}"
            applicable = row["ledger_id"] is None or row["ledger_amount"] == row["amount"]
            found.append(
                _difference(
                    PAYOUT_MISMATCH,
                    f"{row['id']}:recorded",
                    currency=row["currency"],
                    amount_ledger=row["ledger_amount"],
                    amount_stripe=row["amount"],
                    stripe_id=row["id"],
                    invoice_id=None,
                    payment_id=None,
                    explanation=f"Stripe payout {row['id']} of {amount} is {row['status']} and {what}.",
                    events=[{"id": row["ledger_id"], "version": row["ledger_version"]}] if row["ledger_id"] else [],
                    facts={
                        "kind": "payout",
                        "payout": row["id"],
                        "amount": row["amount"],
                        "currency": row["currency"],
                        "status": row["status"],
                        "failure_code": row["failure_code"],
                        "failure_message": row["failure_message"],
                    }
                    if applicable
                    else {"kind": "none"},
                )
            )
        if row["carried_count"] and row["carried"] != row["amount"]:
            agreed = False
            carried = money(row["carried"], row["currency"])
            found.append(
                _difference(
                    PAYOUT_MISMATCH,
                    f"{row['id']}:carried",
                    currency=row["currency"],
                    amount_ledger=None,
                    amount_stripe=row["amount"],
                    stripe_id=row["id"],
                    invoice_id=None,
                    payment_id=None,
                    explanation=(
                        f"Stripe payout {row['id']} is {amount}, but the {row['carried_count']} balance "
                        f"transactions it carried come to {carried}."
                    ),
                    facts={"kind": "none"},
                )
            )
        if agreed and settled:
            matched += 1
    found += _payouts_returned(conn)
    return found, {"payouts": matched}


def _payouts_returned(conn: Connection) -> list[Difference]:
    """A payout made before the period that failed in it: Stripe lists the payout in the period
    it was made, and in this one only the `payout_failure` balance transaction that put the money
    back. The ledger that still holds it as paid (its webhook lost) has money in the bank that is
    in Stripe's balance: the same item as when the payout's own period is run again."""
    t = s.transactions.c
    query = (
        select(
            t.id,
            t.source,
            t.currency,
            t.amount,
            payouts.c.payout_id.label("ledger_id"),
            payouts.c.amount.label("ledger_amount"),
            payouts.c.status.label("ledger_status"),
            payouts.c.version.label("ledger_version"),
        )
        .select_from(
            s.transactions.outerjoin(
                payouts, and_(payouts.c.provider == PROVIDER, payouts.c.provider_payout_id == t.source)
            )
        )
        .where(
            t.kind == "payout_failure",
            t.in_period == true(),
            t.source.is_not(None),
            not_(exists().where(s.payouts.c.id == t.source)),  # staged: compared with its own status
            or_(payouts.c.status.is_(None), payouts.c.status != "failed"),
        )
    )
    found = []
    for row in conn.execute(query).mappings():
        amount = money(row["amount"], row["currency"])
        if row["ledger_id"] is None:
            what = "the ledger has not recorded it"
        else:
            what = f"the ledger holds it as {row['ledger_status']}, {money(row['ledger_amount'], row['currency'])}"
        applicable = row["ledger_id"] is None or row["ledger_amount"] == row["amount"]
        found.append(
            _difference(
                PAYOUT_MISMATCH,
                f"{row['source']}:recorded",
                currency=row["currency"],
                amount_ledger=row["ledger_amount"],
                amount_stripe=row["amount"],
                stripe_id=row["source"],
                invoice_id=None,
                payment_id=None,
                explanation=(
                    f"Stripe payout {row['source']} of {amount} failed: Stripe put the money back in its "
                    f"balance (balance transaction {row['id']}) and {what}."
                ),
                events=[{"id": row["ledger_id"], "version": row["ledger_version"]}] if row["ledger_id"] else [],
                facts={
                    "kind": "payout",
                    "payout": row["source"],
                    "amount": row["amount"],
                    "currency": row["currency"],
                    "status": "failed",
                    "failure_code": "payout_failed",  # the webhook's code when Stripe gives none
                    "failure_message": f"returned by balance transaction {row['id']}",
                }
                if applicable
                else {"kind": "none"},
            )
        )
    return found


# ------------------------------------------------------------------------------ the ledger alone


def stuck_events(conn: Connection, *, older_than: datetime) -> list[Difference]:
    query = (
        select(webhook_events)
        .where(webhook_events.c.status.in_(("unmatched", "waiting")), webhook_events.c.received_at < older_than)
        .order_by(webhook_events.c.received_at)
    )
    found = []
    for row in conn.execute(query).mappings():
        received = _utc(row["received_at"]).isoformat(timespec="seconds")
        found.append(
            _difference(
                STUCK_EVENT,
                row["event_id"],
                currency=None,
                amount_ledger=None,
                amount_stripe=None,
                stripe_id=row["event_id"],
                invoice_id=None,
                payment_id=None,
                explanation=(
                    f"Stripe event {row['event_id']} ({row['event_type']}"
                    + (f" for {row['object_id']}" if row["object_id"] else "")
                    + f") received {received} is still {row['status']}: {row['detail'] or 'no detail'}."
                ),
                events=[{"id": row["event_key"], "position": row["position"]}],
                facts={"kind": "none"},
            )
        )
    return found


def inconsistent_invoices(conn: Connection) -> list[Difference]:
    """Invoices whose status or amounts disagree with their own payments."""
    succeeded = (
        select(
            payments.c.invoice_id,
            _total(payments.c.amount_captured).label("captured"),
            _total(payments.c.amount_refunded).label("refunded"),
        )
        .where(payments.c.status == "succeeded")
        .group_by(payments.c.invoice_id)
        .subquery()
    )
    captured = func.coalesce(succeeded.c.captured, 0)
    refunded = func.coalesce(succeeded.c.refunded, 0)
    i = invoice_status.c
    query = (
        select(invoice_status, captured.label("captured"), refunded.label("refunded"))
        .select_from(invoice_status.outerjoin(succeeded, succeeded.c.invoice_id == i.invoice_id))
        .where(
            i.status != "deleted",
            or_(
                i.amount_paid != captured,
                i.amount_refunded != refunded,
                and_(i.status == "paid", i.amount_paid < i.total),
                and_(i.status.in_(("open", "uncollectible")), i.total > 0, i.amount_paid >= i.total),
                and_(i.status.in_(("open", "uncollectible")), i.amount_due != i.total - i.amount_paid),
            ),
        )
    )
    found = []
    for row in conn.execute(query).mappings():
        reasons = _inconsistencies(row)
        found.append(
            _difference(
                INVOICE_INCONSISTENT,
                row["invoice_id"],
                currency=row["currency"],
                amount_ledger=row["amount_paid"],
                amount_stripe=None,
                stripe_id=None,
                invoice_id=row["invoice_id"],
                payment_id=None,
                explanation=f"{_sentence(_name(row))} is {row['status']} but " + "; ".join(reasons) + ".",
                events=[{"id": row["invoice_id"], "version": row["version"]}],
                facts={"kind": "none"},
            )
        )
    return found


def _inconsistencies(row: Any) -> list[str]:
    c = row["currency"]
    reasons = []
    if row["amount_paid"] != row["captured"]:
        reasons.append(
            f"shows {money(row['amount_paid'], c)} paid while its succeeded payments captured "
            f"{money(row['captured'], c)}"
        )
    if row["amount_refunded"] != row["refunded"]:
        reasons.append(
            f"shows {money(row['amount_refunded'], c)} refunded while its payments were refunded "
            f"{money(row['refunded'], c)}"
        )
    if row["status"] == "paid" and row["amount_paid"] < row["total"]:
        reasons.append(f"only {money(row['amount_paid'], c)} of its {money(row['total'], c)} was paid")
    if row["status"] in ("open", "uncollectible") and row["total"] > 0 and row["amount_paid"] >= row["total"]:
        reasons.append(f"its {money(row['total'], c)} was paid in full")
    if row["status"] in ("open", "uncollectible") and row["amount_due"] != row["total"] - row["amount_paid"]:
        reasons.append(f"shows {money(row['amount_due'], c)} due, not its total less what was paid")
    return reasons or ["its amounts disagree"]


# ------------------------------------------------------------------------------ helpers


def _invoice_numbers(conn: Connection, ids: Iterable[str]) -> dict[str, str | None]:
    """Invoice numbers by id, for the invoices of ours among `ids` (in chunks: one query per
    thousand, whatever the count)."""
    wanted = sorted(set(ids))
    numbers: dict[str, str | None] = {}
    for first in range(0, len(wanted), 1_000):
        chunk = wanted[first : first + 1_000]
        query = select(invoice_status.c.invoice_id, invoice_status.c.number).where(
            invoice_status.c.invoice_id.in_(chunk)
        )
        numbers.update({row.invoice_id: row.number for row in conn.execute(query)})
    return numbers


def _invoice_name(invoice_id: str | None, numbers: dict[str, str | None]) -> str:
    if invoice_id is None:
        return "no invoice"
    number = numbers.get(invoice_id)
    return f"invoice {number}" if number else f"invoice {invoice_id}"


def _payment_name(row: Any) -> str:
    """A refund's payment as Stripe names it: its PaymentIntent, or its charge when it has none."""
    return _payment_key(row["intent"], row["charge_id"])


def _payment_key(key: str, charge: str | None) -> str:
    """A payment as Stripe names it: the ledger keys a charge made without a PaymentIntent by the
    charge itself, which is then no PaymentIntent to name."""
    return f"charge {key}" if key == charge else f"PaymentIntent {key}"


def _charge_and_key(charge: str, key: str) -> str:
    return f"charge {charge}" if key == charge else f"charge {charge}, PaymentIntent {key}"


def _name(row: Any) -> str:
    number = row.get("number")
    return f"invoice {number}" if number else f"invoice {row['invoice_id']}"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def seen_at_stripe(cls: str, stripe_id: Any) -> ColumnElement[bool]:
    """An earlier run read this object from Stripe and found the ledger without it (`cls`). The
    ledger then recorded it when it learnt of it (apply, a late or reprocessed webhook), maybe
    weeks after Stripe made it: a later period's run, which does not read Stripe that far back,
    must not take it for something Stripe does not have. Stripe does not take back a payment,
    refund or payout it made (a refund that fails shows as failed), so an item of the class
    proves it, whatever became of the item; a dispute item may also be about one the ledger
    alone holds, and proves it once resolved (applied, or fixed: found agreeing)."""
    items = reconciliation_items.c
    proof = [items["class"] == cls, items.stripe_id == stripe_id]
    if cls == DISPUTE_MISMATCH:
        proof.append(items.status == RESOLVED)
    return exists().where(*proof)


def staged_among(conn: Connection, ids: Sequence[str]) -> set[str]:
    """Which of `ids` this run read from the provider as the period's own (its objects, or a
    charge's PaymentIntent): an earlier item about one of them, not found again, was fixed; one
    about an object this run did not read, or read only in the lookback before the period (whose
    differences the run does not report: they are the previous period's), says nothing either way."""
    wanted = sorted(set(ids))
    seen: set[str] = set()
    for first in range(0, len(wanted), 1_000):
        chunk = wanted[first : first + 1_000]
        for table in (s.charges, s.intents, s.refunds, s.disputes, s.payouts, s.transactions):
            query = select(table.c.id).where(table.c.id.in_(chunk), table.c.in_period == true())
            seen.update(row[0] for row in conn.execute(query))
        query = select(s.charges.c.intent_key).where(s.charges.c.intent_key.in_(chunk), s.charges.c.in_period == true())
        seen.update(row[0] for row in conn.execute(query))
        # A payout of an earlier period that failed in this one: read through its failure.
        query = select(s.transactions.c.source).where(
            s.transactions.c.source.in_(chunk),
            s.transactions.c.kind == "payout_failure",
            s.transactions.c.in_period == true(),
        )
        seen.update(row[0] for row in conn.execute(query))
    return seen


def _difference(cls: str, key: str, **shown: Any) -> Difference:
    """A difference of `cls` about `key`: its id derived from both, so it cannot name another class."""
    return Difference(id=str(item_id_for(cls, key)), cls=cls, **shown)


def _only_in_the_ledger(cls: str, row: Any, stripe_id: str, explanation: str) -> Difference:
    """A refund or dispute the ledger recorded on a payment, and Stripe does not show: nothing to
    bring in from Stripe (explain it), the payment's event at its place in the log."""
    return _difference(
        cls,
        stripe_id,
        currency=row["currency"],
        amount_ledger=row["amount"],
        amount_stripe=None,
        stripe_id=stripe_id,
        invoice_id=row["invoice_id"],
        payment_id=row["payment_id"],
        explanation=explanation,
        events=[{"id": row["payment_id"], "position": row["position"]}],
        facts={"kind": "none"},
    )


def _sentence(text: str) -> str:
    """Upper-case the first letter only (`str.capitalize` would lower-case an invoice number)."""
    return text[:1].upper() + text[1:]


def _total(amounts: Any) -> Any:
    """SUM as an integer: PostgreSQL sums bigints into numeric, which psycopg reads as Decimal."""
    return cast(func.sum(amounts), BigInteger)
