"""The billing application: the event store, the invoice and payment commands, and the feature
command classes composed on one command runner (`app.usage`, `app.dunning`, `app.reconciliation`,
`app.admin`, `app.mail`).

Every command, here or in a feature class, runs through `CommandRunner.execute`
(commands/runner.py): one transaction, idempotency receipts, bounded retries on a write
conflict. Each answers with an `Outcome` (result, versions left, replayed or not).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Application, ProcessingEvent, Repository
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate, Snapshot
from eventsourcing.persistence import Notification, PersistenceError, Recording
from eventsourcing.utils import Environment, EnvType

from commands.admin.users import AdminUsers
from commands.as_of import InvoicesAsOf, InvoiceTimelines, VersionIndex
from commands.dunning import DunningCommands
from commands.ingestion import money_movements as movements
from commands.ingestion.provider_events import (
    REFUSED,
    UNMATCHED,
    ProviderEvent,
    ProviderEventNotFoundError,
    ProviderEventNotReprocessableError,
    VerifiedEvent,
    WebhookRejectedError,
    provider_event_id,
)
from commands.mail.commands import MailCommands
from commands.messages import NewLine
from commands.portal.links import PortalCommands
from commands.ports import Clock, PasswordHasher, PaymentProvider
from commands.reconciliation.commands import ReconciliationCommands
from commands.runner import CommandRunner, Decision, Outcome, fold, storage_errors_as_unavailable
from commands.usage.commands import UsageCommands
from commands.work import StaleReadError, Work
from ledger.errors import (
    CurrencyMismatchError,
    DuplicatePaymentError,
    InvalidInputError,
    InvoiceNotFoundError,
    InvoiceNotPayableError,
    NotFoundError,
    PaymentNotFoundError,
    RuleViolationError,
    StoreUnavailableError,
)
from ledger.invoices import OPEN, UNCOLLECTIBLE, Invoice
from ledger.lines import Line
from ledger.money import Money
from ledger.numbering import NumberSeries, series_id
from ledger.payments import OFFLINE, Payment, offline_payment_id, payment_id_for, require_payment_reference

Handle = Callable[[Work, datetime], tuple[str, str]]


@dataclass(frozen=True)
class Undecoded:
    """An event in the log that a reader asked not to decode (see `events_after`)."""

    topic: str


@dataclass(frozen=True)
class Delivery:
    """A verified provider event to ingest, and what runs the steps it reports."""

    event: VerifiedEvent
    provider: str
    handle: Handle
    # Ids its steps will probably look up and that may well have nothing stored yet (the
    # payment a first report creates): asked about with the batch's records, in one query.
    # A guess only costs or saves a read; what the steps do does not depend on it.
    reads: tuple[UUID, ...] = ()


@dataclass(frozen=True)
class Reprocessed:
    """What handling a kept provider event again gave."""

    event_id: str
    previous_outcome: str | None  # None: it had never been handled
    outcome: str
    detail: str
    reprocessing: int  # 1 for the first time it was reprocessed

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "previous_outcome": self.previous_outcome,
            "outcome": self.outcome,
            "detail": self.detail,
            "reprocessing": self.reprocessing,
        }

    @classmethod
    def from_dict(cls, result: dict[str, Any]) -> Reprocessed:
        return cls(
            result["event_id"], result["previous_outcome"], result["outcome"], result["detail"], result["reprocessing"]
        )


@dataclass(frozen=True)
class Ingested:
    duplicate: bool  # the event had been recorded before
    outcome: str
    detail: str
    handled_now: bool = True  # False: answered from its record


logger = logging.getLogger(__name__)

AGGREGATE_CACHE_SIZE = 10_000


class BillingApplication(Application[UUID]):
    """Invoices and payments here; usage (`app.usage`, commands/usage/), dunning
    (`app.dunning`, commands/dunning.py) and reconciliation (`app.reconciliation`,
    commands/reconciliation/) in their own command classes on the same runner.
    Construct through adapters.bootstrap, which picks the store.

    `payments` gives the payment provider to the commands that ask it for something of their
    own (reconciliation's refund of a duplicate charge); None, or a callable answering None:
    none is configured. `hasher` makes and checks the dashboard users' password hashes
    (`app.admin`, commands/admin/users.py); without one nobody can be created or log in.
    `secret_key` (LEDGER_SECRET_KEY) signs the client portal's links (`app.portal`,
    commands/portal/links.py); without one the portal is off.
    """

    snapshotting_intervals = {NumberSeries: 100}  # noqa: RUF012  (the library reads it as a class attribute)

    def __init__(
        self,
        *,
        clock: Clock,
        env: EnvType | None = None,
        payments: Callable[[], PaymentProvider | None] | None = None,
        hasher: PasswordHasher | None = None,
        secret_key: str | None = None,
    ) -> None:
        super().__init__(env=env)
        self.clock = clock
        # Only number series take snapshots; they get their own repository, so loading an
        # invoice or a payment costs one query (its events), not two (snapshot, then events).
        self.series_repository: Repository[UUID] = Repository(
            event_store=self.events, snapshot_store=self.snapshots, cache_maxsize=1_000
        )
        self.runner = CommandRunner(
            clock=clock, repository=self.repository, recorder=self.recorder, mapper=self.mapper, save=self.save
        )
        self.usage = UsageCommands(self.runner)
        self.dunning = DunningCommands(self.runner)
        self.reconciliation = ReconciliationCommands(self.runner, payments)
        self.admin = AdminUsers(self.runner, hasher)
        self.mail = MailCommands(self.runner)
        self.portal = PortalCommands(self.runner, secret_key)
        self.timelines = InvoiceTimelines(self._invoice_events_after)
        self.versions: InvoicesAsOf | None = None  # see use_version_index

    def take_snapshot(self, aggregate_id: UUID, version: int | None = None, projector_func: Any = None) -> None:
        """Snapshot a number series from its own repository, starting at its last snapshot."""
        assert self.snapshots is not None
        try:
            series = self.series_repository.get(aggregate_id, version=version, projector_func=fold)
            self.snapshots.put([Snapshot.take(series)])
        except PersistenceError:
            # The library snapshots after the command committed. A snapshot only saves replay
            # time: failing here must not report a committed issue as "nothing changed".
            logger.warning("snapshot of number series %s at version %s not saved", aggregate_id, version, exc_info=True)

    def save(
        self, *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None, **kwargs: Any
    ) -> list[Recording[UUID]]:
        """The library's `save`, but an aggregate's events are collected after a plain class
        check. The library asks two runtime-checkable Protocols of every object saved
        (`DomainEventProtocol`, then `CollectEventsProtocol`): about 60 us per aggregate on
        Python 3.11, some 2.4 aggregates per webhook, paid inside group commit's write
        (docs/throughput.md §Webhook path). Anything else saved goes the library's way. The
        steps after collecting are the library's (eventsourcing 9.5.6), repeated: a test pins
        them (tests/unit/test_application_save.py), so an upgrade that changes them is read."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            else:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)
        return recordings

    def construct_repository(self) -> Repository[UUID]:
        repository = super().construct_repository()
        repository.snapshot_store = None
        return repository

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Only the settings we pass in: the library would also read the whole process
        environment (and `BILLINGAPPLICATION_*` overrides), letting a stray variable redirect
        the store or switch on POSTGRES_ENABLE_DB_FUNCTIONS behind adapters/settings.py's back."""
        settings = {
            # Keep recently used aggregates in memory and read only the events stored since
            # (fast-forward): a command on a long-lived invoice stops replaying its whole
            # history. The cache only ever holds states folded from stored events, so other
            # processes' writes are seen on the next read. bench/ measures the difference.
            "AGGREGATE_CACHE_MAXSIZE": str(AGGREGATE_CACHE_SIZE),
            **(env or {}),
            # Never off: without fast-forward a cached aggregate would miss other processes' writes.
            "AGGREGATE_CACHE_FASTFORWARD": "y",
        }
        if self.snapshotting_intervals:
            settings["IS_SNAPSHOTTING_ENABLED"] = "y"
        return Environment(name, settings)

    # ------------------------------------------------------------------------ drafts

    def create_draft(
        self,
        *,
        customer: object,
        currency: object,
        lines: Sequence[NewLine] = (),
        due_date: object = None,
        memo: object = "",
        metadata: object = None,
        series: object = "INV",
        idempotency_key: str | None = None,
    ) -> Outcome[UUID]:
        arguments = {
            "customer": customer,
            "currency": currency,
            "lines": [line.as_dict() for line in lines],
            "due_date": due_date,
            "memo": memo,
            "metadata": metadata,
            "series": series,
        }

        def decide(at: datetime) -> Decision:
            invoice = Invoice.create_draft(
                invoice_id=uuid4(),
                customer=customer,
                currency=currency,
                at=at,
                due_date=due_date,
                memo=memo,
                metadata=metadata,
                series=series,
            )
            for line in lines:
                invoice.add_line(_price(line, str(uuid4())), at=at)
            return {"invoice_id": str(invoice.id)}, [invoice]

        return self.runner.execute("create_draft", arguments, idempotency_key, decide).map(
            lambda result: UUID(result["invoice_id"])
        )

    def add_line(
        self,
        invoice_id: UUID,
        line: NewLine,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[str]:
        def decide(at: datetime) -> Decision:
            invoice = self.runner.invoice_for_update(invoice_id, expected_version)
            priced = _price(line, str(uuid4()))
            invoice.add_line(priced, at=at)
            return {"line_id": priced.line_id}, [invoice]

        arguments = {"invoice_id": invoice_id, "line": line.as_dict(), "expected_version": expected_version}
        return self.runner.execute("add_line", arguments, idempotency_key, decide).map(
            lambda result: str(result["line_id"])
        )

    def change_line(
        self,
        invoice_id: UUID,
        line_id: str,
        line: NewLine,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[None]:
        def decide(at: datetime) -> Decision:
            invoice = self.runner.invoice_for_update(invoice_id, expected_version)
            invoice.change_line(_price(line, line_id), at=at)
            return {}, [invoice]

        arguments = {
            "invoice_id": invoice_id,
            "line_id": line_id,
            "line": line.as_dict(),
            "expected_version": expected_version,
        }
        return self.runner.execute("change_line", arguments, idempotency_key, decide).map(_nothing)

    def remove_line(
        self,
        invoice_id: UUID,
        line_id: str,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[None]:
        def decide(at: datetime) -> Decision:
            invoice = self.runner.invoice_for_update(invoice_id, expected_version)
            invoice.remove_line(line_id, at=at)
            return {}, [invoice]

        arguments = {"invoice_id": invoice_id, "line_id": line_id, "expected_version": expected_version}
        return self.runner.execute("remove_line", arguments, idempotency_key, decide).map(_nothing)

    def change_details(
        self,
        invoice_id: UUID,
        *,
        customer: object = None,
        due_date: object = ...,
        memo: object = None,
        metadata: object = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[None]:
        def decide(at: datetime) -> Decision:
            invoice = self.runner.invoice_for_update(invoice_id, expected_version)
            invoice.change_details(at=at, customer=customer, due_date=due_date, memo=memo, metadata=metadata)
            return {}, [invoice]

        arguments = {
            "invoice_id": invoice_id,
            "customer": customer,
            "due_date": None if due_date is ... else due_date,
            "due_date_given": due_date is not ...,
            "memo": memo,
            "metadata": metadata,
            "expected_version": expected_version,
        }
        return self.runner.execute("change_details", arguments, idempotency_key, decide).map(_nothing)

    def delete_draft(
        self, invoice_id: UUID, *, expected_version: int | None = None, idempotency_key: str | None = None
    ) -> Outcome[None]:
        def decide(at: datetime) -> Decision:
            invoice = self.runner.invoice_for_update(invoice_id, expected_version)
            invoice.delete_draft(at=at)
            return {}, [invoice]

        arguments = {"invoice_id": invoice_id, "expected_version": expected_version}
        return self.runner.execute("delete_draft", arguments, idempotency_key, decide).map(_nothing)

    # ------------------------------------------------------------------------ lifecycle

    def issue(
        self,
        invoice_id: UUID,
        *,
        due_date: object = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[str]:
        """Open the invoice and give it the next number of its series, in one transaction."""

        def decide(at: datetime) -> Decision:
            invoice = self.runner.invoice_for_update(invoice_id, expected_version)
            series = self.runner.get(series_id(invoice.series), NumberSeries, self.series_repository)
            if series is None:
                series = NumberSeries.start(invoice.series, at=at)
            # Validate before allocating: a refused issue must not consume a number.
            invoice.issue(sequence=series.last + 1, at=at, due_date=due_date)
            series.allocate(invoice.id, at=at)
            return {"number": invoice.number}, [invoice, series]

        arguments = {"invoice_id": invoice_id, "due_date": due_date, "expected_version": expected_version}
        return self.runner.execute("issue", arguments, idempotency_key, decide).map(
            lambda result: str(result["number"])
        )

    def void(
        self, invoice_id: UUID, *, expected_version: int | None = None, idempotency_key: str | None = None
    ) -> Outcome[None]:
        def decide(at: datetime) -> Decision:
            invoice = self.runner.invoice_for_update(invoice_id, expected_version)
            invoice.void(at=at)
            return {}, [invoice]

        return self.runner.execute("void", _on_invoice(invoice_id, expected_version), idempotency_key, decide).map(
            _nothing
        )

    def mark_uncollectible(
        self, invoice_id: UUID, *, expected_version: int | None = None, idempotency_key: str | None = None
    ) -> Outcome[None]:
        def decide(at: datetime) -> Decision:
            invoice = self.runner.invoice_for_update(invoice_id, expected_version)
            invoice.mark_uncollectible(at=at)
            return {}, [invoice]

        arguments = _on_invoice(invoice_id, expected_version)
        return self.runner.execute("mark_uncollectible", arguments, idempotency_key, decide).map(_nothing)

    # ------------------------------------------------------------------------ payments

    def record_offline_payment(
        self,
        invoice_id: UUID,
        amount: Money,
        *,
        reference: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[UUID]:
        """Money received outside any processor (bank transfer, cheque): posted to the bank.

        The payment's id comes from the invoice and the `reference`, so the same reference again
        (a client's retry, with or without a key) is the payment recorded the first time; with
        another amount it is refused (DuplicatePaymentError).
        """
        payment_id = offline_payment_id(invoice_id, reference)

        def decide(at: datetime) -> Decision:
            recorded = self.runner.get(payment_id, Payment)
            if recorded is not None:  # before the version: the retry of a request that went through
                _require_same_offline_payment(recorded, amount)
                return {"payment_id": str(payment_id)}, []
            invoice = self.runner.invoice_for_update(invoice_id, expected_version)
            if str(payment_id) in invoice.payment_ids:  # recorded by another writer between our two reads
                raise StaleReadError(f"offline payment {payment_id} was recorded meanwhile")
            payment = Payment.initiate(
                payment_id=payment_id,
                invoice_id=invoice.id,
                provider=OFFLINE,
                provider_payment_id=require_payment_reference(reference),
                amount=amount,
                at=at,
            )
            payment.succeed(amount_captured=amount.amount, fee=0, charge_id=None, at=at)
            invoice.apply_payment(
                payment_id=str(payment.id), amount=amount, fee=0, cash_account=payment.cash_account, at=at
            )
            return {"payment_id": str(payment.id)}, [invoice, payment]

        arguments = {
            "invoice_id": invoice_id,
            "amount": amount.amount,
            "currency": amount.currency,
            "reference": reference,
            "expected_version": expected_version,
        }
        return self.runner.execute("record_offline_payment", arguments, idempotency_key, decide).map(
            lambda result: UUID(result["payment_id"])
        )

    def start_checkout(
        self, invoice_id: UUID, *, provider: str, session_id: str, amount: Money, expires_at: datetime
    ) -> Outcome[bool]:
        """Record a hosted payment page opened for the invoice (no money yet); False if recorded before."""

        def decide(at: datetime) -> Decision:
            invoice = self.invoice(invoice_id)
            started = invoice.start_checkout(
                provider=provider, session_id=session_id, amount=amount, expires_at=expires_at, at=at
            )
            return {"started": started}, [invoice] if started else []

        return self.runner.execute("start_checkout", {}, None, decide).map(lambda result: bool(result["started"]))

    def initiate_provider_payment(
        self, invoice_id: UUID, *, provider: str, provider_payment_id: str, amount: Money | None = None
    ) -> Outcome[UUID]:
        """A payment the provider is collecting (a PaymentIntent), before any report of its outcome."""

        def decide(at: datetime) -> Decision:
            payment_id = payment_id_for(provider, provider_payment_id)
            work = self.runner.work()
            if work.get(payment_id, Payment) is not None:
                return {"payment_id": str(payment_id)}, []
            invoice = work.invoice(invoice_id)
            if invoice.status not in (OPEN, UNCOLLECTIBLE):  # nothing to collect on a draft, void or paid invoice
                raise InvoiceNotPayableError(invoice.id, invoice.status)
            payment = movements.provider_payment(work, provider, provider_payment_id, invoice_id, amount, at)
            return {"payment_id": str(payment.id)}, work.changed

        return self.runner.execute("initiate_provider_payment", {}, None, decide).map(
            lambda result: UUID(result["payment_id"])
        )

    def record_provider_payment_succeeded(
        self,
        *,
        provider: str,
        provider_payment_id: str,
        amount_captured: Money,
        fee: int = 0,
        charge_id: str | None = None,
        invoice_id: UUID | None = None,
    ) -> Outcome[UUID]:
        """Apply captured money once, however many times the provider reports it."""

        def decide(at: datetime) -> Decision:
            work = self.runner.work()
            payment, _ = movements.payment_succeeded(
                work,
                provider=provider,
                provider_payment_id=provider_payment_id,
                amount_captured=amount_captured,
                fee=fee,
                charge_id=charge_id,
                invoice_id=invoice_id,
                at=at,
            )
            return {"payment_id": str(payment.id)}, work.changed

        return self.runner.execute("record_provider_payment_succeeded", {}, None, decide).map(
            lambda result: UUID(result["payment_id"])
        )

    def record_provider_payment_failed(
        self,
        *,
        provider: str,
        provider_payment_id: str,
        attempt_id: str,
        code: str,
        message: str,
        invoice_id: UUID | None = None,
        amount: Money | None = None,
    ) -> Outcome[bool]:
        """Record a failed attempt on the payment and its invoice, once per attempt id.

        False when there is nothing to record: the attempt is known already, or the payment
        has succeeded since (a stale failure never undoes a success).
        """

        def decide(at: datetime) -> Decision:
            work = self.runner.work()
            recorded = movements.payment_failed(
                work,
                provider=provider,
                provider_payment_id=provider_payment_id,
                attempt_id=attempt_id,
                code=code,
                message=message,
                invoice_id=invoice_id,
                amount=amount,
                at=at,
            )
            return {"recorded": recorded}, work.changed

        return self.runner.execute("record_provider_payment_failed", {}, None, decide).map(
            lambda result: bool(result["recorded"])
        )

    def record_refund(self, payment_id: UUID, *, refund_id: str, amount: int) -> Outcome[bool]:
        """Refund part or all of a payment, once per refund id. False if already recorded."""
        return self.runner.run_step(
            "record_refund",
            lambda work, at: movements.refund(work, payment_id, refund_id=refund_id, amount=amount, at=at),
        )

    def record_dispute_opened(
        self, payment_id: UUID, *, dispute_id: str, amount: int, reason: str = ""
    ) -> Outcome[bool]:
        return self.runner.run_step(
            "record_dispute_opened",
            lambda work, at: movements.open_dispute(
                work, payment_id, dispute_id=dispute_id, amount=amount, reason=reason, at=at
            ),
        )

    def record_dispute_closed(self, payment_id: UUID, *, dispute_id: str, won: bool) -> Outcome[bool]:
        return self.runner.run_step(
            "record_dispute_closed",
            lambda work, at: movements.close_dispute(work, payment_id, dispute_id=dispute_id, won=won, at=at),
        )

    def record_payout(
        self, *, provider: str, provider_payout_id: str, amount: Money, paid: bool, code: str = "", message: str = ""
    ) -> Outcome[bool]:
        """The processor paid our balance out to the bank (or the payout failed); once per payout."""
        return self.runner.run_step(
            "record_payout",
            lambda work, at: movements.payout(
                work,
                provider=provider,
                provider_payout_id=provider_payout_id,
                amount=amount,
                paid=paid,
                code=code,
                message=message,
                at=at,
            ),
        )

    # ------------------------------------------------------------------------ provider events

    def ingest_provider_event(self, event: VerifiedEvent, *, provider: str, handle: Handle) -> Ingested:
        """Record a verified provider event once and run what it reports, in one transaction.

        `handle` runs the event's steps on the attempt's `Work` and says what was done; a
        redelivery of a handled event is answered from its record and changes nothing. An event
        recorded earlier but never handled (a store written before handling joined this
        transaction) is handled now.
        """
        [outcome] = self.ingest_provider_events([Delivery(event, provider, handle)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def ingest_provider_events(self, deliveries: Sequence[Delivery]) -> list[Ingested | BaseException]:
        """Several deliveries in one transaction, in order, each as `ingest_provider_event` would
        handle it alone: a later one sees what the earlier ones did (a redelivery in the same
        batch is a duplicate). A delivery that fails unexpectedly leaves nothing and gets its
        error back; a store failure fails them all."""

        # Each delivery first looks up its own record; a new event has none: one query tells
        # which of the batch's are new, instead of one read per delivery.
        records = [provider_event_id(delivery.provider, delivery.event.event_id) for delivery in deliveries]
        records += [aggregate_id for delivery in deliveries for aggregate_id in delivery.reads]

        def decide(at: datetime) -> Decision:
            work = self.runner.work(absent_unless_stored=records)
            outcomes: list[Ingested | BaseException] = []
            to_check: list[tuple[UUID, int | None]] = []  # what the refused and unmatched ones read
            for delivery in deliveries:
                first = len(work.loads)
                outcome = _ingest(work, delivery, at)
                if isinstance(outcome, Ingested) and outcome.outcome in (REFUSED, UNMATCHED) and outcome.handled_now:
                    to_check += work.loads[first:]
                outcomes.append(outcome)
            # A refusal writes no aggregate that could collide with the writer that made it stale.
            Work.check_reads(to_check, self.runner.unchanged)
            return {"outcomes": outcomes}, work.changed

        outcomes: list[Ingested | BaseException] = self.runner.execute(
            "ingest_provider_events", {}, None, decide
        ).result["outcomes"]
        return outcomes

    def record_provider_event(self, event: VerifiedEvent, *, provider: str) -> Outcome[bool]:
        """Keep a verified provider event as received, unhandled, once. False when it was recorded
        before. (Ingestion records and handles in one transaction: `ingest_provider_event`.)"""

        def decide(at: datetime) -> Decision:
            event_key = provider_event_id(provider, event.event_id)
            if self.runner.get(event_key, ProviderEvent) is not None:
                return {"recorded": False}, []
            return {"recorded": True}, [ProviderEvent.receive(provider=provider, event=event, at=at)]

        arguments = {"provider": provider, "event_id": event.event_id}
        return self.runner.execute("record_provider_event", arguments, None, decide).map(
            lambda result: bool(result["recorded"])
        )

    def reprocess_provider_event(
        self,
        provider: str,
        event_id: str,
        *,
        decode: Callable[[str], VerifiedEvent],
        handle: Callable[[VerifiedEvent], Handle],
        idempotency_key: str | None = None,
    ) -> Outcome[Reprocessed]:
        """Handle a kept event again, as ingestion does (`handle(event)` runs its steps), and
        record what it gave beside the first attempt (`ProviderEvent.Reprocessed`).

        For an event that was unmatched, refused or never handled (the invoice it names exists
        now, a bug was fixed): its kept payload is decoded again by `decode` (the adapter's
        reader: the signature was checked when it arrived); a payload that no longer decodes is
        refused again. Every step is keyed by the provider's ids, so reprocessing never applies
        money twice; an event that was applied since is refused
        (ProviderEventNotReprocessableError, as for applied, duplicate, ignored and waiting
        ones); an id never received is ProviderEventNotFoundError.
        """

        def decide(at: datetime) -> Decision:
            work = self.runner.work()
            kept = work.get(provider_event_id(provider, event_id), ProviderEvent)
            if kept is None:
                raise ProviderEventNotFoundError(provider, event_id)
            if not kept.reprocessable:
                raise ProviderEventNotReprocessableError(event_id, kept.outcome)
            previous = kept.outcome
            try:
                event = decode(kept.payload)
            except WebhookRejectedError as error:
                outcome, detail = REFUSED, f"the kept payload no longer decodes: {error}"
            else:
                outcome, detail = _steps(work, handle(event), at)
            if outcome in (REFUSED, UNMATCHED):
                # Nothing but its record is written: a stale read would not collide (as in ingestion).
                Work.check_reads(work.loads, self.runner.unchanged)
            kept.reprocess(outcome=outcome, detail=detail, at=at)
            work.add(kept)
            result = Reprocessed(event_id, previous, outcome, detail, kept.reprocessings)
            return result.as_dict(), work.changed

        arguments = {"provider": provider, "event_id": event_id}
        return self.runner.execute("reprocess_provider_event", arguments, idempotency_key, decide).map(
            Reprocessed.from_dict
        )

    def provider_event(self, provider: str, event_id: str) -> ProviderEvent | None:
        return self.runner.get(provider_event_id(provider, event_id), ProviderEvent)

    # ------------------------------------------------------------------------ reads

    def invoice(self, invoice_id: UUID, *, version: int | None = None) -> Invoice:
        return self.runner.invoice(invoice_id, version=version)

    def changed_since(self, aggregate_id: UUID, version: int) -> bool:
        """Whether any event was stored for the aggregate after `version` (one indexed read):
        lets a reader that kept what it made of that version keep using it."""
        with storage_errors_as_unavailable():
            return bool(self.recorder.select_events(aggregate_id, gt=version, limit=1))

    def use_version_index(self, index: VersionIndex) -> None:
        """Answer `invoice_as_of` from `index` (the invoice_versions read model) and the store."""
        self.versions = InvoicesAsOf(index, self._invoice_events_between)

    def invoice_as_of(self, invoice_id: UUID, moment: datetime) -> Invoice:
        """The invoice as it stood at `moment`: its events up to the first one stamped after it,
        replayed (commands/as_of.py). With a version index (`use_version_index`): from the state
        kept nearest below the moment and the few events after it. Without one: from the
        in-process cache of recently asked invoices' histories, brought up to date with the
        events stored since (one query)."""
        if self.versions is not None:
            return self.versions.as_of(invoice_id, moment)
        return self.timelines.as_of(invoice_id, moment)

    def _invoice_events_after(self, invoice_id: UUID, version: int | None) -> list[object]:
        """The invoice's stored events after `version` (all when None), oldest first, decoded."""
        return self._invoice_events_between(invoice_id, version, None)

    def _invoice_events_between(self, invoice_id: UUID, after: int | None, upto: int | None) -> list[object]:
        """The invoice's stored events after `after` up to `upto` (None: no bound), decoded."""
        with storage_errors_as_unavailable():
            return list(self.repository.event_store.get(invoice_id, gt=after, lte=upto))

    def invoice_history(self, invoice_id: UUID) -> Iterator[Invoice.Event]:
        """The invoice's events, oldest first."""
        found = False
        with storage_errors_as_unavailable():
            events = list(self.repository.event_store.get(invoice_id))
        for event in events:
            if not isinstance(event, Invoice.Event):
                break
            found = True
            yield event
        if not found:
            raise InvoiceNotFoundError(invoice_id)

    def invoice_events(
        self, invoice_id: UUID, *, before: int | None = None, limit: int | None = None, topics: tuple[str, ...] = ()
    ) -> list[Invoice.Event]:
        """The invoice's events older than version `before` (all when None), oldest first: the
        newest `limit` of them (one indexed read, newest first, then turned around), and of
        those only the ones whose stored topic is one of `topics` (all when empty: the others
        are not decoded). A page of a long history costs what the page shows."""
        with storage_errors_as_unavailable():
            stored = self.recorder.select_events(
                invoice_id, lte=None if before is None else before - 1, desc=True, limit=limit
            )
        wanted = [record for record in reversed(stored) if not topics or record.topic in topics]
        events = [self.mapper.to_domain_event(record) for record in wanted]
        return [event for event in events if isinstance(event, Invoice.Event)]

    def payment(self, payment_id: UUID, *, version: int | None = None) -> Payment:
        payment = self.runner.get(payment_id, Payment, version=version)
        if payment is None:
            raise PaymentNotFoundError(payment_id)
        return payment

    def provider_payment(self, provider: str, provider_payment_id: str) -> Payment:
        return self.payment(payment_id_for(provider, provider_payment_id))

    def events_after(
        self, position: int, limit: int, *, topics: tuple[str, ...] | None = None
    ) -> list[tuple[int, Any]]:
        """Stored events in log order after `position` (a notification id), with their positions.

        With `topics` (prefixes such as "invoice."), only events whose topic starts with one are
        decoded; the others come as `Undecoded(topic)`, keeping their place in the log for a
        reader that must track positions but does not read them (decoding is most of a read).
        """
        with storage_errors_as_unavailable():
            notifications = self.recorder.select_notifications(start=position + 1, limit=limit)
            if topics is None:
                return [(n.id, self.mapper.to_domain_event(n)) for n in notifications]
            return [
                (n.id, self.mapper.to_domain_event(n) if n.topic.startswith(topics) else Undecoded(n.topic))
                for n in notifications
            ]

    def records_after(self, position: int, limit: int) -> Sequence[Notification]:
        """Raw stored records in log order after `position`, as stored (not decoded): the audit
        chain hashes exactly these bytes."""
        with storage_errors_as_unavailable():
            return self.recorder.select_notifications(start=position + 1, limit=limit)

    @property
    def events_table_name(self) -> str:
        """The event store's table as SQL names it (stored_events on SQLite,
        "public"."billingapplication_events" on PostgreSQL): the read models' log and audit
        verify read its rows straight through the driver. Qualified with the library's schema,
        as the library names it: a URL's search_path (libpq `options`) may leave that schema
        out, and the read models then live in another."""
        name = str(self.recorder.events_table_name)  # type: ignore[attr-defined]
        schema = getattr(getattr(self.recorder, "datastore", None), "schema", None)
        if not schema:  # SQLite: one namespace
            return name
        return ".".join('"' + part.replace('"', '""') + '"' for part in (str(schema), name))

    def head(self) -> int:
        """The position of the last stored event (0 for an empty log)."""
        with storage_errors_as_unavailable():
            return self.recorder.max_notification_id() or 0


def _on_invoice(invoice_id: UUID, expected_version: int | None) -> dict[str, Any]:
    """What a key's fingerprint covers for a command on an invoice: the expected version too, when
    one was sent (so the same key with another If-Match is another request); receipts stored
    before it was covered still replay, since an absent version adds nothing."""
    if expected_version is None:
        return {"invoice_id": invoice_id}
    return {"invoice_id": invoice_id, "expected_version": expected_version}


def _require_same_offline_payment(recorded: Payment, amount: Money) -> None:
    """The reference was recorded before: the same money is the same payment, other money is a
    clash the client must resolve (a typo in the reference, or in the amount)."""
    if (recorded.amount, recorded.currency) != (amount.amount, amount.currency):
        raise DuplicatePaymentError(
            recorded.invoice_id,
            recorded.id,
            f" with reference {recorded.provider_payment_id!r} for {recorded.amount} {recorded.currency}, "
            f"not {amount.amount} {amount.currency}",
        )


def _ingest(work: Work, delivery: Delivery, at: datetime) -> Ingested | BaseException:
    """One delivery of a batch: a duplicate is answered from its record; otherwise its steps run
    all or nothing and the event is recorded with what they did."""
    event_key = provider_event_id(delivery.provider, delivery.event.event_id)
    received = work.get(event_key, ProviderEvent)
    if received is not None and received.outcome is not None:
        return Ingested(duplicate=True, outcome=received.outcome, detail=received.detail, handled_now=False)
    try:
        outcome, detail = _steps(work, delivery.handle, at)
    except (StoreUnavailableError, PersistenceError, StaleReadError):
        raise  # the whole batch: nothing can be recorded, or it is decided again
    except Exception as error:  # this delivery alone fails (its steps were undone); the others are kept
        logger.exception("provider event %s could not be handled", delivery.event.event_id)
        return error
    duplicate = received is not None
    if received is None:
        received = ProviderEvent.receive(provider=delivery.provider, event=delivery.event, at=at)
    received.handled(outcome=outcome, detail=detail, at=at)
    work.add(received)
    return Ingested(duplicate=duplicate, outcome=outcome, detail=detail)


def _steps(work: Work, handle: Handle, at: datetime) -> tuple[str, str]:
    """Run an event's steps all or nothing: (outcome, detail), a step naming nothing we know
    being `unmatched` and a refused one `refused`. Anything else propagates, its steps undone."""
    try:
        return work.attempt(lambda: handle(work, at))
    except NotFoundError as error:
        return UNMATCHED, str(error)
    except (RuleViolationError, InvalidInputError, CurrencyMismatchError) as error:
        return REFUSED, str(error)


def _nothing(result: dict[str, Any]) -> None:
    """The result of a command that answers only with its versions."""


def _price(line: NewLine, line_id: str) -> Line:
    return Line.price(
        line_id=line_id,
        description=line.description,
        quantity=line.quantity,
        unit_amount=line.unit_amount,
        tax_rate=line.tax_rate,
    )
