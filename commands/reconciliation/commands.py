"""Reconciliation's commands (`app.reconciliation`): what a run records, and how a person settles
what it found.

- `record_fees`: the processor's fees read from its balance transactions, each once
  (ledger/fees.py), in one transaction.
- `record_run` / `fail_run`: the run and every item it found, detected, reopened or fixed, in one
  transaction; the answer is the report's items as they stand after it, and the run keeps that
  same list, so a past report is shown again exactly.
- `resolve`: `apply` brings the provider's fact in through the webhook's own steps
  (commands/ingestion/money_movements.py), keyed by the provider's ids, and settles the item in
  the same transaction: a webhook for the same fact arriving later finds it recorded and changes
  nothing. `explain` settles with a person's note. `refund_duplicate` asks the provider for the
  refund first, outside any transaction (a provider call never holds the store), then settles
  the item; the refund itself reaches the ledger later, as a webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from commands.idempotency import Receipt, receipt_id_for
from commands.ingestion import money_movements as movements
from commands.ports import PaymentProvider
from commands.reconciliation.facts import Period
from commands.runner import CommandRunner, Decision, Outcome, storage_errors_as_unavailable
from commands.work import Work
from ledger.errors import InvalidDateError, InvalidInputError, ProviderConfigurationError
from ledger.fees import ProcessorFee, fee_id_for
from ledger.money import Money
from ledger.payments import SUCCEEDED, Payment, payment_id_for
from ledger.payouts import Payout, payout_id_for
from ledger.reconciliation.items import (
    APPLY,
    FIXED,
    NOTE_LIMIT,
    REFUND_DUPLICATE,
    RESOLVED,
    ApplyRefusedError,
    Difference,
    PaymentNotInLedgerError,
    ReconciliationActionError,
    ReconciliationItem,
    ReconciliationItemNotFoundError,
)
from ledger.reconciliation.runs import RUNNING, SOURCES, STRIPE, ReconciliationRun

# The provider whose facts `apply` brings in: the items' facts are Stripe's (spec'd as such).
PROVIDER = STRIPE
# Who settles an item that a run no longer finds: the ledger events that fixed it, not a person.
BY_LEDGER = "ledger"
FIXED_NOTES = {
    STRIPE: "not found again: the ledger now agrees with Stripe",
    "ledger": "not found again: the ledger's own checks now agree",
}
# What a refund_duplicate adds to the person's note (the refund's id): their note must leave room.
REFUND_NOTE_ROOM = 300

Provider = Callable[[], PaymentProvider | None]


@dataclass(frozen=True)
class FeeToRecord:
    """A fee the processor kept on one balance transaction (`amount` in ledger units)."""

    balance_transaction_id: str
    amount: Money
    source_id: str | None
    invoice_id: UUID | None


class ReconciliationCommands:
    """The reconciliation commands, run on the application's command runner. `provider` gives
    the payment provider when `refund_duplicate` needs it (None: none is configured)."""

    def __init__(self, runner: CommandRunner, provider: Provider | None = None) -> None:
        self._runner = runner
        self._provider = provider

    # ------------------------------------------------------------------------ fees

    def record_fees(self, provider: str, fees: Sequence[FeeToRecord]) -> Outcome[int]:
        """Record each fee not recorded yet (ProcessorFee, one aggregate per balance transaction)
        in one transaction; the number recorded now. Fees recorded before (by id) are skipped,
        a concurrent run's collision is retried, never doubled. A fee of 0 records nothing."""
        careful = False

        def decide(at: datetime) -> Decision:
            # The first attempt writes without reading: fees are keyed by the balance transaction,
            # so one recorded before collides, and the whole batch is decided again, reading each.
            # A run over new transactions then costs no read per fee; a rerun costs one
            # refused commit per batch.
            nonlocal careful
            work = self._runner.work()
            planned: set[UUID] = set()
            for fee in fees:
                fee_id = fee_id_for(provider, fee.balance_transaction_id)
                if fee.amount.amount == 0 or fee_id in planned:
                    continue
                if careful and work.get(fee_id, Aggregate) is not None:
                    continue
                planned.add(fee_id)
                work.add(
                    ProcessorFee.record(
                        provider=provider,
                        balance_transaction_id=fee.balance_transaction_id,
                        amount=fee.amount,
                        source_id=fee.source_id,
                        invoice_id=fee.invoice_id,
                        at=at,
                    )
                )
            careful = True
            return {"recorded": len(planned)}, work.changed

        return self._runner.execute("record_fees", {}, None, decide).map(lambda result: int(result["recorded"]))

    # ------------------------------------------------------------------------ runs

    def record_run(
        self,
        *,
        run_id: UUID,
        period: Period,
        source: str,
        requested_by: str,
        differences: Sequence[Difference],
        summary: dict[str, Any],
        fixed: Sequence[tuple[UUID, list[dict[str, Any]]]],
    ) -> Outcome[list[dict[str, Any]]]:
        """One transaction: the run (started, items found, completed); each difference detected
        (a new item) or reopened (it had been resolved; an open or explained one stays as it is);
        each `fixed` item (open or explained before, not found now) settled with action "fixed"
        by "ledger" and the events that fixed it (one resolved already is shown as it stands).

        Answers the report's items as they stand after this run, in the order given: each
        difference found, then each item this run fixed (the difference it was detected as).
        The run stores the same list. Recording a run id again answers what it stored then.
        """
        _require_run(period, source)

        def decide(at: datetime) -> Decision:
            work = self._runner.work()
            if work.get(run_id, ReconciliationRun) is not None:
                return {"items": self.run_items(run_id)}, []
            run = ReconciliationRun.start(
                run_id=run_id, start=period.start, end=period.end, source=source, requested_by=requested_by, at=at
            )
            items = [_found(work, difference, run_id, at) for difference in differences]
            found = {difference.id for difference in differences}
            note = f"{FIXED_NOTES[source]} (run {run_id})"
            for item_id, events in fixed:
                if str(item_id) not in found:
                    items += _fix(work, item_id, events, note, at)
            run.found(items, at=at)
            run.complete(summary, at=at)
            work.add(run)
            return {"items": items}, work.changed

        return self._runner.execute("record_reconciliation_run", {}, None, decide).map(_items)

    def fail_run(self, *, run_id: UUID, period: Period, source: str, requested_by: str, reason: str) -> Outcome[None]:
        """Record that the run failed (the provider could not be read, say): started and failed, in
        one transaction. A run recorded as completed or failed before stays as it is."""
        _require_run(period, source)

        def decide(at: datetime) -> Decision:
            run = self._runner.get(run_id, ReconciliationRun)
            if run is None:
                run = ReconciliationRun.start(
                    run_id=run_id, start=period.start, end=period.end, source=source, requested_by=requested_by, at=at
                )
            elif run.status != RUNNING:
                return {}, []
            run.fail(reason or "failed", at=at)
            return {}, [run]

        return self._runner.execute("fail_reconciliation_run", {}, None, decide).map(lambda _: None)

    def run(self, run_id: UUID) -> ReconciliationRun | None:
        return self._runner.get(run_id, ReconciliationRun)

    def run_items(self, run_id: UUID) -> list[dict[str, Any]]:
        """The items a run's report showed, as they stood then, from its events."""
        with storage_errors_as_unavailable():
            events = list(self._runner.repository.event_store.get(run_id))
        return [item for event in events if isinstance(event, ReconciliationRun.ItemsFound) for item in event.items]

    # ------------------------------------------------------------------------ settling

    def item(self, item_id: UUID) -> ReconciliationItem:
        item = self._runner.get(item_id, ReconciliationItem)
        if item is None:
            raise ReconciliationItemNotFoundError(item_id)
        return item

    def resolve(
        self, item_id: UUID, *, action: str, note: str, by: str, idempotency_key: str | None = None
    ) -> Outcome[dict[str, Any]]:
        """Settle an open item: `apply`, `explain` or `refund_duplicate` (see the module's
        docstring). Answers the item's JSON as the report shows it.

        Errors, with nothing stored: ReconciliationItemNotFoundError (404),
        ReconciliationActionError (422: an action the item's class or facts do not allow),
        ItemSettledError (409), ApplyRefusedError (409: the ledger cannot take the fact as it
        stands, e.g. a refund whose payment is missing here), the commands' own refusals, and
        ProviderConfigurationError when refund_duplicate has no provider configured.
        """
        arguments = {"item_id": item_id, "action": action, "note": note, "by": by}
        if action == REFUND_DUPLICATE:
            return self._refund_duplicate(item_id, note, by, arguments, idempotency_key)

        def decide(at: datetime) -> Decision:
            work = self._runner.work()
            item = _item(work, item_id)
            item.require_settleable(action, note=note, by=by)
            events = _apply(work, item, at) if action == APPLY else []
            item.settle(action=action, by=by, note=note, at=at, events=events)
            work.add(item)
            return {"item": item_json(item)}, work.changed

        return self._runner.execute("resolve_reconciliation_item", arguments, idempotency_key, decide).map(_item_of)

    def _refund_duplicate(
        self, item_id: UUID, note: str, by: str, arguments: dict[str, Any], idempotency_key: str | None
    ) -> Outcome[dict[str, Any]]:
        """Ask the provider for the refund, then settle the item with the refund's id in its note.

        Everything that would refuse the settlement is checked before the provider is asked. The
        provider's idempotency key comes from the item and the refund its facts name: a retry
        after a failed save, or two people racing, ask for the same refund and get it once.
        """
        if idempotency_key is None or self._runner.get(receipt_id_for(idempotency_key), Receipt) is None:
            item = self.item(item_id)
            item.require_settleable(REFUND_DUPLICATE, note=note, by=by, note_limit=NOTE_LIMIT - REFUND_NOTE_ROOM)
            facts = _Facts(item, REFUND_DUPLICATE)
            if facts.kind != "duplicate":
                raise ReconciliationActionError(item.cls, REFUND_DUPLICATE, "its facts name no duplicate charge")
            charge, money = facts.text("charge"), facts.money()
            payments = self._provider() if self._provider is not None else None
            if payments is None:
                raise ProviderConfigurationError(
                    "no payment provider is configured (STRIPE_API_KEY): refund_duplicate asks it for the refund"
                )
            refund_id = payments.refund_charge(
                charge_id=charge,
                amount=money.amount,
                currency=money.currency,
                # The item is the invoice's, and is reopened when it is overpaid again: the key
                # names the refund asked for (charge and amount), so that a retry or a race asks
                # for the same one, and a later duplicate for its own.
                idempotency_key=f"reconciliation-refund:{item_id}:{charge}:{money.amount}",
            )
            note = f"{note} (refund {refund_id} of charge {charge} requested from {PROVIDER})"[:NOTE_LIMIT]
        # With a key whose receipt is stored, the runner answers from it and `decide` never runs.

        def decide(at: datetime) -> Decision:
            work = self._runner.work()
            item = _item(work, item_id)
            item.settle(action=REFUND_DUPLICATE, by=by, note=note, at=at, events=[])
            work.add(item)
            return {"item": item_json(item)}, work.changed

        return self._runner.execute("resolve_reconciliation_item", arguments, idempotency_key, decide).map(_item_of)


def item_json(item: ReconciliationItem, difference: Difference | None = None) -> dict[str, Any]:
    """The report's shape of an item: the difference (as found by a run: `difference`, else as
    the item last recorded it), its status, first detection and resolution."""
    found = difference or item.found
    return {
        "id": str(item.id),
        "class": found.cls,
        "status": item.status,
        "currency": found.currency,
        "amount_ledger": found.amount_ledger,
        "amount_stripe": found.amount_stripe,
        "stripe_id": found.stripe_id,
        "invoice_id": found.invoice_id,
        "payment_id": found.payment_id,
        "explanation": found.explanation,
        "events": [dict(event) for event in found.events],
        "detected_at": item.created_on.isoformat(),
        "resolution": None if item.resolution is None else dict(item.resolution),
    }


def _items(result: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = result["items"]
    return items


def _item_of(result: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = result["item"]
    return item


def _require_run(period: Period, source: str) -> None:
    if source not in SOURCES:
        known = ", ".join(SOURCES)
        raise InvalidInputError(f"unknown reconciliation source {source!r}; one of {known}", field="source")
    if period.start.tzinfo is None or period.end.tzinfo is None:
        raise InvalidDateError("a reconciliation period needs timezone-aware bounds", field="from")
    if period.end <= period.start:
        raise InvalidDateError(
            f"the period ends ({period.end.isoformat()}) before it starts ({period.start.isoformat()})", field="to"
        )


def _item(work: Work, item_id: UUID) -> ReconciliationItem:
    item = work.get(item_id, ReconciliationItem)
    if item is None:
        raise ReconciliationItemNotFoundError(item_id)
    return item


def _found(work: Work, difference: Difference, run_id: UUID, at: datetime) -> dict[str, Any]:
    """A difference this run found: a new item, or the item it is (reopened if it had been resolved)."""
    item = work.get(UUID(difference.id), ReconciliationItem)
    if item is None:
        item = ReconciliationItem.detect(difference, run_id=str(run_id), at=at)
        work.add(item)
    elif item.reopen(difference, run_id=str(run_id), at=at):
        work.add(item)
    return item_json(item, difference)


def _fix(work: Work, item_id: UUID, events: list[dict[str, Any]], note: str, at: datetime) -> list[dict[str, Any]]:
    """An item this run could have found and did not: open or explained before, it is resolved
    by the events that fixed it; resolved already (applied, refunded, fixed by an earlier run),
    it is shown as it stands, so that a rerun of the period shows what was settled, and how."""
    item = _item(work, item_id)
    if item.status == RESOLVED:
        return [item_json(item)]
    item.settle(action=FIXED, by=BY_LEDGER, note=note, at=at, events=events)
    work.add(item)
    return [item_json(item)]


# ---------------------------------------------------------------------------- apply


class _Facts:
    """An item's `facts`, read for an action: a missing or mistyped one refuses the action."""

    def __init__(self, item: ReconciliationItem, action: str) -> None:
        self._facts = item.found.facts
        self._cls = item.cls
        self._action = action
        kind = self._facts.get("kind", "none")
        self.kind = kind if isinstance(kind, str) else "none"

    def text(self, key: str) -> str:
        value = self._facts.get(key)
        if not isinstance(value, str) or not value:
            raise ReconciliationActionError(self._cls, self._action, f"its facts have no {key}")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._facts.get(key)
        return value if isinstance(value, str) and value else None

    def money(self) -> Money:
        amount, currency = self._facts.get("amount"), self._facts.get("currency")
        if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(currency, str):
            raise ReconciliationActionError(self._cls, self._action, "its facts have no amount and currency")
        return Money(amount, currency)

    def uuid(self, key: str) -> UUID:
        try:
            return UUID(self.text(key))
        except ValueError:
            raise ReconciliationActionError(self._cls, self._action, f"its facts' {key} is not an id") from None

    def refuse(self, reason: str) -> ReconciliationActionError:
        return ReconciliationActionError(self._cls, self._action, reason)


def _apply(work: Work, item: ReconciliationItem, at: datetime) -> list[dict[str, Any]]:
    """Bring the item's fact into the ledger through the webhook's steps; the aggregates written
    ([{"id", "version"}]), or, when the ledger held the fact already, the one that holds it."""
    facts = _Facts(item, APPLY)
    appliers = {"payment": _apply_payment, "refund": _apply_refund, "dispute": _apply_dispute, "payout": _apply_payout}
    applier = appliers.get(facts.kind)
    if applier is None:
        raise facts.refuse("the provider holds nothing to bring in for it: explain it")
    holder = applier(work, facts, at)
    written = [aggregate for aggregate in work.changed if aggregate.id != item.id] or [holder]
    return [{"id": str(aggregate.id), "version": aggregate.version} for aggregate in written]


def _apply_payment(work: Work, facts: _Facts, at: datetime) -> Aggregate:
    payment, _ = movements.payment_succeeded(
        work,
        provider=PROVIDER,
        provider_payment_id=facts.text("payment_intent"),
        amount_captured=facts.money(),
        charge_id=facts.optional_text("charge"),
        invoice_id=facts.uuid("invoice_id"),
        at=at,
    )
    return payment


def _apply_refund(work: Work, facts: _Facts, at: datetime) -> Aggregate:
    refund_id, money = facts.text("refund"), facts.money()
    payment = _succeeded_payment(work, facts.text("payment_intent"), f"refund {refund_id}")
    movements.refund(work, payment.id, refund_id=refund_id, amount=money.amount, currency=money.currency, at=at)
    return payment


def _apply_dispute(work: Work, facts: _Facts, at: datetime) -> Aggregate:
    dispute_id, money, status = facts.text("dispute"), facts.money(), facts.text("status")
    if status not in ("open", "won", "lost"):
        raise facts.refuse(f"its dispute's status {status!r} is none of open, won, lost")
    payment = _succeeded_payment(work, facts.text("payment_intent"), f"dispute {dispute_id}")
    reason = facts.optional_text("reason") or ""
    if status == "open":
        movements.open_dispute(
            work, payment.id, dispute_id=dispute_id, amount=money.amount, reason=reason, currency=money.currency, at=at
        )
    else:  # opened first from the same facts when the ledger never saw it open
        movements.close_dispute(
            work,
            payment.id,
            dispute_id=dispute_id,
            won=status == "won",
            amount=money.amount,
            reason=reason,
            currency=money.currency,
            at=at,
        )
    held = payment.disputes.get(dispute_id)
    if held is None or (held["status"], held["amount"]) != (status, money.amount):
        # A closed dispute is never reopened, and a dispute's amount never changes here.
        shown = "missing" if held is None else f"{held['status']} for {held['amount']}"
        raise ApplyRefusedError(
            f"dispute {dispute_id} is {shown} in the ledger and {status} for {money.amount} at {PROVIDER}: "
            "the ledger cannot take that as it stands; explain it"
        )
    return payment


def _apply_payout(work: Work, facts: _Facts, at: datetime) -> Aggregate:
    payout_id, money, status = facts.text("payout"), facts.money(), facts.text("status")
    if status not in ("paid", "failed"):
        raise facts.refuse(f"its payout's status {status!r} is neither paid nor failed")
    movements.payout(
        work,
        provider=PROVIDER,
        provider_payout_id=payout_id,
        amount=money,
        paid=status == "paid",
        code=facts.optional_text("failure_code") or "",
        message=facts.optional_text("failure_message") or "",
        at=at,
    )
    payout = work.get(payout_id_for(PROVIDER, payout_id), Payout)
    if payout is None or payout.status != status:
        # A failed payout is never paid again.
        shown = "missing" if payout is None else payout.status
        raise ApplyRefusedError(
            f"payout {payout_id} is {shown} in the ledger and {status} at {PROVIDER}: "
            "the ledger cannot take that as it stands; explain it"
        )
    return payout


def _succeeded_payment(work: Work, provider_payment_id: str, what: str) -> Payment:
    payment = work.get(payment_id_for(PROVIDER, provider_payment_id), Payment)
    if payment is None or payment.status != SUCCEEDED:
        raise PaymentNotInLedgerError(provider_payment_id, "missing" if payment is None else payment.status, what)
    return payment
