"""The portal's pages, for whoever holds a link (docs/portal.md):

- `GET /portal/{token}`: the customer's invoices, open ones first with what is due, then paid,
  void and uncollectible; keyset pages (`?cursor=`). Read from the invoice_status read model,
  caught up first, like the dashboard's lists.
- `GET /portal/{token}/invoices/{id}`: one invoice (lines, totals, payments, refunds), read from
  the invoice itself (never a read model that may lag). `?checkout=success` after the
  provider's page: "Your payment is processing" until the webhook has recorded the payment
  (the page reloads itself every few seconds with a `<meta http-equiv="refresh">`, which needs
  no script), then "Paid"; `?checkout=cancel`: the payment was cancelled, and Pay is there again.
- `GET /portal/{token}/invoices/{id}/pdf`: the invoice as a PDF (adapters/pdf), an attachment
  named after its number; a missing font is a 503 page naming nothing of the server's.
- `POST /portal/{token}/invoices/{id}/pay`: opens the provider's Checkout page for what is due
  (web/checkout.py, as the API does), returning to this invoice's page under the same token,
  and answers 303 to it. Pay is offered only when something is due and a provider is configured;
  otherwise the page shows the seller's payment instructions.

Every page works without JavaScript. web/portal/security.py turns every refusal into a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from eventsourcing.utils import get_topic
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.pdf.figures import file_name
from adapters.pdf.render import render_invoice_pdf
from ledger.invoices import OPEN, PAID, UNCOLLECTIBLE, Invoice
from projections.portal import customer_invoices
from web.admin.security import blocking
from web.checkout import open_checkout
from web.invoice_pdf import PDF, render_slots
from web.portal.access import Visit, customer_emails, customer_invoice, open_link, services_of
from web.portal.rendering import PREFIX, render
from web.services import Services

PAGE_SIZE = 25
REFRESH_SECONDS = 5  # while a payment is processing, the page looks again this often
CHECKOUT_STATES = ("success", "cancel")
_MOVES = (get_topic(Invoice.PaymentApplied), get_topic(Invoice.RefundApplied))


def routes() -> list[BaseRoute]:
    return [
        Route("/{token}", invoices_page, methods=["GET"]),
        Route("/{token}/invoices/{invoice_id}", invoice_page, methods=["GET"]),
        Route("/{token}/invoices/{invoice_id}/pdf", invoice_pdf, methods=["GET"]),
        Route("/{token}/invoices/{invoice_id}/pay", pay, methods=["POST"]),
    ]


# ------------------------------------------------------------------------------ the list


async def invoices_page(request: Request) -> Response:
    services = services_of(request)
    token = request.path_params["token"]
    cursor = request.query_params.get("cursor") or None

    def read() -> dict[str, Any]:
        visit = open_link(services, token)
        services.read_models.catch_up()  # what was just issued or paid is listed as it is
        emails = customer_emails(services, visit.link)
        page = customer_invoices(services.read_models.engine, emails, limit=PAGE_SIZE, cursor=cursor)
        home = f"{PREFIX}/{token}"
        rows = [{**row, "href": f"{home}/invoices/{row['invoice_id']}"} for row in page.rows]
        return {
            "customer_email": visit.link.customer_email,
            "expires_at": visit.link.expiry,
            "open_rows": [row for row in rows if row["status"] == OPEN],
            "closed_rows": [row for row in rows if row["status"] != OPEN],
            "first_page": cursor is None,
            "first_href": home,
            "next_href": f"{home}?{urlencode({'cursor': page.next_cursor})}" if page.next_cursor else None,
        }

    context = await run_in_threadpool(read)
    return render(request, "portal/invoices.html", context)


# ------------------------------------------------------------------------------ one invoice


@dataclass
class InvoiceView:
    invoice: Invoice
    home: str
    here: str
    payments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)


def _view(services: Services, visit: Visit, raw_id: str) -> InvoiceView:
    invoice = customer_invoice(services, visit, raw_id)
    home = f"{PREFIX}/{visit.token}"
    view = InvoiceView(invoice, home, f"{home}/invoices/{invoice.id}")
    if invoice.payment_ids or invoice.refund_ids:  # most open invoices have neither: nothing more to read
        for event in services.app.invoice_events(invoice.id, before=invoice.version + 1, topics=_MOVES):
            if isinstance(event, Invoice.RefundApplied):
                view.refunds.append({"at": event.timestamp, "amount": event.amount})
            elif isinstance(event, Invoice.PaymentApplied):
                view.payments.append({"at": event.timestamp, "amount": event.amount})
    return view


def payable(services: Services, invoice: Invoice) -> bool:
    """Whether the page offers Pay: something is due and a provider can take it."""
    return services.payments is not None and invoice.status in (OPEN, UNCOLLECTIBLE) and invoice.amount_due > 0


async def invoice_page(request: Request) -> Response:
    services = services_of(request)
    token = request.path_params["token"]
    checkout = request.query_params.get("checkout")
    checkout = checkout if checkout in CHECKOUT_STATES else None

    def read() -> InvoiceView:
        return _view(services, open_link(services, token), request.path_params["invoice_id"])

    view = await blocking(services, read)
    invoice = view.invoice
    processing = checkout == "success" and invoice.status != PAID and invoice.amount_due > 0
    context = {
        "invoice": invoice,
        "lines": list(invoice.lines.values()),
        "payments": view.payments,
        "refunds": view.refunds,
        "home": view.home,
        "here": view.here,
        "pdf_href": f"{view.here}/pdf",
        "pay_action": f"{view.here}/pay",
        "can_pay": payable(services, invoice) and not processing,
        "checkout": checkout,
        "processing": processing,
        "refresh_seconds": REFRESH_SECONDS if processing else None,
        "refresh_href": f"{view.here}?checkout=success",
    }
    return render(request, "portal/invoice.html", context)


async def invoice_pdf(request: Request) -> Response:
    """The invoice as the customer's PDF (adapters/pdf), with a link back to its page here.
    Rendering takes a tenth of a second or more: in a worker thread, never on the event loop,
    and in the app's render slots (web/invoice_pdf.py's RENDERS_AT_ONCE)."""
    services = services_of(request)
    token = request.path_params["token"]
    base = (services.public_url or str(request.base_url)).rstrip("/")

    def run() -> tuple[Invoice, bytes]:
        visit = open_link(services, token)
        invoice = customer_invoice(services, visit, request.path_params["invoice_id"])
        page = f"{base}{PREFIX}/{token}/invoices/{invoice.id}"
        return invoice, render_invoice_pdf(
            invoice, seller=services.seller, portal_url=page, font_dir=services.pdf_font_dir
        )

    async with render_slots(request):  # as the API's: a link's holder cannot take every worker thread
        invoice, body = await run_in_threadpool(run)
    headers = {"Content-Disposition": f'attachment; filename="{file_name(invoice)}"'}
    return Response(body, media_type=PDF, headers=headers)


async def pay(request: Request) -> Response:
    """Open the provider's page for what is due, and go there (303)."""
    services = services_of(request)
    token = request.path_params["token"]
    base = (services.public_url or str(request.base_url)).rstrip("/")

    def run() -> str:
        view = _view(services, open_link(services, token), request.path_params["invoice_id"])
        here = base + view.here
        session, _ = open_checkout(
            services,
            view.invoice.id,
            base=base,
            success_url=f"{here}?checkout=success",
            cancel_url=f"{here}?checkout=cancel",
        )
        return session.url

    url = await run_in_threadpool(run)
    return RedirectResponse(url, status_code=303)
