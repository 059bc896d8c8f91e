"""A reconciliation run: the ledger against the payment provider for a period, or the ledger alone.

    1. bring the read models up to the log's head;
    2. (Stripe) stream the provider's lists into the run's staging tables (staging.py);
    3. (Stripe) record every fee of ours not recorded yet, as events (ledger/fees.py): a fact to
       record, not a difference; then bring the read models up to date again;
    4. find the differences, one set-based query per class (matching.py), and summarise (summary.py);
    5. record the run, its items and what changed since the last run (items found again after
       being resolved are reopened; open items this run could have found and did not are fixed
       by the ledger events that closed them), in one transaction (app.reconciliation.record_run).

A run that fails (the provider unreachable, a key refused) is recorded as failed with the reason,
and the error propagates: a clear message for the command line and the API, never half a report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4

from sqlalchemy import Connection, Engine, and_, func, select

from commands.application import BillingApplication
from commands.reconciliation.commands import FeeToRecord
from commands.reconciliation.facts import Period, ProviderRecords
from commands.runner import storage_errors_as_unavailable
from ledger.errors import InvalidInputError, LedgerError, NotFoundError
from ledger.money import Money
from ledger.reconciliation.items import (
    AMOUNT_MISMATCH,
    CLASSES,
    DISPUTE_MISMATCH,
    DUPLICATE_PAYMENT,
    EXPLAINED,
    INVOICE_INCONSISTENT,
    MISSING_IN_LEDGER,
    MISSING_IN_STRIPE,
    OPEN,
    PAYOUT_MISMATCH,
    REFUND_MISSING_IN_STRIPE,
    RESOLVED,
    STUCK_EVENT,
    Difference,
)
from ledger.reconciliation.runs import COMPLETED, FAILED, LEDGER, RUNNING, STRIPE, ReconciliationRun
from projections.reconciliation import matching, staging
from projections.reconciliation import staging as s
from projections.reconciliation.summary import summarise
from projections.tables import (
    invoice_status,
    payment_disputes,
    payment_refunds,
    payments,
    payouts,
    processor_fees,
    reconciliation_items,
    reconciliation_runs,
)

STUCK_AFTER = timedelta(hours=1)
FEES_PER_COMMAND = 500

# What each source checks. Items of other classes are never marked fixed by a run of that source.
LEDGER_CLASSES = frozenset({DUPLICATE_PAYMENT, STUCK_EVENT, INVOICE_INCONSISTENT})
STRIPE_CLASSES = frozenset(CLASSES)
# Classes about the ledger as a whole (not one period's objects): any run that checks them can
# tell that an earlier item of theirs is gone.
GLOBAL_CLASSES = frozenset({DUPLICATE_PAYMENT, STUCK_EVENT, INVOICE_INCONSISTENT})
# Classes whose subject is the ledger's own record, in scope when the ledger recorded it in the period.
LEDGER_SUBJECTS = frozenset({MISSING_IN_STRIPE, REFUND_MISSING_IN_STRIPE})
# Classes the run also compares for Stripe's objects of the lookback when the ledger recorded
# them in the period (a late webhook): in scope then, though Stripe made them before the period.
LOOKBACK_MATCHED = frozenset({MISSING_IN_LEDGER, AMOUNT_MISMATCH, DISPUTE_MISMATCH})

Progress = Callable[[str, int], None]


class ReadModels(Protocol):
    """The read models a run reads: `catch_up` applies what is logged so far (ProjectionRunner,
    or the web process's in-process projections)."""

    @property
    def engine(self) -> Engine: ...

    def catch_up(self) -> object: ...


@dataclass(frozen=True)
class Report:
    """What a run found: `--format json` prints `as_json()`."""

    run_id: UUID
    period: Period
    source: str
    summary: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "period": {"from": self.period.start.isoformat(), "to": self.period.end.isoformat()},
            "source": self.source,
            "summary": self.summary,
            "items": self.items,
        }


def reconcile(
    app: BillingApplication,
    runner: ReadModels,
    *,
    period: Period,
    records: ProviderRecords | None,
    requested_by: str,
    stuck_after: timedelta = STUCK_AFTER,
    progress: Progress | None = None,
    run_id: UUID | None = None,
) -> Report:
    """Run one reconciliation and record it (see the module docstring)."""
    period = _in_utc(period)
    if period.end <= period.start:
        raise PeriodError(period)
    run_id = run_id or uuid4()
    source = STRIPE if records is not None else LEDGER
    try:
        return _run(app, runner, run_id, period, records, requested_by, stuck_after, progress)
    except Exception as error:
        # Whatever stopped it, the run is recorded as failed (a bug too, by its type), never left
        # running; the error goes on to the caller.
        reason = str(error) if isinstance(error, LedgerError) else f"{type(error).__name__}: {error}"
        with suppress(LedgerError):  # the store itself is down: the original error says more
            app.reconciliation.fail_run(
                run_id=run_id, period=period, source=source, requested_by=requested_by, reason=reason
            )
        raise


def _run(
    app: BillingApplication,
    runner: ReadModels,
    run_id: UUID,
    period: Period,
    records: ProviderRecords | None,
    requested_by: str,
    stuck_after: timedelta,
    progress: Progress | None,
) -> Report:
    window = matching.Window(period)
    stripe = records is not None
    runner.catch_up()
    with runner.engine.connect() as conn:
        staging.create(conn)
        try:
            if records is not None:
                staging.stage(conn, records, period, progress)
                conn.commit()  # the staged rows stay (temporary tables live as long as the connection)
                _record_fees(app, conn, records.provider, progress)
                runner.catch_up()
                conn.commit()  # a new snapshot: the fees just recorded, and anything since
            if progress is not None:
                progress("comparing", 0)
            differences, matched = _differences(
                conn, window, stripe=stripe, now=app.clock.now(), stuck_after=stuck_after
            )
            summary = summarise(conn, window, stripe=stripe, classes=_open_after(conn, differences), matched=matched)
            fixed = _fixed(conn, differences, window, stripe=stripe)
            conn.rollback()
        finally:
            conn.rollback()  # a failed statement leaves PostgreSQL's transaction aborted
            staging.drop(conn)
            conn.commit()
    summary = {**summary, "run": str(run_id)}
    items = app.reconciliation.record_run(
        run_id=run_id,
        period=period,
        source=STRIPE if stripe else LEDGER,
        requested_by=requested_by,
        differences=differences,
        summary=summary,
        fixed=fixed,
    ).result
    summary["classes"] = _open_classes(items)
    return Report(run_id, period, STRIPE if stripe else LEDGER, summary, items)


def _open_after(conn: Connection, differences: Sequence[Difference]) -> dict[str, int]:
    """Per class, the items this run leaves open: every difference found, but those explained
    before (they stay explained); a resolved one found again is reopened."""
    classes = dict.fromkeys(CLASSES, 0)
    ids = [d.id for d in differences]
    explained: set[str] = set()
    for first in range(0, len(ids), 1_000):
        query = select(reconciliation_items.c.item_id).where(
            reconciliation_items.c.item_id.in_(ids[first : first + 1_000]),
            reconciliation_items.c.status == EXPLAINED,
        )
        explained.update(row[0] for row in conn.execute(query))
    for difference in differences:
        if difference.id not in explained:
            classes[difference.cls] += 1
    return classes


def _differences(
    conn: Connection, window: matching.Window, *, stripe: bool, now: datetime, stuck_after: timedelta
) -> tuple[list[Difference], dict[str, int]]:
    found: list[Difference] = []
    matched: dict[str, int] = {}
    if stripe:
        for check in (
            matching.payments_against_stripe,
            matching.refunds_against_stripe,
            matching.disputes_against_stripe,
        ):
            items, agreed = check(conn, window)
            found += items
            matched |= agreed
        found += matching.payments_missing_in_stripe(conn, window)
        found += matching.refunds_missing_in_stripe(conn, window)
        items, agreed = matching.fee_mismatches(conn)
        found += items
        matched |= agreed
        items, agreed = matching.payouts_against_stripe(conn)
        found += items
        matched |= agreed
    found += matching.duplicate_payments(conn, window, stripe=stripe)
    found += matching.stuck_events(conn, older_than=now - stuck_after)
    found += matching.inconsistent_invoices(conn)
    unique: dict[str, Difference] = {}
    for difference in found:
        unique.setdefault(difference.id, difference)  # one item per difference, whichever check saw it first
    ordered = sorted(unique.values(), key=lambda d: (CLASSES.index(d.cls), d.currency or "", d.stripe_id or "", d.id))
    return ordered, matched


def _record_fees(app: BillingApplication, conn: Connection, provider: str, progress: Progress | None) -> None:
    """Record, as events, every fee Stripe took on a movement of ours that the ledger does not
    hold yet: on a charge, a refund or a dispute of one of our invoices. A fee on a charge whose
    payment already carries one (`payments.fee`) is in the books: a different amount there is a
    fee_mismatch, not a second fee. Fees on money that is not ours (an unattributed charge) are
    left out: the charge itself is not in our books either."""
    batch: list[FeeToRecord] = []
    recorded = 0
    # Streamed (a server-side cursor on PostgreSQL): a first run may find a fee on every charge.
    # (On the statement: a connection's execution options would stay for every later statement.)
    for row in conn.execute(_unrecorded_fees().execution_options(yield_per=1_000)).mappings():
        if row["ours"] is None or row["payment_fee"]:
            continue
        batch.append(FeeToRecord(row["id"], Money(row["fee"], row["currency"]), row["source"], UUID(row["invoice_id"])))
        if len(batch) >= FEES_PER_COMMAND:
            recorded += app.reconciliation.record_fees(provider, batch).result
            batch = []
            if progress is not None:
                progress("recording fees", recorded)
    if batch:
        recorded += app.reconciliation.record_fees(provider, batch).result
    if progress is not None:
        progress("recording fees", recorded)


def _unrecorded_fees() -> Any:
    """Each staged transaction with a fee the ledger has not recorded, with the invoice it was
    taken for (through its charge, or its refund's or dispute's charge) and the fee its payment
    carries already, if any."""
    t = s.transactions.c
    charge = s.charges.alias("fee_charge")
    refund = s.refunds.alias("fee_refund")
    dispute = s.disputes.alias("fee_dispute")
    charge_id = func.coalesce(refund.c.charge_id, dispute.c.charge_id, t.source)
    intent = func.coalesce(refund.c.payment_intent, dispute.c.payment_intent, charge.c.payment_intent, charge_id)
    invoice = func.coalesce(payments.c.invoice_id, charge.c.invoice_id)
    return (
        select(
            t.id,
            t.currency,
            t.fee,
            t.source,
            invoice.label("invoice_id"),
            # The invoice is one of ours: a charge may name another application's invoice id.
            invoice_status.c.invoice_id.label("ours"),
            payments.c.fee.label("payment_fee"),
        )
        .select_from(
            s.transactions.outerjoin(processor_fees, processor_fees.c.balance_transaction_id == t.id)
            .outerjoin(refund, refund.c.id == t.source)
            .outerjoin(dispute, dispute.c.id == t.source)
            .outerjoin(charge, charge.c.id == charge_id)
            .outerjoin(
                payments, and_(payments.c.provider == matching.PROVIDER, payments.c.provider_payment_id == intent)
            )
            .outerjoin(invoice_status, invoice_status.c.invoice_id == invoice)
        )
        .where(
            t.fee != 0, t.kind.not_in(("payout", "payout_failure", "payout_cancel")), processor_fees.c.fee_id.is_(None)
        )
    )


def _fixed(
    conn: Connection, differences: Sequence[Difference], window: matching.Window, *, stripe: bool
) -> list[tuple[UUID, list[dict[str, Any]]]]:
    """Items this run could have found and did not: those open or explained are fixed by the
    ledger events that now agree (a late webhook, say); those resolved already (applied,
    refunded) are listed again as they stand, so that a rerun shows how the period was settled."""
    found = {d.id for d in differences}
    checked = STRIPE_CLASSES if stripe else LEDGER_CLASSES
    rows = conn.execute(
        select(
            reconciliation_items.c.item_id,
            reconciliation_items.c["class"],
            reconciliation_items.c.stripe_id,
            reconciliation_items.c.payment_id,
            reconciliation_items.c.status,
            reconciliation_runs.c.source.label("found_by"),
        )
        .select_from(
            reconciliation_items.outerjoin(
                reconciliation_runs, reconciliation_runs.c.run_id == reconciliation_items.c.last_run_id
            )
        )
        .where(reconciliation_items.c.status.in_((OPEN, EXPLAINED, RESOLVED)))
    ).mappings()
    candidates = [dict(r) for r in rows if r["item_id"] not in found and r["class"] in checked]
    seen = matching.staged_among(conn, [c["stripe_id"] for c in candidates if c["stripe_id"]]) if stripe else set()
    # A duplicate is judged by each kind of run on what it reads: a Stripe run on the charges of
    # the period and its lookback (an earlier payment of the invoice is not among them), a ledger
    # run on the ledger's payments (a payment whose webhook was lost is not among them). Neither
    # may call fixed what only the other can see: a Stripe run leaves a duplicate the ledger's
    # own payments still show, a ledger run one that a Stripe run found.
    still_paid_twice = {d.id for d in matching.duplicate_payments(conn, window, stripe=False)} if stripe else set()
    fixed = []
    for item in candidates:
        cls = item["class"]
        unseen = item["item_id"] in still_paid_twice or (not stripe and item["found_by"] == STRIPE)
        if cls == DUPLICATE_PAYMENT and item["status"] != RESOLVED and unseen:
            continue
        in_scope = (
            cls in GLOBAL_CLASSES
            or (item["stripe_id"] in seen)
            or (cls in LEDGER_SUBJECTS and _recorded_in(conn, item, window))
            or (cls in LOOKBACK_MATCHED and _matched_in(conn, item, window))
        )
        if in_scope:
            fixed.append((UUID(item["item_id"]), _closing_events(conn, item)))
    return fixed


def _matched_in(conn: Connection, item: dict[str, Any], window: matching.Window) -> bool:
    """A payment or dispute Stripe made in the lookback before the period, that the ledger
    recorded in the period: the run compares the two (matching.py), so it would have seen it."""
    if item["class"] == DISPUTE_MISMATCH:
        query = select(payment_disputes.c.opened_at).where(payment_disputes.c.dispute_id == item["stripe_id"])
    else:
        query = select(payments.c.created_at).where(
            payments.c.provider == matching.PROVIDER, payments.c.provider_payment_id == item["stripe_id"]
        )
    at = conn.execute(query).scalar()
    return at is not None and window.start <= matching._utc(at) < window.end


def _recorded_in(conn: Connection, item: dict[str, Any], window: matching.Window) -> bool:
    """A ledger-side item (a payment or refund Stripe did not show) whose record no longer
    exists as it did (voided, say) or was recorded in the period: this run would have seen it."""
    if item["class"] == REFUND_MISSING_IN_STRIPE:
        at = conn.execute(
            select(payment_refunds.c.recorded_at).where(payment_refunds.c.refund_id == item["stripe_id"])
        ).scalar()
    else:
        at = conn.execute(select(payments.c.created_at).where(payments.c.payment_id == item["payment_id"])).scalar()
    return at is None or window.start <= matching._utc(at) < window.end


def _closing_events(conn: Connection, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The ledger events that now stand where the difference was: the payment's latest version
    (for payment, refund and dispute items), when there is one."""
    key = item["payment_id"]
    query = select(payments.c.payment_id, payments.c.version)
    if key:
        query = query.where(payments.c.payment_id == key)
    elif item["stripe_id"] and item["class"] in (MISSING_IN_LEDGER, AMOUNT_MISMATCH):
        query = query.where(
            payments.c.provider == matching.PROVIDER, payments.c.provider_payment_id == item["stripe_id"]
        )
    elif item["stripe_id"] and item["class"] == PAYOUT_MISMATCH:  # the payout's late webhook
        payout = conn.execute(
            select(payouts.c.payout_id, payouts.c.version).where(
                payouts.c.provider == matching.PROVIDER, payouts.c.provider_payout_id == item["stripe_id"]
            )
        ).first()
        return [{"id": payout.payout_id, "version": payout.version}] if payout else []
    else:
        return []
    row = conn.execute(query).first()
    return [{"id": row.payment_id, "version": row.version}] if row else []


def _open_classes(items: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The report's `classes`: how many of its items are open, per class. The run records its
    summary before its items' statuses are known (an item found again may stay explained), so the
    shown counts are derived from the items, when shown and when a past report is read back."""
    counts = dict.fromkeys(CLASSES, 0)
    for item in items:
        if item["status"] == OPEN:
            counts[item["class"]] += 1
    return counts


def _in_utc(period: Period) -> Period:
    """The period in UTC, as runs are recorded and shown: ISO 8601 allows offsets up to 23:59,
    PostgreSQL's timestamps only up to 15:59. A moment UTC cannot hold is refused."""
    try:
        return Period(period.start.astimezone(UTC), period.end.astimezone(UTC))
    except OverflowError:
        raise PeriodError(period, "must be a moment UTC can hold", field="from") from None


class PeriodError(InvalidInputError):
    def __init__(self, period: Period, problem: str = "must end after it starts", *, field: str = "to") -> None:
        super().__init__(
            f"the period {problem}: {period.start.isoformat()} .. {period.end.isoformat()}",
            field=field,
        )


def past_report(app: BillingApplication, run_id: UUID) -> tuple[Report, str]:
    """A recorded run's report exactly as it was shown (its items as they stood then), read back
    from the run's events; with the run's status (`completed`, `failed`, `running`)."""
    with storage_errors_as_unavailable():
        events = list(app.repository.event_store.get(run_id))
    if not events or not isinstance(events[0], ReconciliationRun.Started):
        raise ReconciliationRunNotFoundError(run_id)
    started = events[0]
    period = Period(datetime.fromisoformat(started.period_start), datetime.fromisoformat(started.period_end))
    items: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    status = RUNNING
    for event in events[1:]:
        if isinstance(event, ReconciliationRun.ItemsFound):
            items.extend(event.items)
        elif isinstance(event, ReconciliationRun.Completed):
            summary, status = {**event.summary, "classes": _open_classes(items)}, COMPLETED
        elif isinstance(event, ReconciliationRun.Failed):
            summary, status = {"failure": event.reason, "run": str(run_id)}, FAILED
    return Report(run_id, period, started.source, summary, items), status


class ReconciliationRunNotFoundError(NotFoundError):
    def __init__(self, run_id: object) -> None:
        super().__init__(f"reconciliation run {run_id} not found")
