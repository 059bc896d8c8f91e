"""The dashboard's operations pages (failed payments, reconciliation, webhooks, payouts, activity),
served for real and used over HTTP as a browser would: signed in through the login form, forms
posted with the CSRF token their page carries, redirects read. On each backend, with the Stripe
stand-in (tests/stripe_server.py) as the account reconciliation reads and payments are retried at.

Figures are read from the elements that carry a `data-testid`, so a change of layout does not
break the tests and a wrong figure does.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlsplit
from uuid import UUID, uuid4

import httpx
import pytest
import stripe

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from adapters.settings import Settings
from adapters.stripe import StripePaymentProvider
from commands.application import BillingApplication
from ledger.admin.users import ADMIN, AUDITOR
from ledger.money import Money
from tests.admin_pages import ADMIN_EMAIL, AUDITOR_EMAIL, PASSWORD, elements, text, texts
from tests.e2e.conftest import INVOICE, WEBHOOK_SECRET, Api, serve, served_api
from tests.stripe_payloads import event_payload
from tests.stripe_server import API_KEY, StripeServer

FEE = 2_524


# ------------------------------------------------------------------------------ reading pages


def links(html: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', html.replace("&amp;", "&")))


def forms(html: str) -> set[str]:
    """Where the page's POST forms go."""
    return set(re.findall(r'<form method="post" action="([^"]+)"', html))


# ------------------------------------------------------------------------------ the served app


@dataclass
class Browser:
    """A signed-in user's client: pages read, forms posted with the page's CSRF token."""

    client: httpx.Client
    clock: ManualClock  # moved a minute before each post: the activity page lists actions by moment

    def page(self, path: str, status: int = 200) -> str:
        response = self.client.get(path)
        assert response.status_code == status, (path, response.status_code, response.text[:2000])
        return response.text

    def submit(self, page: str, action: str, data: dict[str, str] | None = None, status: int = 303) -> httpx.Response:
        """Post the form `action` of `page` (which must offer it), with the page's CSRF token."""
        html = self.page(page)
        assert action in forms(html), (action, forms(html))
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert token is not None
        self.clock.advance(timedelta(minutes=1))
        response = self.client.post(action, data={"csrf_token": token.group(1), **(data or {})})
        assert response.status_code == status, (action, response.status_code, response.text[:2000])
        return response

    def follow(self, response: httpx.Response) -> str:
        """The page a post redirected to, with the flash message it carries."""
        location = response.headers["location"]
        assert urlsplit(location).path.startswith("/admin/")
        return self.page(location)


@contextmanager
def sign_in(base_url: str, email: str, clock: ManualClock) -> Iterator[Browser]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.post("/admin/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 303, response.text
        yield Browser(client, clock)


@dataclass
class Site:
    api: Api
    stripe: StripeServer
    admin: Browser
    auditor: Browser

    @property
    def app(self) -> BillingApplication:
        return self.api.app


@pytest.fixture
def site(database_url: str, clock: ManualClock, stripe_server: StripeServer) -> Iterator[Site]:
    """The dashboard with Stripe configured (the stand-in holds the account's records), an admin
    and an auditor signed in."""
    provider = StripePaymentProvider(API_KEY, api_base=stripe_server.base_url, max_network_retries=0)
    app = bootstrap(Settings(database_url=database_url), clock=clock, payments=lambda: provider)
    app.admin.create_user(ADMIN_EMAIL, role=ADMIN, password=PASSWORD, created_by="test")
    app.admin.create_user(AUDITOR_EMAIL, role=AUDITOR, password=PASSWORD, created_by="test")
    engine = read_model_engine(database_url)
    try:
        with (
            served_api(app, engine, clock, stripe_server.base_url) as api,
            sign_in(api.base_url, ADMIN_EMAIL, clock) as admin,
            sign_in(api.base_url, AUDITOR_EMAIL, clock) as auditor,
        ):
            yield Site(api, stripe_server, admin, auditor)
    finally:
        engine.dispose()
        app.close()
        provider.close()


def issued_invoice(api: Api, *, issue: bool = True) -> str:
    created = api.client.post("/api/invoices", json=INVOICE)
    assert created.status_code == 201, created.text
    invoice_id: str = created.json()["id"]
    if issue:
        issued = api.client.post(f"/api/invoices/{invoice_id}/issue")
        assert issued.status_code == 200, issued.text
        assert issued.json()["total"] == 86_000
    return invoice_id


def activity(site: Site) -> list[tuple[str, str]]:
    """(action, user) of each row of the activity page, newest first."""
    html = site.admin.page("/admin/activity")
    return [
        (attrs["data-action"], user)
        for (_, attrs), user in zip(elements(html, "activity-row"), texts(html, "activity-user"), strict=True)
    ]


# ------------------------------------------------------------------------------ reconciliation


def test_a_reconciliation_run_from_the_form_is_resolved_and_stays_so_after_a_rerun(site: Site) -> None:
    now = site.api.clock.now()
    collected = site.stripe.seed_payment(  # Stripe collected it; its webhook never arrived
        amount=86_000, fee=FEE, invoice_id=issued_invoice(site.api), created=int(now.timestamp())
    )
    ours = f"pi_{uuid4().hex[:24]}"  # the ledger holds a payment Stripe does not show
    site.app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=ours,
        amount_captured=Money(86_000, "usd"),
        invoice_id=UUID(issued_invoice(site.api)),
    )
    days = {"from": (now - timedelta(days=1)).date().isoformat(), "to": now.date().isoformat()}

    ran = site.admin.submit("/admin/reconciliation", "/admin/reconciliation/runs", {**days, "source": "stripe"})

    run_page = site.admin.follow(ran)
    assert text(run_page, "flash") == "Reconciliation run completed."
    assert (text(run_page, "run-status"), text(run_page, "run-items")) == ("completed", "2")
    assert {attrs["data-class"] for _, attrs in elements(run_page, "item-row")} == {
        "missing_in_ledger",
        "missing_in_stripe",
    }
    overview = site.admin.page("/admin/reconciliation")
    assert text(overview, "count-missing_in_ledger-open") == "1"
    assert text(overview, "count-missing_in_stripe-open") == "1"
    assert text(overview, "count-amount_mismatch-open") == "0"

    listed = site.admin.page("/admin/reconciliation/items?class=missing_in_ledger")
    [(_, theirs)] = elements(listed, "item-row")
    assert f"https://dashboard.stripe.com/test/payments/{collected.payment_intent}" in links(listed)
    item_url = f"/admin/reconciliation/items/{theirs['data-item-id']}"
    item_page = site.admin.page(item_url)
    assert text(item_page, "item-status") == "open"
    assert collected.payment_intent in item_page
    assert re.findall(r'<option value="(\w+)">', item_page) == ["apply", "explain"]
    auditors = site.auditor.page(item_url)
    assert forms(auditors) == {"/admin/logout"}  # an auditor sees the item, with nothing to press
    assert "/admin/reconciliation/runs" not in forms(site.auditor.page("/admin/reconciliation"))

    refused = site.admin.submit(item_url, item_url + "/resolve", {"action": "explain", "note": ""}, status=422)
    assert "note" in refused.text
    applied = site.admin.submit(item_url, item_url + "/resolve", {"action": "apply", "note": "the webhook was lost"})
    resolved_page = site.admin.follow(applied)
    assert text(resolved_page, "item-status") == "resolved"
    assert ADMIN_EMAIL in text(resolved_page, "resolution")
    assert item_url + "/resolve" not in forms(resolved_page)

    [(_, mine)] = elements(site.admin.page("/admin/reconciliation/items?class=missing_in_stripe"), "item-row")
    mine_url = f"/admin/reconciliation/items/{mine['data-item-id']}"
    site.admin.submit(mine_url, mine_url + "/resolve", {"action": "explain", "note": "a test payment, kept"})

    again = site.admin.follow(
        site.admin.submit("/admin/reconciliation", "/admin/reconciliation/runs", {**days, "source": "stripe"})
    )
    assert text(again, "run-status") == "completed"
    assert text(site.admin.page(item_url), "item-status") == "resolved"
    assert text(site.admin.page(mine_url), "item-status") == "explained"
    open_items = site.admin.page("/admin/reconciliation/items?status=open")
    assert elements(open_items, "item-row") == []

    exported = site.admin.client.get("/admin/reconciliation/items.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(exported.text))}
    assert {(r["class"], r["status"], r["resolution"], r["resolved_by"]) for r in rows.values()} == {
        ("missing_in_ledger", "resolved", "apply", ADMIN_EMAIL),
        ("missing_in_stripe", "explained", "explain", ADMIN_EMAIL),
    }
    assert rows[theirs["data-item-id"]]["amount_stripe"] == "86000"
    assert rows[mine["data-item-id"]]["stripe_id"] == ours
    only = site.admin.client.get("/admin/reconciliation/items.csv?class=missing_in_stripe")
    assert [row["id"] for row in csv.DictReader(io.StringIO(only.text))] == [mine["data-item-id"]]

    assert activity(site) == [
        ("reconciliation.run", ADMIN_EMAIL),
        ("reconciliation.resolve", ADMIN_EMAIL),
        ("reconciliation.resolve", ADMIN_EMAIL),
        ("reconciliation.run", ADMIN_EMAIL),
    ]


def test_the_items_next_page_and_csv_keep_every_filter_of_the_page(site: Site) -> None:
    """`from`, `to` and `limit` select the items as `class` and `status` do: the next page's
    link and the CSV's keep them, so page two holds no item the filters leave out."""
    clock = site.api.clock
    days = {"from": (clock.now() - timedelta(days=1)).date().isoformat(), "to": clock.now().date().isoformat()}
    site.stripe.seed_payment(amount=1_000, created=int(clock.now().timestamp()))
    site.admin.submit("/admin/reconciliation", "/admin/reconciliation/runs", {**days, "source": "stripe"})
    clock.advance(timedelta(minutes=20))  # within the session's idle timeout
    since = clock.now()
    for amount in (2_000, 3_000):
        site.stripe.seed_payment(amount=amount, created=int(clock.now().timestamp()))
    site.admin.submit("/admin/reconciliation", "/admin/reconciliation/runs", {**days, "source": "stripe"})
    query = urlencode({"from": since.isoformat(), "limit": "1"})

    first = site.admin.page(f"/admin/reconciliation/items?{query}")
    [next_link] = [html.unescape(link) for link in links(first) if "cursor=" in link]
    second = site.admin.page(next_link)
    csv_link = html.unescape(re.findall(r'href="(/admin/reconciliation/items.csv[^"]*)"', first)[0])
    exported = list(csv.DictReader(io.StringIO(site.admin.client.get(csv_link).text)))

    shown = [attrs["data-item-id"] for page in (first, second) for _, attrs in elements(page, "item-row")]
    assert len(shown) == 2  # the two found after `since`, one a page; not the first run's
    assert not [link for link in links(second) if "cursor=" in link]
    assert sorted(row["id"] for row in exported) == sorted(shown)


def test_without_stripe_only_the_ledger_is_offered_and_bad_periods_are_refused(
    site: Site, make_ledger_only: Browser
) -> None:
    html = make_ledger_only.page("/admin/reconciliation")
    assert re.findall(r'<option value="(\w+)">', html) == ["ledger"]
    stripe_run = make_ledger_only.submit(
        "/admin/reconciliation", "/admin/reconciliation/runs", {"source": "stripe"}, status=422
    )
    assert "source" in stripe_run.text
    backwards = site.admin.submit(
        "/admin/reconciliation", "/admin/reconciliation/runs", {"from": "2026-03-02", "to": "2026-03-01"}, status=422
    )
    assert "to" in backwards.text
    not_a_day = site.admin.submit(
        "/admin/reconciliation", "/admin/reconciliation/runs", {"from": "yesterday"}, status=422
    )
    assert "from" in not_a_day.text
    assert "run-row" not in site.admin.page("/admin/reconciliation")  # nothing ran
    site.admin.page(f"/admin/reconciliation/runs/{uuid4()}", status=404)
    site.admin.page("/admin/reconciliation/items/not-an-id", status=404)


@pytest.fixture
def make_ledger_only(site: Site) -> Iterator[Browser]:
    """The same store served without Stripe (no records, no payment provider)."""
    served = serve(site.app, site.api.engine, site.api.clock)
    try:
        with sign_in(served.base_url, ADMIN_EMAIL, site.api.clock) as browser:
            yield browser
    finally:
        served.stop()


# ------------------------------------------------------------------------------ webhooks


def _deliver(site: Site, event_id: str, intent: str, invoice_id: str) -> None:
    site.api.clock.advance(timedelta(minutes=1))
    body = event_payload(
        "payment_intent.succeeded",
        "payment_intent",
        event_id=event_id,
        id=intent,
        amount=86_000,
        amount_received=86_000,
        currency="usd",
        status="succeeded",
        metadata={"invoice_id": invoice_id},
    )
    signature = stripe.WebhookSignature.generate_signature_header(body.decode(), WEBHOOK_SECRET)
    response = httpx.post(site.api.base_url + "/webhooks/stripe", content=body, headers={"Stripe-Signature": signature})
    assert response.status_code == 200, response.text


def test_a_rejected_webhook_is_reprocessed_from_its_page_and_shows_its_new_status(site: Site) -> None:
    draft = issued_invoice(site.api, issue=False)
    _deliver(site, "evt_1OnDraft", "pi_1OnDraft", draft)  # a payment for a draft: refused
    _deliver(site, "evt_1Other", "pi_1Other", issued_invoice(site.api))

    inbox = site.admin.page("/admin/webhooks")
    assert [(attrs["data-event-id"]) for _, attrs in elements(inbox, "webhook-row")] == ["evt_1Other", "evt_1OnDraft"]
    rejected = site.admin.page("/admin/webhooks?status=rejected")
    assert [attrs["data-event-id"] for _, attrs in elements(rejected, "webhook-row")] == ["evt_1OnDraft"]
    assert texts(rejected, "webhook-status") == ["rejected"]
    by_type = site.admin.page("/admin/webhooks?type=payment_intent.succeeded")
    assert len(elements(by_type, "webhook-row")) == 2
    assert elements(site.admin.page("/admin/webhooks?type=charge.refunded"), "webhook-row") == []

    event_page = site.admin.page("/admin/webhooks/evt_1OnDraft")
    assert text(event_page, "webhook-status") == "rejected"
    payload = text(event_page, "webhook-payload")
    assert '"id": "evt_1OnDraft"' in payload
    assert f'"invoice_id": "{draft}"' in payload
    assert "/admin/webhooks/evt_1OnDraft/reprocess" not in forms(site.auditor.page("/admin/webhooks/evt_1OnDraft"))
    assert site.api.client.post(f"/api/invoices/{draft}/issue").status_code == 200

    done = site.admin.submit("/admin/webhooks/evt_1OnDraft", "/admin/webhooks/evt_1OnDraft/reprocess")

    after = site.admin.follow(done)
    assert text(after, "flash") == "Reprocessed: rejected → applied."
    assert text(after, "webhook-status") == "applied"
    assert "/admin/webhooks/evt_1OnDraft/reprocess" not in forms(after)  # nothing more to do with it
    assert site.api.client.get(f"/api/invoices/{draft}").json()["status"] == "paid"
    site.admin.page("/admin/webhooks/evt_1Never", status=404)
    assert activity(site)[0] == ("webhook.reprocess", ADMIN_EMAIL)


def test_a_payload_is_shown_escaped(site: Site) -> None:
    site.api.clock.advance(timedelta(minutes=1))
    body = event_payload(
        "customer.created", "customer", event_id="evt_1Markup", id="cus_1", name="<script>alert(1)</script>"
    )
    signature = stripe.WebhookSignature.generate_signature_header(body.decode(), WEBHOOK_SECRET)
    assert httpx.post(site.api.base_url + "/webhooks/stripe", content=body, headers={"Stripe-Signature": signature})
    html = site.admin.page("/admin/webhooks/evt_1Markup")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ------------------------------------------------------------------------------ failed payments


def test_failed_payments_show_their_dunning_and_are_retried_and_reminded_by_hand(site: Site) -> None:
    invoice_id = issued_invoice(site.api)
    intent = site.stripe.add_failed_payment_intent(amount=86_000, currency="usd", invoice_id=invoice_id)
    site.app.record_provider_payment_failed(
        provider="stripe",
        provider_payment_id=intent,
        attempt_id="ch_first",
        code="card_declined",
        message="Your card was declined.",
        invoice_id=UUID(invoice_id),
        amount=Money(86_000, "usd"),
    )

    listed = site.admin.page("/admin/failed-payments")
    [(row, attrs)] = elements(listed, "failed-payment-row")
    assert attrs["data-invoice-id"] == invoice_id
    assert "card_declined Your card was declined." in row
    assert "860.00 USD" in row
    assert (text(listed, "failed-attempts"), text(listed, "dunning-state")) == ("1", "not started")
    retry, remind = f"/admin/failed-payments/{invoice_id}/retry", f"/admin/failed-payments/{invoice_id}/remind"
    assert {retry, remind} <= forms(listed)
    assert forms(site.auditor.page("/admin/failed-payments")) == {"/admin/logout"}

    site.stripe.confirm_outcomes(intent, "declined")
    retried = site.admin.follow(site.admin.submit("/admin/failed-payments", retry))

    assert text(retried, "flash") == f"Retry requested ({intent}: declined)."
    assert text(retried, "dunning-state").startswith("active")
    assert "retry by hand" in text(retried, "next-step")
    twice = site.admin.submit("/admin/failed-payments", retry, status=409)
    assert "asked for already" in twice.text
    reminded = site.admin.follow(site.admin.submit("/admin/failed-payments", remind))
    assert text(reminded, "flash") == "Reminder requested."
    assert "1 reminder, 0 retries" in text(reminded, "dunning-state")
    dunning = site.app.dunning.get(UUID(invoice_id))
    assert dunning is not None
    assert dunning.retried_by_hand_after == 1
    assert activity(site)[:2] == [("dunning.remind", ADMIN_EMAIL), ("dunning.retry", ADMIN_EMAIL)]


def _hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the POST form to `action` but its CSRF token: what the page carries back."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S)
    assert form is not None, action
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)))
    fields.pop("csrf_token", None)
    return fields


def test_a_reminder_form_posted_twice_records_one_reminder(site: Site) -> None:
    invoice_id = issued_invoice(site.api)
    site.app.record_provider_payment_failed(
        provider="stripe",
        provider_payment_id="pi_1Twice",
        attempt_id="ch_first",
        code="card_declined",
        message="Your card was declined.",
        invoice_id=UUID(invoice_id),
        amount=Money(86_000, "usd"),
    )
    listed = site.admin.page("/admin/failed-payments")
    remind = f"/admin/failed-payments/{invoice_id}/remind"
    shown = _hidden_fields(listed, remind)
    invoice_version = str(site.app.invoice(UUID(invoice_id)).version)
    assert shown == {"version": invoice_version, "dunning_version": "0"}

    # A double click without JavaScript: the same form, the versions the page showed, twice.
    site.admin.submit("/admin/failed-payments", remind, data=shown)
    twice = site.admin.submit("/admin/failed-payments", remind, data=shown, status=412)
    assert "Stale version" in twice.text
    dunning = site.app.dunning.get(UUID(invoice_id))
    assert dunning is not None
    assert "1 reminder," in text(site.admin.page("/admin/failed-payments"), "dunning-state")
    assert [action for action, _ in activity(site)].count("dunning.remind") == 1

    # The page as it stands now carries the new versions: a reminder from it is recorded.
    again = _hidden_fields(site.admin.page("/admin/failed-payments"), remind)
    assert again == {"version": invoice_version, "dunning_version": str(dunning.version)}
    site.admin.submit("/admin/failed-payments", remind, data=again)
    assert "2 reminders," in text(site.admin.page("/admin/failed-payments"), "dunning-state")

    # The invoice moved on (a payment recorded) since the page was read: refused, nothing recorded.
    stale_invoice = _hidden_fields(site.admin.page("/admin/failed-payments"), remind)
    site.app.record_offline_payment(UUID(invoice_id), Money(100, "usd"), reference="cheque-9")
    site.admin.submit("/admin/failed-payments", remind, data=stale_invoice, status=412)
    assert "2 reminders," in text(site.admin.page("/admin/failed-payments"), "dunning-state")
    for bad in ({"version": "0"}, {"dunning_version": "-1"}, {"version": "x"}):
        site.admin.submit("/admin/failed-payments", remind, data=bad, status=422)


def test_without_a_payment_provider_there_is_no_retry(site: Site, make_ledger_only: Browser) -> None:
    invoice_id = issued_invoice(site.api)
    site.app.record_provider_payment_failed(
        provider="stripe",
        provider_payment_id="pi_1NoProvider",
        attempt_id="ch_first",
        code="card_declined",
        message="Your card was declined.",
        invoice_id=UUID(invoice_id),
        amount=Money(86_000, "usd"),
    )
    listed = make_ledger_only.page("/admin/failed-payments")
    assert forms(listed) == {"/admin/logout", f"/admin/failed-payments/{invoice_id}/remind"}
    token = re.search(r'name="csrf_token" value="([^"]+)"', listed)
    assert token is not None
    refused = make_ledger_only.client.post(
        f"/admin/failed-payments/{invoice_id}/retry", data={"csrf_token": token.group(1)}
    )
    assert refused.status_code == 409
    assert "no payment provider" in refused.text
    assert site.app.dunning.get(UUID(invoice_id)) is None


# ------------------------------------------------------------------------------ payouts


def test_a_payout_shows_its_postings_and_reconciliation_status(site: Site) -> None:
    site.app.record_payout(provider="stripe", provider_payout_id="po_1Bank", amount=Money(50_000, "usd"), paid=True)

    listed = site.admin.page("/admin/payouts")
    [(_, attrs)] = elements(listed, "payout-row")
    assert text(listed, "payout-amount") == "500.00 USD"
    assert text(listed, "payout-reconciliation") == "never checked"

    detail = site.admin.page(f"/admin/payouts/{attrs['data-payout-id']}")
    assert text(detail, "payout-amount") == "500.00 USD"
    assert len(elements(detail, "posting-row")) >= 2  # a balanced entry: at least a debit and a credit
    assert "https://dashboard.stripe.com/test/payouts/po_1Bank" in links(detail)
    site.admin.page(f"/admin/payouts/{uuid4()}", status=404)
    assert elements(site.admin.page("/admin/payouts?status=failed"), "payout-row") == []
    site.admin.page("/admin/payouts?status=lost", status=422)


# ------------------------------------------------------------------------------ activity


def test_activity_is_filtered_by_user_and_action_and_links_each_target(site: Site) -> None:
    draft = issued_invoice(site.api, issue=False)
    _deliver(site, "evt_1Filter", "pi_1Filter", draft)
    assert site.api.client.post(f"/api/invoices/{draft}/issue").status_code == 200
    site.admin.submit("/admin/webhooks/evt_1Filter", "/admin/webhooks/evt_1Filter/reprocess")

    html = site.admin.page(f"/admin/activity?user={ADMIN_EMAIL}&action=webhook")
    assert [attrs["data-action"] for _, attrs in elements(html, "activity-row")] == ["webhook.reprocess"]
    assert "/admin/webhooks/evt_1Filter" in links(html)
    assert elements(site.admin.page(f"/admin/activity?user={AUDITOR_EMAIL}"), "activity-row") == []
    assert elements(site.auditor.page("/admin/activity?action=webhook.reprocess"), "activity-row")


# ------------------------------------------------------------------------------ bad input


BAD = [
    ("/admin/failed-payments?cursor=zzz", 422),
    ("/admin/failed-payments?currency=%00", 422),
    ("/admin/failed-payments?unknown=1", 422),
    ("/admin/reconciliation?cursor=zzz", 422),
    ("/admin/reconciliation/items?class=nope", 422),
    ("/admin/reconciliation/items?status=%00", 422),
    ("/admin/reconciliation/items.csv?status=nope", 422),
    ("/admin/webhooks?type=%00", 422),
    ("/admin/webhooks/evt_%00", 404),
    ("/admin/payouts/not-an-id", 404),
    ("/admin/activity?user=%00", 422),
    ("/admin/activity?cursor=zzz", 422),
]


def test_bad_input_is_a_page_naming_it_never_a_server_error(site: Site) -> None:
    for path, status in BAD:
        html = site.admin.page(path, status=status)
        assert 'data-testid="error-status"' in html, path
