"""Two read-side figures of issue 15: an invoice as of a moment, and `ledger audit verify`.

As of: one invoice of 1,000 events (created, issued, then partial payments one second apart,
bench/replay.py build_invoice), and `app.invoice_as_of` at an early moment (version 10), the
middle (version 500) and the end (version 1,000), each timed REPEATS times after WARMUP untimed
calls: p50 and p99 in milliseconds, beside the target of 5 ms. Every call goes to the store:
invoice_as_of does not use the aggregate cache (ADR 0009).

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from adapters.clock import ManualClock
from adapters.persistence import event_store_env
from adapters.read_models import _ReadModelLog, read_model_engine
from bench.procs import Gate
from bench.read_models import GenerateJob, generate
from bench.replay import START, build_invoice
from bench.report import fmt, table
from commands.application import BillingApplication
from projections.audit_chain import AuditChain, verify
from projections.runner import ProjectionRunner

INVOICE_EVENTS = 1_000
MOMENTS = (("early", 10), ("middle", 500), ("late", 1_000))
AS_OF_TARGET_MS = 5.0
VERIFY_TARGET = 150_000.0  # events/s


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


def _as_of(url: str, plan: AsOfPlan) -> list[AsOfRow]:
    clock_ = ManualClock(START - timedelta(days=3650))
    app = BillingApplication(clock=clock_, env=event_store_env(url))
    try:
        invoice_id = build_invoice(app, clock_, INVOICE_EVENTS)
        stamps: dict[int, datetime] = {e.originator_version: e.timestamp for e in app.invoice_history(invoice_id)}
        rows = []
        for name, version in MOMENTS:
            moment = stamps[version]
            row = AsOfRow(name, version)
            for _ in range(plan.warmup):
                app.invoice_as_of(invoice_id, moment)
            for _ in range(plan.repeats):
                begun = time.perf_counter()
                invoice = app.invoice_as_of(invoice_id, moment)
                row.samples_ms.append((time.perf_counter() - begun) * 1000)
            # The early moments share a timestamp with their neighbours (a save stamps them
            # together), so the state reached is the last event at that instant, not below it.
            if invoice.version < version:
                raise RuntimeError(f"as of {moment}: version {invoice.version}, expected at least {version}")
            rows.append(row)
        # The first call for an invoice in a process replays its whole history (the in-process
        # cache of commands/as_of.py is empty): a fresh application per call, untimed set-up.
        cold = AsOfRow("late, first call in a process", INVOICE_EVENTS)
        for _ in range(plan.cold):
            fresh = BillingApplication(clock=clock_, env=event_store_env(url))
            begun = time.perf_counter()
            fresh.invoice_as_of(invoice_id, stamps[INVOICE_EVENTS])
            cold.samples_ms.append((time.perf_counter() - begun) * 1000)
            fresh.close()
        rows.append(cold)
        return rows
    finally:
        app.close()


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
    rows = _as_of(as_of_url, plan)
    verified, verify_seconds, selected, select_seconds = _verify(log_url, plan)
    return AsOfReport(backend, rows, verified, verify_seconds, selected, select_seconds)


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
                f"Audit verify: the whole chain of a {plan.events:,}-event log, beside a bare SELECT of the same rows",
                ["backend", "events", "s", "verify ev/s", "bare SELECT rows/s", "ratio", "target", "vs target"],
                verify_rows,
            ),
        ]
    )
