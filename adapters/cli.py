"""The `ledger` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.demo import seed_demo
from adapters.invoice_text import history_text, invoice_text, money
from adapters.progress import ProgressBar
from adapters.read_models import projection_runner, read_model_engine
from adapters.settings import Settings
from commands.application import BillingApplication
from ledger.errors import InvalidDateError, LedgerError, NotFoundError
from projections.runner import ProjectionRunner


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except NotFoundError as error:
        print(f"ledger: {error}", file=sys.stderr)
        return 3
    except LedgerError as error:
        print(f"ledger: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger", description="Event-sourced billing ledger.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="seed a realistic demo data set (idempotent per day)")
    demo.set_defaults(run=_demo)

    invoice = commands.add_parser("invoice", help="read invoices").add_subparsers(required=True, metavar="ACTION")
    show = invoice.add_parser("show", help="print one invoice")
    show.add_argument("invoice_id", type=_uuid)
    show.set_defaults(run=_invoice_show)

    rebuild = commands.add_parser("rebuild", help="drop every read model and replay the whole log into it")
    rebuild.add_argument("--batch-size", type=int, default=5_000)
    rebuild.set_defaults(run=_rebuild)

    project = commands.add_parser("project", help="bring the read models up to date with the log")
    project.add_argument("--follow", action="store_true", help="keep following new events until interrupted")
    project.add_argument("--poll-seconds", type=float, default=0.2)
    project.set_defaults(run=_project)

    audit = commands.add_parser("audit", help="audit invoices").add_subparsers(required=True, metavar="ACTION")
    audit_show = audit.add_parser("show", help="an invoice as it stood at a moment, with its history")
    audit_show.add_argument("invoice_id", type=_uuid)
    audit_show.add_argument("--as-of", type=_moment, default=None, help="ISO 8601 timestamp (default: now)")
    audit_show.set_defaults(run=_audit_show)
    return parser


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an invoice id (a UUID)") from None


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no timezone: add Z or +01:00") from None
    return moment


def _demo(args: argparse.Namespace) -> int:
    settings = Settings.from_environment()
    clock = ManualClock(datetime.now(tz=UTC))
    app = bootstrap(settings, clock=clock)
    seeded = seed_demo(app, clock)
    today = datetime.now(tz=UTC).date()
    print(f"Demo data in {settings.database_url}\n")
    print(f"{'number':<12} {'status':<24} {'customer':<20} {'total':>18} {'paid':>18} {'due':>18}  story")
    for item in seeded:
        inv = app.invoice(item.invoice_id)
        status = inv.status + (" (overdue)" if inv.is_overdue(today) else "")
        c = inv.currency
        print(
            f"{inv.number or '-':<12} {status:<24} {inv.customer['name'][:20]:<20} {money(inv.total, c):>18} "
            f"{money(inv.amount_paid, c):>18} {money(inv.amount_due, c):>18}  {item.story}"
        )
    print("\nTry:")
    print(f"  .venv/bin/ledger invoice show {seeded[1].invoice_id}")
    before_refund = (datetime.now(tz=UTC) - timedelta(days=55)).date().isoformat()
    print(f"  .venv/bin/ledger audit show {seeded[1].invoice_id} --as-of {before_refund}T00:00:00Z")
    return 0


@contextmanager
def _runner() -> Iterator[tuple[ProjectionRunner, BillingApplication]]:
    settings = Settings.from_environment()
    app = bootstrap(settings)
    engine = read_model_engine(settings.database_url)
    try:
        yield projection_runner(app, engine), app
    finally:
        engine.dispose()
        app.close()


def _rebuild(args: argparse.Namespace) -> int:
    with _runner() as (runner, app):
        return _rebuild_with(runner, app, args.batch_size)


def _rebuild_with(runner: ProjectionRunner, app: BillingApplication, batch_size: int) -> int:
    head = app.head()
    started = time.perf_counter()
    bar = ProgressBar(total=head * len(runner.projections), label="rebuild")
    applied = runner.rebuild(batch_size=batch_size, progress=lambda done, _: bar.show(done))
    elapsed = time.perf_counter() - started
    bar.finish()
    events = applied // max(1, len(runner.projections))
    print(
        f"rebuilt {', '.join(p.name for p in runner.projections)} from {events:,} events "
        f"in {elapsed:.2f} s ({events / elapsed if elapsed else 0:,.0f} events/s)"
    )
    return 0


def _project(args: argparse.Namespace) -> int:
    with _runner() as (runner, _):
        applied = runner.catch_up()
        print(f"applied {applied:,} events; positions {runner.positions()}")
        if args.follow:
            print("following the log (Ctrl-C to stop)", flush=True)
            try:
                runner.follow(poll_seconds=args.poll_seconds)
            except KeyboardInterrupt:
                print(f"stopped at {runner.positions()}")
    return 0


def _invoice_show(args: argparse.Namespace) -> int:
    app = bootstrap()
    print(invoice_text(app.invoice(args.invoice_id), today=datetime.now(tz=UTC).date()))
    return 0


def _audit_show(args: argparse.Namespace) -> int:
    app = bootstrap()
    moment = args.as_of or datetime.now(tz=UTC)
    try:
        invoice = app.invoice_as_of(args.invoice_id, moment)
    except NotFoundError:
        app.invoice(args.invoice_id)  # unknown invoice: say so; else it did not exist yet
        raise InvalidDateError(f"invoice {args.invoice_id} did not exist yet at {moment.isoformat()}") from None
    events = [e for e in app.invoice_history(args.invoice_id) if e.timestamp <= moment]
    print(f"As of {moment.isoformat()}:\n")
    print(invoice_text(invoice, today=moment.date()))
    print(f"\nHistory ({len(events)} events known at that moment):")
    print(history_text(events))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
