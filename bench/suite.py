"""One backend's cases, in order: ceiling, create+issue, payments, one invoice, replay."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from bench.ceiling import RawJob, create_table, raw_inserts
from bench.procs import Outcome, run_workers
from bench.replay import ReplayJob, replay
from bench.workloads import CUSTOMER, LINES, Job, create_and_issue, make_app, pay

WRITERS = 4
TARGETS = {"sqlite": 1_000.0, "postgres": 500.0}  # payment commands/s, single writer


@dataclass(frozen=True)
class Plan:
    raw_ops: int  # one-row transactions per ceiling case
    invoices: int  # create+issue: invoices (two commands each) per case
    payments: int  # payments per case, over the pool of issued invoices
    one_invoice: int  # payments on one invoice, single writer
    bucket: int  # ... timed in buckets of this many
    shared: int  # payments on one invoice shared by 4 writers
    replay_repeats: int


FULL = Plan(raw_ops=2_000, invoices=1_000, payments=2_000, one_invoice=500, bucket=100, shared=200, replay_repeats=30)
QUICK = Plan(raw_ops=300, invoices=150, payments=300, one_invoice=100, bucket=25, shared=40, replay_repeats=3)


@dataclass(frozen=True)
class Backend:
    name: str  # "sqlite" | "postgres"
    url: str  # LEDGER_DATABASE_URL
    raw_target: str  # sqlite file path, or the PostgreSQL URL


@dataclass
class Row:
    case: str
    writers: int
    outcome: Outcome
    commands_per_op: int = 1
    ceiling: float | None = None  # raw tx/s, same writers
    target: float | None = None


@dataclass
class BackendReport:
    backend: Backend
    rows: list[Row] = field(default_factory=list)
    growth: list[tuple[int, int, float]] = field(default_factory=list)  # (events before, commands, seconds)
    growth_rss_mib: float = 0.0
    replay: dict[str, tuple[int, float]] = field(default_factory=dict)  # label -> (events, ms)
    replay_rss_mib: float = 0.0


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _say(backend: Backend, what: str) -> None:
    print(f"  [{backend.name}] {what}", file=sys.stderr, flush=True)


def _new_invoice(url: str) -> str:
    app = make_app(url)
    try:
        invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=LINES).result
        app.issue(invoice_id)
        return str(invoice_id)
    finally:
        app.close()


def _ids(outcome: Outcome) -> list[str]:
    ids: list[str] = []
    for worker in outcome.workers:
        ids.extend(worker.extra["invoice_ids"])
    return ids


def run_backend(plan: Plan, backend: Backend) -> BackendReport:
    report = BackendReport(backend)
    make_app(backend.url).close()  # create the event store's tables before writers race to
    create_table(backend.name, backend.raw_target)
    ceilings: dict[int, float] = {}
    for writers in (1, WRITERS):
        _say(backend, f"raw INSERT ceiling, {writers} writer(s)")
        jobs: list[Any] = [RawJob(backend.name, backend.raw_target, n) for n in _split(plan.raw_ops, writers)]
        outcome = run_workers(raw_inserts, jobs)
        ceilings[writers] = outcome.rate
        report.rows.append(Row("raw INSERT, 1-row tx (ceiling)", writers, outcome))
    if backend.name == "sqlite":  # what the per-commit fsync costs (not what the library configures)
        _say(backend, "raw INSERT, synchronous=NORMAL (reference)")
        outcome = run_workers(raw_inserts, [RawJob(backend.name, backend.raw_target, plan.raw_ops, "NORMAL")])
        report.rows.append(Row("raw INSERT, synchronous=NORMAL (ref.)", 1, outcome))

    pool: list[str] = []
    for writers in (1, WRITERS):
        _say(backend, f"create draft (2 lines) + issue, {writers} writer(s)")
        jobs = [Job(backend.url, n) for n in _split(plan.invoices, writers)]
        outcome = run_workers(create_and_issue, jobs)
        pool.extend(_ids(outcome))
        report.rows.append(Row("create draft + issue (per invoice)", writers, outcome, 2, ceilings[writers]))

    for writers in (1, WRITERS):
        _say(backend, f"payment on an invoice of the pool, {writers} writer(s)")
        shares = _split(plan.payments, writers)
        jobs = [Job(backend.url, n, pool[i::writers]) for i, n in enumerate(shares)]
        outcome = run_workers(pay, jobs)
        target = TARGETS[backend.name] if writers == 1 else None
        report.rows.append(Row("payment, pool of issued invoices", writers, outcome, 1, ceilings[writers], target))

    _say(backend, "payments on ONE invoice, 1 writer (growth)")
    growth = run_workers(pay, [Job(backend.url, plan.one_invoice, [_new_invoice(backend.url)], plan.bucket)])
    report.growth = growth.workers[0].extra["buckets"]
    report.growth_rss_mib = growth.peak_rss_mib
    report.rows.append(Row(f"payment, ONE invoice (+{plan.one_invoice} events)", 1, growth, 1, ceilings[1]))

    _say(backend, f"payments on ONE invoice shared by {WRITERS} writers")
    shared_id = _new_invoice(backend.url)
    jobs = [Job(backend.url, n, [shared_id]) for n in _split(plan.shared, WRITERS)]
    outcome = run_workers(pay, jobs)
    report.rows.append(Row(f"payment, ONE invoice (+{plan.shared} events)", WRITERS, outcome, 1, ceilings[WRITERS]))

    _say(backend, "replay of a 1,000-event invoice")
    replayed = run_workers(replay, [ReplayJob(backend.url, plan.replay_repeats)])
    report.replay = replayed.workers[0].extra["figures"]
    report.replay_rss_mib = replayed.peak_rss_mib
    return report
