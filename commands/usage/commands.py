"""Usage-based billing commands (`app.usage`): meters, prices, usage customers, batches of usage
records, closing a period into a draft invoice, the meter-report outbox.

Every command goes through the application's CommandRunner (commands/runner.py): one
transaction, idempotency receipts, bounded retries on a write conflict. A batch of records is
one transaction however many customers it touches. A repeated client identifier is recognised
by its record's derived id: the first attempt inserts without looking (duplicates are rare and the store refuses them
anyway); if the save collides, the retry looks each record up and answers the ones stored as
duplicates. Two writers sending the same identifier at once therefore store it once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from commands.runner import CommandRunner, Decision, Outcome, storage_errors_as_unavailable
from ledger.errors import (
    InvalidTextError,
    InvalidUsageBatchError,
    UsageCustomerExistsError,
    UsageCustomerNotFoundError,
)
from ledger.invoices import Invoice
from ledger.usage.catalog import CATALOG_ID, UsageCatalog
from ledger.usage.customers import UsageCustomer, usage_customer_id, usage_invoice_id
from ledger.usage.meter_reports import MeterReporter, reporter_id
from ledger.usage.meters import require_key
from ledger.usage.periods import moment_text
from ledger.usage.records import NewUsageRecord, UsageBatch, UsageRecord, read_records, record_id_for


@dataclass(frozen=True)
class UsageAccepted:
    """What became of each record of a batch, by its position in the request."""

    record_ids: list[UUID]
    duplicates: list[int]

    @property
    def accepted(self) -> int:
        return len(self.record_ids) - len(self.duplicates)


@dataclass(frozen=True)
class PeriodClosed:
    invoice_id: UUID
    period_start: str
    period_end: str


class UsageCommands:
    """The usage commands and reads, run on the application's command runner."""

    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner
        # Batches for one customer written by two threads of this process would only collide on
        # the customer's version and redo the loser's work; taking turns here costs nothing
        # (the store has one writer at a time anyway). Other processes still collide and retry.
        self._usage_writes = threading.Lock()

    # ------------------------------------------------------------------------ catalogue

    def define_meter(
        self,
        *,
        key: object,
        name: object,
        aggregation: object,
        event_name: object = None,
        idempotency_key: str | None = None,
    ) -> Outcome[str]:
        def decide(at: datetime) -> Decision:
            catalog = self._catalog_for_update(at)
            meter = catalog.define_meter(key=key, name=name, event_name=event_name, aggregation=aggregation, at=at)
            return {"key": meter["key"]}, [catalog]

        arguments = {"key": key, "name": name, "aggregation": aggregation, "event_name": event_name}
        return self._runner.execute("define_meter", arguments, idempotency_key, decide).map(_key)

    def define_price(
        self,
        *,
        key: object,
        meter: object,
        currency: object,
        model: object,
        terms: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> Outcome[str]:
        def decide(at: datetime) -> Decision:
            catalog = self._catalog_for_update(at)
            catalog.define_price(key=key, meter=meter, currency=currency, model=model, terms=terms, at=at)
            return {"key": key}, [catalog]

        arguments = {"key": key, "meter": meter, "currency": currency, "model": model, "terms": terms}
        return self._runner.execute("define_price", arguments, idempotency_key, decide).map(_key)

    def catalog(self) -> UsageCatalog:
        """Every meter and price (an empty catalogue before the first is defined)."""
        return self._runner.get(CATALOG_ID, UsageCatalog) or UsageCatalog.open(at=datetime.min.replace(tzinfo=UTC))

    def _catalog_for_update(self, at: datetime) -> UsageCatalog:
        return self._runner.get(CATALOG_ID, UsageCatalog) or UsageCatalog.open(at=at)

    # ------------------------------------------------------------------------ customers

    def set_up_customer(
        self,
        *,
        key: object,
        customer: object,
        currency: object,
        timezone: object,
        prices: object,
        billing_anchor_day: object = 1,
        starts_at: datetime | None = None,
        stripe_customer_id: object = None,
        idempotency_key: str | None = None,
    ) -> Outcome[str]:
        """A customer billed for usage with `prices` (catalogue keys, one per meter), in periods
        anchored on `billing_anchor_day` in `timezone`; the first period holds `starts_at` (now)."""

        def decide(at: datetime) -> Decision:
            checked = require_key(key, field="key")
            if self._runner.get(usage_customer_id(checked), UsageCustomer) is not None:
                raise UsageCustomerExistsError(checked)
            if not isinstance(prices, list):
                raise InvalidTextError("prices must be a list of price keys", field="prices")
            catalog = self.catalog()
            definitions = [
                catalog.price(require_key(p, field=f"prices[{i}]"), field=f"prices[{i}]") for i, p in enumerate(prices)
            ]
            subscribed = UsageCustomer.set_up(
                key=checked,
                customer=customer,
                currency=currency,
                timezone=timezone,
                billing_anchor_day=billing_anchor_day,
                prices=definitions,
                meters={d["meter"]: catalog.meter(d["meter"]) for d in definitions},
                starts_at=starts_at or at,
                stripe_customer_id=stripe_customer_id,
                at=at,
            )
            return {"key": checked}, [subscribed]

        arguments = {
            "key": key,
            "customer": customer,
            "currency": currency,
            "timezone": timezone,
            "prices": prices,
            "billing_anchor_day": billing_anchor_day,
            "starts_at": None if starts_at is None else starts_at.isoformat(),
            "stripe_customer_id": stripe_customer_id,
        }
        # The command's name stays as receipts already stored know it.
        return self._runner.execute("set_up_usage_customer", arguments, idempotency_key, decide).map(_key)

    def customer(self, key: str, *, version: int | None = None) -> UsageCustomer:
        found = self._runner.get(usage_customer_id(key), UsageCustomer, version=version)
        if found is None:
            raise UsageCustomerNotFoundError(key)
        return found

    # ------------------------------------------------------------------------ records

    def record(self, records: Sequence[object], *, idempotency_key: str | None = None) -> Outcome[UsageAccepted]:
        """Accept a batch: every record valid, or none stored; repeated identifiers ignored."""
        new, errors = read_records(records)
        if errors:
            raise InvalidUsageBatchError(errors)
        loaded: dict[str, int] = {}  # the customers' versions the previous attempt decided on

        def decide(at: datetime) -> Decision:
            customers = self._customers_taking(new, at)
            versions = {key: customer.version for key, customer in customers.items()}
            # The previous attempt collided. If no customer moved since, a record id did: look
            # each record up. If one moved, another batch of theirs won: try again without.
            look_up = bool(loaded) and versions == loaded
            loaded.clear()
            loaded.update(versions)
            duplicates, fresh = self._fresh(new, look_up=look_up)
            events: list[UsageRecord.Recorded] = []
            changed: list[Aggregate] = []
            for key, batch in fresh.items():
                events += customers[key].add_usage(batch, at=at)
                changed.append(customers[key])
            result: dict[str, Any] = {"duplicates": duplicates}
            if not events:
                return result, []
            carrier = UsageBatch.accept(batch_id=uuid4(), records=events, duplicates=len(duplicates), at=at)
            return result, [carrier, *changed]

        # The fingerprint only matters with a key: spare every other batch hashing its records.
        arguments = {"records": list(records)} if idempotency_key is not None else {}
        with self._usage_writes:
            outcome = self._runner.execute("record_usage", arguments, idempotency_key, decide)
        return outcome.map(
            lambda result: UsageAccepted([record.record_id for record in new], list(result["duplicates"]))
        )

    def _customers_taking(self, records: list[NewUsageRecord], at: datetime) -> dict[str, UsageCustomer]:
        customers: dict[str, UsageCustomer] = {}
        for key in {record.customer for record in records}:
            found = self._runner.get(usage_customer_id(key), UsageCustomer)
            if found is not None:
                customers[key] = found
        errors: list[dict[str, str]] = []
        for record in records:
            customer = customers.get(record.customer)
            if customer is None:
                errors.append(
                    {"field": f"records[{record.index}].customer", "message": f"no usage customer {record.customer!r}"}
                )
                continue
            refusal = customer.refusal(record, at)
            if refusal is not None:
                errors.append({"field": f"records[{record.index}].{refusal[0]}", "message": refusal[1]})
        if errors:
            raise InvalidUsageBatchError(errors)
        return customers

    def _fresh(
        self, records: list[NewUsageRecord], *, look_up: bool
    ) -> tuple[list[int], dict[str, list[NewUsageRecord]]]:
        """(positions of duplicates, new records by customer). The first of a repeated identifier wins."""
        seen: set[UUID] = set()
        duplicates: list[int] = []
        fresh: dict[str, list[NewUsageRecord]] = {}
        for record in records:
            record_id = record.record_id
            if record_id in seen or (look_up and self._record_stored(record_id)):
                duplicates.append(record.index)
                continue
            seen.add(record_id)
            fresh.setdefault(record.customer, []).append(record)
        return duplicates, fresh

    def _record_stored(self, record_id: UUID) -> bool:
        return bool(self._runner.recorder.select_events(record_id, limit=1))

    def stored_record(self, customer: str, identifier: str) -> UsageRecord | None:
        return self._runner.get(record_id_for(customer, identifier), UsageRecord)

    # ------------------------------------------------------------------------ periods

    def close_period(self, key: str, *, idempotency_key: str | None = None) -> Outcome[PeriodClosed]:
        """Close the customer's next period (it must have ended) into a draft invoice."""

        def decide(at: datetime) -> Decision:
            customer = self.customer(key)
            period = customer.next_period
            invoice_id = usage_invoice_id(customer.key, period.key)
            lines = customer.close_next_period(invoice_id=invoice_id, at=at)
            start, end = customer.local_span(period).split(" to ")
            invoice = Invoice.create_draft(
                invoice_id=invoice_id,
                customer=customer.customer,
                currency=customer.currency,
                at=at,
                memo=customer.invoice_memo(period),
                metadata={"usage_customer": customer.key, "period_start": start, "period_end": end},
            )
            for line in lines:
                invoice.add_line(line, at=at)
            result = {"invoice_id": str(invoice_id), "period_start": period.key, "period_end": moment_text(period.end)}
            return result, [customer, invoice]

        outcome = self._runner.execute("close_usage_period", {"key": key}, idempotency_key, decide)
        return outcome.map(
            lambda result: PeriodClosed(UUID(result["invoice_id"]), result["period_start"], result["period_end"])
        )

    # ------------------------------------------------------------------------ meter reports (outbox)

    def meter_reporter(self, provider: str) -> MeterReporter | None:
        return self._runner.get(reporter_id(provider), MeterReporter)

    def records_after(self, position: int, limit: int) -> list[tuple[int, UsageRecord.Recorded]]:
        """Stored usage records after log position `position`, oldest first, with their positions."""
        with storage_errors_as_unavailable():
            notifications = self._runner.recorder.select_notifications(
                start=position + 1, limit=limit, topics=[UsageRecord.Recorded.TOPIC]
            )
            decoded = [(n.id, self._runner.mapper.to_domain_event(n)) for n in notifications]
        return [(position, event) for position, event in decoded if isinstance(event, UsageRecord.Recorded)]

    def record_meter_report(
        self, provider: str, *, through: int, reported: list[str], skipped: list[dict[str, str]]
    ) -> Outcome[None]:
        def decide(at: datetime) -> Decision:
            reporter = self.meter_reporter(provider) or MeterReporter.start(provider, at=at)
            if through <= reporter.position:
                return {}, []  # another reporter recorded this stretch already
            reporter.record(through=through, reported=reported, skipped=skipped, at=at)
            return {}, [reporter]

        return self._runner.execute("record_meter_report", {}, None, decide).map(lambda result: None)


def _key(result: dict[str, Any]) -> str:
    return str(result["key"])
