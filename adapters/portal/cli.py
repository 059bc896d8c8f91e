"""`ledger portal`: the client portal's links from the command line.

    ledger portal link CUSTOMER_EMAIL|INVOICE_ID|INVOICE_NUMBER [--expires 30d]
    ledger portal revoke LINK_ID [--reason TEXT]
    ledger portal list [--customer EMAIL]

`link` prints the URL to send the customer (under LEDGER_PUBLIC_URL; without it, the local
server's http://127.0.0.1:8000, with a note) and the link's id (to revoke it). Given an invoice,
the link is for its customer and opens on that invoice's page. `--expires` is a number of days
(`30d`, the default), hours (`12h`) or weeks (`2w`), at most a year. `list` reads every link's
events from the log (there is no read model of links): fine for an operator, not for a page.
Without LEDGER_SECRET_KEY no link can be made: the command says so and exits 2; an unknown
link or invoice exits 3.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.table import Table

from adapters.bootstrap import bootstrap
from adapters.clock import SystemClock
from adapters.read_models import projection_runner, read_model_engine
from adapters.settings import Settings
from commands.application import BillingApplication
from ledger.admin.users import normalize_email
from ledger.errors import InvoiceNotFoundError
from ledger.portal.links import PortalLink
from projections.portal import invoice_id_by_number

LOCAL_URL = "http://127.0.0.1:8000"
_DURATION = re.compile(r"(\d{1,4})([hdw])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
PORTAL_OFF = (
    "ledger: the client portal is off: set LEDGER_SECRET_KEY (at least 32 characters, e.g. "
    "python -c 'import secrets; print(secrets.token_urlsafe(32))') to make links"
)


def add_commands(commands: Any) -> None:
    """Register `ledger portal ...` on the CLI's subparsers."""
    portal = commands.add_parser(
        "portal", help="the client portal's links", description=__doc__.split("\n\n")[1] if __doc__ else None
    ).add_subparsers(required=True, metavar="ACTION")

    link = portal.add_parser("link", help="a new link for a customer (or an invoice's customer); prints its URL")
    link.add_argument("target", metavar="CUSTOMER_EMAIL_OR_INVOICE_ID_OR_NUMBER")
    link.add_argument("--expires", type=duration, default=timedelta(days=30), help="30d (default), 12h, 2w")
    link.set_defaults(run=run_link)

    revoke = portal.add_parser("revoke", help="withdraw a link for good")
    revoke.add_argument("link_id", type=_link_id)
    revoke.add_argument("--reason", default="", help="why (kept with the link's history)")
    revoke.set_defaults(run=run_revoke)

    listing = portal.add_parser("list", help="the links issued, newest last (read from the log)")
    listing.add_argument("--customer", default=None, help="only this customer's")
    listing.set_defaults(run=run_list)


def duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30d, 12h or 2w")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _link_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a link id (a UUID)") from None


@contextmanager
def _ledger() -> Iterator[tuple[Settings, BillingApplication]]:
    settings = Settings.from_environment()
    app = bootstrap(settings, clock=SystemClock())
    try:
        yield settings, app
    finally:
        app.close()


def run_link(args: argparse.Namespace) -> int:
    with _ledger() as (settings, app):
        if settings.secret_key is None:
            print(PORTAL_OFF, file=sys.stderr)
            return 2
        base = settings.public_url or LOCAL_URL
        target: str = args.target.strip()
        expires_at = datetime.now(tz=UTC) + args.expires
        if "@" in target:
            link_id = app.portal.issue(target, expires_at=expires_at, issued_by="cli").result
            url = app.portal.url(link_id, base_url=base)
        else:
            invoice_id = _invoice_id(settings, target)
            email = app.portal.customer_of(invoice_id)  # 404 unknown, 409 a draft
            issued = app.portal.issue(email, expires_at=expires_at, invoice_id=invoice_id, issued_by="cli")
            link_id = issued.result
            url = app.portal.invoice_url(link_id, invoice_id, base_url=base)
        link = app.portal.link(link_id)
    assert link is not None
    print(url)
    print(f"link id {link_id} for {link.customer_email}, until {link.expiry.isoformat()}")
    if settings.public_url is None:
        print(f"note: LEDGER_PUBLIC_URL is not set: the URL is the local server's ({LOCAL_URL})", file=sys.stderr)
    return 0


def _invoice_id(settings: Settings, target: str) -> UUID:
    """An invoice id as given, or the id of the invoice with that number (the read model, caught up)."""
    try:
        return UUID(target)
    except ValueError:
        pass
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    try:
        app = bootstrap(settings, clock=SystemClock())
        try:
            projection_runner(app, engine).catch_up()
        finally:
            app.close()
        found = invoice_id_by_number(engine, target)
    finally:
        engine.dispose()
    if found is None:
        raise InvoiceNotFoundError(target)
    return found


def run_revoke(args: argparse.Namespace) -> int:
    with _ledger() as (_, app):
        changed = app.portal.revoke(args.link_id, reason=args.reason).result
    print(f"link {args.link_id} {'revoked' if changed else 'was already revoked'}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    customer = None if args.customer is None else normalize_email(args.customer)
    now = datetime.now(tz=UTC)
    table = Table("link id", "customer", "issued", "by", "expires", "status", box=None, pad_edge=False)
    shown = 0
    with _ledger() as (_, app):
        for link_id in _issued_links(app, customer):
            link = app.portal.link(link_id)
            if link is None:
                continue
            shown += 1
            table.add_row(
                str(link.id),
                link.customer_email,
                link.created_on.strftime("%Y-%m-%d %H:%M"),
                link.issued_by,
                link.expiry.strftime("%Y-%m-%d %H:%M"),
                link.status(at=now),
            )
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=1_000, no_color=True)
    console.print(table)
    if not shown:
        print("no portal links yet: ledger portal link CUSTOMER_EMAIL")
    return 0


def _issued_links(app: BillingApplication, customer: str | None) -> Iterator[UUID]:
    """The ids of the links issued (to `customer`, if given), in the order they were issued."""
    position = 0
    while batch := app.events_after(position, 5_000, topics=("portal-link.",)):
        for position, event in batch:  # noqa: B007 (the last position is where the next batch starts)
            if isinstance(event, PortalLink.Issued) and customer in (None, event.customer_email):
                yield event.originator_id
