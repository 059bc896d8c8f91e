"""The client portal's pages: p50/p99 for a customer holding 1,000 invoices, in a ledger of
many more (issue 14's target: p99 under 200 ms for each page, as the dashboard's).

The ledger (seeded in a spawned process, timed apart): the invoices of bench/admin.py's book
(`_Book`: the domain's own aggregates saved through the application, a year of invoices over
5,000 customers, drafts, voids, card and bank payments, refunds, open ones partly paid), of which
CUSTOMER_INVOICES are billed to one customer, spread over the year; the read models caught up
by the real projections; a portal link issued for that customer (`app.portal.issue`). On
PostgreSQL the seeding ends with VACUUM (ANALYZE), as autovacuum would soon after.

Measured: the real app (`adapters.web_server:asgi_app`, as `ledger serve` runs it) under
uvicorn on loopback, LEDGER_SECRET_KEY set; one request at a time on one keep-alive connection,
warm-up then timed requests of: `/healthz` (the same run's baseline), the customer's list (first
page), a later page (the "Older invoices" link followed LATER_PAGES times), and the page of one
of their invoices with a payment on it.
Alone: `python -m bench --only portal [--quick] [--backend sqlite|postgres]`.
"""

from __future__ import annotations

import html
import re
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid5

from bench.admin import _NAMESPACE, _Book
from bench.pages import Client, PageRow, page_table, time_pages
from bench.procs import Gate, Measured, clock, run_workers
from bench.web import TOKEN

TARGET_P99_MS = 200.0
CHUNK_INVOICES = 300
SEED_TIMEOUT_SECONDS = 3600.0
CUSTOMER_INVOICES = 1_000
LATER_PAGES = 20  # "Older invoices" clicks from the first page (25 invoices a page)
SECRET = "bench-portal-secret-0123456789abcdef-0123456789"
CUSTOMER = {"email": "billing@portal-bench.example", "name": "Portal Bench Ltd"}


@dataclass(frozen=True)
class PortalPlan:
    invoices: int  # in the whole ledger, the customer's included
    requests: int
    warmup: int


FULL = PortalPlan(invoices=20_000, requests=200, warmup=20)
QUICK = PortalPlan(invoices=3_000, requests=100, warmup=10)


@dataclass
class PortalSeeded:
    invoices: int = 0
    events: int = 0
    customer_statuses: dict[str, int] = field(default_factory=dict)
    home: str = ""  # /portal/<token>
    paid_invoice: str = ""  # one of the customer's invoices with a payment
    write_s: float = 0.0
    catch_up_s: float = 0.0


@dataclass(frozen=True)
class SeedJob:
    url: str
    invoices: int


def _say(backend: str, what: str) -> None:
    print(f"  [{backend}] portal: {what}", file=sys.stderr, flush=True)


def seed(job: SeedJob, gate: Gate) -> Measured:
    """The ledger, the read models caught up, and a link for the customer."""
    from sqlalchemy import text

    from adapters.clock import SystemClock
    from adapters.persistence import event_store_env
    from adapters.read_models import projection_runner, read_model_engine
    from commands.application import BillingApplication
    from commands.portal.tokens import token_for

    app = BillingApplication(clock=SystemClock(), env=event_store_env(job.url), secret_key=SECRET)
    gate.ready()
    started = clock()
    book = _Book(app, datetime.now(UTC))
    stride = max(1, job.invoices // CUSTOMER_INVOICES)
    theirs: list[int] = []
    for i in range(job.invoices):
        who = CUSTOMER if i % stride == 0 and len(theirs) < CUSTOMER_INVOICES else None
        if who is not None:
            theirs.append(i)
        book.invoice(i, job.invoices, who)
        if len(book.pending) >= 2 * CHUNK_INVOICES:
            book.flush()
    book.flush()
    link_id = app.portal.issue(
        CUSTOMER["email"], expires_at=datetime.now(UTC) + timedelta(days=30), issued_by="cli"
    ).result
    written = clock()
    engine = read_model_engine(job.url)
    projection_runner(app, engine).catch_up()
    caught_up = clock()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    statuses: dict[str, int] = {}
    paid = ""
    for i in theirs:
        invoice = app.invoice(_invoice_id(i))
        statuses[invoice.status] = statuses.get(invoice.status, 0) + 1
        if not paid and invoice.payment_ids and invoice.status != "draft":
            paid = str(invoice.id)
    seeded = PortalSeeded(
        invoices=job.invoices,
        events=app.head(),
        customer_statuses=statuses,
        home=f"/portal/{token_for(link_id, SECRET)}",
        paid_invoice=paid,
        write_s=written - started,
        catch_up_s=caught_up - written,
    )
    engine.dispose()
    app.close()
    return Measured(seeded.events, started, clock(), extra={"seeded": seeded})


def _invoice_id(i: int) -> UUID:
    """The id `_Book` gives invoice `i`."""
    return uuid5(_NAMESPACE, f"invoice-{i}")


_NEXT = re.compile(rb'<a href="([^"]+)" rel="next"')


def _later_page(client: Client, home: str, clicks: int) -> str:
    path = home
    for n in range(clicks):
        status, _, body, _ = client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"the portal's page {n + 1} answered {status}")
        found = _NEXT.search(body)
        if found is None:
            raise RuntimeError(f"the portal's page {n + 1} has no next link")
        path = html.unescape(found.group(1).decode())
    return path


@dataclass
class PortalReport:
    backend: str
    seeded: PortalSeeded
    pages: list[PageRow] = field(default_factory=list)


def measure(backend: str, url: str, seeded: PortalSeeded, plan: PortalPlan, log: Path) -> PortalReport:
    def cases(client: Client) -> list[tuple[str, str]]:
        later = _later_page(client, seeded.home, LATER_PAGES)
        return [
            ("GET /healthz (baseline)", "/healthz"),
            ("invoices, first page", seeded.home),
            (f"invoices, page {LATER_PAGES + 1}", later),
            ("invoice with a payment", f"{seeded.home}/invoices/{seeded.paid_invoice}"),
        ]

    env = {"LEDGER_DATABASE_URL": url, "LEDGER_API_TOKEN": TOKEN, "LEDGER_SECRET_KEY": SECRET}
    return PortalReport(backend, seeded, time_pages("portal", backend, url, env, log, plan, cases))


def run_portal(backend: str, url: str, plan: PortalPlan) -> PortalReport:
    """Seed `url` (a fresh database), then time the pages on it."""
    _say(backend, f"seeding {plan.invoices:,} invoices ({CUSTOMER_INVOICES:,} of one customer)")
    worker = run_workers(seed, [SeedJob(url, plan.invoices)], SEED_TIMEOUT_SECONDS).workers[0]
    seeded: PortalSeeded = worker.extra["seeded"]
    with tempfile.TemporaryDirectory(prefix="ledger-bench-portal-") as directory:
        return measure(backend, url, seeded, plan, Path(directory) / "server.log")


COLUMNS = (
    "page",
    "requests",
    "p50 ms",
    "p99 ms",
    "target ms",
    "p99 x healthz",
    "server CPU ms/req",
    "PostgreSQL CPU ms/req",
    "load before/after",
    "bytes",
)


def render(reports: list[PortalReport], plan: PortalPlan) -> str:
    out: list[str] = []
    for report in reports:
        seeded = report.seeded
        statuses = ", ".join(f"{name} {count:,}" for name, count in sorted(seeded.customer_statuses.items()))
        title = "\n".join(
            [
                f"Portal pages, {report.backend}: {seeded.invoices:,} invoices, {seeded.events:,} events; the "
                f"customer holds {CUSTOMER_INVOICES:,} ({statuses}).",
                f"Seeding (not in the figures): written in {seeded.write_s:.1f} s, read models caught up in "
                f"{seeded.catch_up_s:.1f} s.",
                f"The app under uvicorn on loopback (1 worker); one request at a time on one keep-alive connection, "
                f"{plan.warmup} warm-up + {plan.requests} timed requests per page (send -> last byte).",
                "Target: p99 under 200 ms. p99 x healthz: the page's p99 over GET /healthz's, same server, same run.",
            ]
        )
        out.append(page_table(title, report.pages, COLUMNS, TARGET_P99_MS))
    return "\n\n".join(out)
