"""The provider's side of a run, staged in temporary tables beside the read models.

A run streams the provider's lists page by page and writes each page into a TEMPORARY table of
the run's own connection (SQLite and PostgreSQL both keep them per connection and drop them
when it closes). Matching is then a handful of set-based queries joining these tables with the
read models (projections/reconciliation/matching.py): the database does the lookups in bulk,
and the process holds one page at a time, whatever the number of objects.

Objects are fetched from `LOOKBACK` before the period on: a payment created just before the
period may have reached the ledger inside it (Stripe delivers for up to three days), so it must
be there to be matched. Only objects created inside the period (`in_period`) are reported as
missing from the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import BigInteger, Boolean, Column, Connection, MetaData, String, Table

from commands.reconciliation.facts import (
    BalanceTransactionFact,
    ChargeFact,
    DisputeFact,
    PaymentIntentFact,
    PayoutFact,
    Period,
    ProviderRecords,
    RefundFact,
)

LOOKBACK = timedelta(days=3)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

staged = MetaData()


def _temporary(name: str, *columns: Column[Any]) -> Table:
    return Table(name, staged, *columns, prefixes=["TEMPORARY"])


def _key() -> Column[Any]:
    return Column("id", String(255), primary_key=True)


def _money() -> list[Column[Any]]:
    return [Column("currency", String(3), nullable=False), Column("amount", BigInteger, nullable=False)]


def _when() -> list[Column[Any]]:
    return [Column("created", BigInteger, nullable=False), Column("in_period", Boolean, nullable=False)]


charges = _temporary(
    "recon_charges",
    _key(),
    Column("payment_intent", String(255), index=True),
    # The payment it belongs to as the ledger keys payments: its PaymentIntent, or the charge
    # itself when it has none. Kept as a column, indexed, so that a payment finds its charge by
    # an index rather than by scanning every charge for an expression.
    Column("intent_key", String(255), nullable=False, index=True),
    Column("invoice_id", String(36), index=True),
    *_money(),
    Column("amount_captured", BigInteger, nullable=False),
    Column("amount_refunded", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("captured", Boolean, nullable=False),
    Column("balance_transaction", String(255), index=True),
    *_when(),
)

intents = _temporary(
    "recon_intents",
    _key(),
    Column("invoice_id", String(36), index=True),
    *_money(),
    Column("amount_received", BigInteger, nullable=False),
    Column("status", String(40), nullable=False),
    Column("latest_charge", String(255)),
    *_when(),
)

refunds = _temporary(
    "recon_refunds",
    _key(),
    Column("charge_id", String(255)),
    Column("payment_intent", String(255), index=True),
    *_money(),
    Column("status", String(20), nullable=False),
    Column("balance_transaction", String(255)),
    *_when(),
)

disputes = _temporary(
    "recon_disputes",
    _key(),
    Column("charge_id", String(255)),
    Column("payment_intent", String(255), index=True),
    *_money(),
    Column("status", String(40), nullable=False),
    Column("reason", String(100), nullable=False),
    *_when(),
)

payouts = _temporary(
    "recon_payouts",
    _key(),
    *_money(),
    Column("status", String(20), nullable=False),
    Column("failure_code", String(200), nullable=False),
    Column("failure_message", String(2000), nullable=False),
    Column("carried", BigInteger),  # the sum of the balance transactions it carried (net), its own excluded
    Column("carried_count", BigInteger),
    *_when(),
)

transactions = _temporary(
    "recon_transactions",
    _key(),
    Column("kind", String(40), nullable=False),
    *_money(),
    Column("fee", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
    Column("source", String(255), index=True),
    *_when(),
)

TABLES = (charges, intents, refunds, disputes, payouts, transactions)


@dataclass
class Staged:
    """How many objects of each list were staged."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


Progress = Callable[[str, int], None]  # (what is being read, objects read so far in all)


class _Created(Protocol):
    @property
    def created(self) -> int: ...


F = TypeVar("F", bound=_Created)


def create(conn: Connection) -> None:
    staged.create_all(conn)


def drop(conn: Connection) -> None:
    staged.drop_all(conn)


def stage(conn: Connection, records: ProviderRecords, period: Period, progress: Progress | None = None) -> Staged:
    """Stream every list of the period (and its lookback) into the staging tables."""
    window = Period(max(period.start, EPOCH + LOOKBACK) - LOOKBACK, period.end)  # Stripe counts from 1970
    start = int(period.start.timestamp())
    counts: dict[str, int] = {}
    read = 0

    def load(name: str, table: Table, pages: Iterator[list[F]], row: Callable[[F, bool], dict[str, Any]]) -> None:
        nonlocal read
        count = 0
        for page in pages:
            if page:
                conn.execute(table.insert(), [row(fact, fact.created >= start) for fact in page])
            count += len(page)
            read += len(page)
            if progress is not None:
                progress(name, read)
        counts[name] = count

    load("balance transactions", transactions, records.balance_transactions(window), _transaction_row)
    load("charges", charges, records.charges(window), _charge_row)
    load("payment intents", intents, records.payment_intents(window), _intent_row)
    load("refunds", refunds, records.refunds(window), _refund_row)
    load("disputes", disputes, records.disputes(window), _dispute_row)
    load("payouts", payouts, records.payouts(period), _payout_row)
    counts["payout transactions"] = _carried(conn, records, progress, lambda n: n + read)
    return Staged(counts)


def _carried(
    conn: Connection, records: ProviderRecords, progress: Progress | None, so_far: Callable[[int], int]
) -> int:
    """For each staged payout, the net of the balance transactions it carried (the payout's own
    transaction excluded): a payout's amount is that sum, or the difference is reported."""
    ids = [row[0] for row in conn.execute(payouts.select().with_only_columns(payouts.c.id))]
    read = 0
    for payout_id in ids:
        carried = count = 0
        for page in records.payout_transactions(payout_id):
            for txn in page:
                if txn.source == payout_id or txn.kind == "payout":
                    continue
                carried += txn.net.amount
                count += 1
            read += len(page)
            if progress is not None:
                progress("payout transactions", so_far(read))
        conn.execute(payouts.update().where(payouts.c.id == payout_id).values(carried=carried, carried_count=count))
    return read


def _charge_row(fact: ChargeFact, in_period: bool) -> dict[str, Any]:
    return {
        "id": fact.id,
        "payment_intent": fact.payment_id,
        "intent_key": fact.payment_id or fact.id,
        "invoice_id": str(fact.invoice_id) if fact.invoice_id else None,
        "currency": fact.amount.currency,
        "amount": fact.amount.amount,
        "amount_captured": fact.amount_captured.amount,
        "amount_refunded": fact.amount_refunded.amount,
        "status": fact.status,
        "captured": fact.captured,
        "balance_transaction": fact.balance_transaction,
        "created": fact.created,
        "in_period": in_period,
    }


def _intent_row(fact: PaymentIntentFact, in_period: bool) -> dict[str, Any]:
    return {
        "id": fact.id,
        "invoice_id": str(fact.invoice_id) if fact.invoice_id else None,
        "currency": fact.amount.currency,
        "amount": fact.amount.amount,
        "amount_received": fact.amount_received.amount,
        "status": fact.status,
        "latest_charge": fact.latest_charge,
        "created": fact.created,
        "in_period": in_period,
    }


def _refund_row(fact: RefundFact, in_period: bool) -> dict[str, Any]:
    return {
        "id": fact.id,
        "charge_id": fact.charge_id,
        "payment_intent": fact.payment_id,
        "currency": fact.amount.currency,
        "amount": fact.amount.amount,
        "status": fact.status,
        "balance_transaction": fact.balance_transaction,
        "created": fact.created,
        "in_period": in_period,
    }


def _dispute_row(fact: DisputeFact, in_period: bool) -> dict[str, Any]:
    return {
        "id": fact.id,
        "charge_id": fact.charge_id,
        "payment_intent": fact.payment_id,
        "currency": fact.amount.currency,
        "amount": fact.amount.amount,
        "status": fact.status,
        "reason": fact.reason[:100],
        "created": fact.created,
        "in_period": in_period,
    }


def _payout_row(fact: PayoutFact, in_period: bool) -> dict[str, Any]:
    return {
        "id": fact.id,
        "currency": fact.amount.currency,
        "amount": fact.amount.amount,
        "status": fact.status,
        "failure_code": fact.failure_code[:200],
        "failure_message": fact.failure_message[:2000],
        "carried": None,
        "carried_count": None,
        "created": fact.created,
        "in_period": in_period,
    }


def _transaction_row(fact: BalanceTransactionFact, in_period: bool) -> dict[str, Any]:
    return {
        "id": fact.id,
        "kind": fact.kind,
        "currency": fact.amount.currency,
        "amount": fact.amount.amount,
        "fee": fact.fee.amount,
        "net": fact.net.amount,
        "source": fact.source,
        "created": fact.created,
        "in_period": in_period,
    }


def names(tables: Sequence[Table] = TABLES) -> list[str]:
    return [table.name for table in tables]
