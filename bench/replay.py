"""Replay one invoice of 1,000 events: cold `app.invoice(id)`, `invoice_as_of`, and the parts.

The invoice is created and issued through the application (4 events), then receives 996 partial
payments, one second apart, applied to the aggregate and saved in batches of 100 (the replay
only reads the invoice's own events, so no Payment aggregates are needed for it).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import CanMutateProtocol

from adapters.clock import ManualClock
from adapters.persistence import event_store_env
from bench.procs import Gate, Measured, clock
from bench.workloads import CUSTOMER, LINES, PAYMENT
from commands.application import BillingApplication
from ledger.invoices import BANK

EVENTS = 1_000
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class ReplayJob:
    url: str
    repeats: int


def build_invoice(app: BillingApplication, clock_: ManualClock, events: int) -> UUID:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=LINES).result
    app.issue(invoice_id)
    invoice = app.invoice(invoice_id)
    while invoice.version < events:
        for _ in range(min(100, events - invoice.version)):
            at = clock_.advance(timedelta(seconds=1))
            invoice.apply_payment(payment_id=str(uuid4()), amount=PAYMENT, fee=0, cash_account=BANK, at=at)
        app.save(invoice)
    return invoice_id


def project_without_check(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's project_aggregate minus its `assert isinstance(event, CanMutateProtocol)`.

    That assert is what `python -O` would strip: on Python 3.11 an isinstance check against a
    runtime-checkable Protocol walks the protocol's attributes on every call.
    """
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _median_ms(repeats: int, action: Callable[[], object]) -> float:
    samples = []
    for _ in range(repeats):
        begun = time.perf_counter()
        action()
        samples.append(time.perf_counter() - begun)
    return statistics.median(samples) * 1000


def replay(job: ReplayJob, gate: Gate) -> Measured:
    clock_ = ManualClock(START)
    app = BillingApplication(clock=clock_, env=event_store_env(job.url))
    # The same store without the aggregate cache: every read replays all 1,000 events.
    cold = BillingApplication(clock=clock_, env={**event_store_env(job.url), "AGGREGATE_CACHE_MAXSIZE": ""})
    invoice_id = build_invoice(app, clock_, EVENTS)
    assert app.invoice(invoice_id).version == EVENTS
    middle = START + timedelta(seconds=(EVENTS - 4) // 2)
    middle_events = sum(1 for e in app.invoice_history(invoice_id) if e.timestamp <= middle)
    stored = app.recorder.select_events(invoice_id)
    decoded = [app.mapper.to_domain_event(s) for s in stored]

    def apply_all() -> object:
        return project_without_check(None, decoded)

    gate.ready()
    started = clock()
    figures = {
        "app.invoice(id), cold (cache off)": (EVENTS, _median_ms(job.repeats, lambda: cold.invoice(invoice_id))),
        "app.invoice(id), cached (fast-forward, deep copy)": (
            EVENTS,
            _median_ms(job.repeats, lambda: app.invoice(invoice_id)),
        ),
        "  fetch rows (recorder.select_events)": (
            EVENTS,
            _median_ms(job.repeats, lambda: app.recorder.select_events(invoice_id)),
        ),
        "  decode rows (mapper: JSON -> events)": (
            EVENTS,
            _median_ms(job.repeats, lambda: [app.mapper.to_domain_event(s) for s in stored]),
        ),
        "  apply events (event.mutate)": (EVENTS, _median_ms(job.repeats, apply_all)),
        "  Protocol isinstance assert (library's project_aggregate)": (
            EVENTS,
            _median_ms(job.repeats, lambda: [isinstance(e, CanMutateProtocol) for e in decoded]),
        ),
        "  for comparison: cold load with the library's own projector": (
            EVENTS,
            _median_ms(job.repeats, lambda: cold.repository.get(invoice_id)),
        ),
        "app.invoice_as_of(id, middle)": (
            middle_events,
            _median_ms(job.repeats, lambda: app.invoice_as_of(invoice_id, middle)),
        ),
        "app.invoice_as_of(id, end)": (
            EVENTS,
            _median_ms(job.repeats, lambda: app.invoice_as_of(invoice_id, clock_.now())),
        ),
    }
    finished = clock()
    app.close()
    return Measured(job.repeats, started, finished, extra={"figures": figures})
