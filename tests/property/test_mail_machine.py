"""Invoice email delivery as a hypothesis state machine: sends queued (again and again, resends),
reminders, invoices paid or voided meanwhile, a mail server that is up, down or refusing, workers
run alone or two at once, a worker that dies between the server's 250 and its record, and time
passing; on SQLite, with a fake sender.

After every step:
- no email reaches the server twice, unless its worker died after the server took it (the one
  duplicate ADR 0020 owns up to), and then once more at most per such death;
- an email recorded sent reached the server; nothing reaches it that was not queued;
- no email is lost: each one is sent, bounced, given up after its last attempt, withdrawn, or
  will be taken up again (the read model shows when);
- nothing stale reaches the server: no reminder of an invoice paid or voided, no email queued
  before its invoice was voided (those are withdrawn);
- with the server up and enough time, every email is settled, and each queued one went out
  unless it was withdrawn.
"""

from __future__ import annotations

import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from uuid import UUID

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.mail.smtp import ACCEPTED, BOUNCED, FAILED, Delivery
from adapters.mail.worker import MailWorker
from adapters.read_models import projection_runner, read_model_engine
from adapters.settings import Settings
from commands.messages import NewLine
from ledger.invoices import OPEN, PAID, VOID, Invoice
from ledger.mail.emails import GAVE_UP, REMINDER, SENT, SETTLED, WITHDRAWN, InvoiceEmail, InvoiceNotSendableError
from ledger.money import Money
from ledger.seller import Seller
from projections.mail.emails import list_emails

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
REFUSED_ADDRESS = "gone@example.com"


class WorkerDied(Exception):
    """The process stopped after the server accepted the message, before anything was recorded."""


class FakeMailServer:
    """The Sender port: keeps the Message-IDs it accepts; can be down, or die after accepting."""

    def __init__(self, stale: Callable[[EmailMessage], bool]) -> None:
        self.up = True
        self.die_after_next = False
        self.received: list[str] = []
        self.stale_received: list[str] = []  # messages that should have been withdrawn
        self.stale = stale
        self.lock = threading.Lock()

    def send(self, message: EmailMessage) -> Delivery:
        if not self.up:
            return Delivery(FAILED, "127.0.0.1:25: ConnectionRefusedError")
        if message["To"].addresses[0].addr_spec == REFUSED_ADDRESS:
            return Delivery(BOUNCED, "RCPT refused: 550 User unknown", 550)
        stale = self.stale(message)
        with self.lock:
            self.received.append(str(message["Message-ID"]))
            if stale:
                self.stale_received.append(str(message["Message-ID"]))
            if self.die_after_next:
                self.die_after_next = False
                raise WorkerDied
        return Delivery(ACCEPTED, "250 OK", 250)


class MailMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory(prefix="mail-machine-")
        url = f"sqlite:///{Path(self.directory.name) / 'ledger.sqlite3'}"
        self.clock = ManualClock(START)
        self.app = bootstrap(Settings(database_url=url), clock=self.clock)
        self.engine = read_model_engine(url)
        self.server = FakeMailServer(self._stale)
        self.invoices: list[UUID] = []
        self.emails: set[UUID] = set()
        self.queued_before_void: set[UUID] = set()
        self.deaths: Counter[str] = Counter()  # Message-ID -> times its worker died after the 250

    def teardown(self) -> None:
        self.engine.dispose()
        self.app.close()
        self.directory.cleanup()

    def worker(self, *, stale: bool = False) -> MailWorker:
        """`stale`: the worker reads the read model as it is, without catching it up (it lags)."""
        catch_up = (lambda: None) if stale else None
        # A fake PDF: this machine is about delivery, not rendering (a real one takes ~0.5 s).
        return MailWorker(
            self.app,
            self.engine,
            self.server,
            seller=Seller(),
            clock=self.clock,
            catch_up=catch_up,
            render_pdf=_fake_pdf,
        )

    @initialize(refused=st.booleans(), settled=st.sampled_from([None, "paid", "void"]))
    def invoices_issued_and_queued(self, refused: bool, settled: str | None) -> None:
        """Two invoices, each with its email and a reminder queued; the first paid or voided
        before any worker ran, maybe (an outage's backlog)."""
        for email in ("ap@example.com", REFUSED_ADDRESS if refused else "billing@example.org"):
            invoice_id = self.app.create_draft(
                customer={"email": email, "name": "Example"}, currency="usd", lines=[NewLine("Plan", 1, 1_000, None)]
            ).result
            self.app.issue(invoice_id)
            self.invoices.append(invoice_id)
            self.emails.add(self.app.mail.queue(invoice_id, trigger="on-issue").result)
            reminder = self.app.mail.queue(invoice_id, purpose=REMINDER, trigger="dunning", key="dunning-0")
            self.emails.add(reminder.result)
        if settled is not None:
            self.the_invoice_is_settled(0, void=settled == "void")

    @rule(which=st.integers(0, 1), resend=st.booleans(), max_attempts=st.integers(1, 4))
    def send(self, which: int, resend: bool, max_attempts: int) -> None:
        outcome = self.app.mail.queue(self.invoices[which], trigger="api", resend=resend, max_attempts=max_attempts)
        self.emails.add(outcome.result)

    @rule(which=st.integers(0, 1), key=st.sampled_from(["dunning-1", "dunning-2"]))
    def remind(self, which: int, key: str) -> None:
        try:
            email_id = self.app.mail.queue(self.invoices[which], purpose=REMINDER, trigger="dunning", key=key).result
        except InvoiceNotSendableError:  # paid or voided: nothing to remind of
            return
        self.emails.add(email_id)

    @rule(which=st.integers(0, 1), void=st.booleans())
    def the_invoice_is_settled(self, which: int, void: bool) -> None:
        invoice_id = self.invoices[which]
        if self.app.invoice(invoice_id).status != OPEN:
            return
        if void:
            self.queued_before_void |= {e for e in self.emails if self.app.mail.email(e).invoice_id == str(invoice_id)}
            self.app.void(invoice_id)
        else:
            self.app.record_offline_payment(invoice_id, Money(1_000, "usd"), reference="wire")

    @rule(up=st.booleans())
    def server_is(self, up: bool) -> None:
        self.server.up = up

    @rule(minutes=st.sampled_from([0, 1, 4, 9, 10, 31, 121, 361]))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule(stale=st.booleans())
    def a_worker_runs(self, stale: bool) -> None:
        self.worker(stale=stale).run_once()

    @rule()
    def a_worker_dies_after_the_server_took_a_message(self) -> None:
        self.server.die_after_next = True
        before = len(self.server.received)
        try:
            self.worker().run_once()
        except WorkerDied:
            self.deaths[self.server.received[-1]] += 1
        self.server.die_after_next = False
        assert len(self.server.received) >= before

    @rule()
    def two_workers_run_at_once(self) -> None:
        projection_runner(self.app, self.engine).catch_up()
        workers = [self.worker(stale=True), self.worker(stale=True)]  # both see every email due
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(worker: MailWorker) -> None:
            start.wait()
            try:
                worker.run_once()
            except BaseException as error:  # reported below, on the test's thread
                errors.append(error)

        threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    @rule()
    def everything_settles_once_the_server_is_up(self) -> None:
        self.server.up = True
        for _ in range(12):
            self.worker().run_once()
            self.clock.advance(timedelta(hours=7))
        for email_id in self.emails:
            email = self.app.mail.email(email_id)
            assert email.status in SETTLED, (email_id, email.status)
            if email.recipient != REFUSED_ADDRESS and email.status not in (GAVE_UP, WITHDRAWN):
                assert email.status == SENT

    # ------------------------------------------------------------------------ invariants

    @invariant()
    def no_email_reaches_the_server_twice_but_for_a_death(self) -> None:
        for message_id, count in Counter(self.server.received).items():
            assert count <= 1 + self.deaths[message_id], (message_id, count)

    @invariant()
    def nothing_stale_reaches_the_server(self) -> None:
        assert self.server.stale_received == []

    @invariant()
    def what_is_recorded_sent_went_out_and_nothing_else_did(self) -> None:
        queued = {_message_id(email_id) for email_id in self.emails}
        assert set(self.server.received) <= queued
        for email_id in self.emails:
            if self.app.mail.email(email_id).status == SENT:
                assert _message_id(email_id) in self.server.received

    @invariant()
    def no_email_is_lost(self) -> None:
        projection_runner(self.app, self.engine).catch_up()
        rows = {UUID(row["email_id"]): row for row in list_emails(self.engine, limit=200)}
        assert set(rows) == self.emails
        for email_id, row in rows.items():
            email: InvoiceEmail = self.app.mail.email(email_id)
            assert row["status"] == email.status
            if email.status == GAVE_UP:
                assert email.attempts == email.max_attempts
            elif email.status not in SETTLED:
                assert row["next_attempt_at"] is not None  # a worker will take it up

    def _stale(self, message: EmailMessage) -> bool:
        """Whether the message should have been withdrawn: the invoice as it is when it goes."""
        email_id = UUID(str(message["Message-ID"]).strip("<>").split("@")[0])
        email = self.app.mail.email(email_id)
        invoice = self.app.invoice(UUID(email.invoice_id))
        if email.purpose == REMINDER:
            return invoice.status in (PAID, VOID)
        return invoice.status == VOID and email_id in self.queued_before_void


def _message_id(email_id: UUID) -> str:
    return f"<{email_id}@localhost>"


def _fake_pdf(invoice: Invoice, *, seller: Seller, portal_url: str | None) -> bytes:
    return f"%PDF-1.7 {invoice.number}\n".encode()


def test_every_email_goes_out_once_and_none_is_lost() -> None:
    run_state_machine_as_test(MailMachine, settings=settings(max_examples=25, stateful_step_count=15, deadline=None))
