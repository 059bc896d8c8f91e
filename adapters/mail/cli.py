"""`ledger invoice send ID`, `ledger mail run [--follow]` and `ledger mail list`."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from adapters.bootstrap import bootstrap
from adapters.mail import capture
from adapters.mail.triggers import MailLoop, mail_triggers
from adapters.mail.worker import mail_worker
from adapters.read_models import projection_runner, read_model_engine
from adapters.settings import Settings
from commands.application import BillingApplication
from ledger.mail.emails import INVOICE, PURPOSES, STATUSES
from projections.mail.emails import email_row, list_emails

Subparsers = Any  # argparse's _SubParsersAction, which it does not name publicly


def add_invoice_commands(invoice: Subparsers, uuid: Callable[[str], UUID]) -> None:
    send = invoice.add_parser("send", help="queue the invoice's email to its customer (LEDGER_SMTP_URL delivers it)")
    send.add_argument("invoice_id", type=uuid)
    send.add_argument("--resend", action="store_true", help="a new email even if this version was sent already")
    send.add_argument("--purpose", choices=PURPOSES, default=INVOICE, help="invoice (default) or reminder")
    send.add_argument("--to", default=None, help="another recipient than the invoice's customer")
    send.add_argument("--deliver", action="store_true", help="then run the mail worker once")
    send.set_defaults(run=_send)


def add_commands(commands: Subparsers) -> None:
    mail = commands.add_parser("mail", help="invoice emails").add_subparsers(required=True, metavar="ACTION")
    run = mail.add_parser("run", help="deliver the emails that are due (LEDGER_SMTP_URL)")
    run.add_argument("--follow", action="store_true", help="keep delivering until interrupted")
    run.add_argument("--interval", type=float, default=5.0, help="seconds between passes with --follow (default 5)")
    run.set_defaults(run=_run)
    listing = mail.add_parser("list", help="the emails, newest first")
    listing.add_argument("--invoice", type=UUID, default=None, help="only this invoice's")
    listing.add_argument("--status", choices=STATUSES, default=None)
    listing.add_argument("--limit", type=_limit, default=50, help="at most this many (1 to 1000, default 50)")
    listing.set_defaults(run=_list)
    capture.add_command(mail)  # `ledger mail capture`: the demo's local mailbox (adapters/mail/capture.py)


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 1000, not {text!r}")
    return value


@contextmanager
def _opened() -> Iterator[tuple[Settings, BillingApplication, Engine]]:
    settings = Settings.from_environment()
    app = bootstrap(settings)
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    try:
        yield settings, app, engine
    finally:
        engine.dispose()
        app.close()


def _send(args: argparse.Namespace) -> int:
    with _opened() as (settings, app, engine):
        outcome = app.mail.queue(
            args.invoice_id, purpose=args.purpose, trigger="cli", recipient=args.to, resend=args.resend
        )
        email_id = outcome.result
        queued_now = bool(outcome.versions)
        if args.deliver:
            print(f"delivery: {mail_worker(app, engine, settings).run_once()}")
        else:
            projection_runner(app, engine).catch_up()
        row = email_row(engine, email_id)
        email = app.mail.email(email_id)
    what = "queued" if queued_now else "already queued (this invoice version; --resend for another)"
    print(f"email {email_id} to {email.recipient}: {what}; status {email.status}")
    if row is not None and row["last_error"] and email.status != "sent":
        print(f"  last error: {row['last_error']}")
    return 0


def _run(args: argparse.Namespace) -> int:
    with _opened() as (settings, app, engine):
        worker = mail_worker(app, engine, settings)
        # What the log asks to be mailed (issued invoices, dunning reminders) is queued first.
        triggers = mail_triggers(app, engine, on_issue=settings.mail_on_issue)
        if not args.follow:
            triggered = triggers.run_once()
            if triggered.queued or triggered.passed_over:
                print(f"triggers: emails {triggered}")
            print(worker.run_once())
            return 0
        loop = MailLoop(triggers.run_once, worker.run_once, interval=args.interval)

        def stopping(_signal: int, _frame: FrameType | None) -> None:
            loop.stopping.set()

        signal.signal(signal.SIGTERM, stopping)
        print(f"delivering due emails every {args.interval:g} s (Ctrl-C to stop)", flush=True)
        try:
            loop.follow()
        except KeyboardInterrupt:
            loop.stopping.set()
    return 0


def _list(args: argparse.Namespace) -> int:
    with _opened() as (_, app, engine):
        projection_runner(app, engine).catch_up()
        rows = list_emails(engine, invoice_id=args.invoice, status=args.status, limit=args.limit)
    for row in rows:
        when = _moment(row["sent_at"] or row["queued_at"])
        error = f"  ({row['last_error']})" if row["last_error"] and row["status"] != "sent" else ""
        print(
            f"{row['email_id']}  {row['invoice_id']}  {row['purpose']:<8} {row['status']:<9} "
            f"{row['attempts']}/{row['max_attempts']}  {when}  {row['recipient']}{error}"
        )
    if not rows:
        print("no emails")
    return 0


def _moment(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
