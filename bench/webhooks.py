"""Stripe webhooks end to end: events/s and p50/p99 latency through `POST /webhooks/stripe`.

Server: the real API (`adapters.web_server:asgi_app`, the factory `ledger serve` uses) in a
uvicorn subprocess (bench.web.served), with STRIPE_WEBHOOK_SECRET set, on a database holding
open invoices created and issued beforehand through the application (untimed; the server's
projection follower is caught up before the load starts). Only the endpoint's HTTP contract is
relied on: a delivery signed with the secret, answered 200 `{received, duplicate, id, outcome}`.

Stream (built from Stripe's example objects, tests/fixtures/stripe_objects.json, with
tests/stripe_payloads.py): per invoice a PaymentIntent, reported by `payment_intent.succeeded` and
`charge.succeeded` (either order: the same money, applied once); for 3 invoices in 10 a partial
refund (`charge.refunded`), for 2 in 10 a declined attempt first (`payment_intent.payment_failed`),
for 2 in 10 a redelivery of the success (same id and body: a duplicate), for 2 in 10 an event type
the ledger does not act on (`customer.created`, `plan.created`). 2.9 events per invoice. One
invoice's events go out in order on one connection (Stripe's order for one object), many invoices
at once over all connections. Each request is signed in the client just before it is sent, as
Stripe signs: `Stripe-Signature: t=<now>,v1=HMAC-SHA256(secret, "<t>.<body>")`.

Load: bench.web.drive in CLIENTS processes x CONNECTIONS keep-alive connections: closed loop (max
load), then open loop at a fixed offered rate (half the measured max; and half the target, the
issue's condition for p99) with latency from when each request was due. Beside them: one-row
INSERT transactions on the same database (bench.ceiling, 1 writer), and the trivial Starlette
app answering the same signed POSTs without reading them beyond the body (the HTTP ceiling).

Check (after the server stops, through the application): every event answered 200 is recorded
and handled, the log holds exactly that many received provider events, redeliveries were answered
as duplicates, outcomes are as expected, and every invoice holds exactly the money its acknowledged
events moved (paid once, refunded once, one failed attempt).

`--profile`: a third server, instrumented (`instrumented_app`: wall and thread-CPU timers around
the verifier, the JSON parse, the awaited batch and its run on group commit's writer thread,
event-store reads, saves and their SQL/commit, the projection follower), under one connection
and under full load, on SQLite; the served app with every thread under cProfile
(bench.profiling.profiled_app), whose top functions by
cumulative CPU time are printed; and a max-load row for the app without its in-process projection
follower (`followerless_app`), the follower's cost to the write path, and one for the app with
its follower in a process of its own (LEDGER_FOLLOW_IN_PROCESS=0 and `ledger project --follow`
beside it, the follower's CPU per webhook in a note). On PostgreSQL, always: the same with 2
uvicorn workers (the server CPU column then counts both workers).

Alone: `python -m bench --only webhooks [--backend sqlite] [--quick] [--profile]`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import marshal
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from bench.ceiling import RawJob, create_table, raw_inserts
from bench.procs import Gate, Measured, Outcome, run_workers
from bench.profiling import WEBHOOK_PROFILE_PATH, Top, render_top, stats_of, top_entries, write_profile
from bench.report import fmt, table
from bench.web import CLIENTS, CONNECTIONS, TOKEN, TRIVIAL_PATH, Drive, Server, WebRow, _pct, drive, served
from bench.workloads import CUSTOMER, LINES
from commands.application import BillingApplication

SECRET = "whsec_bench_0123456789abcdefghijklmnop"
PATH = "/webhooks/stripe"
# Issue 15's targets, webhooks/s under max load with 1 worker (bench/summary.py prints them too;
# issue 11's 500/s for PostgreSQL was raised to 700 there).
TARGETS = {"sqlite": 1_000.0, "postgres": 700.0}
P99_TARGET_MS = 100.0  # at half the target rate
REFUND = 1_000  # minor units, partial
EVENTS_PER_INVOICE = 2.9
INGEST_TIMER = "ingest: group commit's batches (writer thread)"
TIMERS_PATH = "/bench/timers"  # instrumented_app: GET returns the timers, DELETE resets them
PROJECTION_THREAD = "ledger-projections"

# What the ledger may answer for each kind of delivery (the outcome; redeliveries: duplicate). Of
# the two reports of one payment, the first is applied and the second a duplicate (the same money):
# the check also counts, per invoice, that exactly one report applied the payment.
SUCCESSES = ("payment_intent.succeeded", "charge.succeeded")
KINDS: dict[str, tuple[str, ...]] = {
    "payment_intent.succeeded": ("applied", "duplicate"),
    "charge.succeeded": ("applied", "duplicate"),
    "charge.refunded": ("applied",),
    "payment_intent.payment_failed": ("applied",),
    "redelivery": ("applied", "duplicate"),  # of payment_intent.succeeded: answered as the first one was
    "unknown": ("ignored",),
}


@dataclass(frozen=True)
class WebhookPlan:
    warmup: float
    seconds: float
    invoices: int  # open invoices for the max-load run (EVENTS_PER_INVOICE deliveries each)
    raw_ops: int  # one-row INSERT transactions for the ceiling
    profile_invoices: int  # --profile: invoices per instrumented run


FULL = WebhookPlan(warmup=1.0, seconds=5.0, invoices=2_500, raw_ops=2_000, profile_invoices=800)
QUICK = WebhookPlan(warmup=0.5, seconds=2.0, invoices=800, raw_ops=300, profile_invoices=300)


def _say(backend: str, what: str) -> None:
    print(f"  [{backend}] webhooks: {what}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the stream


@dataclass(frozen=True)
class Delivery:
    event_id: str
    kind: str  # a key of KINDS
    invoice: int  # index of the invoice in its run's list
    body: bytes


def _deliveries(index: int, invoice_id: str, amount: int, tag: str) -> list[Delivery]:
    """One invoice's deliveries, in the order Stripe would send them."""
    from tests.stripe_payloads import event_payload  # the tests' payload builder: Stripe's example objects

    pi, charge = f"pi_bench{tag}{index:07d}", f"ch_bench{tag}{index:07d}"
    metadata = {"invoice_id": invoice_id}
    prefix = f"evt_bench{tag}{index:07d}"

    def event(suffix: str, kind: str, event_type: str, resource: str, **changes: Any) -> Delivery:
        body = event_payload(event_type, resource, event_id=prefix + suffix, **changes)
        return Delivery(prefix + suffix, kind, index, body)

    charge_fields: dict[str, Any] = {
        "id": charge,
        "amount": amount,
        "amount_captured": amount,
        "currency": "usd",
        "payment_intent": pi,
        "status": "succeeded",
        "paid": True,
        "captured": True,
        "metadata": metadata,
    }
    succeeded = event(
        "s",
        "payment_intent.succeeded",
        "payment_intent.succeeded",
        "payment_intent",
        id=pi,
        amount=amount,
        amount_received=amount,
        currency="usd",
        status="succeeded",
        latest_charge=charge,
        metadata=metadata,
    )
    charged = event("c", "charge.succeeded", "charge.succeeded", "charge", **charge_fields)
    out: list[Delivery] = []
    kind = index % 10
    if kind in (1, 5):
        error = {
            "charge": f"ch_benchdecline{tag}{index:07d}",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        }
        out.append(
            event(
                "f",
                "payment_intent.payment_failed",
                "payment_intent.payment_failed",
                "payment_intent",
                id=pi,
                amount=amount,
                amount_received=0,
                currency="usd",
                status="requires_payment_method",
                last_payment_error=error,
                metadata=metadata,
            )
        )
    out.extend([succeeded, charged] if index % 2 == 0 else [charged, succeeded])
    if kind in (0, 3, 6):
        refund = {
            "id": f"re_bench{tag}{index:07d}",
            "object": "refund",
            "amount": REFUND,
            "currency": "usd",
            "status": "succeeded",
            "payment_intent": pi,
            "charge": charge,
        }
        refunds = {"object": "list", "data": [refund], "has_more": False, "url": f"/v1/charges/{charge}/refunds"}
        out.append(
            event(
                "r",
                "charge.refunded",
                "charge.refunded",
                "charge",
                **charge_fields,
                amount_refunded=REFUND,
                refunded=False,
                refunds=refunds,
            )
        )
    if kind in (2, 7):
        out.append(Delivery(succeeded.event_id, "redelivery", index, succeeded.body))
    if kind == 4:
        out.append(event("u", "unknown", "customer.created", "customer", id=f"cus_bench{tag}{index:07d}"))
    if kind == 9:
        out.append(event("u", "unknown", "plan.created", "plan", id=f"price_bench{tag}{index:07d}"))
    return out


def stream(invoice_ids: list[str], amount: int, tag: str) -> list[list[Delivery]]:
    """Every invoice's deliveries, one list per invoice."""
    return [_deliveries(n, invoice_id, amount, tag) for n, invoice_id in enumerate(invoice_ids)]


def signed(head: bytes, key: bytes, body: bytes) -> bytes:
    """The request, signed now as Stripe signs (stripe.WebhookSignature's v1 scheme)."""
    t = str(int(time.time())).encode()
    v1 = hmac.new(key, t + b"." + body, hashlib.sha256).hexdigest().encode()
    return b"%sStripe-Signature: t=%s,v1=%s\r\nContent-Length: %d\r\n\r\n%s" % (head, t, v1, len(body), body)


# ------------------------------------------------------------------------------ the client side

Answer = tuple[str, str, int, int, bool, str]  # (event id, kind, invoice, status, duplicate, outcome)


class WebhookSource:
    """bench.web.Source: each connection works through one invoice's deliveries at a time, in
    order, then takes the next invoice's; records every answer (in the window or not)."""

    def __init__(self, port: int, invoices: tuple[tuple[Delivery, ...], ...], connections: int, cycle: bool) -> None:
        self._all = invoices
        self._pool = list(reversed(invoices))
        self._cycle = cycle
        self._current: list[list[Delivery]] = [[] for _ in range(connections)]
        self._inflight: list[Delivery | None] = [None] * connections
        self._head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n".encode()
        self._key = SECRET.encode()
        self.answers: list[Answer] = []

    def request(self, slot: int) -> bytes | None:
        remaining = self._current[slot]
        if not remaining:
            if not self._pool and self._cycle:
                self._pool = list(reversed(self._all))
            if not self._pool:
                return None
            remaining = self._current[slot] = list(reversed(self._pool.pop()))
        delivery = remaining.pop()
        self._inflight[slot] = delivery
        return signed(self._head, self._key, delivery.body)

    def answered(self, slot: int, status: int, response: bytes) -> None:
        delivery, self._inflight[slot] = self._inflight[slot], None
        if delivery is None or self._cycle:  # the trivial endpoint: nothing to check
            return
        duplicate, outcome = False, ""
        if status == 200:
            try:
                answer = json.loads(response[response.index(b"\r\n\r\n") + 4 :])
                duplicate, outcome = answer.get("duplicate") is True, str(answer.get("outcome"))
            except ValueError:
                outcome = "(not JSON)"
        self.answers.append((delivery.event_id, delivery.kind, delivery.invoice, status, duplicate, outcome))

    def unsent(self) -> int:
        return sum(len(s) for s in self._pool) + sum(len(s) for s in self._current)


@dataclass(frozen=True)
class WebhookJob:
    how: Drive
    invoices: tuple[tuple[Delivery, ...], ...]
    cycle: bool = False  # start over when the stream runs out (the trivial endpoint records nothing)


def webhook_load(job: WebhookJob, gate: Gate) -> Measured:
    source = WebhookSource(job.how.port, job.invoices, job.how.connections, job.cycle)
    measured = drive(job.how, source, gate)
    measured.extra["answers"] = source.answers
    measured.extra["unsent"] = source.unsent()
    return measured


# ------------------------------------------------------------------------------ one backend


@dataclass
class WebhookRow:
    case: str
    row: WebRow
    offered: float = 0.0  # open loop: requests/s offered; 0: closed loop
    # The rows whose read models a separate `ledger project --follow` keeps: that process's CPU
    # seconds over the whole measure (warm-up included), and the requests answered 200 in it.
    follower_cpu: float | None = None
    follower_requests: int = 0

    @property
    def drained(self) -> bool:
        """The stream ran out before the window's end (the figures cover a shorter window)."""
        return any(w.extra["drained"] for w in self.row.outcome.workers)

    @property
    def lag_p99_ms(self) -> float | None:
        lags = sorted(s * 1000 for w in self.row.outcome.workers for s in w.extra["lags"])
        return _pct(lags, 0.99)

    @property
    def answers(self) -> list[Answer]:
        return [a for w in self.row.outcome.workers for a in w.extra["answers"]]


@dataclass
class Check:
    acknowledged: int = 0  # distinct event ids answered 200
    recorded: int = 0  # provider events received, in the log
    unknown_to_ledger: int = 0  # acknowledged, yet not found (or never handled) by the ledger
    lost: int = 0  # answered non-200 or not at all: may or may not be recorded
    redeliveries: int = 0  # answered 200
    redeliveries_not_duplicate: int = 0
    firsts_called_duplicate: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # "kind -> outcome" when not as expected
    invoices: int = 0
    paid: int = 0
    refunded: int = 0
    failed_attempts: int = 0
    wrong_invoices: list[str] = field(default_factory=list)  # how the first few differ

    @property
    def ok(self) -> bool:
        counted = self.recorded == self.acknowledged or (
            self.acknowledged <= self.recorded <= self.acknowledged + self.lost
        )
        return (
            counted
            and not self.unknown_to_ledger
            and not self.redeliveries_not_duplicate
            and not self.firsts_called_duplicate
            and not self.outcomes
            and not self.wrong_invoices
        )


@dataclass
class WebhookReport:
    backend: str
    ceiling: float = 0.0  # raw one-row INSERT tx/s, 1 writer, same database
    rows: list[WebhookRow] = field(default_factory=list)
    check: Check = field(default_factory=Check)
    profiles: list[Timers] = field(default_factory=list)
    top: Top | None = None  # --profile: the webhook path's top functions (cProfile)


def ledger_app(url: str) -> BillingApplication:
    """The application as the server builds it (adapters.bootstrap). Not bench.workloads'
    CountingApplication: on PostgreSQL the library names the tables after the application's
    class, so a subclass would read and write a store of its own, not the server's."""
    from adapters.bootstrap import bootstrap
    from adapters.settings import Settings

    return bootstrap(Settings(database_url=url))


@dataclass(frozen=True)
class _Create:
    url: str
    count: int


def _create_and_issue(job: _Create, gate: Gate) -> Measured:
    app = ledger_app(job.url)
    gate.ready()
    began = time.monotonic()
    ids = []
    for _ in range(job.count):
        invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=LINES).result
        app.issue(invoice_id)
        ids.append(str(invoice_id))
    amount = int(app.invoice(UUID(ids[0])).amount_due) if ids else 0
    app.close()
    return Measured(job.count, began, time.monotonic(), extra={"invoice_ids": ids, "amount_due": amount})


def _open_invoices(url: str, count: int) -> tuple[list[str], int]:
    """`count` invoices created and issued through the application, in a worker process, and
    what each one is due (all alike)."""
    worker = run_workers(_create_and_issue, [_Create(url, count)]).workers[0]
    return list(worker.extra["invoice_ids"]), int(worker.extra["amount_due"])


def _call(port: int, method: str, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {body[:300]!r}")
        return body
    finally:
        conn.close()


def _catch_up(port: int) -> None:
    """A list request applies the log's backlog to the read models first: the follower is idle after it."""
    _call(port, "GET", "/api/invoices?limit=1")


def _measure(
    case: str,
    server: Server,
    plan: WebhookPlan,
    invoices: list[list[Delivery]],
    *,
    rate: float = 0.0,
    database_port: int = 0,
    clients: int = CLIENTS,
    connections: int = CONNECTIONS,
    cycle: bool = False,
) -> WebhookRow:
    jobs = [
        WebhookJob(
            Drive(
                server.port,
                server.pid,
                i,
                connections,
                plan.warmup,
                plan.seconds,
                200,
                database_port if i == 0 else 0,  # the first client samples the machine-wide figures
                rate / clients,
                i / clients,
            ),
            tuple(tuple(d) for d in invoices[i::clients]),
            cycle,
        )
        for i in range(clients)
    ]
    outcome: Outcome = run_workers(webhook_load, jobs)
    return WebhookRow(case, WebRow(case, outcome, clients, connections), rate)


def _needed(rate: float, plan: WebhookPlan) -> int:
    """Invoices enough for `rate` deliveries/s over warm-up and window, with a margin."""
    return math.ceil(rate * (plan.warmup + plan.seconds) * 1.25 / EVENTS_PER_INVOICE) + 20


def run_webhooks(backend: str, url: str, plan: WebhookPlan, profile: bool = False) -> WebhookReport:
    with tempfile.TemporaryDirectory(prefix="ledger-bench-webhooks-") as directory:
        return _run(backend, url, plan, profile, Path(directory) / "servers.log")


def _run(backend: str, url: str, plan: WebhookPlan, profile: bool, log: Path) -> WebhookReport:
    report = WebhookReport(backend)
    database = (urlsplit(url).port or 5432) if backend == "postgres" else 0
    raw_target = url if backend == "postgres" else url.removeprefix("sqlite:///")
    ledger_app(url).close()  # the event store's tables
    create_table(backend, raw_target)
    _say(backend, "raw INSERT ceiling, 1 writer")
    report.ceiling = run_workers(raw_inserts, [RawJob(backend, raw_target, plan.raw_ops)]).rate
    _say(backend, f"creating and issuing {plan.invoices:,} invoices")
    first, amount = _open_invoices(url, plan.invoices)
    env = {"LEDGER_DATABASE_URL": url, "LEDGER_API_TOKEN": TOKEN, "STRIPE_WEBHOOK_SECRET": SECRET}
    pools: dict[str, list[str]] = {"m": first}
    rows: list[WebhookRow] = []

    _say(backend, f"trivial endpoint, same signed POSTs, {plan.seconds:g} s")
    with served("bench.web:trivial_app", TRIVIAL_PATH, env, log) as server:
        fake = stream([str(UUID(int=n)) for n in range(200)], amount, "t")
        report.rows.append(
            _measure("trivial POST (HTTP ceiling)", server, plan, fake, database_port=database, cycle=True)
        )

    with served("adapters.web_server:asgi_app", "/healthz", env, log) as server:
        _catch_up(server.port)
        _say(backend, f"max load, {CLIENTS} x {CONNECTIONS} connections, {plan.seconds:g} s")
        most = _measure("max load (closed loop)", server, plan, stream(first, amount, "m"), database_port=database)
        rows.append(most)
        offers = [("half the measured max", most.row.ok_rate / 2)]
        half_target = TARGETS[backend] / 2
        offers.append(("half the target", half_target))
        for n, (label, rate) in enumerate(offers):
            if rate < 1:
                continue
            tag = f"h{n}"
            _say(backend, f"creating and issuing {_needed(rate, plan):,} invoices")
            pools[tag] = _open_invoices(url, _needed(rate, plan))[0]
            _catch_up(server.port)
            _say(backend, f"open loop at {rate:,.0f}/s ({label}), {plan.seconds:g} s")
            invoices = stream(pools[tag], amount, tag)
            rows.append(_measure(f"{label}: open loop", server, plan, invoices, rate=rate, database_port=database))
    if profile:  # what the in-process projection follower costs the write path: the same load without it
        _say(backend, f"creating and issuing {plan.invoices:,} invoices")
        pools["n"] = _open_invoices(url, plan.invoices)[0]
        with served("bench.webhooks:followerless_app", "/healthz", env, log) as server:
            _catch_up(server.port)
            _say(backend, f"max load without the in-process follower, {plan.seconds:g} s")
            invoices = stream(pools["n"], amount, "n")
            rows.append(_measure(FOLLOWERLESS, server, plan, invoices, database_port=database))
    # The follower beside the server (LEDGER_FOLLOW_IN_PROCESS=0, README's serving section):
    # with one worker under --profile; on PostgreSQL, with two workers, always (the set-up the
    # README recommends where a second worker has a core of its own).
    apart = [(1, FOLLOWER_APART)] if profile else []
    if backend == "postgres":
        apart.append((2, TWO_WORKERS))
    for workers, case in apart:
        tag = f"f{workers}"
        _say(backend, f"creating and issuing {plan.invoices:,} invoices")
        pools[tag] = _open_invoices(url, plan.invoices)[0]
        rows.append(_measure_apart(backend, case, workers, plan, env, log, stream(pools[tag], amount, tag), database))
    report.rows.extend(rows)
    _say(backend, "checking what the ledger recorded")
    report.check = verify(url, pools, amount, rows)
    if profile:
        report.profiles = profile_runs(backend, url, plan, env, log, amount)
        report.top = profile_top(backend, url, plan, env, log, amount)
    return report


# ------------------------------------------------------------------------------ the check


def verify(url: str, pools: dict[str, list[str]], amount: int, rows: list[WebhookRow]) -> Check:
    """What the ledger holds against what was acknowledged (the server has stopped)."""
    check = Check()
    tags = {f"evt_bench{tag}": tag for tag in pools}
    acknowledged: dict[str, str] = {}
    per_invoice: dict[tuple[str, int], set[str]] = {}
    applied_successes: Counter[tuple[str, int]] = Counter()
    for row in rows:
        for event_id, kind, invoice, status, duplicate, outcome in row.answers:
            if status != 200:
                check.lost += 1
                continue
            acknowledged[event_id] = kind
            tag = next(t for prefix, t in tags.items() if event_id.startswith(prefix))
            per_invoice.setdefault((tag, invoice), set()).add(kind)
            if kind == "redelivery":
                check.redeliveries += 1
                check.redeliveries_not_duplicate += not duplicate
            else:
                check.firsts_called_duplicate += duplicate
            if outcome not in KINDS[kind]:
                check.outcomes[f"{kind} -> {outcome}"] += 1
            if kind in SUCCESSES and outcome == "applied":
                applied_successes[(tag, invoice)] += 1
    check.acknowledged = len(acknowledged)
    app = ledger_app(url)
    try:
        position = 0
        while records := app.records_after(position, 1_000):
            check.recorded += sum(1 for r in records if r.topic == "provider-event.received")
            position = records[-1].id
        for event_id in acknowledged:
            kept = app.provider_event("stripe", event_id)
            check.unknown_to_ledger += kept is None or kept.outcome is None
        for tag, ids in pools.items():
            for n, invoice_id in enumerate(ids):
                kinds = per_invoice.get((tag, n), set())
                paid = bool(kinds & {"payment_intent.succeeded", "charge.succeeded", "redelivery"})
                if paid and kinds & set(SUCCESSES) and applied_successes[(tag, n)] != 1:
                    check.outcomes[f"payment applied by {applied_successes[(tag, n)]} reports"] += 1
                refunded = paid and "charge.refunded" in kinds
                failed = int("payment_intent.payment_failed" in kinds)
                expected = ("paid" if paid else "open", amount if paid else 0, REFUND if refunded else 0, failed)
                invoice = app.invoice(UUID(invoice_id))
                found = (invoice.status, invoice.amount_paid, invoice.amount_refunded, len(invoice.failed_attempts))
                check.invoices += 1
                check.paid += paid
                check.refunded += refunded
                check.failed_attempts += failed
                if found != expected and len(check.wrong_invoices) < 5:
                    check.wrong_invoices.append(f"{invoice_id}: (status, paid, refunded, failed) {found} != {expected}")
    finally:
        app.close()
    return check


# ------------------------------------------------------------------------------ the instrumented server

Stats = dict[str, list[float]]  # name -> [calls, wall seconds, thread-CPU seconds]

_STATS: Stats = {}
_STATS_LOCK = threading.Lock()


def _add(name: str, wall: float, cpu: float) -> None:
    with _STATS_LOCK:
        entry = _STATS.setdefault(name, [0.0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += wall
        entry[2] += cpu


def _timed(name: str, function: Callable[..., Any], *, request_threads_only: bool = True) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        if request_threads_only and threading.current_thread().name == PROJECTION_THREAD:
            return function(*args, **kwargs)
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - wall, time.thread_time() - cpu)

    return timed


def _timed_async(name: str, function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        wall = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - wall, 0.0)

    return timed


FOLLOWERLESS = "no in-process follower: closed loop"
FOLLOWER_APART = "follower in its own process: closed loop"
TWO_WORKERS = "2 workers, follower in its own process: closed loop"


def _measure_apart(
    backend: str,
    case: str,
    workers: int,
    plan: WebhookPlan,
    env: dict[str, str],
    log: Path,
    invoices: list[list[Delivery]],
    database: int,
) -> WebhookRow:
    """The served app with `workers` uvicorn workers and no in-process follower, and one
    `ledger project --follow` beside it on the same database; its CPU is taken around the
    whole measure (the server's, workers included, over the window as for every row)."""
    from bench.web import ROOT, _process_cpu

    apart = {**env, "LEDGER_FOLLOW_IN_PROCESS": "0"}
    command = [sys.executable, "-m", "adapters.cli", "project", "--follow"]
    with log.open("ab") as out:
        follower = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **apart, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=out
        )
    try:
        with served("adapters.web_server:asgi_app", "/healthz", apart, log, workers=workers) as server:
            for _ in range(workers * 4):  # every worker's pools and caches warm, the read models caught up
                _catch_up(server.port)
            _say(backend, f"{case.split(':')[0]}, {plan.seconds:g} s")
            before = _process_cpu(follower.pid)
            row = _measure(case, server, plan, invoices, database_port=database)
            spent = _process_cpu(follower.pid) - before
    finally:
        follower.send_signal(signal.SIGINT)
        try:
            follower.wait(timeout=30)
        except subprocess.TimeoutExpired:
            follower.kill()
            follower.wait()
    answered = sum(1 for answer in row.answers if answer[3] == 200)
    row.follower_cpu, row.follower_requests = spent, answered
    return row


def followerless_app() -> Any:
    """A uvicorn factory: the production app without its in-process projection follower (read
    models then lag until a request catches them up, or `ledger project --follow` runs beside
    it). Bench only: it measures what the follower costs the webhook path."""
    from adapters.web_server import build_app, frozen_after_start

    return frozen_after_start(build_app(follow=False))


def instrumented_app() -> Any:
    """A uvicorn factory: the production app (adapters.web_server.build_app) with timers around
    the steps of a webhook, read at GET /bench/timers and reset by DELETE /bench/timers. Bench only."""
    import adapters.stripe.webhooks as stripe_webhooks
    import adapters.web_server

    build_app = adapters.web_server.build_app

    starlette = build_app()
    services = starlette.state.services
    app = services.app
    # the route awaits its batch (no request thread); the batches run on group commit's writer thread
    ingestion = services.ingestion
    ingestion.ingest_async = _timed_async("await the batch (ingest + hand-offs)", ingestion.ingest_async)
    group = ingestion._group
    group._run_batch = _timed(INGEST_TIMER, group._run_batch)
    stripe_webhooks.read_event = _timed("  verify: typed decode (msgspec) + codec", stripe_webhooks.read_event)
    if services.webhooks is not None:
        services.webhooks.verify = _timed("verify (signature + JSON)", services.webhooks.verify)
    app.save = _timed("  Application.save", app.save)
    app.recorder.insert_events = _timed("    recorder.insert_events (SQL + commit)", app.recorder.insert_events)
    app.mapper.to_stored_event = _timed("    mapper.to_stored_event (encode)", app.mapper.to_stored_event)
    app.repository.get = _timed("  Repository.get (event-store read)", app.repository.get)
    app.recorder.select_events = _timed("    recorder.select_events (SQL)", app.recorder.select_events)
    app.mapper.to_domain_event = _timed("    mapper.to_domain_event (decode)", app.mapper.to_domain_event)
    runner = services.read_models.runner
    runner.run_once = _timed("projection follower: run_once", runner.run_once, request_threads_only=False)

    async def wrapper(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == TIMERS_PATH:
            if scope["method"] == "DELETE":
                with _STATS_LOCK:
                    _STATS.clear()
                body = b"{}"
            else:
                with _STATS_LOCK:
                    body = json.dumps(_STATS).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and scope["path"] == PATH:
            wall = time.perf_counter()
            try:
                await starlette(scope, receive, send)
            finally:
                _add("ASGI app (after uvicorn parsed the request)", time.perf_counter() - wall, 0.0)
            return
        await starlette(scope, receive, send)

    return adapters.web_server.frozen_after_start(wrapper)


@dataclass
class Timers:
    case: str
    webhooks: int  # requests to the endpoint the server handled while the timers ran
    seconds: float  # wall time the timers ran
    server_cpu: float  # the server process's CPU seconds meanwhile
    rate: float  # webhooks/s in the measured window
    p50_ms: float | None
    stats: Stats


def _server_cpu(pid: int) -> float:
    from bench.web import _process_cpu

    return _process_cpu(pid)


def profile_runs(
    backend: str, url: str, plan: WebhookPlan, env: dict[str, str], log: Path, amount: int
) -> list[Timers]:
    """The instrumented server under one connection, then under full load."""
    results: list[Timers] = []
    with served("bench.webhooks:instrumented_app", "/healthz", env, log) as server:
        for n, (clients, connections) in enumerate([(1, 1), (CLIENTS, CONNECTIONS)]):
            tag = f"p{n}"
            _say(
                backend,
                f"instrumented server, {clients} x {connections} connection(s): {plan.profile_invoices} invoices",
            )
            ids = _open_invoices(url, plan.profile_invoices)[0]
            _catch_up(server.port)
            _call(server.port, "DELETE", TIMERS_PATH)
            began, cpu = time.perf_counter(), _server_cpu(server.pid)
            row = _measure(
                f"{clients} x {connections}",
                server,
                plan,
                stream(ids, amount, tag),
                clients=clients,
                connections=connections,
            )
            seconds, cpu = time.perf_counter() - began, _server_cpu(server.pid) - cpu
            stats: Stats = json.loads(_call(server.port, "GET", TIMERS_PATH))
            webhooks = int(stats.get("ASGI app (after uvicorn parsed the request)", [0])[0])
            results.append(
                Timers(row.case, webhooks, seconds, cpu, row.row.ok_rate, _pct(row.row.latencies_ms, 0.5), stats)
            )
    return results


def profile_top(backend: str, url: str, plan: WebhookPlan, env: dict[str, str], log: Path, amount: int) -> Top:
    """The served app with every thread under cProfile (bench.profiling.profiled_app), under full
    load: the top functions by cumulative CPU time over the window (warm-up excluded)."""
    with served("bench.profiling:profiled_app", "/healthz", env, log) as server:
        _say(backend, f"cProfiled server, {CLIENTS} x {CONNECTIONS} connections: {plan.profile_invoices} invoices")
        ids = _open_invoices(url, plan.profile_invoices)[0]
        _catch_up(server.port)
        invoices = stream(ids, amount, "c")
        warm = WebhookPlan(0.0, plan.warmup, plan.invoices, plan.raw_ops, plan.profile_invoices)
        _measure("warm-up", server, warm, invoices[: len(invoices) // 5])  # imports, caches, pools
        _call(server.port, "DELETE", WEBHOOK_PROFILE_PATH)
        cpu = _server_cpu(server.pid)
        _measure("cProfiled", server, plan, invoices[len(invoices) // 5 :])
        cpu = _server_cpu(server.pid) - cpu
        answer = marshal.loads(_call(server.port, "GET", WEBHOOK_PROFILE_PATH))
    stats = stats_of(answer["stats"])
    total, entries = top_entries(stats)
    path = write_profile(stats, f"{backend}-webhook")
    return Top(
        f"webhook path, {backend}, served", "thread CPU", int(answer["webhooks"]), "webhook", total, entries, path, cpu
    )


# ------------------------------------------------------------------------------ the tables


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def render(reports: list[WebhookReport], plan: WebhookPlan) -> str:
    headers = [
        "backend",
        "case",
        "offered/s",
        "clients x conns",
        "requests",
        "webhooks/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "vs raw INSERT",
        "vs trivial",
        "target",
        "server CPU",
        "server CPU ms/webhook",
        "clients CPU",
        "PostgreSQL CPU",
        "other CPU",
    ]
    rows: list[list[str]] = []
    notes: list[str] = []
    for report in reports:
        trivial = next((r.row.ok_rate for r in report.rows if r.case.startswith("trivial")), None)
        rows.append(
            [report.backend, "raw INSERT, 1-row tx, 1 writer", "-", "1", fmt(plan.raw_ops), fmt(report.ceiling)]
            + ["-"] * 11
        )
        for item in report.rows:
            row = item.row
            ms = row.latencies_ms
            target = ""
            p99 = _pct(ms, 0.99)
            if item.case.startswith("max"):
                goal = TARGETS[report.backend]
                target = f">={fmt(goal)}/s {_verdict(row.ok_rate >= goal)} ({row.ok_rate / goal:.0%})"
            elif item.offered:
                target = f"p99<{P99_TARGET_MS:g} ms {_verdict(p99 is not None and p99 < P99_TARGET_MS)}"
            rows.append(
                [
                    report.backend,
                    item.case,
                    fmt(item.offered) if item.offered else "-",
                    f"{row.clients} x {row.connections}",
                    fmt(row.requests),
                    fmt(row.ok_rate),
                    fmt(_pct(ms, 0.5), 2),
                    fmt(p99, 2),
                    fmt(row.errors),
                    "-" if item.case.startswith("trivial") else f"{row.ok_rate / report.ceiling:.1%}",
                    f"{row.ok_rate / trivial:.1%}" if trivial else "-",
                    target,
                    f"{row.cpu('server_cpu'):.0%}",
                    fmt(row.cpu("server_cpu") * 1000 / row.ok_rate, 2) if row.ok_rate else "-",
                    f"{row.cpu('client_cpu'):.0%}",
                    "-" if report.backend == "sqlite" else f"{row.cpu('database_cpu'):.0%}",
                    f"{row.cpu('other'):.0%}",
                ]
            )
            if row.errors:
                shown = ", ".join(f"{status}: {n:,}" for status, n in sorted(row.statuses.items()))
                notes.append(f"{report.backend} {item.case}: statuses (0 = connection lost) {shown}")
            if item.drained:
                notes.append(f"{report.backend} {item.case}: the stream ran out before the window's end")
            if item.offered:
                lag = item.lag_p99_ms
                achieved = row.requests / row.outcome.seconds
                notes.append(
                    f"{report.backend} {item.case}: offered {item.offered:,.0f}/s, answered {achieved:,.0f}/s; "
                    f"p99 of how late a due request went out (all connections busy): {fmt(lag, 2)} ms"
                )
            if row.stalled:
                notes.append(f"{report.backend} {item.case}: {row.stalled} requests unanswered at the window's end")
            if item.follower_cpu is not None and item.follower_requests:
                notes.append(
                    f"{report.backend} {item.case}: the `ledger project --follow` process beside it "
                    f"{item.follower_cpu * 1000 / item.follower_requests:.2f} ms CPU/webhook (over the whole "
                    f"measure, warm-up included: {item.follower_requests:,} answered 200)"
                )
        notes.append(_render_check(report))
    title = (
        f"Stripe webhooks end to end: POST {PATH}, each a Stripe event signed in the client just before it is sent,\n"
        f"answered 200 after signature, dedup, commands and commit. 1 uvicorn worker (but the 2-worker row), "
        f"{CLIENTS} client processes x "
        f"{CONNECTIONS} keep-alive connections,\n{plan.warmup:g} s warm-up, {plan.seconds:g} s window. "
        "Max load: closed loop. Open loop: requests due at a fixed rate, latency from when each was due.\n"
        "Stream per invoice: payment_intent.succeeded + charge.succeeded (one payment), 30% charge.refunded, 20% a "
        "payment_intent.payment_failed first,\n20% a redelivery, 20% a type the ledger ignores; 2.9 events per "
        "invoice. vs raw INSERT = webhooks/s / one-row INSERT tx/s on the same database.\n"
        "trivial POST = a one-route Starlette app answering the same requests (body read, not checked). CPU: "
        "seconds per second of window (100% = one core);\n"
        "server CPU ms/webhook = the server process's (and its workers') CPU time over the window / the requests it "
        "answered 200 in it "
        "(as bench/admin.py's ms/req)."
    )
    return "\n".join(
        [
            table(title, headers, rows, left=2),
            *notes,
            *(_render_timers(r) for r in reports if r.profiles),
            *(render_top(r.top) for r in reports if r.top is not None),
        ]
    )


def _render_check(report: WebhookReport) -> str:
    c = report.check
    parts = [
        f"{report.backend} check {'OK' if c.ok else 'FAILED'}: {c.acknowledged:,} distinct events acknowledged, "
        f"{c.recorded:,} recorded in the log, {c.unknown_to_ledger} acknowledged but unknown or unhandled",
        f"{c.lost} deliveries answered non-200 or lost",
        f"{c.redeliveries:,} redeliveries answered ({c.redeliveries_not_duplicate} not as duplicates), "
        f"{c.firsts_called_duplicate} first deliveries called duplicates",
        f"{c.invoices:,} invoices: {c.paid:,} paid once, {c.refunded:,} refunded once, "
        f"{c.failed_attempts:,} with one failed attempt, {len(c.wrong_invoices)} not as expected",
    ]
    if c.outcomes:
        parts.append("unexpected outcomes: " + ", ".join(f"{k}: {n}" for k, n in sorted(c.outcomes.items())))
    parts.extend(c.wrong_invoices)
    return "; ".join(parts)


TIMER_ORDER = [
    "ASGI app (after uvicorn parsed the request)",
    "verify (signature + JSON)",
    "  verify: typed decode (msgspec) + codec",
    "await the batch (ingest + hand-offs)",
    INGEST_TIMER,
    "  Repository.get (event-store read)",
    "    recorder.select_events (SQL)",
    "    mapper.to_domain_event (decode)",
    "  Application.save",
    "    mapper.to_stored_event (encode)",
    "    recorder.insert_events (SQL + commit)",
    "projection follower: run_once",
]


def _render_timers(report: WebhookReport) -> str:
    blocks: list[str] = []
    for t in report.profiles:
        n = max(1, t.webhooks)
        rows = []
        for name in TIMER_ORDER + sorted(set(t.stats) - set(TIMER_ORDER)):
            if name not in t.stats:
                continue
            calls, wall, cpu = t.stats[name]
            rows.append(
                [
                    name,
                    fmt(calls / n, 2),
                    fmt(wall * 1e6 / n),
                    fmt(cpu * 1e6 / n) if cpu else "-",
                    fmt(wall * 1e6 / calls),
                ]
            )
        rows.append(["server process CPU, all threads", "", "", fmt(t.server_cpu * 1e6 / n), ""])
        timed = sum(t.stats[k][2] for k in ("verify (signature + JSON)", INGEST_TIMER, TIMER_ORDER[-1]) if k in t.stats)
        rows.append(
            [
                "  the rest: uvicorn HTTP, event loop, hops, idle polling",
                "",
                "",
                fmt((t.server_cpu - timed) * 1e6 / n),
                "",
            ]
        )
        blocks.append(
            table(
                f"\nWhere a webhook's time goes [{report.backend}, instrumented server, {t.case} connection(s)]: "
                f"{t.webhooks:,} webhooks, {t.rate:,.0f}/s in the window, p50 {fmt(t.p50_ms, 2)} ms. "
                "Per webhook, in microseconds;\nwall = elapsed on the calling thread (includes waiting for the GIL, "
                "locks and I/O); CPU = that thread's CPU. Indented rows are inside the row above.",
                ["step", "calls per webhook", "wall us per webhook", "CPU us per webhook", "wall us per call"],
                rows,
            )
        )
    return "\n".join(blocks)
