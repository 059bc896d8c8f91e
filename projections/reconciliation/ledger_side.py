"""The ledger's side of reconciliation: every processor fee, payout, refund and dispute the ledger
recorded, by the provider's ids, so that the engine looks up a page of the provider's records in
one query per kind.

One projection writes the four tables. They are read from the same events in one pass over each
batch, and refunds and disputes share what they need of their payment (its invoice and currency,
fixed when it was initiated); four models would read every batch four times, keep that twice,
and move four positions per pass for tables that are only ever used together.

A refund or dispute row needs its payment's invoice and currency: kept per payment from
`payment.initiated` (they never change), and loaded at the payment's first version when the
payment is not among those kept (a restart, or one evicted). A payout's or dispute's later
event needs the rest of its row: read back from the table, one query per batch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Connection, Engine, Table, select

from ledger.fees import ProcessorFee
from ledger.payments import Payment
from ledger.payouts import FAILED, IN_TRANSIT, PAID, Payout
from projections.bulk import upsert_rows
from projections.invoice_states import FACTS_KEPT
from projections.paging import with_utc
from projections.payments import LoadPayment
from projections.reconciliation.rows import Row, connected, rows_by_key, utc
from projections.tables import payment_disputes, payment_refunds, payouts, processor_fees
from projections.tracked import Positioned

DisputeEvent = Payment.Disputed | Payment.DisputeWon | Payment.DisputeLost
DISPUTE_EVENTS = (Payment.Disputed, Payment.DisputeWon, Payment.DisputeLost)

DISPUTE_OPEN = "open"
DISPUTE_WON = "won"
DISPUTE_LOST = "lost"


class LedgerSideProjection:
    name = "reconciliation_ledger"
    tables: tuple[Table, ...] = (processor_fees, payouts, payment_refunds, payment_disputes)
    # The events it reads (projections/tracked.py). Invoices' events and a payment's others (its
    # success, failure, processing, cancellation), more than two thirds of a log, write none of
    # its rows and are not handed to it.
    kinds: tuple[type, ...] = (
        ProcessorFee.Recorded,
        Payout.Event,
        Payment.Initiated,
        Payment.Refunded,
        *DISPUTE_EVENTS,
    )

    def __init__(self, load_payment: LoadPayment, max_payments: int = FACTS_KEPT) -> None:
        self._load_payment = load_payment
        self._payments: dict[UUID, tuple[str, str]] = {}  # payment -> (invoice id, currency)
        self.max_payments = max_payments

    def prepare(self, batch: Sequence[Positioned]) -> None:
        for _, event in batch:
            if isinstance(event, Payment.Initiated | Payment.Refunded | Payment.Disputed):
                self._payment(event)

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        fees: dict[str, Row] = {}
        refunds: dict[str, Row] = {}
        payout_events: list[Payout.Event] = []
        dispute_events: list[tuple[int, DisputeEvent]] = []
        for position, event in batch:
            if isinstance(event, ProcessorFee.Recorded):
                fees[str(event.originator_id)] = _fee_row(position, event)
            elif isinstance(event, Payout.Event):
                payout_events.append(event)
            elif isinstance(event, Payment.Initiated):
                self._payment(event)
            elif isinstance(event, Payment.Refunded):
                refunds[event.refund_id] = self._refund_row(position, event)
            elif isinstance(event, Payment.Disputed | Payment.DisputeWon | Payment.DisputeLost):
                dispute_events.append((position, event))
        upsert_rows(conn, processor_fees, list(fees.values()), ["fee_id"])
        upsert_rows(conn, payouts, _payout_rows(conn, payout_events), ["payout_id"])
        # Keyed by the provider's refund id: a report of the same refund is the same row.
        upsert_rows(conn, payment_refunds, list(refunds.values()), ["refund_id"])
        upsert_rows(conn, payment_disputes, self._dispute_rows(conn, dispute_events), ["dispute_id"])

    def reset(self) -> None:
        pass  # a payment's invoice and currency never change: nothing kept can be ahead of the database

    def _payment(self, event: Payment.Event) -> tuple[str, str]:
        payment_id = event.originator_id
        known = self._payments.get(payment_id)
        if known is None:
            if isinstance(event, Payment.Initiated):
                known = (event.invoice_id, event.currency)
            else:
                payment = self._load_payment(payment_id, 1)  # the initiation holds both
                known = (payment.invoice_id, payment.currency)
            if len(self._payments) >= self.max_payments:
                del self._payments[next(iter(self._payments))]  # the oldest: it may come back, at one load
            self._payments[payment_id] = known
        return known

    def _refund_row(self, position: int, event: Payment.Refunded) -> Row:
        invoice_id, currency = self._payment(event)
        return {
            "refund_id": event.refund_id,
            "payment_id": str(event.originator_id),
            "invoice_id": invoice_id,
            "currency": currency,
            "amount": event.amount,
            "recorded_at": event.timestamp,
            "position": position,
        }

    def _dispute_rows(self, conn: Connection, events: list[tuple[int, DisputeEvent]]) -> list[Row]:
        opened_here = {e.dispute_id for _, e in events if isinstance(e, Payment.Disputed)}
        closed = {e.dispute_id for _, e in events if isinstance(e, Payment.DisputeWon | Payment.DisputeLost)}
        rows = rows_by_key(conn, payment_disputes, payment_disputes.c.dispute_id, closed - opened_here)
        changed: dict[str, Row] = {}
        for position, event in events:
            if isinstance(event, Payment.Disputed):
                invoice_id, currency = self._payment(event)
                rows[event.dispute_id] = {
                    "dispute_id": event.dispute_id,
                    "payment_id": str(event.originator_id),
                    "invoice_id": invoice_id,
                    "currency": currency,
                    "amount": event.amount,
                    "status": DISPUTE_OPEN,
                    "opened_at": event.timestamp,
                    "updated_at": event.timestamp,
                    "position": position,
                }
            else:
                row = rows.get(event.dispute_id)
                if row is None:  # a close without its opening: not in a log the Payment wrote
                    continue
                won = isinstance(event, Payment.DisputeWon)
                row.update(status=DISPUTE_WON if won else DISPUTE_LOST, updated_at=event.timestamp, position=position)
            changed[event.dispute_id] = rows[event.dispute_id]
        return list(changed.values())


def _fee_row(position: int, event: ProcessorFee.Recorded) -> Row:
    return {
        "fee_id": str(event.originator_id),
        "provider": event.provider,
        "balance_transaction_id": event.balance_transaction_id,
        "source_id": event.source_id,
        "invoice_id": event.invoice_id,
        "currency": event.currency,
        "amount": event.amount,
        "recorded_at": event.timestamp,
        "position": position,
    }


def _payout_rows(conn: Connection, events: list[Payout.Event]) -> list[Row]:
    reported_here = {e.originator_id for e in events if isinstance(e, Payout.Reported)}
    later = {str(e.originator_id) for e in events if e.originator_id not in reported_here}
    rows = rows_by_key(conn, payouts, payouts.c.payout_id, later)
    changed: dict[str, Row] = {}
    for event in events:
        payout_id = str(event.originator_id)
        if isinstance(event, Payout.Reported):
            rows[payout_id] = {
                "payout_id": payout_id,
                "provider": event.provider,
                "provider_payout_id": event.provider_payout_id,
                "currency": event.currency,
                "amount": event.amount,
                "status": IN_TRANSIT,
                "reported_at": event.timestamp,
            }
        elif payout_id not in rows:  # a payout's later event without its report: not in a log Payout wrote
            continue
        elif isinstance(event, Payout.Paid):
            rows[payout_id]["status"] = PAID
        elif isinstance(event, Payout.Failed):
            rows[payout_id]["status"] = FAILED
        rows[payout_id].update(updated_at=event.timestamp, version=event.originator_version)
        changed[payout_id] = rows[payout_id]
    return list(changed.values())


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True, slots=True)
class RecordedFee:
    fee_id: str
    provider: str
    balance_transaction_id: str
    source_id: str | None
    invoice_id: str | None
    currency: str
    amount: int
    recorded_at: datetime
    position: int


@dataclass(frozen=True, slots=True)
class RecordedPayout:
    payout_id: str
    provider: str
    provider_payout_id: str
    currency: str
    amount: int
    status: str  # in_transit | paid | failed
    reported_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class RecordedRefund:
    refund_id: str
    payment_id: str
    invoice_id: str
    currency: str
    amount: int
    recorded_at: datetime
    position: int


@dataclass(frozen=True, slots=True)
class RecordedDispute:
    dispute_id: str
    payment_id: str
    invoice_id: str
    currency: str
    amount: int
    status: str  # open | won | lost
    opened_at: datetime
    updated_at: datetime
    position: int


def fees_by_transaction(
    source: Engine | Connection, balance_transaction_ids: Collection[str]
) -> dict[str, RecordedFee]:
    """The fees recorded for these balance transactions, by balance transaction id."""
    with connected(source) as conn:
        rows = rows_by_key(conn, processor_fees, processor_fees.c.balance_transaction_id, balance_transaction_ids)
    return {key: RecordedFee(**with_utc(row)) for key, row in rows.items()}


def payouts_by_provider_id(
    source: Engine | Connection, provider_payout_ids: Collection[str]
) -> dict[str, RecordedPayout]:
    """The payouts recorded under these provider ids (Stripe's po_...), by that id."""
    with connected(source) as conn:
        rows = rows_by_key(conn, payouts, payouts.c.provider_payout_id, provider_payout_ids)
    return {key: RecordedPayout(**with_utc(row)) for key, row in rows.items()}


def refunds_by_id(source: Engine | Connection, refund_ids: Collection[str]) -> dict[str, RecordedRefund]:
    """The refunds recorded under these provider refund ids (re_...), by that id."""
    with connected(source) as conn:
        rows = rows_by_key(conn, payment_refunds, payment_refunds.c.refund_id, refund_ids)
    return {key: RecordedRefund(**with_utc(row)) for key, row in rows.items()}


def disputes_by_id(source: Engine | Connection, dispute_ids: Collection[str]) -> dict[str, RecordedDispute]:
    """The disputes recorded under these provider dispute ids (dp_...), by that id."""
    with connected(source) as conn:
        rows = rows_by_key(conn, payment_disputes, payment_disputes.c.dispute_id, dispute_ids)
    return {key: RecordedDispute(**with_utc(row)) for key, row in rows.items()}


def recorded_between(
    engine: Engine, table: Table, start: datetime, end: datetime, *, page_size: int = 1_000
) -> Iterator[list[Row]]:
    """Rows of one of the four tables first recorded in [start, end), a page at a time (by key):
    the ledger's side of a period, for what the provider may lack, in bounded memory."""
    moment, key = _PERIOD_KEYS[table.name]
    query = select(table).where(moment >= utc(start), moment < utc(end)).order_by(key).limit(page_size)
    last: str | None = None
    while True:
        with engine.connect() as conn:
            page = [
                with_utc(dict(r)) for r in conn.execute(query if last is None else query.where(key > last)).mappings()
            ]
        if page:
            yield page
        if len(page) < page_size:
            return
        last = str(page[-1][key.key])


def fees_between(
    engine: Engine, start: datetime, end: datetime, *, page_size: int = 1_000
) -> Iterator[list[RecordedFee]]:
    for page in recorded_between(engine, processor_fees, start, end, page_size=page_size):
        yield [RecordedFee(**row) for row in page]


def payouts_between(
    engine: Engine, start: datetime, end: datetime, *, page_size: int = 1_000
) -> Iterator[list[RecordedPayout]]:
    for page in recorded_between(engine, payouts, start, end, page_size=page_size):
        yield [RecordedPayout(**row) for row in page]


def refunds_between(
    engine: Engine, start: datetime, end: datetime, *, page_size: int = 1_000
) -> Iterator[list[RecordedRefund]]:
    for page in recorded_between(engine, payment_refunds, start, end, page_size=page_size):
        yield [RecordedRefund(**row) for row in page]


def disputes_between(
    engine: Engine, start: datetime, end: datetime, *, page_size: int = 1_000
) -> Iterator[list[RecordedDispute]]:
    for page in recorded_between(engine, payment_disputes, start, end, page_size=page_size):
        yield [RecordedDispute(**row) for row in page]


_PERIOD_KEYS: dict[str, tuple[Column[Any], Column[Any]]] = {
    processor_fees.name: (processor_fees.c.recorded_at, processor_fees.c.fee_id),
    payouts.name: (payouts.c.reported_at, payouts.c.payout_id),
    payment_refunds.name: (payment_refunds.c.recorded_at, payment_refunds.c.refund_id),
    payment_disputes.name: (payment_disputes.c.opened_at, payment_disputes.c.dispute_id),
}
