"""Who a portal request is for: its token checked, its link opened, its invoice found.

Every refusal is an exception the portal's guard (web/portal/security.py) renders as a page:
a token this application did not sign is 403 (TamperedTokenError), a link expired or revoked
is 410 (PortalLinkGoneError), and an invoice that is not the link's customer's is the same 404
as one that does not exist (InvoiceNotFoundError): the page never tells which, so a token
cannot be used to probe for other customers' invoice ids.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from uuid import UUID

from starlette.requests import Request

from commands.portal.tokens import link_id_from
from ledger.errors import InvoiceNotFoundError
from ledger.invoices import DELETED, DRAFT, Invoice
from ledger.portal.links import PortalLink, PortalLinkNotFoundError
from web.services import Services

HIDDEN = (DRAFT, DELETED)  # not the customer's to see


@dataclass(frozen=True)
class Visit:
    """A request's verified link and its token (to build the page's own links)."""

    link: PortalLink
    token: str


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def open_link(services: Services, token: str) -> Visit:
    """The link a token names, if its signature holds and the link is in force now. Blocking."""
    assert services.secret_key is not None  # the guard answers 404 for everything when the portal is off
    link_id = link_id_from(token, services.secret_key)
    link = services.app.portal.link(link_id)
    if link is None:  # signed with our secret, and not in this store
        raise PortalLinkNotFoundError(link_id)
    link.require_usable(at=services.clock.now())
    return Visit(link, token)


def customer_invoice(services: Services, visit: Visit, raw_id: str) -> Invoice:
    """The invoice, if it is the link's customer's and not a draft; the same 404 otherwise. Blocking."""
    try:
        invoice_id = UUID(raw_id)
    except ValueError:
        raise InvoiceNotFoundError(raw_id) from None
    invoice = services.app.invoice(invoice_id)
    if invoice.status in HIDDEN or not visit.link.shows(invoice.customer["email"]):
        raise InvoiceNotFoundError(invoice_id)
    return invoice


def customer_emails(services: Services, link: PortalLink) -> set[str]:
    """The spellings of the customer's address to list invoices by: the link's (lower-cased)
    and the one on the invoice the link was made for, as it was written there (the list folds
    case, but SQLite's lower() folds ASCII letters only: projections/portal.py)."""
    emails = {link.customer_email}
    if link.invoice_id is not None:
        with contextlib.suppress(InvoiceNotFoundError):
            written = services.app.invoice(UUID(link.invoice_id)).customer["email"]
            # Only a spelling of the link's own address: `issue` does not check that the invoice
            # it is given is that customer's, and the list must not widen to another customer.
            if link.shows(written):
                emails.add(written)
    return emails
