"""The timed command loops, each run inside a spawned worker with its own application."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from adapters.clock import SystemClock
from adapters.persistence import event_store_env
from bench.procs import Gate, Measured, clock
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.errors import ConcurrencyRetriesExhaustedError
from ledger.money import Money

CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}
# A large total, so that every benchmark payment is partial and the invoice stays open.
LINES = [NewLine("Platform fee", 1, 50_000_000), NewLine("Seats", "12", 2_500, "20")]
PAYMENT = Money(100, "usd")


class CountingApplication(BillingApplication):
    """The production application, counting saves refused by a concurrent writer.

    Built exactly as adapters.bootstrap builds it; only `save` is wrapped, to observe the
    optimistic-concurrency conflicts that `CommandRunner.execute` retries.
    """

    conflicts = 0

    def save(self, *objects: Any, **kwargs: Any) -> Any:
        try:
            return super().save(*objects, **kwargs)
        except IntegrityError:
            self.conflicts += 1
            raise


def make_app(url: str) -> CountingApplication:
    return CountingApplication(clock=SystemClock(), env=event_store_env(url))


@dataclass(frozen=True)
class Job:
    url: str
    ops: int
    invoice_ids: list[str] = field(default_factory=list)
    bucket: int = 0  # > 0: also time every `bucket` commands (cost growth on one invoice)


def create_and_issue(job: Job, gate: Gate) -> Measured:
    """`ops` invoices: create a draft with two lines, then issue it (two commands each)."""
    with gate.setup():
        app = make_app(job.url)
    created: list[str] = []
    exhausted = 0
    gate.ready()
    started = clock()
    for _ in range(job.ops):
        try:
            invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=LINES).result
            app.issue(invoice_id)
        except ConcurrencyRetriesExhaustedError:
            exhausted += 1
            continue
        created.append(str(invoice_id))
    finished = clock()
    app.close()
    return Measured(job.ops, started, finished, app.conflicts, exhausted, extra={"invoice_ids": created})


def pay(job: Job, gate: Gate) -> Measured:
    """`ops` partial offline payments, cycling over `invoice_ids` (one id: all on one invoice)."""
    with gate.setup():
        app = make_app(job.url)
    ids = [UUID(i) for i in job.invoice_ids]
    first_version = app.invoice(ids[0]).version if job.bucket else 0
    buckets: list[tuple[int, int, float]] = []  # (invoice version before, commands, seconds)
    exhausted = 0
    gate.ready()
    started = mark = clock()
    for n in range(job.ops):
        try:
            app.record_offline_payment(ids[n % len(ids)], PAYMENT, reference=uuid4().hex)
        except ConcurrencyRetriesExhaustedError:
            exhausted += 1
        if job.bucket and (n + 1) % job.bucket == 0:
            now = clock()
            buckets.append((first_version + n + 1 - job.bucket, job.bucket, now - mark))
            mark = now
    finished = clock()
    app.close()
    return Measured(job.ops, started, finished, app.conflicts, exhausted, extra={"buckets": buckets})
