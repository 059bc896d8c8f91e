"""The `ledger` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

from rich.console import Console
from rich.table import Table

from adapters import reconciliation
from adapters.admin import cli as admin_cli
from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.demo import DEMO_ADMIN, demo_mail, seed_demo
from adapters.invoice_text import history_text, invoice_text, money
from adapters.log_notifications import log_waiter
from adapters.mail import cli as mail_cli
from adapters.mail.capture import INDEX, CaptureServer
from adapters.mail.triggers import mail_triggers
from adapters.parallel_rebuild import PARALLEL_FROM, check_jobs, rebuild_read_models
from adapters.pdf import cli as pdf_cli
from adapters.persistence import ConfigurationError
from adapters.portal import cli as portal_cli
from adapters.progress import ProgressBar
from adapters.read_models import audit_chain_runner, projection_runner, read_model_engine, read_model_projections
from adapters.settings import Settings
from adapters.stripe import StripePaymentProvider
from adapters.stripe.payloads import read_event
from adapters.web_server import new_token
from adapters.web_server import serve as serve_api
from commands.application import BillingApplication
from commands.dunning import DunningAction
from commands.ingestion import stripe_events
from commands.usage.reporting import report_usage
from ledger.dunning.policy import DunningPolicy
from ledger.errors import (
    IdempotencyKeyReusedError,
    InvalidDateError,
    LedgerError,
    NotFoundError,
    ProviderConfigurationError,
    ProviderError,
)
from projections.audit_chain import verify as verify_chain
from projections.audit_export import export as export_period
from projections.audit_export import verify_file
from projections.consistency import check as check_read_models
from projections.overdue import dunning_candidates
from projections.queries import trial_balance
from projections.runner import ProjectionRunner
from projections.webhook_inbox import STATUSES, list_webhook_events


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
    demo.add_argument("--serve", action="store_true", help="then serve the API on --host:--port")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(run=_demo)

    serve = commands.add_parser("serve", help="serve the JSON API (needs LEDGER_API_TOKEN)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    serve.set_defaults(run=_serve)

    invoice = commands.add_parser("invoice", help="read invoices").add_subparsers(required=True, metavar="ACTION")
    show = invoice.add_parser("show", help="print one invoice")
    show.add_argument("invoice_id", type=_uuid)
    show.set_defaults(run=_invoice_show)
    pdf_cli.add_commands(invoice)
    mail_cli.add_invoice_commands(invoice, _uuid)

    rebuild = commands.add_parser("rebuild", help="drop every read model and replay the whole log into it")
    rebuild.add_argument("--batch-size", type=int, default=5_000)
    rebuild.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="processes that replay the log at once, 1 or 2 (default: 2 on a machine with 2 cores or more, "
        f"from a log of {PARALLEL_FROM:,} events)",
    )
    rebuild.add_argument(
        "--check",
        action="store_true",
        help="rebuild into scratch tables and compare with the live read models (exit 1 on any difference)",
    )
    rebuild.set_defaults(run=_rebuild)

    project = commands.add_parser("project", help="bring the read models up to date with the log")
    project.add_argument("--follow", action="store_true", help="keep following new events until interrupted")
    project.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help="seconds between looks at the log (default 0.2 on SQLite; on PostgreSQL, where NOTIFY wakes the "
        "follower, 1: a lost notification delays it at most that long)",
    )
    project.set_defaults(run=_project)

    usage = commands.add_parser("usage", help="usage-based billing").add_subparsers(required=True, metavar="ACTION")
    usage_report = usage.add_parser("report", help="report Stripe-billed customers' usage to Stripe's meters")
    usage_report.add_argument("--follow", action="store_true", help="keep reporting new usage until interrupted")
    usage_report.add_argument("--poll-seconds", type=float, default=1.0, help="seconds between looks (default 1)")
    usage_report.set_defaults(run=_usage_report)

    audit = commands.add_parser("audit", help="audit invoices").add_subparsers(required=True, metavar="ACTION")
    audit_show = audit.add_parser("show", help="an invoice as it stood at a moment, with its history")
    audit_show.add_argument("invoice_id", type=_uuid)
    audit_show.add_argument("--as-of", type=_moment, default=None, help="ISO 8601 timestamp (default: now)")
    audit_show.set_defaults(run=_audit_show)
    audit_verify = audit.add_parser("verify", help="check the audit hash chain against the whole log (or a file)")
    audit_verify.add_argument("--file", default=None, help="an exported JSON Lines file to check on its own")
    audit_verify.set_defaults(run=_audit_verify)
    audit_export = audit.add_parser("export", help="export a period of the log with its chain links (JSON Lines)")
    audit_export.add_argument("file", help="where to write the export")
    audit_export.add_argument("--from", dest="start", type=_moment, default=None, help="ISO 8601 (inclusive)")
    audit_export.add_argument("--to", dest="end", type=_moment, default=None, help="ISO 8601 (exclusive)")
    audit_export.set_defaults(run=_audit_export)

    dunning = commands.add_parser("dunning", help="collect unpaid invoices").add_subparsers(
        required=True, metavar="ACTION"
    )
    dunning_run = dunning.add_parser(
        "run", help="take the reminder, retry and uncollectible steps due (LEDGER_DUNNING_SCHEDULE); safe to repeat"
    )
    dunning_run.add_argument(
        "--at", type=_moment, default=None, help="run as of this ISO 8601 moment (default now; never in the future)"
    )
    dunning_run.set_defaults(run=_dunning_run)

    webhooks = commands.add_parser("webhooks", help="the Stripe events received (the webhook inbox)")
    webhook_actions = webhooks.add_subparsers(required=True, metavar="ACTION")
    webhooks_list = webhook_actions.add_parser("list", help="the events received, newest first")
    webhooks_list.add_argument("--status", choices=STATUSES, default=None)
    webhooks_list.add_argument("--limit", type=int, default=50, help="at most this many (1 to 200, default 50)")
    webhooks_list.add_argument("--cursor", default=None, help="the next_cursor a previous --format json printed")
    webhooks_list.add_argument("--format", choices=("table", "json"), default="table")
    webhooks_list.set_defaults(run=_webhooks_list)
    webhooks_reprocess = webhook_actions.add_parser(
        "reprocess", help="handle an unmatched, rejected or never-handled event again (e.g. once its invoice exists)"
    )
    webhooks_reprocess.add_argument("event_id", help="Stripe's event id (evt_...)")
    webhooks_reprocess.set_defaults(run=_webhooks_reprocess)

    reconciliation.add_commands(commands, _moment)
    admin_cli.add_commands(commands)
    mail_cli.add_commands(commands)
    portal_cli.add_commands(commands)
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


def _console() -> Console:
    """stdout for tables: as wide as the terminal, or unbounded when piped (no wrapped rows)."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=1_000, no_color=True)
    return console


def _demo(args: argparse.Namespace) -> int:
    settings = Settings.from_environment()
    clock = ManualClock(datetime.now(tz=UTC))
    app = bootstrap(settings, clock=clock)
    # The dashboard's demo user, with a password made for this run; a later run finds the user
    # and leaves it (the seed changes nothing when run again on a day), password and all.
    password = None if app.admin.user_by_email(DEMO_ADMIN) else secrets.token_urlsafe(16)
    seeded = seed_demo(app, clock, admin_password=password)
    today = datetime.now(tz=UTC).date()
    print(f"Demo data in {settings.database_url}\n")
    table = Table("number", "status", "customer", "total", "paid", "due", "story", box=None, pad_edge=False)
    for column in table.columns[3:6]:
        column.justify = "right"
    for item in seeded:
        inv = app.invoice(item.invoice_id)
        status = inv.status + (" (overdue)" if inv.is_overdue(today) else "")
        c = inv.currency
        table.add_row(
            inv.number or "-",
            status,
            inv.customer["name"][:20],
            money(inv.total, c),
            money(inv.amount_paid, c),
            money(inv.amount_due, c),
            item.story,
        )
    _console().print(table)
    print("\nTry:")
    print(f"  .venv/bin/ledger invoice show {seeded[1].invoice_id}")
    before_refund = (datetime.now(tz=UTC) - timedelta(days=55)).date().isoformat()
    print(f"  .venv/bin/ledger audit show {seeded[1].invoice_id} --as-of {before_refund}T00:00:00Z")
    # The portal needs a secret to sign its links: the environment's, or one made for this run.
    made = settings.secret_key is None
    secret = settings.secret_key or secrets.token_urlsafe(32)
    base = f"http://{args.host}:{args.port}" if args.serve else (settings.public_url or portal_cli.LOCAL_URL)
    portal_url = _demo_portal_link(app, [item.invoice_id for item in seeded], base, secret)
    app.close()
    if not args.serve:
        print()
        _print_demo_admin(password)
        _print_demo_portal(portal_url, secret, made=made)
    if args.serve:
        os.environ["LEDGER_SECRET_KEY"] = secret  # the server reads its settings from the environment
        settings = dataclasses.replace(settings, secret_key=secret)
        _serve_demo(args, settings, seeded[1].invoice_id, password, (portal_url, made))
    return 0


def _demo_portal_link(app: BillingApplication, invoice_ids: list[UUID], base: str, secret: str) -> str | None:
    """A portal link for the customer of the first open demo invoice, opening on that invoice.
    One link a day, as the seed is (its id derives from the invoice and the day): running the
    demo again stores nothing, whatever secret signs the URL."""
    for invoice_id in invoice_ids:
        if app.invoice(invoice_id).status == "open":
            now = app.clock.now()
            link_id = uuid5(invoice_id, f"demo portal link {now.date().isoformat()}")
            email = app.portal.customer_of(invoice_id)
            expires_at = now + timedelta(days=30)
            app.portal.issue(email, expires_at=expires_at, invoice_id=invoice_id, issued_by="cli", link_id=link_id)
            return app.portal.invoice_url(link_id, invoice_id, base_url=base, secret=secret)
    return None


def _print_demo_portal(url: str | None, secret: str, *, made: bool) -> None:
    if url is None:
        return
    print("Client portal (one demo customer's invoices, for 30 days):")
    print(f"  {url}")
    if made:
        print("  signed with a LEDGER_SECRET_KEY made for this run; for the link to work in later runs:")
        print(f"  export LEDGER_SECRET_KEY={secret}")
    print()


def _print_demo_admin(password: str | None, base: str | None = None) -> None:
    where = f" on {base}/admin/login" if base else " (`ledger demo --serve` serves it)"
    print(f"Dashboard user{where}:")
    if password is None:
        print(f"  {DEMO_ADMIN}, with the password printed by the first `ledger demo`")
        print(f"  (a new one: .venv/bin/ledger admin set-password {DEMO_ADMIN})\n")
    else:
        print(f"  email     {DEMO_ADMIN}")
        print(f"  password  {password}   (new for this database; shown once)\n")


def _serve_demo(
    args: argparse.Namespace,
    settings: Settings,
    example: UUID,
    password: str | None,
    portal: tuple[str | None, bool],  # the demo's portal URL, and whether its secret was made for this run
) -> None:
    settings, capture = demo_mail(settings)
    token = settings.api_token or new_token()
    os.environ["LEDGER_API_TOKEN"] = token  # the server reads its settings from the environment
    base = f"http://{args.host}:{args.port}"
    if not settings.public_url:  # the demo's customers are on this machine: its mail links here
        os.environ["LEDGER_PUBLIC_URL"] = base
        settings = dataclasses.replace(settings, public_url=base)
    auth = f"-H 'Authorization: Bearer {token}'"
    body = (
        '{"customer": {"email": "ap@example.com", "name": "Example Ltd"}, "currency": "usd", '
        '"lines": [{"description": "Consulting", "quantity": "7.5", "unit_amount": 12000, "tax_rate": "20"}]}'
    )
    print(f"\nThe API on {base} (docs: {base}/docs)")
    where = "from LEDGER_API_TOKEN" if settings.api_token else "new for this run; set LEDGER_API_TOKEN to keep one"
    print(f"API token ({where}):")
    print(f"  {token}\n")
    _print_demo_admin(password, base)
    _print_demo_portal(portal[0], settings.secret_key or "", made=portal[1])
    print("Try:")
    print(f"  curl -s {auth} {base}/api/invoices")
    print(f"  curl -s {auth} {base}/api/invoices/{example}")
    print(f"  curl -s {auth} {base}/api/invoices/{example}/events")
    print(f"  curl -s {auth} -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \\")
    print(f"       -d '{body}' {base}/api/invoices")
    _print_demo_mail(settings, capture)
    print("Ctrl-C stops the server.\n", flush=True)
    try:
        serve_api(args.host, args.port, 1, dataclasses.replace(settings, api_token=token))
    finally:
        if capture is not None:
            capture.stop()


def _print_demo_mail(settings: Settings, capture: CaptureServer | None) -> None:
    if capture is None:
        print("Mail goes to LEDGER_SMTP_URL; `.venv/bin/ledger mail list` shows each email's status.")
        return
    on_issue = "; issuing an invoice mails it there too" if settings.mail_on_issue else ""
    print(f"Mail: a local capture server ({capture.url}) keeps every email in {capture.folder}/")
    print(f"  one .eml file each, listed in {capture.folder / INDEX}{on_issue}")
    print("  .venv/bin/ledger mail list    # each email's status\n")


def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ConfigurationError("--workers must be at least 1")
    serve_api(args.host, args.port, args.workers, Settings.from_environment())
    return 0


@contextmanager
def _runner() -> Iterator[tuple[ProjectionRunner, BillingApplication]]:
    settings = Settings.from_environment()
    app = bootstrap(settings)
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    try:
        yield projection_runner(app, engine), app
    finally:
        engine.dispose()
        app.close()


def _rebuild(args: argparse.Namespace) -> int:
    if args.check:
        return _rebuild_check(args.batch_size)
    jobs = None if args.jobs is None else check_jobs(args.jobs)
    with _runner() as (runner, app):  # closed before the rebuild, which opens its own
        head = app.head()
        rebuilt = [p.name for p in runner.rebuildable()]
    return _rebuild_with(head, rebuilt, args.batch_size, jobs)


def _rebuild_check(batch_size: int) -> int:
    settings = Settings.from_environment()
    app = bootstrap(settings)
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    try:
        report = check_read_models(engine, app, lambda: read_model_projections(app), batch_size=batch_size)
    finally:
        engine.dispose()
        app.close()
    print(report)
    return 0 if report.ok else 1


def _rebuild_with(head: int, rebuilt: list[str], batch_size: int, jobs: int | None) -> int:
    started = time.perf_counter()
    total = head * len(rebuilt)
    bar = ProgressBar(total=total, label="rebuild")
    done = rebuild_read_models(
        Settings.from_environment(),
        jobs=jobs,
        batch_size=batch_size,
        progress=lambda applied, _: bar.show(min(applied, total)),
    )
    elapsed = time.perf_counter() - started
    bar.finish()
    processes = done.processes
    print(
        f"rebuilt {', '.join(rebuilt)} from {head:,} events "
        f"in {elapsed:.2f} s ({head / elapsed if elapsed else 0:,.0f} events/s, "
        f"{processes} process{'es' if processes > 1 else ''}; the audit chain is never rebuilt)"
    )
    return 0


def _project(args: argparse.Namespace) -> int:
    with _runner() as (runner, app):
        applied = runner.catch_up()
        print(f"applied {applied:,} events; positions {runner.positions()}")
        if args.follow:
            # LISTEN (on PostgreSQL) before follow's first pass: no commit falls between the two.
            waiter = log_waiter(app, Settings.from_environment().database_url)
            poll_seconds = waiter.poll_seconds if args.poll_seconds is None else args.poll_seconds
            print("following the log (Ctrl-C to stop)", flush=True)
            try:
                runner.follow(poll_seconds=poll_seconds, wait=waiter.wait)
            except KeyboardInterrupt:
                print(f"stopped at {runner.positions()}")
            finally:
                waiter.close()
    return 0


def _usage_report(args: argparse.Namespace) -> int:
    settings = Settings.from_environment()
    if not settings.stripe_api_key:
        raise ProviderConfigurationError("set STRIPE_API_KEY to report usage to Stripe")
    app = bootstrap(settings)
    provider = StripePaymentProvider(settings.stripe_api_key, api_base=settings.stripe_api_base)
    try:
        while True:
            done = report_usage(app, provider)
            print(
                f"reported {done.reported:,} usage records, skipped {done.skipped:,}; at log position {done.position}"
            )
            if not args.follow:
                return 0
            time.sleep(args.poll_seconds)
    except KeyboardInterrupt:
        return 0
    finally:
        provider.close()
        app.close()


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


def _audit_verify(args: argparse.Namespace) -> int:
    if args.file is not None:
        try:
            with open(args.file, encoding="utf-8") as lines:
                file_verdict = verify_file(lines)
        except (OSError, UnicodeDecodeError) as error:
            print(f"ledger: cannot read {args.file}: {error}", file=sys.stderr)
            return 2
        print(file_verdict)
        return 0 if file_verdict.ok else 1
    settings = Settings.from_environment()
    app = bootstrap(settings)
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    try:
        try:
            audit_chain_runner(app, engine).catch_up(batch_size=10_000)  # chain what was logged since
        except Exception as error:  # a damaged log may not even decode: still verify what is chained
            print(f"ledger: could not extend the audit chain: {error}", file=sys.stderr)
        started = time.perf_counter()
        verdict = verify_chain(app, engine)
        elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
        app.close()
    print(verdict)
    rate = verdict.count / elapsed if elapsed else 0
    print(f"checked {verdict.count:,} chained events in {elapsed:.2f} s ({rate:,.0f} events/s)", file=sys.stderr)
    return 0 if verdict.ok else 1


def _audit_export(args: argparse.Namespace) -> int:
    with _runner() as (runner, app):
        runner.catch_up(batch_size=10_000)  # the chain and the journal (for the trial balance)
        verdict = verify_chain(app, runner.engine)
        if not verdict.ok:
            print(f"ledger: not exporting, the log does not verify: {verdict}", file=sys.stderr)
            return 1
        with open(args.file, "w", encoding="utf-8") as out:
            done = export_period(app, out, trial_balance(runner.engine), start=args.start, end=args.end)
    print(f"exported {done.count} events to {args.file}: link before {done.link_before}, head {done.head}")
    return 0


def _dunning_run(args: argparse.Namespace) -> int:
    settings = Settings.from_environment()
    payments = (
        StripePaymentProvider(settings.stripe_api_key, api_base=settings.stripe_api_base)
        if settings.stripe_api_key
        else None
    )
    try:
        with _runner() as (runner, app):
            # With mail on, the reminders the pass requests are queued as emails right after it
            # (the triggers' position is fixed first, so a first run still mails this pass's).
            triggers = mail_triggers(app, runner.engine, on_issue=settings.mail_on_issue) if settings.smtp_url else None
            if triggers is not None:
                triggers.begin()
            code = _dunning_pass(app, runner, settings.dunning, payments, args.at)
            if triggers is not None:
                print(f"mail: emails {triggers.run_once()}; `ledger mail run` (or `ledger serve`) delivers them")
            return code
    finally:
        if payments is not None:
            payments.close()


def _dunning_pass(
    app: BillingApplication,
    runner: ProjectionRunner,
    policy: DunningPolicy,
    payments: StripePaymentProvider | None,
    at: datetime | None,
) -> int:
    now = app.clock.now()
    moment = at or now
    if moment > now:
        raise InvalidDateError(f"--at {moment.isoformat()} is in the future: dunning only runs for now or the past")
    runner.catch_up()  # the candidates come from the invoice status read model
    candidates = dunning_candidates(
        runner.engine,
        today=moment.astimezone(UTC).date(),
        lookback_days=policy.span_days,
        first_day=policy.first_day,
    )
    print(f"dunning as of {moment.isoformat()} ({policy.schedule}; at most {policy.max_attempts} attempts)")
    if payments is None:
        print("STRIPE_API_KEY is unset: retry steps become reminders")
    counts: dict[str, int] = {}
    failed = 0
    for invoice_id in candidates:
        try:
            actions = app.dunning.advance(UUID(invoice_id), policy=policy, payments=payments, as_of=moment).result
        except (ProviderError, IdempotencyKeyReusedError) as error:  # nothing stored: the next pass tries again
            print(f"  {invoice_id}: not advanced: {error}")
            failed += 1
            continue
        for action in actions:
            counts[action.kind] = counts.get(action.kind, 0) + 1
            print(f"  {_dunning_line(app, UUID(invoice_id), action)}")
    done = ", ".join(f"{counts.get(kind, 0)} {label}" for kind, label in _DUNNING_LABELS.items())
    print(f"looked at {len(candidates)} invoices: {done}; {failed} not advanced")
    return 1 if failed else 0


_DUNNING_LABELS = {
    "start": "started",
    "remind": "reminders",
    "retry": "retries",
    "skip": "skipped",
    "exhaust": "uncollectible",
    "stop": "stopped",
}


def _webhooks_list(args: argparse.Namespace) -> int:
    with _runner() as (runner, _):
        runner.catch_up()  # the inbox shows every event stored so far
        page = list_webhook_events(runner.engine, status=args.status, limit=args.limit, cursor=args.cursor)
    if args.format == "json":
        print(json.dumps({"data": page.rows, "next_cursor": page.next_cursor}, indent=2))
        return 0
    table = Table("received at", "event", "type", "object", "status", "detail", box=None, pad_edge=False)
    for row in page.rows:
        received = datetime.fromisoformat(row["received_at"]).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(received, row["id"], row["type"], row["object_id"] or "-", row["status"], row["detail"])
    _console().print(table)
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0


def _webhooks_reprocess(args: argparse.Namespace) -> int:
    app = bootstrap()
    try:
        done = stripe_events.reprocess(app, args.event_id, decode=read_event)
    finally:
        app.close()
    before = done.previous_outcome or "never handled"
    print(f"{done.event_id}: {before} -> {done.outcome} (reprocessing {done.reprocessing}): {done.detail}")
    return 0


def _dunning_line(app: BillingApplication, invoice_id: UUID, action: DunningAction) -> str:
    invoice = app.invoice(invoice_id)
    dunning = app.dunning.get(invoice_id)
    step = ""
    if action.step is not None and dunning is not None:
        step = f"step {action.step + 1} ({dunning.policy.steps[action.step]}) "
    what = {
        "start": "dunning started",
        "remind": f"{step}reminder requested",
        "retry": f"{step}payment retry requested",
        "skip": f"{step}skipped",
        "exhaust": f"{step}marked uncollectible",
        "stop": "dunning stopped",
    }[action.kind]
    reason = f": {action.reason}" if action.reason else ""
    return f"{invoice.number or '-':<12} {invoice_id}  {what}{reason}"


if __name__ == "__main__":
    raise SystemExit(main())
