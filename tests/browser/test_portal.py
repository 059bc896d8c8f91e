"""The client portal as a customer uses it, in headless Chromium, over the data set of
tests/browser/portal_seed.py (today is 2026-03-02): the invoices a link shows, one invoice, its
PDF, paying it through Checkout (the test Stripe server of tests/stripe_server.py stands in for
Stripe, and the test delivers the signed webhook Stripe would send once paid), the refusals, a
phone, no JavaScript, the keyboard. Each test saves a screenshot of the page it checks
(tests/browser/conftest.py `shot`).

The test Stripe server has no hosted payment page: after Pay the browser is at the session's URL,
where the test checks what was asked of Stripe, then goes where Stripe would send the customer
back (the session's success_url or cancel_url).
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Response, expect
from pypdf import PdfReader
from sqlalchemy import Engine

from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from adapters.stripe import StripePaymentProvider
from adapters.stripe.webhooks import StripeWebhookVerifier
from commands.application import BillingApplication
from ledger.money import Money
from ledger.seller import Seller
from tests.browser.conftest import artifacts_dir, shot
from tests.browser.portal_seed import SECRET_KEY, PortalSeeded, seed_portal
from tests.browser.test_admin_dashboard import LOW_CONTRAST, _focus_ring, _tab_until
from tests.conftest import AppFactory
from tests.e2e.conftest import WEBHOOK_SECRET, deliver_event, serve
from tests.stripe_server import API_KEY, StripeServer

SELLER = Seller(
    name="Northwind Supplies Ltd",
    address=("1 Harbour Street", "Bristol BS1 4AB"),
    email="accounts@northwind.example",
    payment_instructions="Bank transfer to GB33 BUKB 2020 1555 5555 55, quoting the invoice number.",
)
PHONE_WIDTH = 375

# What Acme's link shows, worked out by hand from tests/browser/portal_seed.py.
EUR_DUE = Money(40_000, "eur").format()  # INV-000003: 480.00 EUR less 80.00 EUR by bank transfer
JPY_DUE = Money(128_000, "jpy").format()
USD_TOTAL = Money(125_000, "usd").format()


@dataclass
class Portal:
    base_url: str
    app: BillingApplication
    engine: Engine
    clock: ManualClock
    seeded: PortalSeeded
    stripe: StripeServer

    def url(self, path: str) -> str:
        return self.base_url + path

    def home(self, link: str = "acme") -> str:
        """The list of a link's invoices."""
        return self.url(f"/portal/{self.seeded.tokens[link]}")

    def invoice(self, role: str, link: str = "acme") -> str:
        """An invoice's page under a link."""
        return f"{self.home(link)}/invoices/{self.seeded.invoices[role]}"

    def deliver(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Send the webhook Stripe would send about `obj` to /webhooks/stripe, signed with the
        endpoint's secret as Stripe signs it; the ledger's answer."""
        return deliver_event(self.base_url, event_type, obj)


@pytest.fixture
def portal(
    make_app: AppFactory, database_url: str, clock: ManualClock, stripe_server: StripeServer
) -> Iterator[Portal]:
    """The app over the seeded store, served on loopback with the portal on (a secret key) and
    Stripe configured (the test server: Checkout sessions open there; webhooks are checked
    against WEBHOOK_SECRET)."""
    app = make_app()
    engine = read_model_engine(database_url)
    payments = StripePaymentProvider(API_KEY, api_base=stripe_server.base_url, max_network_retries=0)
    try:
        seeded = seed_portal(app, clock)  # the pages catch the read models up themselves
        served = serve(
            app,
            engine,
            clock,
            payments=payments,
            webhooks=StripeWebhookVerifier(WEBHOOK_SECRET),
            secret_key=SECRET_KEY,
            seller=SELLER,
            checkout_origins=(stripe_server.base_url,),  # where its sessions' pages are: Pay's redirect goes there
        )
        try:
            yield Portal(served.base_url, app, engine, clock, seeded, stripe_server)
        finally:
            served.stop()
    finally:
        payments.close()
        engine.dispose()


def _go(page: Page, target: Locator) -> None:
    """Click what leads to another page and wait until that page has loaded."""
    target.click()
    page.wait_for_load_state()


def _open(page: Page, url: str, status: int = 200) -> Response:
    response = page.goto(url)
    assert response is not None
    assert response.status == status, f"{url}: {response.status}"
    return response


def _rows(page: Page, table: str) -> list[str]:
    """The invoice numbers of a table of the list, top to bottom."""
    return page.get_by_test_id(table).get_by_test_id("invoice-row").get_by_role("link").all_inner_texts()


def _session_of(page: Page, portal: Portal) -> dict[str, Any]:
    """The Checkout session the browser was sent to, as the test Stripe server holds it."""
    page.wait_for_url(re.compile(re.escape(portal.stripe.base_url) + r"/c/pay/cs_test_"))
    session_id = page.url.rsplit("/", 1)[1]
    session = portal.stripe.sessions[session_id]
    assert page.url == session["url"]
    return session


# ------------------------------------------------------------------------------ the list


def test_a_link_lists_its_customers_invoices_open_ones_first(
    page: Page, portal: Portal, request: pytest.FixtureRequest
) -> None:
    response = _open(page, portal.home())
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"  # the token never leaves in a Referer

    expect(page.get_by_role("heading", name="Your invoices", level=1)).to_be_visible()
    expect(page.get_by_test_id("customer-email")).to_have_text("billing@acme.example")
    numbers = page.get_by_test_id("invoice-row").get_by_role("link").all_inner_texts()
    assert sorted(numbers[:2]) == ["INV-000002", "INV-000003"], numbers  # what is due comes first
    assert numbers[2:] == ["INV-000001"], numbers
    assert sorted(_rows(page, "open-invoices")) == ["INV-000002", "INV-000003"]
    assert _rows(page, "closed-invoices") == ["INV-000001"]

    due = dict(zip(_rows(page, "open-invoices"), page.get_by_test_id("amount-due").all_inner_texts(), strict=True))
    assert due == {"INV-000003": EUR_DUE, "INV-000002": JPY_DUE}
    closed = page.get_by_test_id("closed-invoices").get_by_test_id("invoice-row")
    expect(closed).to_contain_text(USD_TOTAL)
    expect(closed).to_contain_text("Paid")

    text = page.locator("body").inner_text()
    for absent in ("INV-000004", "INV-000005", "Globex", "900.00 USD", "Not yet agreed", "777.00 USD"):
        assert absent not in text, f"{absent!r} is shown on Acme's list"  # another customer's, or a draft
    shot(page, request)

    _go(page, page.get_by_role("link", name="INV-000002"))
    expect(page.get_by_test_id("invoice-number")).to_have_text("INV-000002")
    expect(page.get_by_test_id("amount-due")).to_have_text(JPY_DUE)


# ------------------------------------------------------------------------------ one invoice


def test_an_invoice_shows_its_lines_totals_payments_and_refunds(
    page: Page, portal: Portal, request: pytest.FixtureRequest
) -> None:
    _open(page, portal.invoice("acme-usd-refunded"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoice INV-000001")
    expect(page.get_by_test_id("invoice-status")).to_have_text("Paid")
    expect(page.get_by_test_id("amount-due")).to_have_text("0.00 USD")
    expect(page.get_by_test_id("pay")).to_have_count(0)  # nothing to pay

    lines = page.get_by_test_id("lines").locator("tbody tr")
    expect(lines).to_have_count(2)
    expect(lines.nth(0)).to_contain_text("Platform subscription, January")
    expect(lines.nth(0)).to_contain_text("1,000.00 USD")
    expect(lines.nth(1)).to_contain_text("Support hours")
    expect(lines.nth(1).locator("td").first).to_have_text("5")
    expect(lines.nth(1)).to_contain_text("50.00 USD")
    expect(lines.nth(1)).to_contain_text("250.00 USD")

    totals = page.get_by_test_id("totals")
    expect(page.get_by_test_id("total")).to_have_text(USD_TOTAL)
    expect(totals.get_by_role("row", name="Paid")).to_contain_text(USD_TOTAL)
    expect(totals.get_by_role("row", name="Refunded")).to_contain_text("250.00 USD")

    payments = page.get_by_test_id("payments").locator("tbody tr")
    expect(payments).to_have_count(1)
    expect(payments).to_contain_text(USD_TOTAL)
    expect(payments).to_contain_text("2026-01-20")
    refunds = page.get_by_test_id("refunds").locator("tbody tr")
    expect(refunds).to_have_count(1)
    expect(refunds).to_contain_text("250.00 USD")
    expect(refunds).to_contain_text("2026-02-05")
    shot(page, request)

    # A partly paid invoice: its bank transfer, and what is left to pay.
    _open(page, portal.invoice("acme-eur-open"))
    expect(page.get_by_test_id("invoice-status")).to_have_text("Open")
    expect(page.get_by_test_id("total")).to_have_text("480.00 EUR")
    expect(page.get_by_test_id("payments").locator("tbody tr")).to_contain_text("80.00 EUR")
    expect(page.get_by_test_id("refunds")).to_have_count(0)
    expect(page.get_by_test_id("amount-due")).to_have_text(EUR_DUE)
    expect(page.get_by_test_id("pay")).to_contain_text(EUR_DUE)
    shot(page, request, "partly-paid")


def test_the_invoice_pdf_downloads_with_its_number_and_amount_due(
    page: Page, portal: Portal, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    _open(page, portal.invoice("acme-eur-open"))
    shot(page, request)
    with page.expect_download() as started:
        page.get_by_test_id("download-pdf").click()
    download = started.value
    assert download.suggested_filename == "INV-000003.pdf"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    data = saved.read_bytes()
    kept = artifacts_dir() / "downloads" / f"{request.node.name}.pdf"  # to look at, beside the screenshots
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(data)
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data), strict=True)
    text = "\n".join(sheet.extract_text() for sheet in reader.pages)
    assert "INV-000003" in text
    assert EUR_DUE in text
    assert "Acme Corporation" in text
    links = [
        annotation.get_object()["/A"]["/URI"]
        for sheet in reader.pages
        for annotation in sheet.get("/Annots", [])
        if "/A" in annotation.get_object()
    ]
    assert portal.invoice("acme-eur-open") in links  # back to this page, under the same link


# ------------------------------------------------------------------------------ paying


def test_paying_goes_to_checkout_and_the_invoice_is_paid_once_stripe_reports_it(
    page: Page, portal: Portal, request: pytest.FixtureRequest
) -> None:
    invoice_id = str(portal.seeded.invoices["acme-eur-open"])
    _open(page, portal.invoice("acme-eur-open"))
    page.get_by_test_id("pay").click()

    session = _session_of(page, portal)
    assert (session["amount_total"], session["currency"]) == (40_000, "eur")
    assert session["metadata"] == {"invoice_id": invoice_id}
    here = portal.invoice("acme-eur-open")  # the customer comes back under the same link
    assert (session["success_url"], session["cancel_url"]) == (f"{here}?checkout=success", f"{here}?checkout=cancel")

    _open(page, session["success_url"])  # where Stripe sends the customer once the card is taken
    status = page.get_by_test_id("checkout-status")
    expect(status).to_contain_text("Your payment is processing")
    expect(page.get_by_test_id("pay")).to_have_count(0)  # no paying twice while it is processing
    assert page.locator("meta[http-equiv=refresh]").count() == 1
    shot(page, request, "processing")

    paid, intent = portal.stripe.complete_session(session["id"])
    assert portal.deliver("checkout.session.completed", paid)["outcome"] == "applied"
    assert portal.deliver("payment_intent.succeeded", intent)["outcome"] == "duplicate"  # the same money, once

    # The page looks again by itself (a meta refresh, no script) and finds the payment recorded.
    expect(status).to_contain_text("Paid", timeout=15_000)
    expect(page.get_by_test_id("invoice-status")).to_have_text("Paid")
    expect(page.get_by_test_id("amount-due")).to_have_text("0.00 EUR")
    expect(page.get_by_test_id("payments").locator("tbody tr")).to_have_count(2)
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    shot(page, request)

    _go(page, page.get_by_role("link", name="All your invoices"))
    assert _rows(page, "open-invoices") == ["INV-000002"]
    assert sorted(_rows(page, "closed-invoices")) == ["INV-000001", "INV-000003"]
    row = page.get_by_test_id("closed-invoices").locator(f"[data-invoice-id='{invoice_id}']")
    expect(row).to_contain_text("Paid")
    shot(page, request, "list")


def test_a_cancelled_checkout_says_so_and_offers_pay_again(
    page: Page, portal: Portal, request: pytest.FixtureRequest
) -> None:
    _open(page, portal.invoice("acme-jpy-open"))
    page.get_by_test_id("pay").click()
    session = _session_of(page, portal)
    assert (session["amount_total"], session["currency"]) == (128_000, "jpy")  # jpy: no decimals at Stripe either

    _open(page, session["cancel_url"])  # the customer pressed "back" on Stripe's page
    expect(page.get_by_test_id("checkout-status")).to_contain_text("Payment cancelled")
    expect(page.get_by_test_id("invoice-status")).to_have_text("Open")
    expect(page.get_by_test_id("amount-due")).to_have_text(JPY_DUE)
    expect(page.get_by_test_id("pay")).to_be_visible()
    shot(page, request)

    page.get_by_test_id("pay").click()  # and can pay after all
    again = _session_of(page, portal)
    assert (again["amount_total"], again["currency"]) == (128_000, "jpy")


# ------------------------------------------------------------------------------ refusals


def _tampered(token: str) -> str:
    """The token with one character of its signature changed."""
    last = token[-2]
    return token[:-2] + ("A" if last != "A" else "B") + token[-1]


# what is asked -> the status and what the page must say
REFUSALS = {
    "tampered token": (403, "not valid"),
    "expired link": (410, "expired"),
    "revoked link": (410, "withdrawn"),
    "another customer's invoice": (404, "not found"),
    "an unknown invoice": (404, "not found"),
    "a draft": (404, "not found"),
    "not an invoice id": (404, "not found"),
}


def _refused_url(portal: Portal, case: str) -> str:
    seeded = portal.seeded
    acme = portal.home()
    if case == "tampered token":
        return portal.url(f"/portal/{_tampered(seeded.tokens['acme'])}")
    if case == "expired link":
        return portal.invoice("acme-eur-open", "expired")
    if case == "revoked link":
        return portal.home("revoked")
    if case == "another customer's invoice":
        return portal.invoice("globex-usd-open")  # Globex's, under Acme's link
    if case == "an unknown invoice":
        return f"{acme}/invoices/{uuid.uuid4()}"
    if case == "a draft":
        return portal.invoice("acme-draft")  # Acme's own, but not issued yet
    return f"{acme}/invoices/not-an-invoice"


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_link_is_a_plain_page_with_its_status_and_no_data(
    page: Page, portal: Portal, request: pytest.FixtureRequest, case: str
) -> None:
    status, says = REFUSALS[case]
    response = _open(page, _refused_url(portal, case), status)
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_test_id("error-status")).to_have_text(str(status))
    text = page.locator("body").inner_text()
    assert says in text.lower(), text
    for leak in ("Traceback", 'File "', "INV-0000", "Globex", "Acme", "900.00", "777.00", "EUR", "JPY", "USD"):
        assert leak not in text, f"{case}: the page shows {leak!r}"
    assert "INV-0000" not in page.content()
    shot(page, request)


def test_a_form_of_another_site_cannot_pay(page: Page, portal: Portal, request: pytest.FixtureRequest) -> None:
    """A page elsewhere that knows a link posts to its Pay, as a customer's browser would send it
    (Origin: null from an opaque origin, Sec-Fetch-Site: cross-site): refused, no session opened."""
    action = f"{portal.invoice('acme-eur-open')}/pay"
    page.set_content(
        '<meta name="referrer" content="no-referrer">'
        f'<form method="post" action="{action}"><button type="submit">Win a prize</button></form>'
    )
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Win a prize").click()
    response = navigation.value
    assert response is not None
    assert response.status == 403
    expect(page.get_by_test_id("error-status")).to_have_text("403")
    assert portal.stripe.requests_to("POST", "/v1/checkout/sessions") == []
    shot(page, request)


def test_pay_is_refused_once_the_link_is_revoked_or_for_another_customers_invoice(
    page: Page, portal: Portal, request: pytest.FixtureRequest
) -> None:
    """The page was open when its link was revoked; a form altered to pay another customer's
    invoice: each Pay is a refusal page, and no Checkout session is opened."""
    _open(page, portal.invoice("acme-jpy-open"))
    portal.app.portal.revoke(portal.seeded.links["acme"], reason="sent to the wrong address")
    with page.expect_navigation() as navigation:
        page.get_by_test_id("pay").click()
    refused = navigation.value
    assert refused is not None
    assert refused.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has been withdrawn")
    shot(page, request, "revoked")

    # Globex's own page, its form pointed at Acme's invoice under Globex's link.
    _open(page, portal.invoice("globex-usd-open", "globex"))
    other = f"{portal.home('globex')}/invoices/{portal.seeded.invoices['acme-jpy-open']}/pay"
    page.eval_on_selector("form[action$='/pay']", "(form, action) => form.setAttribute('action', action)", other)
    with page.expect_navigation() as navigation:
        page.get_by_test_id("pay").click()
    refused = navigation.value
    assert refused is not None
    assert refused.status == 404
    expect(page.get_by_test_id("error-status")).to_have_text("404")
    assert "INV-000002" not in page.content()
    assert portal.stripe.requests_to("POST", "/v1/checkout/sessions") == []
    shot(page, request)


# ------------------------------------------------------------------------------ phone, no script


def test_a_phone_shows_the_list_and_the_invoice_without_horizontal_scroll(
    phone: Page, portal: Portal, request: pytest.FixtureRequest
) -> None:
    too_wide = {}
    for name, url in (
        ("list", portal.home()),
        ("invoice", portal.invoice("acme-usd-refunded")),
        ("open-invoice", portal.invoice("acme-eur-open")),
        ("refused", portal.home("expired")),
    ):
        phone.goto(url)
        expect(phone.get_by_role("heading", level=1)).to_be_visible()
        shot(phone, request, name)
        width = phone.evaluate("() => document.scrollingElement.scrollWidth")
        if width > PHONE_WIDTH + 1:
            too_wide[name] = width
        wide = phone.evaluate(
            """() => [...document.querySelectorAll(".table-wrap, table, .actions, dl")]
                .filter((e) => e.getClientRects().length && (e.scrollWidth > e.clientWidth + 1
                    || e.getBoundingClientRect().right > document.documentElement.clientWidth + 1))
                .map((e) => e.tagName.toLowerCase() + "." + e.className)"""
        )
        if wide:
            too_wide[f"{name} boxes"] = wide
    assert too_wide == {}, f"wider than the phone's {PHONE_WIDTH} px: {too_wide}"

    phone.goto(portal.invoice("acme-eur-open"))
    box = phone.get_by_test_id("pay").bounding_box()  # the open invoice's Pay, in reach of a thumb
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE_WIDTH
    assert box["height"] >= 44, box  # a touch target of at least 44 px


def test_without_javascript_the_list_the_invoice_and_pay_work(
    no_script: Page, portal: Portal, request: pytest.FixtureRequest
) -> None:
    _open(no_script, portal.home())
    assert sorted(_rows(no_script, "open-invoices")) == ["INV-000002", "INV-000003"]
    _go(no_script, no_script.get_by_role("link", name="INV-000003"))
    expect(no_script.get_by_test_id("amount-due")).to_have_text(EUR_DUE)
    expect(no_script.get_by_test_id("lines").locator("tbody tr")).to_have_count(2)
    shot(no_script, request)

    no_script.get_by_test_id("pay").click()
    session = _session_of(no_script, portal)
    assert (session["amount_total"], session["currency"]) == (40_000, "eur")


# ------------------------------------------------------------------------------ keyboard, contrast


def test_the_keyboard_reaches_the_invoice_pay_and_the_pdf_with_a_visible_focus(
    page: Page, portal: Portal, request: pytest.FixtureRequest
) -> None:
    _open(page, portal.home())
    _tab_until(page, "a.skip-link")
    assert _focus_ring(page), "the skip link shows no focus"
    _tab_until(page, "[data-testid=open-invoices] a")
    assert _focus_ring(page), "the focused invoice link shows no focus"
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.get_by_test_id("invoice-number")).to_be_visible()

    _tab_until(page, "[data-testid=pay]")
    assert _focus_ring(page), "the focused Pay button shows no focus"
    shot(page, request)
    _tab_until(page, "[data-testid=download-pdf]")
    assert _focus_ring(page), "the focused PDF link shows no focus"
    _tab_until(page, "[data-testid=pay]")
    page.keyboard.press("Enter")  # the button is pressed from the keyboard too
    _session_of(page, portal)


def test_text_keeps_a_contrast_of_at_least_4_5_to_1(page: Page, portal: Portal, request: pytest.FixtureRequest) -> None:
    pages = {
        "list": portal.home(),
        "invoice": portal.invoice("acme-usd-refunded"),
        "open-invoice": portal.invoice("acme-eur-open"),
        "processing": portal.invoice("acme-eur-open") + "?checkout=success",
        "cancelled": portal.invoice("acme-eur-open") + "?checkout=cancel",
        "refused": portal.home("revoked"),
    }
    low: dict[str, list[str]] = {}
    for name, url in pages.items():
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if failures := page.evaluate(LOW_CONTRAST):
            low[name] = failures
            shot(page, request, name)
    shot(page, request)
    assert low == {}, f"text below its contrast minimum: {low}"


# ------------------------------------------------------------------------------ PostgreSQL


@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_portal_stands_up_on_postgresql(page: Page, portal: Portal, request: pytest.FixtureRequest) -> None:
    _open(page, portal.home("globex"))
    assert _rows(page, "open-invoices") == ["INV-000004"]
    assert _rows(page, "closed-invoices") == ["INV-000005"]
    expect(page.get_by_test_id("amount-due")).to_have_text("900.00 USD")
    _go(page, page.get_by_role("link", name="INV-000005"))
    expect(page.get_by_test_id("total")).to_have_text(Money(5_000, "jpy").format())
    expect(page.get_by_test_id("invoice-status")).to_have_text("Paid")
    shot(page, request)
