"""The dashboard's overview, invoice list, CSV export and invoice page, served for real and used
over HTTP as a browser would: signed in through the login form, forms posted with their CSRF
token, redirects followed. On each backend.

Figures are read from the elements that carry a `data-testid` (with the small parser below),
so a change of layout does not break the tests and a wrong figure does.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import httpx
import pytest

from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.admin.users import ADMIN, AUDITOR
from ledger.money import Money
from tests.admin_pages import ADMIN_EMAIL, AUDITOR_EMAIL, PASSWORD, PageIds, csrf_token, elements, text, texts
from tests.conftest import AppFactory
from tests.e2e.conftest import Api, served_api
from tests.stripe_server import StripeServer

# ------------------------------------------------------------------------------ the served app


@dataclass
class Site:
    api: Api
    stack: ExitStack
    admin: httpx.Client  # signed in as an admin

    def sign_in_again(self) -> None:
        """A new session: moving the test's clock by more than the idle timeout ends the old one."""
        self.admin = self.stack.enter_context(sign_in(self.api.base_url, ADMIN_EMAIL))

    @property
    def app(self) -> BillingApplication:
        return self.api.app

    @property
    def clock(self) -> ManualClock:
        return self.api.clock

    def page(self, path: str) -> str:
        response = self.admin.get(path)
        assert response.status_code == 200, response.text
        return response.text

    def act(self, invoice_id: UUID, action: str, **fields: str) -> httpx.Response:
        """Post an action's form from the invoice page as it stands, with its token and version."""
        html = self.page(f"/admin/invoices/{invoice_id}")
        version = text(html, "invoice-version")
        data = {"csrf_token": csrf_token(html), "version": version, **fields}
        return self.admin.post(f"/admin/invoices/{invoice_id}/{action}", data=data)


@contextmanager
def sign_in(base_url: str, email: str) -> Iterator[httpx.Client]:
    """A client signed in through the login form, as a browser is: the session cookie kept."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        assert client.get("/admin/login").status_code == 200
        response = client.post("/admin/login", data={"email": email, "password": PASSWORD, "next": "/admin/"})
        assert response.status_code == 303, response.text
        yield client


@pytest.fixture
def site(
    make_app: AppFactory, database_url: str, clock: ManualClock, shared_stripe_server: StripeServer
) -> Iterator[Site]:
    engine = read_model_engine(database_url)
    app = make_app()
    for email, role in ((ADMIN_EMAIL, ADMIN), (AUDITOR_EMAIL, AUDITOR)):
        app.admin.create_user(email, role=role, password=PASSWORD, created_by="test")
    try:
        with served_api(app, engine, clock, shared_stripe_server.base_url) as api, ExitStack() as stack:
            yield Site(api, stack, stack.enter_context(sign_in(api.base_url, ADMIN_EMAIL)))
    finally:
        engine.dispose()


def draft(
    app: BillingApplication,
    *,
    email: str = "ap@acme.example",
    name: str = "Acme Ltd",
    currency: str = "usd",
    amount: int = 10_000,
    due_date: str | None = None,
) -> UUID:
    return app.create_draft(
        customer={"email": email, "name": name},
        currency=currency,
        lines=[NewLine(description="Consulting", quantity=1, unit_amount=amount)],
        due_date=due_date,
    ).result


def issued(app: BillingApplication, **options: object) -> UUID:
    invoice_id = draft(app, **options)  # type: ignore[arg-type]
    app.issue(invoice_id)
    return invoice_id


def fail_attempt(app: BillingApplication, invoice_id: UUID) -> None:
    """What the webhook records when Stripe reports a declined charge."""
    invoice = app.invoice(invoice_id)
    app.record_provider_payment_failed(
        provider="stripe",
        provider_payment_id=f"pi_{invoice_id.hex[:12]}",
        attempt_id=f"ch_{invoice_id.hex[:12]}",
        code="card_declined",
        message="Your card was declined.",
        invoice_id=invoice_id,
        amount=Money(invoice.amount_due, invoice.currency),
    )


# ------------------------------------------------------------------------------ overview


def test_the_overview_shows_each_currencys_figures_and_charts(site: Site) -> None:
    app, clock = site.app, site.clock  # Monday 2026-03-02
    issued(app, amount=10_000, due_date="2026-03-31")  # open, not yet due
    late = issued(app, amount=5_000, due_date="2026-03-05")  # 20 days late on the 25th
    fail_attempt(app, late)
    paid = issued(app, amount=3_000, due_date="2026-03-31")
    app.record_offline_payment(paid, Money(3_000, "usd"), reference="wire-1")  # collected in the week of 03-02
    issued(app, currency="eur", amount=2_000)  # no due date: current
    draft(app, amount=99_999)  # a draft owes nothing
    clock.set(datetime(2026, 3, 25, 9, tzinfo=UTC))
    site.sign_in_again()

    html = site.page("/admin/")

    assert text(html, "amount-due-usd") == "150.00 USD"
    assert text(html, "overdue-usd") == "50.00 USD"
    assert text(html, "collected-this-month-usd") == "30.00 USD"
    assert text(html, "failed-payments-usd") == "1"
    assert text(html, "failed-amount-usd") == "50.00 USD"
    assert text(html, "amount-due-eur") == "20.00 EUR"
    assert text(html, "overdue-eur") == "0.00 EUR"
    assert text(html, "aging-current-usd") == "100.00 USD"
    assert text(html, "aging-1-30-usd") == "50.00 USD"
    assert text(html, "aging-over-90-usd") == "0.00 USD"
    assert text(html, "aging-current-eur") == "20.00 EUR"
    assert text(html, "collected-week-2026-03-02-usd") == "30.00 USD"
    assert text(html, "collected-week-2026-03-23-usd") == "0.00 USD"
    assert html.count('role="img"') == 4  # aging and collections, per currency
    assert "<title id=" in html
    assert 'style="' not in html  # the CSP forbids inline style: the charts use none


def test_an_empty_ledger_has_an_overview_too(site: Site) -> None:
    html = site.page("/admin/")

    assert texts(html, "overview-empty") != []
    assert text(html, "open-reconciliation-items") == "0"


# ------------------------------------------------------------------------------ the list


def numbers(html: str) -> list[str]:
    return texts(html, "invoice-number")


def test_the_list_filters_searches_and_sorts(site: Site) -> None:
    app, clock = site.app, site.clock
    alice = issued(app, email="alice@wonder.example", name="Alice Liddell", amount=30_000)
    clock.advance(timedelta(hours=1))
    bob = issued(app, email="bob@builder.example", name="Bob Builder", amount=10_000, currency="eur")
    clock.advance(timedelta(hours=1))
    carol = issued(app, email="carol@singer.example", name="Carol King", amount=20_000)
    app.void(carol)
    clock.advance(timedelta(hours=1))
    draft(app, email="dave@diver.example", name="Dave Diver", amount=5_000)
    number = {i: app.invoice(i).number for i in (alice, bob, carol)}
    site.sign_in_again()

    everything = site.page("/admin/invoices")
    assert len(elements(everything, "invoice-row")) == 4
    assert numbers(everything)[1:] == [number[carol], number[bob], number[alice]]  # newest first
    assert numbers(everything)[0].startswith("Draft ")

    assert numbers(site.page("/admin/invoices?status=open")) == [number[bob], number[alice]]
    assert numbers(site.page("/admin/invoices?currency=eur")) == [number[bob]]
    assert numbers(site.page("/admin/invoices?q=LIDDELL")) == [number[alice]]  # name, any case
    assert numbers(site.page("/admin/invoices?q=builder.ex")) == [number[bob]]  # email substring
    assert numbers(site.page(f"/admin/invoices?number={number[carol]}")) == [number[carol]]
    assert numbers(site.page("/admin/invoices?customer=carol@singer.example")) == [number[carol]]
    assert numbers(site.page("/admin/invoices?status=void&q=&currency=")) == [number[carol]]  # empty fields: any
    assert texts(site.page("/admin/invoices?from=2026-03-03"), "invoice-row") == []
    assert len(elements(site.page("/admin/invoices?from=2026-03-02&to=2026-03-02"), "invoice-row")) == 4

    by_total = site.page("/admin/invoices?sort=total&dir=asc")
    assert texts(by_total, "invoice-total") == ["50.00 USD", "100.00 EUR", "200.00 USD", "300.00 USD"]
    statuses = texts(site.page("/admin/invoices?sort=status&dir=asc"), "invoice-status")
    assert statuses == sorted(statuses)
    assert texts(site.page("/admin/invoices?q=nobody"), "invoice-list-empty") != []


def test_a_sortable_header_is_a_link_that_turns_the_order_around(site: Site) -> None:
    html = site.page("/admin/invoices?sort=total&dir=asc&status=open")

    header = re.search(r'<th scope="col" aria-sort="ascending"[^>]*>\s*<a href="([^"]+)">Total', html)
    assert header is not None
    query = parse_qs(urlsplit(header.group(1).replace("&amp;", "&")).query)
    assert query == {"sort": ["total"], "dir": ["desc"], "status": ["open"]}


def test_bad_filters_are_a_page_naming_the_field(site: Site) -> None:
    bad = (("status=lost", "status"), ("from=yesterday", "from"), ("sort=colour", "sort"), ("q=a%00b", "q"))
    for query, field in (*bad, ("customer=a%00b@x.example", "customer")):
        response = site.admin.get(f"/admin/invoices?{query}")
        assert response.status_code == 422, query
        assert field in response.text
        assert response.headers["content-type"].startswith("text/html")


def test_the_list_pages_with_a_next_page_link(site: Site) -> None:
    app, clock = site.app, site.clock
    for index in range(53):
        draft(app, email=f"c{index}@bulk.example", name=f"Customer {index:02}", amount=100 + index)
        clock.advance(timedelta(seconds=1))

    first = site.page("/admin/invoices?q=bulk.example")
    [(_, link)] = elements(first, "next-page")
    second = site.page(link["href"].replace("&amp;", "&"))

    first_ids = [attrs["data-invoice-id"] for _, attrs in elements(first, "invoice-row")]
    second_ids = [attrs["data-invoice-id"] for _, attrs in elements(second, "invoice-row")]
    assert len(first_ids) == 50
    assert len(second_ids) == 3
    assert not set(first_ids) & set(second_ids)
    assert texts(second, "next-page") == []
    assert texts(second, "first-page") == ["First page"]
    assert texts(second, "invoice-customer") == ["Customer 02", "Customer 01", "Customer 00"]  # oldest last


# ------------------------------------------------------------------------------ CSV


def test_the_csv_has_the_filtered_invoices_with_both_units(site: Site) -> None:
    app = site.app
    issued(app, email="yen@tokyo.example", name="=HYPERLINK(1)", amount=1_500, currency="jpy")
    kwd = issued(app, email="dinar@kuwait.example", name="Gulf Co", amount=1_234, currency="kwd")
    issued(app, email="ap@acme.example", name="Acme", amount=12_345, currency="usd")
    app.record_offline_payment(kwd, Money(1_000, "kwd"), reference="wire-9")

    response = site.admin.get("/admin/invoices.csv?q=.example&sort=total&dir=asc&currency=")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))

    assert [row["currency"] for row in rows] == ["kwd", "jpy", "usd"]
    kwd_row, jpy_row, usd_row = rows
    assert (kwd_row["total_major_units"], kwd_row["total_minor_units"]) == ("1.234", "1234")
    assert (kwd_row["amount_paid_major_units"], kwd_row["amount_due_major_units"]) == ("1.000", "0.234")
    assert (jpy_row["total_major_units"], jpy_row["total_minor_units"]) == ("1500", "1500")
    assert (usd_row["total_major_units"], usd_row["amount_due_minor_units"]) == ("123.45", "12345")
    assert jpy_row["customer_name"] == "'=HYPERLINK(1)"  # never a formula in a spreadsheet
    assert kwd_row["invoice_id"] == str(kwd)
    assert kwd_row["number"] == app.invoice(kwd).number
    assert kwd_row["created_at"] == "2026-03-02T09:00:00Z"

    only_usd = list(csv.DictReader(io.StringIO(site.admin.get("/admin/invoices.csv?currency=usd").text)))
    assert [row["customer_name"] for row in only_usd] == ["Acme"]
    empty = site.admin.get("/admin/invoices.csv?status=paid&currency=jpy").text
    assert empty.splitlines()[0].startswith("invoice_id,number,status")
    assert len(empty.splitlines()) == 1


# ------------------------------------------------------------------------------ one invoice


def test_the_invoice_page_shows_it_as_it_stood_as_the_api_does(site: Site) -> None:
    app, clock = site.app, site.clock
    invoice_id = draft(app, amount=1_000)
    first_moment = clock.now()
    clock.advance(timedelta(hours=1))
    app.add_line(invoice_id, NewLine(description="Support", quantity=2, unit_amount=250))
    clock.advance(timedelta(hours=1))
    app.issue(invoice_id)
    clock.advance(timedelta(hours=1))
    app.record_offline_payment(invoice_id, Money(600, "usd"), reference="cheque-7")
    site.sign_in_again()

    now_page = site.page(f"/admin/invoices/{invoice_id}")
    assert text(now_page, "invoice-total") == "15.00 USD"
    assert text(now_page, "invoice-amount-due") == "9.00 USD"
    assert text(now_page, "invoice-status") == "open"
    assert texts(now_page, "as-of-banner") == []
    moments = elements(now_page, "timeline-moment")
    assert len(moments) == len(list(app.invoice_history(invoice_id)))

    earlier = (first_moment + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    then = site.page(f"/admin/invoices/{invoice_id}?as_of={earlier}")
    api = site.api.client.get(f"/api/invoices/{invoice_id}", params={"as_of": earlier}).json()
    assert text(then, "invoice-total") == "10.00 USD" == Money(api["total"], "usd").format()
    assert text(then, "invoice-status") == "draft" == api["status"]
    assert text(then, "invoice-version") == str(api["version"])
    assert "As it stood at 2026-03-02 09:30:00 UTC" in text(then, "as-of-banner")
    assert texts(then, "invoice-actions") == []  # the past cannot be acted on
    assert texts(then, "back-to-now") == ["Show it as it stands now"]

    # A moment of the timeline is a link to the invoice right after that event: here the payment's.
    link = moments[-1][1]["href"].replace("&amp;", "&")
    assert "?as_of=" in link
    after_payment = site.page(link)
    assert text(after_payment, "invoice-amount-paid") == "6.00 USD"

    # The datetime-local input's value has no zone: it is read as UTC.
    local = site.page(f"/admin/invoices/{invoice_id}?as_of=2026-03-02T10:30:00")
    assert text(local, "invoice-total") == "15.00 USD"
    assert text(local, "invoice-amount-paid") == "0.00 USD"
    by_version = site.page(f"/admin/invoices/{invoice_id}?version=1")
    assert text(by_version, "invoice-version") == "1"

    assert site.admin.get(f"/admin/invoices/{invoice_id}?as_of=2020-01-01T00:00:00Z").status_code == 404
    assert site.admin.get(f"/admin/invoices/{invoice_id}?as_of=soon").status_code == 422
    assert site.admin.get(f"/admin/invoices/{invoice_id}?version=999").status_code == 422
    assert site.admin.get("/admin/invoices/not-an-id").status_code == 404


def _selected_version(html: str) -> list[str]:
    """The value the "Right after the event of version" input is filled with."""
    field = re.search(r'<input id="as-of-version"[^>]*>', html, re.S)
    assert field is not None, "no version input on the page"
    return re.findall(r'value="(\d+)"', field.group(0))


def test_the_version_input_shows_the_version_the_page_shows(site: Site) -> None:
    app, clock = site.app, site.clock
    invoice_id = draft(app, amount=1_000)
    clock.advance(timedelta(hours=1))
    app.issue(invoice_id)
    clock.advance(timedelta(hours=1))
    app.record_offline_payment(invoice_id, Money(600, "usd"), reference="cheque-8")
    site.sign_in_again()

    now_page = site.page(f"/admin/invoices/{invoice_id}")
    assert _selected_version(now_page) == [text(now_page, "invoice-version")]  # the latest, not v1
    assert text(now_page, "invoice-version") != "1"
    at_two = site.page(f"/admin/invoices/{invoice_id}?version=2")
    assert _selected_version(at_two) == ["2"]
    after_issue = site.page(f"/admin/invoices/{invoice_id}?as_of=2026-03-02T10:30:00Z")
    shown = text(after_issue, "invoice-version")
    assert shown not in ("1", text(now_page, "invoice-version"))  # neither the first nor the latest
    assert _selected_version(after_issue) == [shown]


def test_the_invoice_page_shows_the_audit_chain_status_of_each_event(site: Site) -> None:
    invoice_id = issued(site.app)

    html = site.page(f"/admin/invoices/{invoice_id}")

    assert set(texts(html, "audit-status")) == {"ok"}
    assert text(html, "audit-summary") == "Every event shown here matches the audit chain."


def _timeline(html: str) -> list[tuple[int, str]]:
    """(version, audit status) of each timeline row, in the page's order."""
    versions = [int(v) for v in re.findall(r'<span class="muted">v(\d+)</span>', html)]
    statuses = texts(html, "audit-status")
    assert len(versions) == len(statuses) == len(elements(html, "timeline-event"))
    return list(zip(versions, statuses, strict=True))


def test_a_long_timeline_shows_its_newest_events_then_the_older_ones(site: Site) -> None:
    app, clock = site.app, site.clock
    invoice_id = draft(app, amount=1_000)
    for n in range(140):  # 1 creation + 1 line + 140 lines + issue = 143 events
        clock.advance(timedelta(minutes=1))
        app.add_line(invoice_id, NewLine(description=f"Item {n}", quantity=1, unit_amount=10))
    app.issue(invoice_id)
    site.sign_in_again()  # the clock moved past the idle timeout
    clock.advance(timedelta(minutes=1))
    app.record_offline_payment(invoice_id, Money(100, "usd"), reference="wire-9")
    latest = app.invoice(invoice_id).version
    assert latest > 100

    first = site.page(f"/admin/invoices/{invoice_id}")
    shown = _timeline(first)
    assert [v for v, _ in shown] == list(range(latest - 99, latest + 1))  # the newest 100, oldest first
    assert texts(first, "timeline-newer") == []
    older_link = elements(first, "timeline-older")
    assert [attrs["href"] for _, attrs in older_link] == [f"/admin/invoices/{invoice_id}?events_before={latest - 99}"]
    assert texts(first, "timeline-older") == ["Older events"]
    assert text(first, "invoice-version") == str(latest)

    older = site.page(older_link[0][1]["href"])
    rest = _timeline(older)
    assert [v for v, _ in rest] == list(range(1, latest - 99))  # the rest: no overlap, no gap
    assert {status for _, status in rest} == {"ok"}  # the older ones' audit is shown too
    assert texts(older, "timeline-older") == []
    newer = elements(older, "timeline-newer")
    assert [attrs["href"] for _, attrs in newer] == [f"/admin/invoices/{invoice_id}?events_before={latest + 1}"]
    assert text(older, "invoice-version") == str(latest)  # a page of the timeline, the invoice as it stands

    # As it stood at a version: the page of the timeline holds that version, and its links keep it.
    at_ten = site.page(f"/admin/invoices/{invoice_id}?version=10")
    assert 10 in [v for v, _ in _timeline(at_ten)]
    assert text(at_ten, "invoice-version") == "10"
    ((_, attrs),) = elements(at_ten, "timeline-newer")
    assert "version=10" in attrs["href"].replace("&amp;", "&")

    for bad in ("0", "soon", "-3", str(latest + 2)):
        response = site.admin.get(f"/admin/invoices/{invoice_id}?events_before={bad}")
        assert response.status_code == 422, bad


def test_each_action_changes_the_invoice_and_is_in_the_activity(site: Site, shared_stripe_server: StripeServer) -> None:
    app = site.app
    to_issue = draft(app)
    to_pay = issued(app, amount=2_000, due_date="2026-03-10")
    to_void = issued(app)
    to_write_off = issued(app)

    response = site.act(to_issue, "issue", due_date="2026-04-01")
    assert response.status_code == 303
    html = site.page(response.headers["location"])
    assert text(html, "flash") == "The invoice was issued."
    assert text(html, "invoice-status") == "open"
    assert text(html, "invoice-due-date") == "2026-04-01"

    assert site.act(to_pay, "payment", amount="12.34", reference="wire-42").status_code == 303
    assert app.invoice(to_pay).amount_paid == 1_234
    assert site.act(to_void, "void").status_code == 303
    assert app.invoice(to_void).status == "void"
    assert site.act(to_write_off, "uncollectible").status_code == 303
    assert app.invoice(to_write_off).status == "uncollectible"

    assert site.act(to_pay, "remind").status_code == 303
    dunning = app.dunning.get(to_pay)
    assert dunning is not None
    assert dunning.reminders == 1
    assert text(site.page(f"/admin/invoices/{to_pay}"), "dunning-reminders") == "1"

    opened = site.act(to_pay, "checkout")
    assert opened.status_code == 200
    url = text(opened.text, "checkout-url")
    [session_id] = app.invoice(to_pay).checkouts
    session = shared_stripe_server.sessions[session_id]
    assert url == session["url"]
    assert session["amount_total"] == 766  # what was still due
    assert session["metadata"] == {"invoice_id": str(to_pay)}

    activity = site.page("/admin/activity")
    performed = [attrs["data-action"] for _, attrs in elements(activity, "activity-row")]
    assert sorted(performed) == sorted(
        [
            "invoice.issue",
            "invoice.record-payment",
            "invoice.void",
            "invoice.mark-uncollectible",
            "invoice.remind",
            "invoice.open-checkout",
        ]
    )
    assert {who.split()[0] for who in texts(activity, "activity-user")} == {ADMIN_EMAIL}


def test_the_reminder_form_posted_twice_records_one_reminder(site: Site) -> None:
    invoice_id = issued(site.app, amount=2_000, due_date="2026-03-10")
    html = site.page(f"/admin/invoices/{invoice_id}")
    form = re.search(r'<form method="post" action="[^"]*/remind".*?</form>', html, re.S)
    assert form is not None
    shown = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)))
    assert shown.pop("csrf_token")
    assert shown == {"version": text(html, "invoice-version"), "dunning_version": "0"}

    # A double click without JavaScript: the same versions twice. A reminder leaves the invoice's
    # version as it was; the dunning's moved on, so the second post is stale.
    remind = f"/admin/invoices/{invoice_id}/remind"
    assert site.admin.post(remind, data={"csrf_token": csrf_token(html), **shown}).status_code == 303
    again = site.admin.post(remind, data={"csrf_token": csrf_token(html), **shown})
    assert again.status_code == 412, again.text
    dunning = site.app.dunning.get(invoice_id)
    assert dunning is not None
    assert dunning.reminders == 1
    now = site.page(f"/admin/invoices/{invoice_id}")
    assert f'name="dunning_version" value="{dunning.version}"' in now


def test_a_refused_action_changes_nothing_and_says_why(site: Site) -> None:
    app = site.app
    invoice_id = issued(app, amount=1_000)
    version = app.invoice(invoice_id).version

    too_precise = site.act(invoice_id, "payment", amount="1.234", reference="wire-1")
    assert too_precise.status_code == 422
    assert "amount" in too_precise.text
    no_reference = site.act(invoice_id, "payment", amount="1.00")
    assert no_reference.status_code == 422
    assert "reference" in no_reference.text
    nul = site.act(invoice_id, "payment", amount="1.00", reference="wire\x001")
    assert nul.status_code == 422
    assert "reference" in nul.text
    assert site.app.invoice(invoice_id).amount_paid == 0

    html = site.page(f"/admin/invoices/{invoice_id}")
    app.void(invoice_id)  # someone else acts while the page is open
    stale = site.admin.post(
        f"/admin/invoices/{invoice_id}/uncollectible", data={"csrf_token": csrf_token(html), "version": str(version)}
    )
    assert stale.status_code in (409, 412)
    assert app.invoice(invoice_id).status == "void"
    assert app.invoice(invoice_id).version == version + 1


def test_the_buttons_follow_the_invoice_state(site: Site) -> None:
    app = site.app
    drafted = draft(app)
    opened = issued(app)
    paid = issued(app, amount=500)
    app.record_offline_payment(paid, Money(500, "usd"), reference="cash")

    def buttons(invoice_id: UUID) -> set[str]:
        html = site.page(f"/admin/invoices/{invoice_id}")
        return {attrs["data-testid"].removeprefix("action-") for _, attrs in _buttons(html)}

    assert buttons(drafted) == {"issue"}
    assert buttons(opened) == {"payment", "checkout", "remind", "uncollectible", "void"}
    assert buttons(paid) == set()


def _buttons(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = PageIds()
    parser.feed(html)
    return [("".join(text), attrs) for found, attrs, text in parser.found if found.startswith("action-")]


def test_an_auditor_sees_no_action_button(site: Site) -> None:
    invoice_id = issued(site.app)
    with sign_in(site.api.base_url, AUDITOR_EMAIL) as auditor:
        html = auditor.get(f"/admin/invoices/{invoice_id}").text

        assert texts(html, "invoice-total") == ["100.00 USD"]
        assert texts(html, "invoice-actions") == []
        assert _buttons(html) == []
        refused = auditor.post(f"/admin/invoices/{invoice_id}/void", data={"csrf_token": csrf_token(html)})
        assert refused.status_code == 403
    assert site.app.invoice(invoice_id).status == "open"


def test_no_checkout_button_without_a_secret_key_to_sign_its_return_pages(
    make_app: AppFactory, database_url: str, clock: ManualClock, shared_stripe_server: StripeServer
) -> None:
    """Checkout returns the customer to the portal, under a signed link: without LEDGER_SECRET_KEY
    there is no page to return to, so the dashboard does not offer to open one."""
    engine = read_model_engine(database_url)
    app = make_app()
    app.admin.create_user(ADMIN_EMAIL, role=ADMIN, password=PASSWORD, created_by="test")
    opened = issued(app)
    try:
        with (
            served_api(app, engine, clock, shared_stripe_server.base_url, secret_key=None) as api,
            sign_in(api.base_url, ADMIN_EMAIL) as admin,
        ):
            html = admin.get(f"/admin/invoices/{opened}").text
            assert {attrs["data-testid"] for _, attrs in _buttons(html)} == {
                "action-payment",
                "action-remind",
                "action-uncollectible",
                "action-void",
            }
    finally:
        engine.dispose()
