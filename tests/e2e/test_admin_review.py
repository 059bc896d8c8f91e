"""A second look at the dashboard: odd query strings and forms on every page, served for real.

Every page must answer a bad value with a 4xx page, never a 500 (and never a stack trace).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from uuid import uuid4

import httpx
import pytest

from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from commands.messages import NewLine
from ledger.money import Money
from projections.admin.invoices import SORTS
from tests.conftest import AppFactory
from tests.e2e import test_admin_pages_invoices as pages
from tests.e2e.test_admin_pages_invoices import Site, issued
from tests.e2e.test_admin_security import serving
from web.limiter import LoginLimiter

site = pages.site  # the served app with an admin signed in

ODD_VALUES = (
    "9" * 40,
    "-1",
    "0",
    "2026-13-45",
    "99999-01-01",
    "0000-00-00",
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
    "\u00e9\u6f22\U0001f600",
    "\x00",
    "a\x00b",
    "%00",
    "' OR 1=1 --",
    "x" * 5000,
    "[]",
    "null",
    "eyJ4IjogMX0",  # base64 of a JSON object: a cursor-looking value
    "AAAA",
    "!!",
)

PAGES = {
    "/admin/": ("x",),
    "/admin/invoices": ("status", "customer", "currency", "from", "to", "number", "q", "sort", "dir", "cursor"),
    "/admin/invoices.csv": ("status", "currency", "from", "to", "sort", "dir"),
    "/admin/failed-payments": ("currency", "cursor", "done"),
    "/admin/reconciliation": ("x",),
    "/admin/reconciliation/items": ("class", "status", "cursor", "from", "to", "limit"),
    "/admin/reconciliation/items.csv": ("class", "status"),
    "/admin/webhooks": ("status", "type", "cursor"),
    "/admin/payouts": ("status", "cursor"),
    "/admin/activity": ("user", "action", "cursor"),
}


def test_no_odd_query_value_makes_a_page_fail(site: Site) -> None:
    invoice_id = issued(site.app)
    pages = dict(PAGES)
    pages[f"/admin/invoices/{invoice_id}"] = ("as_of", "version", "events_before")
    failures: list[tuple[str, str, str, object]] = []
    for path, names in pages.items():
        for name in names:
            for value in ODD_VALUES:
                try:
                    response = site.admin.get(path, params={name: value})
                except httpx.TransportError as error:  # a streamed answer that broke half-way
                    failures.append((path, name, value[:20], type(error).__name__))
                    continue
                if not (response.status_code < 300 or 400 <= response.status_code < 500):
                    failures.append((path, name, value[:20], response.status_code))
    assert failures == []


@pytest.mark.parametrize(
    "path",
    [
        "/admin/invoices/not-a-uuid",
        f"/admin/invoices/{uuid4()}",
        "/admin/payouts/x",
        f"/admin/payouts/{uuid4()}",
        "/admin/webhooks/evt_nothing",
        "/admin/reconciliation/items/x",
        f"/admin/reconciliation/items/{uuid4()}",
        "/admin/reconciliation/runs/x",
        f"/admin/reconciliation/runs/{uuid4()}",
        "/admin/webhooks/" + "%00",
        "/admin/invoices/" + "%00",
    ],
)
def test_an_unknown_id_is_not_found(site: Site, path: str) -> None:
    assert site.admin.get(path).status_code == 404


def test_no_odd_form_value_makes_an_action_fail(site: Site) -> None:
    app = site.app
    drafted = pages.draft(app)
    open_one = issued(app)
    token = pages.csrf_token(site.page("/admin/reconciliation"))
    stale = {"version": "999"}  # a form that passes its decoding still changes nothing
    forms: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
        "/admin/reconciliation/runs": ({"source": "ledger"}, ("from", "to", "source")),
        f"/admin/invoices/{drafted}/issue": (stale, ("due_date", "version")),
        f"/admin/invoices/{open_one}/payment": ({**stale, "amount": "1.00", "reference": "r"}, ("amount", "reference")),
        f"/admin/invoices/{open_one}/void": ({}, ("version",)),
        f"/admin/invoices/{open_one}/remind": ({}, ("version", "dunning_version")),
        f"/admin/failed-payments/{open_one}/remind": ({}, ("version", "dunning_version")),
        f"/admin/reconciliation/items/{uuid4()}/resolve": ({"action": "accept", "note": "n"}, ("action", "note")),
    }
    failures: list[tuple[str, str, str, object]] = []
    for path, (base, names) in forms.items():
        for name in names:
            for value in ODD_VALUES:
                response = site.admin.post(path, data={"csrf_token": token, **base, name: value})
                if not (response.status_code == 303 or 400 <= response.status_code < 500):
                    failures.append((path, name, value[:20], response.status_code))
    assert failures == []


NASTY_KEYS = (10**30, -(10**30), "\x00", "a\x00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", None, "x")


def _cursors(listing: str | None) -> list[str]:
    """Cursors shaped as a listing's own (base64'd JSON), carrying keys no row has: out of the
    range of an integer column, a NUL in text, a moment at the end of time; and JSON nested
    deeper than the parser's recursion limit, short enough for any cursor field."""
    found = [base64.urlsafe_b64encode(b"[" * 1400).decode()]
    for first in NASTY_KEYS:
        for second in NASTY_KEYS:
            shape = [first, second] if listing is None else [listing, [first, second]]
            found.append(base64.urlsafe_b64encode(json.dumps(shape).encode()).decode())
    return found


def test_no_crafted_cursor_makes_a_page_fail(site: Site) -> None:
    listings: dict[str, list[str | None]] = {
        "/admin/invoices?sort={sort}&dir={dir}": ["invoices:{sort}:{dir}"],
        "/admin/failed-payments": ["failed-payments"],
        "/admin/payouts": ["payouts"],
        "/admin/reconciliation": [None],
        "/admin/reconciliation/items": [None],
        "/admin/webhooks": [None],
        "/admin/activity": [None, "activity"],
    }
    failures: list[tuple[str, str, object]] = []
    for template, names in listings.items():
        variants = (
            [{"sort": sort, "dir": way} for sort in SORTS for way in ("asc", "desc")] if "{sort}" in template else [{}]
        )
        for variant in variants:
            path = template.format(**variant)
            for name in names:
                for cursor in _cursors(name.format(**variant) if name else None):
                    separator = "&" if "?" in path else "?"
                    response = site.admin.get(f"{path}{separator}cursor={cursor}")
                    if not (response.status_code < 300 or 400 <= response.status_code < 500):
                        failures.append((path, base64.urlsafe_b64decode(cursor).decode()[:80], response.status_code))
    assert failures == []


def test_an_action_in_an_odd_body_or_method_is_a_4xx_and_changes_nothing(site: Site) -> None:
    invoice_id = issued(site.app)
    token = pages.csrf_token(site.page(f"/admin/invoices/{invoice_id}"))
    paths = [f"/admin/invoices/{invoice_id}/void", "/admin/reconciliation/runs", "/admin/webhooks/evt_x/reprocess"]
    bodies = [
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="version"\r\n\r\n0'),
        ("multipart/form-data", b"junk"),
        ("application/x-www-form-urlencoded", b"version=%ff%fe&x=%"),
        ("application/x-www-form-urlencoded", "version=\u00e9".encode()),
        ("application/json", b'{"version": 1}'),
        ("text/plain", b"\x00\xff"),
    ]
    failures: list[tuple[str, str, object]] = []
    for path in paths:
        for content_type, body in bodies:
            headers = {"content-type": content_type, "x-csrf-token": token}
            response = site.admin.post(path, content=body, headers=headers)
            if not (400 <= response.status_code < 500 or response.status_code == 303):
                failures.append((path, content_type, response.status_code))
        for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
            response = site.admin.request(method, path, data={"csrf_token": token})
            if not 400 <= response.status_code < 500:
                failures.append((path, method, response.status_code))
    assert failures == []


def test_stored_text_is_shown_as_text_on_every_page(site: Site) -> None:
    """Markup in what a customer or a caller of the API chose (name, email, memo, a line's
    description, metadata, a payment's reference, a note) is escaped wherever it shows."""
    evil = '"><img src=x onerror=alert(1)><svg onload=alert(2)>'
    app = site.app
    invoice_id = app.create_draft(
        customer={"email": "evil@example.com", "name": evil},
        currency="usd",
        lines=[NewLine(description=evil, quantity=1, unit_amount=1_000)],
        memo=evil,
        metadata={"note": evil},
    ).result
    app.issue(invoice_id)
    app.record_offline_payment(invoice_id, Money(100, "usd"), reference=evil)
    pages_shown = [
        "/admin/",
        "/admin/invoices",
        f"/admin/invoices?q={evil}",
        f"/admin/invoices/{invoice_id}",
        f"/admin/invoices/{invoice_id}?version=1",
        "/admin/activity",
        f"/admin/activity?user={evil}",
        f"/admin/failed-payments?done={evil}",
        f"/admin/reconciliation?done={evil}",
        f"/admin/webhooks?type={evil}",
    ]
    for path in pages_shown:
        response = site.admin.get(path)
        assert response.status_code < 500, path
        assert "<img src=x" not in response.text, path
        assert "<svg onload" not in response.text, path
    shown = site.page(f"/admin/invoices/{invoice_id}")
    assert shown.count("&lt;img src=x onerror=alert(1)&gt;") >= 4  # name, memo, line, metadata (shown)
    exported = site.admin.get("/admin/invoices.csv").text
    assert evil in exported  # a CSV is data, not a page: kept as given (it starts with no formula sign)


def test_a_link_cannot_make_a_page_say_what_it_likes(site: Site) -> None:
    """A flash is what this dashboard's own redirect said: a link someone sends an admin
    (`?done=Your session expired: sign in at https://evil.example`) shows nothing."""
    lure = "Your session expired: sign in again at https://evil.example/admin"
    invoice_id = issued(site.app)
    pages.fail_attempt(site.app, invoice_id)
    for path in ("/admin/failed-payments", "/admin/reconciliation", "/admin/webhooks"):
        assert "evil.example" not in site.page(f"{path}?done={lure}"), path
    # The dashboard's own message still shows after its action.
    token = pages.csrf_token(site.page("/admin/failed-payments"))
    after = site.admin.post(f"/admin/failed-payments/{invoice_id}/remind", data={"csrf_token": token})
    assert after.status_code == 303
    assert pages.text(site.page(after.headers["location"]), "flash") == "Reminder requested."


def test_the_login_form_is_held_to_the_same_size_limit_as_every_form(site: Site) -> None:
    """Anyone may post to the login page: a body of many megabytes is refused before it is
    read whole into memory, as on every other form of the dashboard."""
    with httpx.Client(base_url=str(site.admin.base_url), timeout=30) as anonymous:
        # Fields under Starlette's own limit of one field (1 MiB), which allows a thousand of them.
        huge = b"email=a%40example.com&password=x" + b"".join(b"&f%d=" % i + b"x" * 900_000 for i in range(3))
        response = anonymous.post(
            "/admin/login", content=huge, headers={"content-type": "application/x-www-form-urlencoded"}
        )
    assert response.status_code == 413


def test_no_odd_login_value_makes_the_login_fail(make_app: AppFactory, database_url: str, clock: ManualClock) -> None:
    app = make_app()
    engine = read_model_engine(database_url)
    limiter = LoginLimiter(per_account=10_000, per_address=10_000)
    failures: list[tuple[str, str, object]] = []
    try:
        with (
            serving(app, engine, clock, limiter=limiter, probe=False) as served,
            httpx.Client(base_url=served.base_url, timeout=30) as anonymous,
        ):
            for name in ("email", "password", "next"):
                for value in ODD_VALUES:
                    form = {"email": "a@example.com", "password": "p" * 12, name: value}
                    response = anonymous.post("/admin/login", data=form)
                    if response.status_code != 401:
                        failures.append((name, value[:20], response.status_code))
            for value in ODD_VALUES:
                response = anonymous.get("/admin/login", params={"next": value})
                if response.status_code != 200:
                    failures.append(("GET next", value[:20], response.status_code))
    finally:
        engine.dispose()
    assert failures == []


def test_each_currency_is_written_with_its_own_decimals_on_the_pages_and_in_the_csv(site: Site) -> None:
    app = site.app
    yen = issued(app, currency="jpy", amount=1_234, due_date="2026-03-01")
    dinar = issued(app, currency="kwd", amount=1_234, due_date="2026-03-01")

    overview = site.page("/admin/")
    assert pages.text(overview, "amount-due-jpy") == "1,234 JPY"
    assert pages.text(overview, "amount-due-kwd") == "1.234 KWD"
    listed = site.page("/admin/invoices")
    assert "1,234 JPY" in listed
    assert "1.234 KWD" in listed
    assert "1,234 JPY" in site.page(f"/admin/invoices/{yen}")
    assert "1.234 KWD" in site.page(f"/admin/invoices/{dinar}")
    rows = {row["invoice_id"]: row for row in csv.DictReader(io.StringIO(site.admin.get("/admin/invoices.csv").text))}
    assert (rows[str(yen)]["total_major_units"], rows[str(yen)]["total_minor_units"]) == ("1234", "1234")
    assert (rows[str(dinar)]["total_major_units"], rows[str(dinar)]["total_minor_units"]) == ("1.234", "1234")
