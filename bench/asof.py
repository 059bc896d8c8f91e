"""Two read-side figures of issue 15: an invoice as of a moment, and `ledger audit verify`.

As of: one invoice of 1,000 events (created, issued, then partial payments one second apart,
bench/replay.py build_invoice), and `app.invoice_as_of` at an early moment (version 10), the
middle (version 500) and the end (version 1,000), each timed REPEATS times after WARMUP untimed
calls: p50 and p99 in milliseconds, beside the target of 5 ms. Every call goes to the store:
invoice_as_of does not use the aggregate cache (ADR 0009). Three ways, alternated call by call:
"read model", an application given the invoice_versions read model as `ledger serve` is
(adapters/read_models.py invoice_version_index: the events to fold come in the locating
statement; projections/invoice_versions.py), caught up first; "two round trips", the same read
model with those events read from the store through the library after it (as it was before);
and "in-process cache", an application without one (commands/as_of.py InvoiceTimelines). Then the first call for the
invoice in a process: a fresh application and engine, their connections opened by a call for
another invoice. Beside them, what the read model cost to keep for this invoice: its rows per
invoice event, its kept states' bytes, and the time in its own prepare and process.

Audit verify: a log of EVENTS events (bench/read_models.py generate: invoices with lines,
payments and a refund), chained by the audit chain alone, then `verify` over the whole chain,
beside a bare SELECT of the same rows and columns through the driver (sqlite3 / psycopg,
fetchall): the ceiling of any verify that reads the log. The ratio is verify's rate over the
ceiling's.

Everything runs in this process, one step after another, on a fresh database per backend.
Alone: `python -m bench --only asof [--quick] [--backend sqlite|postgres|all]`
(--quick: 10,000 events in the log and fewer as-of calls).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import Connection, Engine, func, select

from adapters.clock import ManualClock
from adapters.persistence import event_store_env
from adapters.read_models import _ReadModelLog, invoice_version_index, read_model_engine
from bench.procs import Gate
from bench.read_models import GenerateJob, generate
from bench.replay import START, build_invoice
from bench.report import fmt, table
from commands.application import BillingApplication
from projections.audit_chain import AuditChain, verify
from projections.invoice_states import InvoiceStates
from projections.invoice_versions import STATE_INTERVAL, InvoiceVersionIndex, InvoiceVersionsProjection
from projections.runner import ProjectionRunner
from projections.tables import invoice_version_states, invoice_versions
from projections.tracked import Positioned

INVOICE_EVENTS = 1_000
MOMENTS = (("early", 10), ("middle", 500), ("late", 1_000))
AS_OF_TARGET_MS = 5.0
# psycopg prepares a statement on the server at its fifth execution on a connection; until then
# PostgreSQL plans it on each call (~1-3 ms for the as-of queries, once per pooled connection).
PREPARED_AFTER = 6
VERIFY_TARGET = 150_000.0  # events/s
# Alternated call by call: the read model as `ledger serve` has it (the events to fold in the
# locating statement), the read model with the events read from the store after it (as it was
# before: two round trips), and an application without it (the in-process cache). The summary
# (bench/summary.py) reports the rows starting with "read model".
WAYS = ("read model", "two round trips", "in-process cache")


@dataclass(frozen=True)
class AsOfPlan:
    events: int  # in the log that verify reads
    warmup: int
    repeats: int  # timed as-of calls per moment
    cold: int  # timed first calls, each in a fresh application


FULL = AsOfPlan(events=100_000, warmup=5, repeats=200, cold=20)
QUICK = AsOfPlan(events=10_000, warmup=2, repeats=30, cold=5)


@dataclass
class AsOfRow:
    moment: str
    version: int
    samples_ms: list[float] = field(default_factory=list)

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class AsOfReport:
    backend: str
    rows: list[AsOfRow]
    verified: int  # events verify chained and checked
    verify_seconds: float
    selected: int  # rows the bare SELECT read
    select_seconds: float
    write_cost: WriteCost


def _timed(
    rows: list[AsOfRow], apps: list[BillingApplication], invoice_id: UUID, moment: datetime, plan: AsOfPlan
) -> None:
    """Each application's call in turn, call by call, so that the machine's other work weighs on each alike."""
    for app in apps:
        for _ in range(plan.warmup):
            app.invoice_as_of(invoice_id, moment)
    for _ in range(plan.repeats):
        for row, app in zip(rows, apps, strict=True):
            begun = time.perf_counter()
            invoice = app.invoice_as_of(invoice_id, moment)
            row.samples_ms.append((time.perf_counter() - begun) * 1000)
            # The early moments share a timestamp with their neighbours (a save stamps them
            # together), so the state reached is the last event at that instant, not below it.
            if invoice.version < row.version:
                raise RuntimeError(f"as of {moment}: version {invoice.version}, expected at least {row.version}")


def _as_of(url: str, plan: AsOfPlan) -> tuple[list[AsOfRow], WriteCost]:
    """The read model (invoice_versions, what `ledger serve` uses) and, in the same run, the
    in-process cache (commands/as_of.py InvoiceTimelines, an application without it): warm
    calls at each moment, then first calls in a process (a fresh application, and engine)."""
    clock_ = ManualClock(START - timedelta(days=3650))
    app = BillingApplication(clock=clock_, env=event_store_env(url))
    engine = read_model_engine(url)
    try:
        invoice_id = build_invoice(app, clock_, INVOICE_EVENTS)
        stamps: dict[int, datetime] = {e.originator_version: e.timestamp for e in app.invoice_history(invoice_id)}
        cost = _write_cost(app, engine, invoice_id)
        indexed = BillingApplication(clock=clock_, env=event_store_env(url))
        indexed.use_version_index(invoice_version_index(indexed, engine))
        # The read model as it was before its events came in the locating statement: the
        # index's statement, then the events from the store through the library.
        two_trips = BillingApplication(clock=clock_, env=event_store_env(url))
        two_trips.use_version_index(InvoiceVersionIndex(engine))
        rows = []
        for name, version in MOMENTS:
            ways = [AsOfRow(f"{label}: {name}", version) for label in WAYS]
            _timed(ways, [indexed, two_trips, app], invoice_id, stamps[version], plan)
            rows.extend(ways)
        indexed.close()
        two_trips.close()
        # A first call for the invoice in a process: a fresh application and engine, their
        # connections opened and statements prepared by untimed calls for another long invoice
        # (a process that has served as-of calls before has them), nothing of this invoice in memory.
        other = build_invoice(app, clock_, 2 * STATE_INTERVAL)
        _write_cost(app, engine, other)  # the read model caught up with it
        colds = [AsOfRow(f"{label}: late, first call for it in a process", INVOICE_EVENTS) for label in WAYS]
        for _ in range(plan.cold):
            for cold, way in zip(colds, WAYS, strict=True):  # alternated, as the warm calls
                fresh = BillingApplication(clock=clock_, env=event_store_env(url))
                fresh_engine = read_model_engine(url)
                if way == WAYS[0]:
                    fresh.use_version_index(invoice_version_index(fresh, fresh_engine))
                elif way == WAYS[1]:
                    fresh.use_version_index(InvoiceVersionIndex(fresh_engine))
                for _ in range(PREPARED_AFTER):
                    fresh.invoice_as_of(other, clock_.now())
                begun = time.perf_counter()
                fresh.invoice_as_of(invoice_id, stamps[INVOICE_EVENTS])
                cold.samples_ms.append((time.perf_counter() - begun) * 1000)
                fresh_engine.dispose()
                fresh.close()
        rows.extend(colds)
        return rows, cost
    finally:
        engine.dispose()
        app.close()


@dataclass(frozen=True)
class WriteCost:
    """What the invoice_versions read model costs the projection runner for the bench's invoice."""

    events: int  # the invoice's
    version_rows: int
    state_rows: int
    state_bytes: int  # every kept state's encoding, summed
    seconds: float  # in the read model's prepare and process (the runner's shared log read and commit excluded)


class _TimedVersions(InvoiceVersionsProjection):
    """The projection, with the time spent in its own prepare and process added up."""

    seconds = 0.0

    def prepare(self, batch: Sequence[Positioned]) -> None:
        begun = time.perf_counter()
        super().prepare(batch)
        self.seconds += time.perf_counter() - begun

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        begun = time.perf_counter()
        super().process(conn, batch)
        self.seconds += time.perf_counter() - begun


def _write_cost(app: BillingApplication, engine: Engine, invoice_id: UUID) -> WriteCost:
    projection = _TimedVersions(InvoiceStates(lambda i, v: app.invoice(i, version=v)))
    runner = ProjectionRunner(engine, _ReadModelLog(app), [projection])
    runner.create_tables()
    runner.catch_up()
    seconds = projection.seconds
    key = str(invoice_id)
    with engine.connect() as conn:
        versions = conn.execute(select(func.count()).where(invoice_versions.c.invoice_id == key)).scalar_one()
        states, size = conn.execute(
            select(func.count(), func.coalesce(func.sum(func.length(invoice_version_states.c.state)), 0)).where(
                invoice_version_states.c.invoice_id == key
            )
        ).one()
    return WriteCost(app.invoice(invoice_id).version, int(versions), int(states), int(size), seconds)


def _bare_select(url: str, table_name: str) -> tuple[int, float]:
    columns = f"originator_id, originator_version, topic, state FROM {table_name}"
    env = event_store_env(url)
    begun = time.perf_counter()
    if "SQLITE_DBNAME" in env:
        conn = sqlite3.connect(env["SQLITE_DBNAME"])
        rows = len(conn.execute(f"SELECT rowid, {columns} ORDER BY rowid").fetchall())
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as pg:
            rows = len(pg.execute(f"SELECT notification_id, {columns} ORDER BY notification_id").fetchall())
    return rows, time.perf_counter() - begun


def _verify(url: str, plan: AsOfPlan) -> tuple[int, float, int, float]:
    alone = Gate(multiprocessing.Lock(), multiprocessing.Barrier(1))  # nothing runs beside it
    generate(GenerateJob(url, plan.events), alone)
    app = BillingApplication(clock=ManualClock(START), env=event_store_env(url))
    engine = read_model_engine(url)
    try:
        runner = ProjectionRunner(engine, _ReadModelLog(app, topics=()), [AuditChain(app)])
        runner.create_tables()
        runner.catch_up(batch_size=10_000)
        table_name: str = app.recorder.events_table_name  # type: ignore[attr-defined]
        _bare_select(url, table_name)  # warm the page cache the same way for both
        begun = time.perf_counter()
        verdict = verify(app, engine)
        seconds = time.perf_counter() - begun
        if not verdict.ok or verdict.unchained:
            raise RuntimeError(f"audit verify on a fresh, fully chained log: {verdict}")
        selected, select_seconds = _bare_select(url, table_name)
        return verdict.count, seconds, selected, select_seconds
    finally:
        engine.dispose()
        app.close()


def run_asof(backend: str, as_of_url: str, log_url: str, plan: AsOfPlan) -> AsOfReport:
    rows, cost = _as_of(as_of_url, plan)
    verified, verify_seconds, selected, select_seconds = _verify(log_url, plan)
    return AsOfReport(backend, rows, verified, verify_seconds, selected, select_seconds, cost)


def render(reports: list[AsOfReport], plan: AsOfPlan) -> str:
    as_of = [
        [
            r.backend,
            f"{row.moment} (version {row.version:,})",
            fmt(len(row.samples_ms)),
            fmt(row.pct(0.5), 2),
            fmt(row.pct(0.99), 2),
            fmt(AS_OF_TARGET_MS, 1),
            f"{row.pct(0.99) / AS_OF_TARGET_MS:.1f}x" if row.pct(0.99) > AS_OF_TARGET_MS else "met",
        ]
        for r in reports
        for row in r.rows
    ]
    costs = [
        [
            r.backend,
            fmt(r.write_cost.events),
            f"{r.write_cost.version_rows / r.write_cost.events:.2f}",
            f"{r.write_cost.state_rows / r.write_cost.events:.3f}",
            fmt(r.write_cost.state_bytes / 1024, 1),
            fmt(r.write_cost.seconds * 1e6 / r.write_cost.events),
        ]
        for r in reports
    ]
    verify_rows = []
    for r in reports:
        rate = r.verified / r.verify_seconds
        ceiling = r.selected / r.select_seconds
        verify_rows.append(
            [
                r.backend,
                fmt(r.verified),
                fmt(r.verify_seconds, 2),
                fmt(rate),
                fmt(ceiling),
                f"{rate / ceiling:.2f}",
                fmt(VERIFY_TARGET),
                "met" if rate >= VERIFY_TARGET else f"{VERIFY_TARGET / rate:.1f}x short",
            ]
        )
    return "\n\n".join(
        [
            table(
                f"Invoice as of a moment: app.invoice_as_of, {INVOICE_EVENTS:,}-event invoice, "
                f"{plan.repeats} calls per moment (ms)",
                ["backend", "moment", "calls", "p50", "p99", "target", "p99 vs target"],
                as_of,
                left=2,
            ),
            table(
                "The invoice_versions read model's write cost: the bench's invoice, its own prepare and process",
                ["backend", "invoice events", "version rows/event", "state rows/event", "states KiB", "us/event"],
                costs,
            ),
            table(
                f"Audit verify: the whole chain of a {plan.events:,}-event log, beside a bare SELECT of the same rows",
                ["backend", "events", "s", "verify ev/s", "bare SELECT rows/s", "ratio", "target", "vs target"],
                verify_rows,
            ),
        ]
    )
