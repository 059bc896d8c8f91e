"""Read models: rebuild throughput, the log's raw read rate, follow latency, memory, audit, as_of.

The log is generated in memory (Invoice and Payment aggregates driven by their own methods on a
ManualClock) and saved in large chunks, not one command per event. Per invoice: created, two
lines, issued, three offline payments (payment initiated + succeeded, invoice payment applied)
and one refund (payment refunded + invoice refund applied): 15 events, most of them postings.

Each measurement runs in its own spawned process (bench.procs), so its peak RSS (VmHWM) is its own.
Alone: `python -m bench --only read-models [--events N] [--backend sqlite]` (default 1,000,000 events; --quick a tenth).
"""

from __future__ import annotations

import resource
import sqlite3
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import uuid4

from adapters.clock import ManualClock, SystemClock
from adapters.parallel_rebuild import rebuild_read_models
from adapters.persistence import event_store_env
from adapters.read_models import projection_runner, read_model_engine
from adapters.settings import Settings
from bench.procs import Gate, Measured, clock, run_workers
from bench.profiling import Top, render_top
from bench.replay import START, build_invoice
from bench.report import fmt, table
from bench.workloads import CUSTOMER, LINES, PAYMENT
from bench.write_floor import Floor
from commands.application import BillingApplication, _price
from ledger.invoices import BANK, Invoice
from ledger.money import Money
from ledger.payments import OFFLINE, Payment
from projections.invoice_states import STATES_KEPT

DEFAULT_EVENTS = 1_000_000
LIBRARY_EVENTS = 25_005  # the library's per-event runner reads only this prefix: ~2,000 events/s
EVENTS_PER_INVOICE = 15
CHUNK_INVOICES = 300  # aggregates saved per app.save: ~4,500 events per transaction
READ_BATCH = 10_000
REBUILD_BATCH = 5_000
FOLLOW_SAMPLES = 100
FOLLOW_POLL_SECONDS = 0.01
FOLLOW_NOTIFY_POLL_SECONDS = 30.0  # the fallback only: NOTIFY wakes the follower
AS_OF_REPEATS = 20
FLOOR_CASE = "write floor: bare SELECT + parse the log, write the rebuilt rows, no read-model logic"
TARGETS = {  # per backend: rebuild events/s, audit verify events/s, as_of ms
    "sqlite": {"rebuild": 60_000.0, "verify": 150_000.0, "as_of": 5.0},  # issue 15's targets
    "postgres": {"rebuild": 40_000.0, "verify": 150_000.0, "as_of": 5.0},
}


def _app(url: str, clock_: Any = None) -> BillingApplication:
    return BillingApplication(clock=clock_ or SystemClock(), env=event_store_env(url))


def _say(backend: str, what: str) -> None:
    print(f"  [{backend}] read models: {what}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the log


@dataclass(frozen=True)
class GenerateJob:
    url: str
    events: int  # at least this many new events (whole invoices)
    start_offset_days: int = 0  # later chunks continue the clock where earlier ones stopped
    sequence_from: int = 1


def _invoice_with_history(clock_: ManualClock, sequence: int) -> list[Any]:
    at = clock_.advance(timedelta(seconds=1))
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency="usd", at=at)
    for line in LINES:
        invoice.add_line(_price(line, str(uuid4())), at=at)
    invoice.issue(sequence=sequence, at=clock_.advance(timedelta(seconds=1)))
    aggregates: list[Any] = [invoice]
    payments: list[Payment] = []
    for _ in range(3):
        at = clock_.advance(timedelta(seconds=1))
        payment = Payment.initiate(
            payment_id=uuid4(),
            invoice_id=invoice.id,
            provider=OFFLINE,
            provider_payment_id="manual",
            amount=PAYMENT,
            at=at,
        )
        payment.succeed(amount_captured=PAYMENT.amount, fee=0, charge_id=None, at=at)
        invoice.apply_payment(payment_id=str(payment.id), amount=PAYMENT, fee=0, cash_account=BANK, at=at)
        payments.append(payment)
    at = clock_.advance(timedelta(seconds=1))
    refunded = payments[0]
    refunded.refund(refund_id=f"re_{sequence}", amount=PAYMENT.amount // 2, at=at)
    invoice.apply_refund(
        payment_id=str(refunded.id),
        refund_id=f"re_{sequence}",
        amount=Money(PAYMENT.amount // 2, "usd"),
        cash_account=BANK,
        at=at,
    )
    aggregates.extend(payments)
    return aggregates


def generate(job: GenerateJob, gate: Gate) -> Measured:
    clock_ = ManualClock(START + timedelta(days=job.start_offset_days))
    app = _app(job.url, clock_)
    gate.ready()
    started = clock()
    invoices = -(-job.events // EVENTS_PER_INVOICE)
    sequence = job.sequence_from
    while invoices > 0:
        chunk: list[Any] = []
        for _ in range(min(CHUNK_INVOICES, invoices)):
            chunk.extend(_invoice_with_history(clock_, sequence))
            sequence += 1
        invoices -= min(CHUNK_INVOICES, invoices)
        app.save(*chunk)
    finished = clock()
    head = app.head()
    app.close()
    return Measured(head, started, finished, extra={"head": head, "next_sequence": sequence})


# ------------------------------------------------------------------------------ the cases


@dataclass(frozen=True)
class CaseJob:
    url: str
    case: str  # "rebuild" | "read" | "verify" | "as_of" | "follow" | "follow_notify"


def _rebuild(url: str, gate: Gate) -> Measured:
    app = _app(url)
    engine = read_model_engine(url)
    projection_runner(app, engine)  # the tables migrated, as a server's start does before any rebuild
    head = app.head()
    engine.dispose()
    app.close()
    gate.ready()
    started = clock()
    # As `ledger rebuild` does by default (two processes on a machine of 2 cores or more, from a
    # log of 50,000 events; the table says how many ran), its own
    # application and connections opened (and closed) within the time.
    rebuilt = rebuild_read_models(Settings(database_url=url), batch_size=REBUILD_BATCH)
    finished = clock()
    # The largest replaying child's peak resident set (0 with one process): the rebuild's peak
    # is the larger of it and this process's.
    children = int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return Measured(
        head,
        started,
        finished,
        extra={"applied": rebuilt.applied, "processes": rebuilt.processes, "children_peak_kib": children},
    )


def _rebuild_peak_mib(m: Measured) -> float:
    """The rebuild's peak resident set: its own process's or its largest child's."""
    return max(m.peak_rss_kib, m.extra["children_peak_kib"]) / 1024


def _read(url: str, gate: Gate) -> Measured:
    app = _app(url)
    head = app.head()
    gate.ready()
    figures: dict[str, tuple[int, float]] = {}
    begun = clock()
    position, rows = 0, 0
    while True:
        batch = app.recorder.select_notifications(start=position + 1, limit=READ_BATCH)
        if not batch:
            break
        rows += len(batch)
        position = batch[-1].id
    figures["recorder.select_notifications, 10,000/batch, not decoded"] = (rows, clock() - begun)
    begun = clock()
    position, rows = 0, 0
    while True:
        decoded = app.events_after(position, READ_BATCH)
        if not decoded:
            break
        rows += len(decoded)
        position = decoded[-1][0]
    figures["app.events_after, 10,000/batch, decoded (JSON -> events)"] = (rows, clock() - begun)
    env = event_store_env(url)
    table_name = app.recorder.events_table_name  # type: ignore[attr-defined]
    app.close()
    columns = "originator_id, originator_version, topic, state FROM " + table_name
    begun = clock()
    if "SQLITE_DBNAME" in env:
        conn = sqlite3.connect(env["SQLITE_DBNAME"])
        rows = len(conn.execute(f"SELECT rowid, {columns} ORDER BY rowid").fetchall())
        conn.close()
        figures["bare SELECT of the events table (sqlite3, fetchall)"] = (rows, clock() - begun)
    else:
        import psycopg

        with psycopg.connect(url) as pg:
            rows = len(pg.execute(f"SELECT notification_id, {columns} ORDER BY notification_id").fetchall())
        figures["bare SELECT of the events table (psycopg, fetchall)"] = (rows, clock() - begun)
    return Measured(head, begun, clock(), extra={"figures": figures})


def _write_floor(url: str, gate: Gate) -> Measured:
    """bench/write_floor.py: the log read and parsed, the rebuilt rows written, no read-model logic."""
    from bench.write_floor import postgres_floor, sqlite_floor

    app = _app(url)
    env = event_store_env(url)
    table_name = app.recorder.events_table_name  # type: ignore[attr-defined]
    app.close()
    gate.ready()
    started = clock()
    if "SQLITE_DBNAME" in env:
        floor = sqlite_floor(env["SQLITE_DBNAME"], table_name)
    else:
        floor = postgres_floor(url, table_name)
    return Measured(floor.events, started, clock(), extra={"floor": floor})


def _verify(url: str, gate: Gate) -> Measured:
    from projections.audit_chain import verify

    app = _app(url)
    engine = read_model_engine(url)
    gate.ready()
    started = clock()
    verdict = verify(app, engine)
    finished = clock()
    engine.dispose()
    app.close()
    if not verdict.ok:
        raise RuntimeError(f"audit verify failed on a fresh log: {verdict}")
    return Measured(verdict.count, started, finished)


def _as_of(url: str, gate: Gate) -> Measured:
    clock_ = ManualClock(START - timedelta(days=3650))
    app = _app(url, clock_)
    invoice_id = build_invoice(app, clock_, 1_000)
    end = clock_.now()
    gate.ready()
    started = clock()
    samples = []
    for _ in range(AS_OF_REPEATS):
        begun = time.perf_counter()
        invoice = app.invoice_as_of(invoice_id, end)
        samples.append(time.perf_counter() - begun)
    finished = clock()
    assert invoice.version == 1_000
    app.close()
    return Measured(AS_OF_REPEATS, started, finished, extra={"ms": statistics.median(samples) * 1000})


def _follow(url: str, gate: Gate) -> Measured:
    return _follow_latency(url, gate, notify=False)


def _follow_notify(url: str, gate: Gate) -> Measured:
    """PostgreSQL: woken by LISTEN/NOTIFY, with a fallback poll long enough never to be what woke it."""
    return _follow_latency(url, gate, notify=True)


def _follow_latency(url: str, gate: Gate, notify: bool) -> Measured:
    from sqlalchemy import select

    from adapters.log_notifications import LogListener, Sleeper, log_waiter
    from projections.tables import invoice_status

    writer = _app(url)
    follower_app = _app(url)
    engine = read_model_engine(url)
    runner = projection_runner(follower_app, engine)
    waiter = log_waiter(follower_app, url) if notify else Sleeper()
    poll_seconds = FOLLOW_NOTIFY_POLL_SECONDS if notify else FOLLOW_POLL_SECONDS
    invoice_id = writer.create_draft(customer=CUSTOMER, currency="usd", lines=LINES).result
    writer.issue(invoice_id)
    runner.catch_up(batch_size=REBUILD_BATCH)  # the whole log first: latency is measured caught up
    stop = threading.Event()
    kwargs = {"poll_seconds": poll_seconds, "should_stop": stop.is_set, "wait": waiter.wait}
    thread = threading.Thread(target=runner.follow, kwargs=kwargs)
    thread.start()
    query = select(invoice_status.c.version).where(invoice_status.c.invoice_id == str(invoice_id))
    latencies: list[float] = []
    gate.ready()
    started = clock()
    try:
        for _ in range(FOLLOW_SAMPLES):
            writer.record_offline_payment(invoice_id, PAYMENT, reference=uuid4().hex)
            saved = time.perf_counter()
            version = writer.invoice(invoice_id).version
            while True:
                with engine.connect() as conn:
                    seen = conn.execute(query).scalar()
                if seen is not None and seen >= version:
                    break
                if time.perf_counter() - saved > 30:
                    raise RuntimeError("the follower did not show the payment within 30 s")
                time.sleep(0.001)
            latencies.append(time.perf_counter() - saved)
    finally:
        stop.set()
        waiter.interrupt()
        thread.join(timeout=30)
    finished = clock()
    timed_out = waiter.timed_out if isinstance(waiter, LogListener) else None
    waiter.close()
    engine.dispose()
    writer.close()
    follower_app.close()
    return Measured(FOLLOW_SAMPLES, started, finished, extra={"latencies": latencies, "timed_out": timed_out})


def _library(url: str, gate: Gate) -> Measured:
    """The eventsourcing library's own ProjectionRunner: a subscription thread calling a
    singledispatch `process_event` once per event, each event one transaction that inserts its
    tracking row (one row per event) into the library's tracking recorder."""
    from functools import singledispatchmethod

    from eventsourcing.domain import DomainEvent
    from eventsourcing.persistence import Tracking, TrackingRecorder
    from eventsourcing.projection import Projection, ProjectionRunner

    class LibraryApp(BillingApplication):
        name = BillingApplication.name

        def __init__(self, env: Any = None) -> None:
            super().__init__(clock=SystemClock(), env=env)

    class CountEvents(Projection[TrackingRecorder]):
        name = "bench_library_projection"

        @singledispatchmethod
        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            self.view.insert_tracking(tracking)

        @process_event.register(DomainEvent)
        def _(self, domain_event: Any, tracking: Tracking) -> None:
            self.view.insert_tracking(tracking)

    env = event_store_env(url)
    view_class: type[TrackingRecorder]
    if "SQLITE_DBNAME" in env:
        from eventsourcing.sqlite import SQLiteTrackingRecorder

        view_class = SQLiteTrackingRecorder
    else:
        from eventsourcing.postgres import PostgresTrackingRecorder

        view_class = PostgresTrackingRecorder
    app = _app(url)
    head = app.head()
    app.close()
    gate.ready()
    started = clock()
    runner = ProjectionRunner(
        application_class=LibraryApp, projection_class=CountEvents, view_class=view_class, env=env
    )
    try:
        runner.view.wait(LibraryApp.name, head, timeout=600)
        finished = clock()
    finally:
        runner.stop()
    return Measured(head, started, finished)


CASES = {
    "library": _library,
    "rebuild": _rebuild,
    "read": _read,
    "verify": _verify,
    "write_floor": _write_floor,
    "as_of": _as_of,
    "follow": _follow,
    "follow_notify": _follow_notify,
}


def run_case(job: CaseJob, gate: Gate) -> Measured:
    return CASES[job.case](job.url, gate)


def _one(body: Any, job: Any) -> Measured:
    outcome = run_workers(body, [job])
    return outcome.workers[0]


# ------------------------------------------------------------------------------ one backend


@dataclass
class ReadModelsReport:
    backend: str
    generated: list[tuple[int, float]] = field(default_factory=list)  # (events, seconds)
    rebuilds: list[tuple[int, float, float]] = field(default_factory=list)  # (events, seconds, peak RSS MiB)
    rebuild_processes: list[int] = field(default_factory=list)  # that replayed each rebuild's log
    reads: dict[str, tuple[int, float]] = field(default_factory=dict)
    verify: tuple[int, float] = (0, 0.0)
    as_of_ms: float = 0.0
    follow: list[float] = field(default_factory=list)  # seconds
    follow_notify: list[float] = field(default_factory=list)  # seconds, PostgreSQL NOTIFY (empty on SQLite)
    follow_notify_timed_out: int = 0  # waits that ran to the fallback poll: should be 0
    library: tuple[int, float, float] | None = None  # the library's per-event runner
    library_skipped: str = ""
    floor: Floor | None = None  # bench/write_floor.py, after the full rebuild
    top: Top | None = None  # --profile: a rebuild's top functions (cProfile)


def run_read_models(backend: str, url: str, events: int) -> ReadModelsReport:
    report = ReadModelsReport(backend)
    _app(url).close()  # create the event store's tables
    prefix = min(LIBRARY_EVENTS, max(events // 4, EVENTS_PER_INVOICE))
    _say(backend, f"generating {prefix:,} events")
    first = _one(generate, GenerateJob(url, prefix))
    report.generated.append((first.ops, first.finished - first.started))
    if backend == "sqlite":
        report.library_skipped = "the library's SQLite recorder does not support subscriptions"
    else:
        _say(backend, f"eventsourcing.projection.ProjectionRunner (per event), {first.ops:,} events")
        m = _one(run_case, CaseJob(url, "library"))
        report.library = (m.ops, m.finished - m.started, m.peak_rss_kib / 1024)
    small = max(events // 10, first.ops)  # 100k beside 1M: the issue's peak-memory pair (bench/summary.py)
    if small > first.ops:
        _say(backend, f"generating {small - first.ops:,} more events")
        more = _one(generate, GenerateJob(url, small - first.ops, 200, first.extra["next_sequence"]))
        report.generated.append((more.ops - first.ops, more.finished - more.started))
        first = more
    _say(backend, f"rebuild of {first.ops:,} events")
    m = _one(run_case, CaseJob(url, "rebuild"))
    report.rebuilds.append((m.ops, m.finished - m.started, _rebuild_peak_mib(m)))
    report.rebuild_processes.append(m.extra["processes"])
    _say(backend, f"generating {events - first.ops:,} more events")
    rest = _one(generate, GenerateJob(url, events - first.ops, 400, first.extra["next_sequence"]))
    report.generated.append((rest.ops - first.ops, rest.finished - rest.started))
    _say(backend, f"rebuild of {rest.ops:,} events")
    m = _one(run_case, CaseJob(url, "rebuild"))
    report.rebuilds.append((m.ops, m.finished - m.started, _rebuild_peak_mib(m)))
    report.rebuild_processes.append(m.extra["processes"])
    _say(backend, "raw read rate of the log")
    m = _one(run_case, CaseJob(url, "read"))
    report.reads = {k: (n, s) for k, (n, s) in m.extra["figures"].items()}
    _say(backend, "the rebuild's write floor (read + parse the log, write the rebuilt rows)")
    m = _one(run_case, CaseJob(url, "write_floor"))
    report.floor = m.extra["floor"]
    _say(backend, "audit verify")
    m = _one(run_case, CaseJob(url, "verify"))
    report.verify = (m.ops, m.finished - m.started)
    _say(backend, f"follow latency, {FOLLOW_SAMPLES} payments")
    m = _one(run_case, CaseJob(url, "follow"))
    report.follow = m.extra["latencies"]
    if backend == "postgres":
        _say(backend, f"follow latency with NOTIFY, {FOLLOW_SAMPLES} payments")
        m = _one(run_case, CaseJob(url, "follow_notify"))
        report.follow_notify = m.extra["latencies"]
        report.follow_notify_timed_out = m.extra["timed_out"]
    _say(backend, "invoice_as_of on a 1,000-event invoice")
    m = _one(run_case, CaseJob(url, "as_of"))
    report.as_of_ms = m.extra["ms"]
    return report


# ------------------------------------------------------------------------------ the tables


def _verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<"
    unit = "/s" if higher_is_better else " ms"
    return f"{sign}{fmt(target)}{unit} {'met' if met else 'MISSED'}"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def render(reports: list[ReadModelsReport]) -> str:
    headers = ["backend", "case", "events", "seconds", "events/s", "peak RSS MiB", "target"]
    rows: list[list[str]] = []
    notes: list[str] = []
    for r in reports:
        t = TARGETS[r.backend]
        for n, seconds in r.generated:
            rows.append([r.backend, "generate log (in-memory aggregates, chunked save)", fmt(n), fmt(seconds, 2)])
            rows[-1] += [fmt(n / seconds), "", ""]
        for (n, seconds, rss), processes in zip(r.rebuilds, r.rebuild_processes, strict=True):
            rate = n / seconds
            on = f"{processes} process{'es' * (processes > 1)}"
            rows.append(
                [
                    r.backend,
                    f"rebuild(batch_size={REBUILD_BATCH:,}), every read model, {on}",
                    fmt(n),
                    fmt(seconds, 2),
                    fmt(rate),
                    fmt(rss, 1),
                    _verdict(rate, t["rebuild"]),
                ]
            )
        if r.library is not None:
            n, seconds, rss = r.library
            rows.append(
                [
                    r.backend,
                    "eventsourcing ProjectionRunner, per event (tracking row only)",
                    fmt(n),
                    fmt(seconds, 2),
                    fmt(n / seconds),
                    fmt(rss, 1),
                    "(comparison)",
                ]
            )
        if r.library_skipped:
            rows.append([r.backend, "eventsourcing ProjectionRunner, per event", "-", "-", "-", "", "not run"])
            notes.append(f"{r.backend}: eventsourcing ProjectionRunner not run: {r.library_skipped}.")
        for label, (n, seconds) in r.reads.items():
            rows.append([r.backend, label, fmt(n), fmt(seconds, 2), fmt(n / seconds), "", "(ceiling)"])
        if r.floor is not None:
            f = r.floor
            rate = fmt(f.events / f.seconds)
            rows.append([r.backend, FLOOR_CASE, fmt(f.events), fmt(f.seconds, 2), rate, "", "(ceiling)"])
            notes.append(
                f"{r.backend}: write floor: read + parse {fmt(f.read_seconds, 2)} s, write {fmt(f.rows)} rows of "
                f"{f.tables} tables {fmt(f.write_seconds, 2)} s (bench/write_floor.py)."
            )
        n, seconds = r.verify
        rows.append([r.backend, "audit verify (whole chain)", fmt(n), fmt(seconds, 2), fmt(n / seconds), "", ""])
        rows[-1][-1] = _verdict(n / seconds, t["verify"])
    title = (
        "Read models. rebuild: rebuild_read_models(...) (`ledger rebuild`) of every read_model_projections model\n"
        "(invoice status and versions, journal, payments, dunning, emails, webhook inbox, admin users and activity,\n"
        "the reconciliation models), and the audit chain extended (never rebuilt: the larger\n"
        "rebuild chains only the events added since the smaller one);\n"
        "events/s = events in the log / seconds; as `ledger rebuild` does by default, 2 forked processes replay a log\n"
        "of 50,000 events or more on a machine of 2 cores or more (adapters/parallel_rebuild.py; each row names\n"
        "its processes). peak RSS = VmHWM of the rebuilding\n"
        "process, or the largest replaying child's maxrss where larger: not flat below the cap,\n"
        f"projections keep the latest state of up to {STATES_KEPT:,} aggregates per kind (invoice, payment)\n"
        "eventsourcing ProjectionRunner: the library's subscription thread, one process_event + transaction per event."
    )
    main = "\n".join([table(title, headers, rows, left=2), *notes])
    headers = ["backend", "measure", "p50", "p99", "max", "samples / target"]
    rows = []
    for r in reports:
        ms = [s * 1000 for s in r.follow]
        rows.append(
            [
                r.backend,
                "follow latency ms (save returned -> invoice_status row at the new version)",
                fmt(_pct(ms, 0.5), 1),
                fmt(_pct(ms, 0.99), 1),
                fmt(max(ms), 1),
                f"{len(ms)} payments, poll {FOLLOW_POLL_SECONDS} s",
            ]
        )
        if r.follow_notify:
            ms = [s * 1000 for s in r.follow_notify]
            rows.append(
                [
                    r.backend,
                    "follow latency ms, woken by LISTEN/NOTIFY (same measure)",
                    fmt(_pct(ms, 0.5), 1),
                    fmt(_pct(ms, 0.99), 1),
                    fmt(max(ms), 1),
                    f"{len(ms)} payments, fallback poll {FOLLOW_NOTIFY_POLL_SECONDS:.0f} s, "
                    f"{r.follow_notify_timed_out} waits ran to it",
                ]
            )
        rows.append(
            [
                r.backend,
                "invoice_as_of(id, end), 1,000-event invoice, ms (median)",
                fmt(r.as_of_ms, 2),
                "",
                "",
                _verdict(r.as_of_ms, TARGETS[r.backend]["as_of"], higher_is_better=False),
            ]
        )
    latency = table("Read-model latency, and a point-in-time invoice.", headers, rows, left=2)
    tops = [render_top(r.top) for r in reports if r.top is not None]
    return "\n".join([main + "\n\n" + latency, *tops])
