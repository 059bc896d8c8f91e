"""Reconciliation against Stripe: `ledger reconcile` over N balance transactions, beside the bare fetch.

Stripe's side: bench/stripe_generator.py in its own process (uvicorn, one worker, loopback), so
its memory is not in the reconcile's figure: N succeeded payments (PaymentIntent, charge, the
charge's balance transaction), 5% of them half refunded (refund + its transaction), one payout
per 10,000 payments carrying their transactions (+ its own): ~1.05 N balance transactions.

The ledger's side, "holding the matching payments": per Stripe payment an invoice (created, one
line, issued) and a Stripe payment on it (initiated, succeeded with the charge id and no fee,
applied to the invoice), the refunds applied, the payouts reported and paid: the aggregates the
webhooks would have made (commands/ingestion/money_movements.py), driven by their own methods
at Stripe's creation times and saved 300 invoices per `app.save` (as bench/read_models.py does),
then the read models caught up. Seeding is timed apart; it is not part of any figure.

Measured, for each N, each in its own process:
- bare fetch: the same pages `StripeRecords` asks for (six lists by `created[gte]`/`[lt]` and
  each payout's `payout=` pages, limit=100, `starting_after`), through the stripe SDK's
  `StripeClient.v1.<list>.list(params)`, objects discarded: the floor the reconcile is held to;
- `ledger reconcile --source stripe --format json --output /dev/null --quiet` as a subprocess
  (its wall time, its peak RSS: VmHWM polled every 50 ms), run twice: the first run records every fee as an
  event (N ProcessorFee aggregates), the second is the steady state;
- `ledger reconcile --source ledger` on the same ledger (the target is for 100k invoices).
Exit status 0 says the run found nothing open (the sides agree), as expected here; 1 would say
it found differences, and the row says so.

Alone: `python -m bench --only reconcile [--quick] [--backend sqlite|postgres] [--payments N,N,...]`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.procs import Gate, Measured, clock, run_workers
from bench.report import fmt, table
from bench.stripe_generator import (
    API_KEY,
    STEP,
    Account,
    amount,
    charge_id,
    invoice_id,
    payout_id,
    pi_id,
    refund_id,
    refunded,
)

FULL = (10_000, 100_000, 1_000_000)
QUICK = (2_000, 10_000, 50_000)
RATIO_TARGET = 1.3
RSS_TARGET_MIB = 300.0
LEDGER_ONLY_INVOICES = 100_000
LEDGER_ONLY_TARGET_SECONDS = 10.0
CHUNK_INVOICES = 300
DAY = 24 * 3600
SERVER_START_SECONDS = 120.0
RSS_POLL_SECONDS = 0.05
# Seeding 1M payments (7.1M events) and fetching 1M through the SDK each take far longer than
# the suite's 10 minutes per worker.
WORKER_TIMEOUT_SECONDS = 6 * 3600.0


def _say(backend: str, what: str) -> None:
    print(f"  [{backend}] reconcile: {what}", file=sys.stderr, flush=True)


def start_of(payments: int) -> int:
    """Payment 0's second: everything lies in the past, the newest a day ago."""
    return int(time.time()) - STEP * payments - DAY


# ------------------------------------------------------------------------------ the ledger's side


@dataclass(frozen=True)
class SeedJob:
    url: str
    payments: int
    start: int


def seed_ledger(job: SeedJob, gate: Gate) -> Measured:
    """The ledger holding the account's payments, refunds and payouts; the read models caught up."""
    from adapters.clock import ManualClock
    from adapters.persistence import event_store_env
    from adapters.read_models import projection_runner, read_model_engine
    from commands.application import BillingApplication
    from ledger.invoices import Invoice
    from ledger.lines import Line
    from ledger.money import Money
    from ledger.payments import Payment, payment_id_for
    from ledger.payouts import Payout

    account = Account(job.payments, job.start)
    manual = ManualClock(datetime.fromtimestamp(job.start, UTC))
    app = BillingApplication(clock=manual, env=event_store_env(job.url))
    gate.ready()
    started = clock()

    def at(second: int) -> datetime:
        return datetime.fromtimestamp(second, UTC)

    chunk: list[Any] = []
    for i in range(account.payments):
        created = at(job.start + STEP * i)
        money = Money(amount(i), "usd")
        invoice = Invoice.create_draft(
            invoice_id=invoice_id(i), customer={"email": f"c{i}@example.com"}, currency="usd", at=created
        )
        invoice.add_line(
            Line.price(line_id=f"line-{i}", description="Subscription", quantity=1, unit_amount=money.amount),
            at=created,
        )
        invoice.issue(sequence=i + 1, at=created)
        payment = Payment.initiate(
            payment_id=payment_id_for("stripe", pi_id(i)),
            invoice_id=invoice.id,
            provider="stripe",
            provider_payment_id=pi_id(i),
            amount=money,
            at=created,
        )
        payment.succeed(amount_captured=money.amount, fee=0, charge_id=charge_id(i), at=created)
        invoice.apply_payment(
            payment_id=str(payment.id), amount=money, fee=0, cash_account=payment.cash_account, at=created
        )
        if refunded(i):
            when = at(job.start + STEP * i + 1)
            payment.refund(refund_id=refund_id(i), amount=refunded(i), at=when)
            invoice.apply_refund(
                payment_id=str(payment.id),
                refund_id=refund_id(i),
                amount=Money(refunded(i), "usd"),
                cash_account=payment.cash_account,
                at=when,
            )
        chunk += [invoice, payment]
        if len(chunk) >= 2 * CHUNK_INVOICES:
            app.save(*chunk)
            chunk = []
    for p in range(account.payouts):
        when = at(account.payout_created(p))
        payout = Payout.report(
            provider="stripe", provider_payout_id=payout_id(p), amount=Money(account.payout_amount(p), "usd"), at=when
        )
        payout.pay(at=when)
        chunk.append(payout)
    if chunk:
        app.save(*chunk)
    written = clock()
    engine = read_model_engine(job.url)
    projection_runner(app, engine).catch_up()
    finished = clock()
    head = app.head()
    engine.dispose()
    app.close()
    return Measured(
        head, started, finished, extra={"events": head, "write_s": written - started, "catch_up_s": finished - written}
    )


# ------------------------------------------------------------------------------ the Stripe side


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GeneratorServer:
    """bench/stripe_generator.py in a subprocess on a free loopback port, until `stop()`."""

    def __init__(self, account: Account) -> None:
        port = _free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.stripe_generator",
                f"--payments={account.payments}",
                f"--start={account.start}",
                f"--port={port}",
            ]
        )
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            try:
                urllib.request.urlopen(f"{self.base_url}/v1/payouts?limit=1", timeout=5)
            except urllib.error.HTTPError:
                return  # it answers (401: no key): it is up
            except OSError as error:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the Stripe generator did not start: {error}") from None
                time.sleep(0.1)
            else:
                return

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class FetchJob:
    base_url: str
    payments: int
    start: int
    raw: bool = False  # plain GETs, bodies discarded unparsed: what the wire alone costs


def _raw_lister(base_url: str, path: str) -> Any:
    """A stand-in for an SDK list service: GET the page, read the ids and has_more only."""
    import json

    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {API_KEY}"

    class Page:
        def __init__(self, body: dict[str, Any]) -> None:
            self.has_more = body["has_more"]
            self.data = [_Id(obj["id"]) for obj in body["data"]]

    class Lister:
        def list(self, params: dict[str, Any]) -> Page:
            flat = {f"created[{k}]": v for k, v in params.pop("created", {}).items()} | params
            response = session.get(f"{base_url}{path}", params=flat, timeout=20.0)
            response.raise_for_status()
            return Page(json.loads(response.content))

    return Lister()


@dataclass(frozen=True)
class _Id:
    id: str


def bare_fetch(job: FetchJob, gate: Gate) -> Measured:
    """Every page StripeRecords asks for, through the SDK's `list` (or plain GETs), objects discarded."""
    import stripe

    account = Account(job.payments, job.start)
    client = stripe.StripeClient(
        API_KEY,
        base_addresses={"api": job.base_url},
        http_client=stripe.RequestsClient(timeout=20.0),
        max_network_retries=0,
    )
    services: dict[str, Any] = {
        name: _raw_lister(job.base_url, f"/v1/{name}") if job.raw else getattr(client.v1, name)
        for name in ("balance_transactions", "charges", "refunds", "disputes", "payouts", "payment_intents")
    }
    created = {"gte": account.start, "lt": account.end}
    lists = [(service, {"created": created}) for service in services.values()]
    gate.ready()
    started = clock()
    pages = objects = 0
    for service, params in lists:
        payouts: list[str] = []
        p, n = _pages(service, params, payouts if service is services["payouts"] else None)
        pages, objects = pages + p, objects + n
        for payout in payouts:  # as StripeRecords does: what each payout carried
            p, n = _pages(services["balance_transactions"], {"payout": payout})
            pages, objects = pages + p, objects + n
    finished = clock()
    return Measured(objects, started, finished, extra={"pages": pages})


def _pages(service: Any, params: dict[str, Any], ids: list[str] | None = None) -> tuple[int, int]:
    pages = objects = 0
    after: str | None = None
    while True:
        query = {**params, "limit": 100, **({"starting_after": after} if after else {})}
        page = service.list(query)
        pages += 1
        objects += len(page.data)
        if ids is not None:
            ids += [obj.id for obj in page.data]
        if not page.has_more or not page.data:
            return pages, objects
        after = page.data[-1].id


# ------------------------------------------------------------------------------ the command


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mib: float
    status: int  # 0: nothing open, 1: open items


def ledger_reconcile(url: str, account: Account, base_url: str, source: str, directory: Path) -> Run:
    """`ledger reconcile` in its own process: wall time and its peak RSS (VmHWM)."""
    period = ["--from", _iso(account.start), "--to", _iso(account.end)]
    argv = [sys.executable, "-m", "adapters.cli", "reconcile", "--source", source, *period]
    argv += ["--format", "json", "--output", os.devnull, "--quiet", "--by", "bench"]
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": url,
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": base_url,
    }
    began = time.monotonic()
    process = subprocess.Popen(argv, env=env, cwd=directory)
    # VmHWM of the child, polled until it exits: its own address space's peak. Not wait4's or
    # RUSAGE_CHILDREN's maxrss, which count the parent's resident set copied at fork (measured:
    # a child running `pass` under a 300 MiB parent reports 311 MiB).
    peak_kib = 0
    while process.poll() is None:
        peak_kib = max(peak_kib, _hwm_kib(process.pid))
        time.sleep(RSS_POLL_SECONDS)
    seconds = time.monotonic() - began
    if process.returncode not in (0, 1):
        raise RuntimeError(f"ledger reconcile --source {source} exited {process.returncode}")
    return Run(seconds, peak_kib / 1024, process.returncode)


def _hwm_kib(pid: int) -> int:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1])
    except OSError:  # it has just exited
        pass
    return 0


def _run_text(run: Run) -> str:
    return f"{run.seconds:.1f} s, peak RSS {run.peak_rss_mib:.0f} MiB, exit {run.status}"


def _iso(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).isoformat()


# ------------------------------------------------------------------------------ one N


@dataclass
class Point:
    payments: int
    balance_transactions: int
    seed_events: int = 0
    seed_write_s: float = 0.0
    seed_catch_up_s: float = 0.0
    fetch_objects: int = 0
    fetch_pages: int = 0
    fetch_s: float = 0.0
    fetch_rss_mib: float = 0.0
    raw_s: float = 0.0
    first: Run | None = None
    steady: Run | None = None
    ledger_only: Run | None = None


@dataclass
class ReconcileReport:
    backend: str
    points: list[Point] = field(default_factory=list)


def run_point(backend: str, url: str, payments: int, directory: Path, ledger_only: bool) -> Point:
    account = Account(payments, start_of(payments))
    point = Point(payments, account.balance_transactions())
    _say(backend, f"N={payments:,}: seeding the ledger")
    seeded = run_workers(seed_ledger, [SeedJob(url, payments, account.start)], WORKER_TIMEOUT_SECONDS).workers[0]
    point.seed_events = seeded.extra["events"]
    point.seed_write_s = seeded.extra["write_s"]
    point.seed_catch_up_s = seeded.extra["catch_up_s"]
    _say(
        backend,
        f"N={payments:,}: seeded {point.seed_events:,} events in {point.seed_write_s:.1f} s + catch-up "
        f"{point.seed_catch_up_s:.1f} s",
    )
    _say(backend, f"N={payments:,}: starting the Stripe generator")
    server = GeneratorServer(account)
    try:
        _say(backend, f"N={payments:,}: raw GETs of the same pages")
        raw = FetchJob(server.base_url, payments, account.start, raw=True)
        point.raw_s = run_workers(bare_fetch, [raw], WORKER_TIMEOUT_SECONDS).seconds
        _say(backend, f"N={payments:,}: raw GETs in {point.raw_s:.1f} s")
        _say(backend, f"N={payments:,}: ledger reconcile --source stripe (first: records the fees)")
        point.first = ledger_reconcile(url, account, server.base_url, "stripe", directory)
        _say(backend, f"N={payments:,}: first run {_run_text(point.first)}")
        _say(backend, f"N={payments:,}: ledger reconcile --source stripe (steady state)")
        point.steady = ledger_reconcile(url, account, server.base_url, "stripe", directory)
        _say(backend, f"N={payments:,}: steady run {_run_text(point.steady)}")
        _say(backend, f"N={payments:,}: bare fetch (SDK)")
        fetched = run_workers(bare_fetch, [FetchJob(server.base_url, payments, account.start)], WORKER_TIMEOUT_SECONDS)
        point.fetch_objects = fetched.ops
        point.fetch_pages = fetched.workers[0].extra["pages"]
        point.fetch_s = fetched.seconds
        point.fetch_rss_mib = fetched.peak_rss_mib
        _say(backend, f"N={payments:,}: bare fetch {point.fetch_pages:,} pages in {point.fetch_s:.1f} s")
    finally:
        server.stop()
    if ledger_only:
        _say(backend, f"N={payments:,}: ledger reconcile --source ledger")
        point.ledger_only = ledger_reconcile(url, account, "http://127.0.0.1:9", "ledger", directory)
        _say(backend, f"N={payments:,}: ledger-only run {_run_text(point.ledger_only)}")
    return point


def run_reconcile(backend: str, urls: Any, sizes: tuple[int, ...]) -> ReconcileReport:
    """One point per size, each on a fresh database: `urls(n)` is a context manager giving its URL."""
    report = ReconcileReport(backend)
    with tempfile.TemporaryDirectory(prefix="ledger-bench-reconcile-") as directory:
        for payments in sizes:
            with urls(payments) as url:
                ledger_only = payments == min(sizes, key=lambda n: abs(n - LEDGER_ONLY_INVOICES))
                report.points.append(run_point(backend, url, payments, Path(directory), ledger_only))
    return report


# ------------------------------------------------------------------------------ tables


def _status(run: Run | None) -> str:
    if run is None:
        return "-"
    return "agree" if run.status == 0 else "OPEN ITEMS"


def render(reports: list[ReconcileReport]) -> str:
    headers = [
        "backend",
        "N payments",
        "balance txns",
        "pages",
        "bare fetch s",
        "fetch RSS MiB",
        "raw GETs s",
        "1st run s",
        "1st x fetch",
        "1st RSS MiB",
        "steady s",
        "steady x fetch",
        "steady RSS MiB",
        "result",
    ]
    rows: list[list[str]] = []
    seeding: list[list[str]] = []
    ledger_rows: list[list[str]] = []
    for report in reports:
        for p in report.points:
            first, steady = p.first, p.steady
            rows.append(
                [
                    report.backend,
                    fmt(p.payments),
                    fmt(p.balance_transactions),
                    fmt(p.fetch_pages),
                    fmt(p.fetch_s, 1),
                    fmt(p.fetch_rss_mib, 0),
                    fmt(p.raw_s, 1),
                    fmt(first.seconds, 1) if first else "-",
                    f"{first.seconds / p.fetch_s:.2f}x" if first else "-",
                    fmt(first.peak_rss_mib, 0) if first else "-",
                    fmt(steady.seconds, 1) if steady else "-",
                    f"{steady.seconds / p.fetch_s:.2f}x" if steady else "-",
                    fmt(steady.peak_rss_mib, 0) if steady else "-",
                    f"{_status(first)} / {_status(steady)}",
                ]
            )
            seeding.append(
                [report.backend, fmt(p.payments), fmt(p.seed_events), fmt(p.seed_write_s, 1), fmt(p.seed_catch_up_s, 1)]
            )
            if p.ledger_only is not None:
                run = p.ledger_only
                verdict = "met" if run.seconds < LEDGER_ONLY_TARGET_SECONDS else "MISSED"
                ledger_rows.append(
                    [
                        report.backend,
                        fmt(p.payments),
                        fmt(run.seconds, 1),
                        fmt(run.peak_rss_mib, 0),
                        f"<{LEDGER_ONLY_TARGET_SECONDS:.0f} s {verdict}",
                        _status(run),
                    ]
                )
    title = "\n".join(
        [
            f"Reconcile against Stripe (targets: within {RATIO_TARGET}x of the bare fetch; peak RSS under "
            f"{RSS_TARGET_MIB:.0f} MiB at 1M and flat in N).",
            "Stripe: bench/stripe_generator.py in its own process on loopback; per payment a PaymentIntent, a charge",
            "and its balance transaction, 5% half refunded, a payout per 10,000 payments.",
            "bare fetch = the same pages through the stripe SDK's `list` (objects discarded), same run, same server;",
            "raw GETs = the same pages by plain requests, read for ids only (what the wire and the server cost).",
            "1st run = `ledger reconcile --source stripe` recording every fee as an event; steady = the same again.",
            "RSS = peak of that process (VmHWM, polled). result: agree = exit 0, nothing open.",
        ]
    )
    out = [table(title, headers, rows, left=1)]
    out.append(
        table(
            "Seeding (not timed in the figures): invoices, payments, refunds and payouts as aggregates, "
            f"{CHUNK_INVOICES} invoices per app.save,\nthen the read models caught up.",
            ["backend", "N payments", "events", "write s", "catch-up s"],
            seeding,
        )
    )
    if ledger_rows:
        out.append(
            table(
                f"`ledger reconcile --source ledger` (target: {LEDGER_ONLY_INVOICES:,} invoices under "
                f"{LEDGER_ONLY_TARGET_SECONDS:.0f} s), on the same ledger.",
                ["backend", "invoices", "seconds", "peak RSS MiB", "target", "result"],
                ledger_rows,
            )
        )
    return "\n\n".join(out)
