"""The client portal served for real (uvicorn on a loopback port, httpx over TCP), with Stripe
played by the test server: what a customer holding a link sees, downloads and pays, and every
way a link is refused. The stories run on SQLite and PostgreSQL; the refusals on SQLite.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

import httpx
import pytest
import stripe
from pypdf import PdfReader
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from commands.application import BillingApplication
from commands.messages import NewLine
from commands.portal.tokens import link_id_from, token_for
from ledger.money import Money
from ledger.portal.links import PortalLink
from ledger.seller import Seller
from tests.conftest import AppFactory
from tests.e2e.conftest import SECRET_KEY, WEBHOOK_SECRET, Api, serve, served_api
from tests.stripe_payloads import event_payload
from tests.stripe_server import StripeServer
from web.admin.security import CSP
from web.app import create_app
from web.invoice_pdf import RENDERS_AT_ONCE
from web.portal.security import portal_csp
from web.services import STRIPE_CHECKOUT_ORIGIN, Services

ANN = "ann@customer.example"
BOB = "bob@other.example"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class Portal:
    api: Api
    web: httpx.Client  # no bearer token, redirects not followed: a customer's browser

    @property
    def app(self) -> BillingApplication:
        return self.api.app

    def link(self, email: str = ANN, days: int = 30, invoice_id: UUID | None = None) -> tuple[UUID, str]:
        expires_at = self.api.clock.now() + timedelta(days=days)
        link_id = self.app.portal.issue(email, expires_at=expires_at, invoice_id=invoice_id, issued_by="cli").result
        return link_id, f"/portal/{token_for(link_id, SECRET_KEY)}"

    def invoice(self, email: str = ANN, amount: int = 12_000, *, issue: bool = True) -> UUID:
        self.api.clock.advance(timedelta(seconds=1))  # newest first: each invoice a moment after the last
        created = self.app.create_draft(
            customer={"email": email, "name": "Customer"},
            currency="usd",
            lines=[NewLine("Consulting", 1, amount)],
            due_date="2026-05-01",
        )
        if issue:
            self.app.issue(created.result)
        return created.result

    def number(self, invoice_id: UUID) -> str:
        number = self.app.invoice(invoice_id).number
        assert number is not None
        return number


@pytest.fixture
def portal(
    make_app: AppFactory, database_url: str, clock: ManualClock, stripe_server: StripeServer
) -> Iterator[Portal]:
    engine = read_model_engine(database_url)
    try:
        with (
            served_api(make_app(), engine, clock, stripe_server.base_url) as api,
            httpx.Client(base_url=api.base_url, timeout=30) as web,
        ):
            yield Portal(api, web)
    finally:
        engine.dispose()


def _ids_listed(html: str) -> list[str]:
    return re.findall(r'data-invoice-id="([0-9a-f-]{36})"', html)


# ------------------------------------------------------------------------------ the pages


def test_the_list_shows_the_customers_invoices_open_first_and_nobody_elses(portal: Portal) -> None:
    older_open = portal.invoice()
    paid = portal.invoice(amount=5_000)
    portal.app.record_offline_payment(paid, Money(5_000, "usd"), reference="wire-1")
    newer_open = portal.invoice()
    draft = portal.invoice(issue=False)
    bobs = portal.invoice(BOB, amount=777_700)
    _, home = portal.link()

    page = portal.web.get(home)

    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert _ids_listed(page.text) == [str(newer_open), str(older_open), str(paid)]
    assert str(draft) not in page.text
    assert str(bobs) not in page.text
    assert portal.number(bobs) not in page.text
    assert "7,777.00" not in page.text
    assert "120.00 USD" in page.text  # what is due, as Money.format writes it


def test_the_list_shows_invoices_written_to_the_customers_address_in_another_case(portal: Portal) -> None:
    lower = portal.invoice()
    capitalized = portal.invoice("Ann@Customer.example")
    upper = portal.invoice(ANN.upper())
    _, home = portal.link()  # the link keeps "ann@customer.example"

    page = portal.web.get(home)

    assert page.status_code == 200, page.text
    assert _ids_listed(page.text) == [str(upper), str(capitalized), str(lower)]
    assert portal.web.get(f"{home}/invoices/{capitalized}").status_code == 200


@SQLITE
def test_a_link_naming_another_customers_invoice_lists_only_its_own_customers(portal: Portal) -> None:
    """`app.portal.issue` refuses it (tests/integration/test_portal_links.py); a link stored so
    all the same (saved past the command, as an older release could have) shows Ann's alone."""
    anns = portal.invoice()
    bobs = portal.invoice(BOB)
    now = portal.api.clock.now()
    link = PortalLink.issue(
        customer_email=ANN, expires_at=now + timedelta(days=1), invoice_id=bobs, issued_by="cli", at=now
    )
    portal.app.save(link)
    home = f"/portal/{token_for(link.id, SECRET_KEY)}"

    page = portal.web.get(home)

    assert page.status_code == 200, page.text
    assert _ids_listed(page.text) == [str(anns)]
    assert portal.web.get(f"{home}/invoices/{bobs}").status_code == 404


def test_the_list_pages_by_keyset_open_ones_first(portal: Portal) -> None:
    paid = [portal.invoice(amount=100 + n) for n in range(20)]
    for n, invoice_id in enumerate(paid):
        portal.app.record_offline_payment(invoice_id, Money(100 + n, "usd"), reference=f"wire-{n}")
    still_open = [portal.invoice(amount=1_000 + n) for n in range(15)]
    _, home = portal.link()

    first = portal.web.get(home)
    following = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert following, first.text
    second = portal.web.get(following.group(1).replace("&amp;", "&"))

    assert second.status_code == 200, second.text
    listed = _ids_listed(first.text) + _ids_listed(second.text)
    assert listed == [str(i) for i in reversed(still_open)] + [str(i) for i in reversed(paid)]
    assert 'rel="next"' not in second.text
    assert portal.web.get(home, params={"cursor": "not-a-cursor"}).status_code == 422


def test_the_invoice_page_shows_lines_totals_and_payments_and_refuses_other_customers(portal: Portal) -> None:
    invoice_id = portal.invoice(amount=12_000)
    payment_id = portal.app.record_offline_payment(invoice_id, Money(2_000, "usd"), reference="part-1").result
    portal.app.record_refund(payment_id, refund_id="rf-1", amount=500)
    bobs = portal.invoice(BOB, amount=777_700)
    _, home = portal.link()

    page = portal.web.get(f"{home}/invoices/{invoice_id}")
    assert page.status_code == 200, page.text
    assert "Consulting" in page.text
    assert portal.number(invoice_id) in page.text
    assert 'data-testid="amount-due">100.00 USD' in page.text
    assert 'data-testid="refunds"' in page.text
    assert "5.00 USD" in page.text
    assert 'data-testid="payments"' in page.text
    assert "20.00 USD" in page.text

    other = portal.web.get(f"{home}/invoices/{bobs}")
    assert other.status_code == 404
    assert portal.number(bobs) not in other.text
    assert "7,777.00" not in other.text
    assert BOB not in other.text
    unknown = portal.web.get(f"{home}/invoices/{uuid4()}")
    assert unknown.status_code == 404
    # The same page for both: nothing tells an existing invoice from a made-up id.
    assert _without_ids(other.text) == _without_ids(unknown.text)
    assert portal.web.get(f"{home}/invoices/not-a-uuid").status_code == 404


def _without_ids(html: str) -> str:
    return re.sub(r"[0-9a-f-]{36}", "", html)


def test_pay_opens_checkout_and_the_return_page_says_processing_then_paid(
    portal: Portal, stripe_server: StripeServer
) -> None:
    invoice_id = portal.invoice(amount=12_000)
    _, home = portal.link()
    here = f"{home}/invoices/{invoice_id}"
    assert 'data-testid="pay"' in portal.web.get(here).text

    paid = portal.web.post(f"{here}/pay")

    assert paid.status_code == 303, paid.text
    [session] = stripe_server.sessions.values()
    assert paid.headers["location"] == session["url"]
    assert session["amount_total"] == 12_000
    assert session["success_url"] == f"{portal.api.base_url}{here}?checkout=success"
    assert session["cancel_url"] == f"{portal.api.base_url}{here}?checkout=cancel"
    assert list(portal.app.invoice(invoice_id).checkouts) == [session["id"]]

    processing = portal.web.get(here, params={"checkout": "success"})
    assert processing.status_code == 200
    assert "Payment processing" in processing.text
    assert "Your payment is processing" in processing.text
    assert '<meta http-equiv="refresh" content="5">' in processing.text
    assert 'data-testid="pay"' not in processing.text

    _deliver_payment(portal, invoice_id, 12_000)

    done = portal.web.get(here, params={"checkout": "success"})
    assert "Paid" in done.text
    assert "processing" not in done.text
    assert 'http-equiv="refresh"' not in done.text
    assert 'data-testid="invoice-status">Paid' in done.text


def _deliver_payment(portal: Portal, invoice_id: UUID, amount: int) -> None:
    intent = {
        "id": "pi_3QPortal0001",
        "amount": amount,
        "amount_received": amount,
        "currency": "usd",
        "status": "succeeded",
        "latest_charge": "ch_3QPortal0001",
        "metadata": {"invoice_id": str(invoice_id)},
    }
    body = event_payload("payment_intent.succeeded", "payment_intent", event_id="evt_3QPortal0001", **intent)
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), WEBHOOK_SECRET)
    delivered = httpx.post(
        portal.api.base_url + "/webhooks/stripe", content=body, headers={"Stripe-Signature": header}, timeout=30
    )
    assert delivered.status_code == 200, delivered.text


def test_the_cancel_page_offers_pay_again(portal: Portal) -> None:
    invoice_id = portal.invoice()
    _, home = portal.link()
    page = portal.web.get(f"{home}/invoices/{invoice_id}", params={"checkout": "cancel"})
    assert page.status_code == 200
    assert "Payment cancelled" in page.text
    assert 'data-testid="pay"' in page.text


# ------------------------------------------------------------------------------ refusals


@SQLITE
def test_a_tampered_token_is_403_an_expired_or_revoked_link_410(portal: Portal) -> None:
    invoice_id = portal.invoice()
    link_id, home = portal.link(days=1)
    token = home.removeprefix("/portal/")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for path in (f"/portal/{flipped}", f"/portal/{flipped}/invoices/{invoice_id}", "/portal/" + "x" * 66):
        refused = portal.web.get(path)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("text/html")
        assert "Traceback" not in refused.text
    # Signed with another secret: as good as made up.
    assert portal.web.get(f"/portal/{token_for(link_id, 'another-secret-' + 'x' * 32)}").status_code == 403
    # Signed with ours, for a link this store never issued (another database under the same secret).
    assert portal.web.get(f"/portal/{token_for(uuid4(), SECRET_KEY)}").status_code == 404

    assert portal.web.get(home).status_code == 200
    portal.api.clock.advance(timedelta(days=1))
    expired = portal.web.get(f"{home}/invoices/{invoice_id}")
    assert expired.status_code == 410
    assert "expired" in expired.text

    other_id, other_home = portal.link()
    assert portal.app.portal.revoke(other_id, reason="sent to the wrong address").result is True
    revoked = portal.web.get(other_home)
    assert revoked.status_code == 410
    assert "withdrawn" in revoked.text
    assert portal.web.post(f"{other_home}/invoices/{invoice_id}/pay").status_code == 410
    assert link_id_from(token, SECRET_KEY) == link_id


@SQLITE
def test_the_portal_is_off_without_a_secret_key(make_app: AppFactory, database_url: str, clock: ManualClock) -> None:
    app = make_app()
    engine = read_model_engine(database_url)
    served = serve(app, engine, clock, secret_key=None)
    try:
        link_id = app.portal.issue(ANN, expires_at=clock.now() + timedelta(days=1), issued_by="cli").result
        token = token_for(link_id, SECRET_KEY)
        for path in (f"/portal/{token}", "/portal/static/portal.css"):
            response = httpx.get(served.base_url + path, timeout=30)
            assert response.status_code == 404, path
            assert "Traceback" not in response.text
    finally:
        served.stop()
        engine.dispose()


@SQLITE
def test_the_pages_carry_the_security_headers(portal: Portal, stripe_server: StripeServer) -> None:
    invoice_id = portal.invoice()
    _, home = portal.link()
    # The dashboard's policy; a form may also go on to the provider's checkout page (Pay's 303).
    csp = CSP.replace("form-action 'self'", f"form-action 'self' {STRIPE_CHECKOUT_ORIGIN} {stripe_server.base_url}")
    assert portal_csp((STRIPE_CHECKOUT_ORIGIN, stripe_server.base_url, "javascript:alert(1)")) == csp
    assert "unsafe-inline" not in csp
    for path in (home, f"{home}/invoices/{invoice_id}", f"{home}/invoices/{uuid4()}", "/portal/nope"):
        response = portal.web.get(path)
        assert response.headers["content-security-policy"] == csp, path
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert response.headers["cache-control"] == "no-store", path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
        assert "style=" not in response.text, path
        assert "<script" not in response.text, path
    css = portal.web.get("/portal/static/portal.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


@SQLITE
def test_without_a_provider_pay_is_absent_and_the_sellers_instructions_shown(
    make_app: AppFactory, database_url: str, clock: ManualClock
) -> None:
    app = make_app()
    engine = read_model_engine(database_url)
    seller = Seller(name="Acme Billing", payment_instructions="IBAN DE00 1234 5678; quote the invoice number")
    served = serve(app, engine, clock, seller=seller)
    try:
        invoice_id = app.create_draft(
            customer={"email": ANN, "name": "Ann"}, currency="usd", lines=[NewLine("Plan", 1, 5_000)]
        ).result
        app.issue(invoice_id)
        link_id = app.portal.issue(ANN, expires_at=clock.now() + timedelta(days=1), issued_by="cli").result
        here = f"{served.base_url}/portal/{token_for(link_id, SECRET_KEY)}/invoices/{invoice_id}"
        page = httpx.get(here, timeout=30)
        assert page.status_code == 200
        assert 'data-testid="pay"' not in page.text
        assert "IBAN DE00 1234 5678" in page.text
        assert httpx.post(here + "/pay", timeout=30).status_code == 503
    finally:
        served.stop()
        engine.dispose()


def portal_routes(asgi: Starlette) -> list[tuple[str, str]]:
    """(method, path) of every route under /portal, the token and ids left as {names}."""
    [mount] = [route for route in asgi.routes if isinstance(route, Mount) and route.path == "/portal"]
    found: list[tuple[str, str]] = []

    def walk(routes: list[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount) and route.path != "/static":
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                for method in sorted((route.methods or set()) - {"HEAD"}):
                    found.append((method, prefix + route.path_format))

    walk(mount.routes, "/portal")
    return found


@SQLITE
def test_every_portal_route_refuses_bad_links_as_pages(portal: Portal) -> None:
    invoice_id = portal.invoice()
    good_id, _ = portal.link()
    revoked_id, _ = portal.link()
    portal.app.portal.revoke(revoked_id, reason="test")
    expiring_id, _ = portal.link(days=1)
    good, revoked, expiring = (token_for(i, SECRET_KEY) for i in (good_id, revoked_id, expiring_id))
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    bobs = portal.invoice(BOB)
    routes = portal_routes(create_app(_services(portal)))
    assert len(routes) >= 3  # the list, the invoice, pay (and the PDF once it is served)
    portal.api.clock.advance(timedelta(days=1))

    def call(method: str, template: str, token: str, invoice: object) -> httpx.Response:
        return portal.web.request(method, template.format(token=token, invoice_id=invoice))

    for method, template in routes:
        cases: list[tuple[str, object, int]] = [
            (tampered, invoice_id, 403),
            (revoked, invoice_id, 410),
            (expiring, invoice_id, 410),
        ]
        if "{invoice_id}" in template:
            cases += [(good, bobs, 404), (good, uuid4(), 404), (good, "nope", 404)]
        for token, invoice, status in cases:
            response = call(method, template, token, invoice)
            assert response.status_code == status, (method, template, token, invoice, response.text)
            assert response.headers["content-type"].startswith("text/html"), (method, template)
            assert "Traceback" not in response.text
            assert response.headers["referrer-policy"] == "no-referrer"
    assert stripe_server_untouched(portal)


def stripe_server_untouched(portal: Portal) -> bool:
    return not any(invoice.checkouts for invoice in (portal.app.invoice(i) for i in _all_invoices(portal)))


def _all_invoices(portal: Portal) -> list[UUID]:
    return [UUID(row["id"]) for row in portal.api.client.get("/api/invoices").json()["data"]]


def _services(portal: Portal) -> Services:
    return Services(app=portal.app, read_models=_NoReadModels(), clock=portal.api.clock, api_token="x" * 20)


class _NoReadModels:
    """Only the route table is read from the app built with it."""

    engine: Any = None

    def catch_up(self) -> None:
        raise AssertionError("not served")


def test_the_pdf_download_is_that_invoice(portal: Portal) -> None:
    invoice_id = portal.invoice(amount=12_345)
    bobs = portal.invoice(BOB)
    _, home = portal.link()

    pdf = portal.web.get(f"{home}/invoices/{invoice_id}/pdf")

    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="{portal.number(invoice_id)}.pdf"'
    assert pdf.headers["referrer-policy"] == "no-referrer"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert portal.number(invoice_id) in text
    assert "123.45 USD" in text
    assert portal.web.get(f"{home}/invoices/{bobs}/pdf").status_code == 404


class _CountedSlots(asyncio.Semaphore):
    """The app's PDF render slots (web/invoice_pdf.py), counting who took one."""

    def __init__(self) -> None:
        super().__init__(RENDERS_AT_ONCE)
        self.taken = 0

    async def acquire(self) -> Literal[True]:
        self.taken += 1
        return await super().acquire()


@SQLITE
def test_the_portal_pdf_takes_the_apps_render_slots_as_the_apis_does(portal: Portal) -> None:
    """A link's holder may ask for its PDFs as often as they like: each render waits for one of
    the app's few render slots, so they cannot hold every worker thread the other pages need."""
    invoice_id = portal.invoice()
    _, home = portal.link()
    services = _services(portal)
    services.secret_key = SECRET_KEY
    asgi = create_app(services)
    slots = asgi.state.pdf_renders = _CountedSlots()

    async def download() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://ledger.test") as client:
            return await client.get(f"{home}/invoices/{invoice_id}/pdf")

    response = asyncio.run(download())

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert slots.taken == 1


@SQLITE
def test_pay_from_another_site_is_refused_and_from_our_page_goes_through(portal: Portal) -> None:
    invoice_id = portal.invoice()
    _, home = portal.link()
    pay = f"{home}/invoices/{invoice_id}/pay"
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site", "Origin": "null"}):
        refused = portal.web.post(pay, headers=headers)
        assert refused.status_code == 403, headers
        assert portal.app.invoice(invoice_id).checkouts == {}
    # What a browser sends from our page, whose Referrer-Policy is no-referrer: Origin null.
    ours = portal.web.post(pay, headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"})
    assert ours.status_code == 303, ours.text
