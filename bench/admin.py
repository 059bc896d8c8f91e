"""The admin dashboard's pages: p50/p99 over a ledger of 100,000 invoices (issue 13's target:
p99 under 200 ms for each page, on this machine).

The ledger (seeded in a spawned process, timed apart, not part of any figure): N invoices over
the last year, written as the domain's own events through the application's mapper and recorder
(`app.save` of Invoice, Payment and NumberSeries aggregates driven by their own methods, CHUNK
invoices per save, as bench/read_models.py and bench/reconcile.py seed), then the read models
caught up from those events by the real projections (no row is written into a read-model table by
hand). Per invoice, drawn from a fixed seed: one of CUSTOMERS customers (company names built from
word lists), a currency (usd, eur, gbp, jpy, chf), 1 to 4 priced lines; 4% stay drafts (a few of
them edited), the rest are issued with a number of the INV series and due 30 days later. Of the
issued ones: voided, marked uncollectible (some after failed card attempts), paid (by bank
transfer, once or in two instalments, or by card through Stripe, some after a declined attempt;
5% of the card payments partly refunded) or left open (some partly paid, some with declined
attempts). Older invoices are more often settled, so the open ones are overdue or not, as in a
real book. One more invoice has exactly 1,000 events (a draft whose lines were changed 994 times,
then issued, a declined card attempt, a partial bank payment): the invoice page's case. An admin
user is created through `app.admin.create_user`. On PostgreSQL the seeding ends with
VACUUM (ANALYZE), as autovacuum would soon after.

Measured: the real app (`adapters.web_server:asgi_app`, the factory `ledger serve` uses) served by
uvicorn on loopback in its own process, as bench/web.py serves it; logged in through
`POST /admin/login`; then, one request at a time on one keep-alive connection, WARMUP requests
and REQUESTS timed requests of each page (send -> last byte of the body; every answer must be
a 200) and the CPU time they cost the app's process (and the PostgreSQL cluster): `/healthz`
(the trivial route: the same run's baseline), `/admin/` (overview), the invoice list's first
page, a deep page (the cursor followed DEEP_PAGES pages in, as a user clicking "next" would get
it), a filtered search (open, eur, part of a customer name) and the 1,000-event invoice's page.
Alone: `python -m bench --only admin [--quick] [--backend sqlite|postgres]` (--quick: 10,000 invoices).
"""

from __future__ import annotations

import random
import secrets
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid5

from bench.pages import Client, PageRow, next_link, page_table, time_pages
from bench.procs import Gate, Measured, clock, run_workers
from bench.web import TOKEN

TARGET_P99_MS = 200.0
CHUNK_INVOICES = 300  # invoices per app.save (with their payments and the number series)
SEED_TIMEOUT_SECONDS = 3 * 3600.0
CUSTOMERS = 5_000
HEAVY_EVENTS = 1_000
DAY = timedelta(days=1)
SPAN = timedelta(days=365)  # invoices are created over the year before the seeding
ADMIN_EMAIL = "bench-admin@example.com"
SEARCH_WORD = "harbor"  # one customer in 25 has it in its name
_NAMESPACE = UUID("5d0c1a3e-7b1f-4c55-9a0e-13ad0b3e2c41")

FIRST = (
    "Acme Alpine Amber Apex Atlas Beacon Birch Blue Bright Cedar Cobalt Coral Crown Delta Eagle Falcon Granite "
    "Golden Iron Juniper"
).split()
SECOND = (
    "Analytics Bakery Builders Cargo Clinic Consulting Design Dynamics Energy Foods Freight Harbor Health "
    "Labs Logistics Media Motors Optics Partners Robotics Software Studio Systems Textiles Ventures"
).split()
SUFFIX = "Ltd GmbH Inc SARL BV AB Oy SpA LLC Co".split()
CURRENCIES = (("usd", 0.55), ("eur", 0.25), ("gbp", 0.12), ("jpy", 0.05), ("chf", 0.03))
PRODUCTS = ("Platform fee", "Seats", "Support plan", "Storage (GB)", "API calls (thousands)", "Onboarding")
DECLINES = (
    ("card_declined", "Your card was declined."),
    ("insufficient_funds", "Your card has insufficient funds."),
    ("expired_card", "Your card has expired."),
)


@dataclass(frozen=True)
class AdminPlan:
    invoices: int
    requests: int  # timed requests per page
    warmup: int  # untimed requests per page before them
    deep_pages: int  # how many "next" links the deep page follows from the first page


FULL = AdminPlan(invoices=100_000, requests=200, warmup=20, deep_pages=200)
QUICK = AdminPlan(invoices=10_000, requests=100, warmup=10, deep_pages=100)


def _say(backend: str, what: str) -> None:
    print(f"  [{backend}] admin: {what}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the ledger


def customer(k: int) -> dict[str, str]:
    first, second = FIRST[k % len(FIRST)], SECOND[(k // len(FIRST)) % len(SECOND)]
    suffix = SUFFIX[(k // (len(FIRST) * len(SECOND))) % len(SUFFIX)]
    return {"email": f"billing{k}@{first.lower()}-{second.lower()}.example", "name": f"{first} {second} {suffix}"}


def _currency(rng: random.Random) -> str:
    draw = rng.random()
    for code, share in CURRENCIES:
        if draw < share:
            return code
        draw -= share
    return CURRENCIES[0][0]


def _unit_amount(rng: random.Random, currency: str) -> int:
    if currency == "jpy":  # no minor unit: whole yen
        return rng.randrange(1_000, 200_000, 100)
    return rng.randrange(500, 250_000, 50)


def _stripe_fee(amount: int) -> int:
    return amount * 29 // 1000 + 30


@dataclass
class Seeded:
    """What one seeding made, for the figures and for the pages to ask."""

    invoices: int = 0
    events: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    heavy_invoice: str = ""
    heavy_number: str = ""
    write_s: float = 0.0
    catch_up_s: float = 0.0
    vacuum_s: float | None = None  # PostgreSQL: VACUUM (ANALYZE) after the catch-up
    admin_password: str = ""


class _Book:
    """Builds the aggregates of invoice after invoice; `flush()` saves what is pending."""

    def __init__(self, app: Any, now: datetime) -> None:
        from ledger.numbering import NumberSeries

        self.app = app
        self.now = now
        self.start = now - SPAN
        self.series = NumberSeries.start("INV", at=self.start)
        self.pending: list[Any] = [self.series]
        self.statuses: dict[str, int] = {}

    def _cap(self, moment: datetime) -> datetime:
        """Nothing happens after the seeding's own moment (less a minute)."""
        return min(moment, self.now - timedelta(minutes=1))

    def flush(self) -> None:
        if self.pending:
            self.app.save(*self.pending)
            self.pending = [self.series]

    def _issue(self, invoice: Any, at: datetime) -> None:
        invoice.issue(sequence=self.series.last + 1, at=at)
        self.series.allocate(invoice.id, at=at)

    def invoice(self, i: int, total: int, who: dict[str, str] | None = None) -> None:
        """Invoice `i` of `total` (its moment in the year), billed to `who` or a customer drawn at random."""
        from ledger.invoices import BANK, Invoice
        from ledger.lines import Line
        from ledger.money import Money
        from ledger.payments import OFFLINE, Payment, offline_payment_id, payment_id_for

        rng = random.Random(i * 7919 + 13)
        created = self.start + SPAN * (i / total)
        currency = _currency(rng)
        invoice = Invoice.create_draft(
            invoice_id=uuid5(_NAMESPACE, f"invoice-{i}"),
            customer=who or customer(rng.randrange(CUSTOMERS)),
            currency=currency,
            at=created,
            due_date=(created + 30 * DAY).date(),
            memo=f"Order {i}" if rng.random() < 0.3 else "",
        )
        self.pending.append(invoice)
        at = created
        for n in range(rng.randint(1, 4)):
            at += timedelta(seconds=rng.randint(5, 120))
            line = Line.price(
                line_id=f"line-{i}-{n}",
                description=rng.choice(PRODUCTS),
                quantity=rng.randint(1, 12),
                unit_amount=_unit_amount(rng, currency),
                tax_rate=rng.choice((None, "20", "7.7")),
            )
            invoice.add_line(line, at=at)
        fate = rng.random()
        if fate < 0.04:  # a draft, sometimes edited
            if rng.random() < 0.3:
                invoice.change_details(at=at + timedelta(minutes=5), memo="Revised quote")
            self.statuses["draft"] = self.statuses.get("draft", 0) + 1
            return
        issued = at + timedelta(minutes=rng.randint(1, 240))
        self._issue(invoice, issued)
        age = self.now - issued
        settled = 0.92 if age > 45 * DAY else 0.6  # older invoices are more often settled
        when = self._cap(issued + timedelta(hours=rng.uniform(1, 40 * 24)))

        def declined(payment: Any, attempt: str, moment: datetime) -> None:
            code, message = rng.choice(DECLINES)
            payment.fail(attempt_id=attempt, code=code, message=message, at=moment)
            invoice.record_failed_attempt(payment_id=str(payment.id), code=code, message=message, at=moment)

        def card(amount: int, moment: datetime, *, decline_first: bool) -> tuple[Any, datetime]:
            intent = f"pi_admin{i:08d}"
            payment = Payment.initiate(
                payment_id=payment_id_for("stripe", intent),
                invoice_id=invoice.id,
                provider="stripe",
                provider_payment_id=intent,
                amount=Money(amount, currency),
                at=moment,
            )
            self.pending.append(payment)
            if decline_first:
                declined(payment, f"ch_admin{i:08d}x", moment)
                moment = self._cap(moment + timedelta(days=rng.randint(1, 5)))
            return payment, moment

        def bank(amount: int, moment: datetime, reference: str) -> None:
            payment = Payment.initiate(
                payment_id=offline_payment_id(invoice.id, reference),
                invoice_id=invoice.id,
                provider=OFFLINE,
                provider_payment_id=reference,
                amount=Money(amount, currency),
                at=moment,
            )
            payment.succeed(amount_captured=amount, fee=0, charge_id=None, at=moment)
            invoice.apply_payment(
                payment_id=str(payment.id), amount=Money(amount, currency), fee=0, cash_account=BANK, at=moment
            )
            self.pending.append(payment)

        roll = rng.random()
        if roll < 0.03:
            invoice.void(at=when)
        elif roll < 0.05:
            if rng.random() < 0.5:
                _, when = card(invoice.amount_due, when, decline_first=True)
            invoice.mark_uncollectible(at=self._cap(when + timedelta(days=30)))
        elif roll < 0.05 + settled * 0.95:  # paid
            due = invoice.amount_due
            if rng.random() < 0.45:  # bank transfer, sometimes in two instalments
                if rng.random() < 0.15 and due > 1:
                    first = due // 2
                    bank(first, when, f"BT-{i}-1")
                    bank(due - first, self._cap(when + timedelta(days=rng.randint(1, 10))), f"BT-{i}-2")
                else:
                    bank(due, when, f"BT-{i}")
            else:
                payment, when = card(due, when, decline_first=rng.random() < 0.1)
                fee = _stripe_fee(due)
                payment.succeed(amount_captured=due, fee=fee, charge_id=f"ch_admin{i:08d}", at=when)
                invoice.apply_payment(
                    payment_id=str(payment.id),
                    amount=Money(due, currency),
                    fee=fee,
                    cash_account=payment.cash_account,
                    at=when,
                )
                if rng.random() < 0.05:
                    refunded = self._cap(when + timedelta(days=rng.randint(1, 20)))
                    part = due // 2
                    payment.refund(refund_id=f"re_admin{i:08d}", amount=part, at=refunded)
                    invoice.apply_refund(
                        payment_id=str(payment.id),
                        refund_id=f"re_admin{i:08d}",
                        amount=Money(part, currency),
                        cash_account=payment.cash_account,
                        at=refunded,
                    )
        else:  # open: some partly paid, some with declined card attempts
            kind = rng.random()
            if kind < 0.3:
                card(invoice.amount_due, when, decline_first=True)
            elif kind < 0.45 and invoice.amount_due > 1:
                bank(invoice.amount_due // 3, when, f"BT-{i}-part")
        self.statuses[invoice.status] = self.statuses.get(invoice.status, 0) + 1

    def heavy(self) -> Any:
        """The invoice of exactly HEAVY_EVENTS events: a draft edited 994 times, then issued,
        a declined card attempt and a partial bank payment (it stays open)."""
        from ledger.invoices import BANK, Invoice
        from ledger.lines import Line
        from ledger.money import Money
        from ledger.payments import OFFLINE, Payment, offline_payment_id, payment_id_for

        at = self.now - 10 * DAY
        invoice = Invoice.create_draft(
            invoice_id=uuid5(_NAMESPACE, "heavy"),
            customer={"email": "ap@heavy-edits.example", "name": "Heavy Edits GmbH"},
            currency="eur",
            at=at,
            due_date=(at + 30 * DAY).date(),
        )
        for n in range(2):
            invoice.add_line(
                Line.price(line_id=f"heavy-{n}", description=PRODUCTS[n], quantity=1, unit_amount=10_000), at=at
            )
        edits = HEAVY_EVENTS - 6  # created, 2 lines, issued, a failed attempt, a payment
        for n in range(edits):
            at += timedelta(minutes=1)
            line = Line.price(
                line_id=f"heavy-{n % 2}", description=PRODUCTS[n % 2], quantity=1 + n % 9, unit_amount=10_000 + n
            )
            invoice.change_line(line, at=at)
        at += timedelta(minutes=5)
        self._issue(invoice, at)
        payment = Payment.initiate(
            payment_id=payment_id_for("stripe", "pi_admin_heavy"),
            invoice_id=invoice.id,
            provider="stripe",
            provider_payment_id="pi_admin_heavy",
            amount=Money(invoice.amount_due, "eur"),
            at=at + DAY,
        )
        payment.fail(attempt_id="ch_admin_heavy", code="card_declined", message="Your card was declined.", at=at + DAY)
        invoice.record_failed_attempt(
            payment_id=str(payment.id), code="card_declined", message="Your card was declined.", at=at + DAY
        )
        part = invoice.amount_due // 4
        transfer = Payment.initiate(
            payment_id=offline_payment_id(invoice.id, "BT-heavy"),
            invoice_id=invoice.id,
            provider=OFFLINE,
            provider_payment_id="BT-heavy",
            amount=Money(part, "eur"),
            at=at + 2 * DAY,
        )
        transfer.succeed(amount_captured=part, fee=0, charge_id=None, at=at + 2 * DAY)
        invoice.apply_payment(
            payment_id=str(transfer.id), amount=Money(part, "eur"), fee=0, cash_account=BANK, at=at + 2 * DAY
        )
        if invoice.version != HEAVY_EVENTS:
            raise RuntimeError(f"the heavy invoice has {invoice.version} events, not {HEAVY_EVENTS}")
        self.pending += [invoice, payment, transfer]
        return invoice


@dataclass(frozen=True)
class SeedJob:
    url: str
    invoices: int


def seed(job: SeedJob, gate: Gate) -> Measured:
    """The ledger of `job.invoices` invoices (+ the heavy one), the read models caught up, an admin user."""
    from sqlalchemy import text

    from adapters.admin.passwords import Argon2Hasher
    from adapters.clock import SystemClock
    from adapters.persistence import event_store_env
    from adapters.read_models import projection_runner, read_model_engine
    from commands.application import BillingApplication

    app = BillingApplication(clock=SystemClock(), env=event_store_env(job.url), hasher=Argon2Hasher())
    gate.ready()
    started = clock()
    book = _Book(app, datetime.now(UTC))
    for i in range(job.invoices):
        book.invoice(i, job.invoices)
        if len(book.pending) >= 2 * CHUNK_INVOICES:
            book.flush()
    heavy = book.heavy()
    book.flush()
    password = secrets.token_urlsafe(18)
    app.admin.create_user(ADMIN_EMAIL, role="admin", password=password, created_by="bench")
    written = clock()
    engine = read_model_engine(job.url)
    projection_runner(app, engine).catch_up()
    caught_up = clock()
    if engine.dialect.name == "postgresql":
        # What autovacuum does to freshly written tables within a minute or so: statistics for
        # the planner and the visibility map that lets an index-only scan skip the table's rows.
        # Done here, so the timed requests meet the steady state, not a vacuum running beside them.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    finished = clock()
    seeded = Seeded(
        invoices=job.invoices + 1,
        events=app.head(),
        statuses=book.statuses,
        heavy_invoice=str(heavy.id),
        heavy_number=str(heavy.number),
        write_s=written - started,
        catch_up_s=caught_up - written,
        vacuum_s=finished - caught_up if engine.dialect.name == "postgresql" else None,
        admin_password=password,
    )
    engine.dispose()
    app.close()
    return Measured(seeded.events, started, finished, extra={"seeded": seeded})


# ------------------------------------------------------------------------------ one backend


@dataclass
class AdminReport:
    backend: str
    seeded: Seeded
    pages: list[PageRow] = field(default_factory=list)


def _deep_path(client: Client, pages: int) -> str:
    """The list's page `pages` "next" clicks from the first one."""
    path = "/admin/invoices"
    for n in range(pages):
        status, _, body, _ = client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"the invoice list's page {n + 1} answered {status}")
        following = next_link(body)
        if following is None:
            raise RuntimeError(f"the invoice list's page {n + 1} has no next link")
        path = following
    return path


def measure(backend: str, url: str, seeded: Seeded, plan: AdminPlan, log: Path) -> AdminReport:
    def cases(client: Client) -> list[tuple[str, str]]:
        client.login(ADMIN_EMAIL, seeded.admin_password)
        _say(backend, f"following the invoice list {plan.deep_pages} pages in")
        deep = _deep_path(client, plan.deep_pages)
        search = "/admin/invoices?" + urlencode({"status": "open", "currency": "eur", "q": SEARCH_WORD})
        return [
            ("GET /healthz (baseline)", "/healthz"),
            ("overview", "/admin/"),
            ("invoices, first page", "/admin/invoices"),
            (f"invoices, page {plan.deep_pages + 1}", deep),
            (f"invoices, open eur q={SEARCH_WORD}", search),
            (f"invoice of {HEAVY_EVENTS:,} events", f"/admin/invoices/{seeded.heavy_invoice}"),
        ]

    env = {"LEDGER_DATABASE_URL": url, "LEDGER_API_TOKEN": TOKEN}
    return AdminReport(backend, seeded, time_pages("admin", backend, url, env, log, plan, cases))


def run_admin(backend: str, url: str, plan: AdminPlan) -> AdminReport:
    """Seed `url` (a fresh database), then time the pages on it."""
    _say(backend, f"seeding {plan.invoices:,} invoices")
    worker = run_workers(seed, [SeedJob(url, plan.invoices)], SEED_TIMEOUT_SECONDS).workers[0]
    seeded: Seeded = worker.extra["seeded"]
    _say(
        backend,
        f"seeded {seeded.invoices:,} invoices, {seeded.events:,} events: written in {seeded.write_s:.1f} s, "
        f"read models caught up in {seeded.catch_up_s:.1f} s"
        + (f", VACUUM (ANALYZE) in {seeded.vacuum_s:.1f} s" if seeded.vacuum_s is not None else ""),
    )
    with tempfile.TemporaryDirectory(prefix="ledger-bench-admin-") as directory:
        return measure(backend, url, seeded, plan, Path(directory) / "server.log")


# ------------------------------------------------------------------------------ the table


COLUMNS = (
    "page",
    "requests",
    "p50 ms",
    "p99 ms",
    "target ms",
    "p99/target",
    "p50 x healthz",
    "p99 x healthz",
    "server CPU ms/req",
    "PostgreSQL CPU ms/req",
    "load before/after",
    "bytes",
    "rows",
)


def render(reports: list[AdminReport], plan: AdminPlan) -> str:
    out: list[str] = []
    for report in reports:
        seeded = report.seeded
        statuses = ", ".join(f"{name} {count:,}" for name, count in sorted(seeded.statuses.items()))
        vacuum = ""
        if seeded.vacuum_s is not None:
            vacuum = f", then VACUUM (ANALYZE) in {seeded.vacuum_s:.1f} s (as autovacuum would)"
        title = "\n".join(
            [
                f"Admin pages, {report.backend}: {seeded.invoices:,} invoices ({statuses}; + one of "
                f"{HEAVY_EVENTS:,} events), {seeded.events:,} events.",
                f"Seeding (not in the figures): written in {seeded.write_s:.1f} s, read models caught up in "
                f"{seeded.catch_up_s:.1f} s{vacuum}.",
                f"The app under uvicorn on loopback (1 worker), logged in as an admin; one request at a time on one "
                f"keep-alive connection, {plan.warmup} warm-up + {plan.requests} timed requests per page",
                "(send -> last byte). Target: p99 under 200 ms for each page. x healthz = the page's p50 (p99) over "
                "GET /healthz's, same server, same run.",
                "CPU ms/req: CPU time of the app's process (and of the PostgreSQL cluster) over the timed requests, "
                "per request;",
                "load: the machine's 1-minute load average before and after them (it is shared: 2 cores).",
            ]
        )
        out.append(page_table(title, report.pages, COLUMNS, TARGET_P99_MS))
    return "\n\n".join(out)
