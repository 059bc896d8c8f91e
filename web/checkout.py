"""`POST /api/invoices/{id}/checkout`: pay an invoice on the provider's hosted page.

The provider (Stripe) opens a Checkout Session for the amount due, and the ledger records on the
invoice that it was opened (`invoice.checkout-started`). No payment is recorded yet: Stripe
creates the PaymentIntent when the customer pays, and the payment is keyed by it when the
webhooks report it (ADR 0010). A retry must not open a second session: the provider gets an
idempotency key, the request's own `Idempotency-Key` or, without one, a key derived from the
invoice, what is due on it and the request, so the same request meets the same session.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import timedelta
from typing import Any
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from commands.idempotency import receipt_id_for
from commands.ports import CheckoutSession, PaymentProvider
from ledger.errors import InvoiceDeletedError, ProviderConfigurationError, StaleVersionError
from ledger.invoices import DELETED, Invoice
from ledger.money import Money
from ledger.portal.links import ACTIVE
from web import models
from web.body import read_json
from web.decoding import RequestInvalidError, decode
from web.invoices import expected_version_of, idempotency_key_of, invoice_id_of, services_of
from web.operations import BODY, ON_INVOICE, Endpoint, Operation
from web.render import invoice_json
from web.services import Services

PROVIDER = "stripe"
CHECKOUT_LINK_LIFETIME = timedelta(days=30)  # the return pages' link: as long as an emailed one
# A link that ends sooner than this is not reused for new return pages: a Checkout Session stays
# open 24 hours, and the customer comes back to the page after paying.
CHECKOUT_LINK_MARGIN = timedelta(days=1)


def routes() -> list[Route]:
    operation = Operation(
        "createCheckout",
        "Open a Stripe Checkout page for what is due",
        201,
        models.CheckoutStarted,
        models.CheckoutOptions,
        headers=("If-Match", "Idempotency-Key"),
        problems=(*ON_INVOICE, *BODY, 409, 412),
        response_headers=("ETag",),
    )
    return [Endpoint("/api/invoices/{invoice_id}/checkout", create_checkout, "POST", operation)]


async def create_checkout(request: Request) -> Response:
    """201 with the hosted page's URL, the session and the invoice (which records the session).

    Webhooks find the invoice through `metadata.invoice_id`, set on the session and on the
    PaymentIntent Stripe creates when the customer pays.
    """
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    urls = decode(models.CheckoutOptions, await read_json(request))
    key = idempotency_key_of(request)
    if key is not None:
        receipt_id_for(key)  # the same limits as every other write's key (1 to 255 characters)
    expected = expected_version_of(request)
    base = (services.public_url or str(request.base_url)).rstrip("/")

    def run() -> Response:
        session, current = open_checkout(
            services,
            invoice_id,
            base=base,
            success_url=urls.success_url,
            cancel_url=urls.cancel_url,
            key=key,
            expected=expected,
        )
        body: models.CheckoutStarted = {
            "checkout_url": session.url,
            "session_id": session.id,
            "expires_at": session.expires_at.isoformat().replace("+00:00", "Z"),
            "invoice": invoice_json(current, today=services.clock.now().date()),
        }
        return JSONResponse(body, 201, headers={"ETag": f'"{current.version}"'})

    return await run_in_threadpool(run)


def open_checkout(
    services: Services,
    invoice_id: UUID,
    *,
    base: str,
    success_url: str | None = None,
    cancel_url: str | None = None,
    key: str | None = None,
    expected: int | None = None,
) -> tuple[CheckoutSession, Invoice]:
    """Open the provider's hosted page for what is due and record it on the invoice: the session
    and the invoice as it then stands. The API's endpoint and the dashboard's button both come
    here. Blocking (the provider and the store): call it off the event loop.

    The return pages default to the invoice's page in the client portal under `base`, through a
    link issued for the invoice's customer (`issued_by="checkout"`); without a secret key (the
    portal off) they must be given (422 naming `success_url`).
    """
    invoice = _payable(services, invoice_id)
    _require_version(services, invoice, expected)  # before Stripe is called
    payments = _provider(services)
    link_id = None
    if success_url is None or cancel_url is None:
        link_id, page = _portal_page(services, invoice, base, key)
        success_url = success_url or f"{page}?checkout=success"
        cancel_url = cancel_url or f"{page}?checkout=cancel"
    session = _open_session(payments, invoice, success_url, cancel_url, key)
    if link_id is not None:  # only now: a provider that failed leaves nothing stored
        services.app.portal.issue(
            invoice.customer["email"],
            expires_at=services.clock.now() + CHECKOUT_LINK_LIFETIME,
            invoice_id=invoice.id,
            issued_by="checkout",
            link_id=link_id,
        )
    services.app.start_checkout(
        invoice.id,
        provider=PROVIDER,
        session_id=session.id,
        amount=Money(invoice.amount_due, invoice.currency),
        expires_at=session.expires_at,
    )
    return session, services.app.invoice(invoice.id)


def _portal_page(services: Services, invoice: Invoice, base: str, key: str | None) -> tuple[UUID, str]:
    """The link for the invoice's customer, and the invoice's page under it. The link's id is
    derived from the request's idempotency key, or without one from what is due (as the
    provider's key is), so a retry names the same URL and meets the same session at the
    provider, whose idempotency compares the parameters."""
    if services.secret_key is None:
        message = "the client portal is off (no LEDGER_SECRET_KEY): give success_url and cancel_url"
        raise RequestInvalidError([{"field": "success_url", "message": message}])
    state = {
        "status": invoice.status,
        "due": invoice.amount_due,
        "paid": invoice.amount_paid,
        "refunded": invoice.amount_refunded,
    }
    link_key = key or "checkout-" + hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:32]
    portal = services.app.portal
    # The same key names the same link for ever, but a link does not last for ever: once it has
    # expired (an invoice unpaid for a month) or was revoked, its pages answer 410. The next
    # generation of the key names a new link; a retry still meets the link its first try made.
    now = services.clock.now()
    for generation in itertools.count(1):
        named = link_key if generation == 1 else f"{link_key}#{generation}"
        link_id = portal.keyed_link_id(invoice.id, named, secret=services.secret_key)
        link = portal.link(link_id)
        if link is None or (link.status(at=now) == ACTIVE and link.expiry - now >= CHECKOUT_LINK_MARGIN):
            break
    return link_id, portal.invoice_url(link_id, invoice.id, base_url=base, secret=services.secret_key)


def _provider(services: Services) -> PaymentProvider:
    if services.payments is None:
        raise ProviderConfigurationError("payments are not configured: set STRIPE_API_KEY to take payments with Stripe")
    return services.payments


def _payable(services: Services, invoice_id: Any) -> Invoice:
    """Only an open or uncollectible invoice with something left to pay goes to checkout (409 otherwise)."""
    invoice = services.app.invoice(invoice_id)
    if invoice.status == DELETED:
        raise InvoiceDeletedError(invoice_id)
    invoice.require_collectible()  # checked before Stripe is called, and again when the session is recorded
    return invoice


def _require_version(services: Services, invoice: Invoice, expected: int | None) -> None:
    """If-Match on checkout: 412 when what the checkout pays for changed since that version.

    Opening or closing a session moves the version on without changing what is due, so a retry
    of a checkout sent with If-Match is not stale for that alone: it meets its own session again.
    """
    if expected is None or expected == invoice.version:
        return
    if 0 < expected < invoice.version and _pays_for(services.app.invoice(invoice.id, version=expected)) == _pays_for(
        invoice
    ):
        return
    raise StaleVersionError(invoice.id, expected, invoice.version)


def _pays_for(invoice: Invoice) -> tuple[object, ...]:
    return (invoice.status, invoice.currency, invoice.total, invoice.amount_paid, invoice.amount_refunded)


def _open_session(
    payments: PaymentProvider, invoice: Invoice, success_url: str, cancel_url: str, key: str | None
) -> CheckoutSession:
    description = f"Invoice {invoice.number}" if invoice.number else "Invoice"
    arguments: dict[str, Any] = {
        "invoice_id": str(invoice.id),
        "amount": invoice.amount_due,
        "currency": invoice.currency,
        "customer_email": invoice.customer["email"],
        "description": description,
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    return payments.create_checkout_session(**arguments, idempotency_key=_provider_key(key, invoice, arguments))


def _provider_key(key: str | None, invoice: Invoice, arguments: dict[str, Any]) -> str:
    """The client's key as it is (so the provider's logs show it) when it is printable ASCII, as
    HTTP headers must be; a digest of it otherwise."""
    if key is None:
        return _derived_key(invoice, arguments)
    if key.isascii() and key.isprintable() and key.strip() == key:
        return key
    return f"ledger-key-{hashlib.sha256(key.encode()).hexdigest()}"


def _derived_key(invoice: Invoice, arguments: dict[str, Any]) -> str:
    """Without a key from the client: the same request while the same amount is due gets the same
    session; once money moves (a partial payment), a new one. Not the invoice's version: opening
    a session is itself recorded on the invoice."""
    state = {**arguments, "paid": invoice.amount_paid, "refunded": invoice.amount_refunded, "status": invoice.status}
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:32]
    return f"ledger-checkout-{invoice.id}-{digest}"
