"""The admin dashboard as a finance admin and an auditor use it, in headless Chromium, over the
data set of tests/browser/seed.py (today is 2026-03-02). Each test saves a screenshot of the
page it checks (tests/browser/conftest.py `shot`)."""

from __future__ import annotations

import csv
import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from tests.browser.conftest import Dashboard, shot, sign_in
from tests.browser.seed import ADMIN_EMAIL, AUDITOR_EMAIL, PASSWORD, WEBHOOK_EVENT, WEBHOOK_INTENT

# The overview's figures for the seeded data set, worked out by hand (see tests/browser/seed.py).
OVERVIEW = {
    # open invoices' amount due: 900 + 1,200 + 750 + (2,000 - 800) + 300 + 400 USD; 1,500 + 640 EUR
    "amount-due-usd": "4,750.00 USD",
    "amount-due-eur": "2,140.00 EUR",
    "overdue-usd": "1,200.00 USD",  # INV-000002, due 2026-02-09
    "overdue-eur": "640.00 EUR",  # INV-000001, due 2026-01-19
    # March only: 500.00 USD and 99.00 EUR paid on the 1st; the 800.00 USD of February does not count
    "collected-this-month-usd": "500.00 USD",
    "collected-this-month-eur": "99.00 EUR",
    "failed-amount-usd": "750.00 USD",
    "failed-payments-usd": "1",
    "failed-amount-eur": "0.00 EUR",
    "failed-payments-eur": "0",
    "open-reconciliation-items-usd": "1",
    "open-reconciliation-items": "1",
    # aging: INV-000002 is 21 days late, INV-000001 42 days; the other open invoices are not due yet
    "aging-current-usd": "3,550.00 USD",
    "aging-1-30-usd": "1,200.00 USD",
    "aging-31-60-usd": "0.00 USD",
    "aging-current-eur": "1,500.00 EUR",
    "aging-31-60-eur": "640.00 EUR",
}
OPEN_USD = {"INV-000002", "INV-000003", "INV-000006", "INV-000008", "INV-000009", "INV-000010"}


def _go(page: Page, target: Locator) -> None:
    """Click what leads to another page and wait until that page has loaded: the click returns
    once the navigation has started, and what the test reads next must be the new page."""
    target.click()
    page.wait_for_load_state()


def _search(page: Page, field: str, value: str) -> None:
    """Type into a filter field and press Enter, as a person would, then wait for the results."""
    page.get_by_label(field).fill(value)
    page.get_by_label(field).press("Enter")
    page.wait_for_load_state()


def _minor_units(shown: str) -> int:
    """ "1,200.00 USD" -> 120000 (the seeded currencies have two decimals)."""
    amount, _ = shown.split(" ")
    return int(amount.replace(",", "").replace(".", ""))


def _numbers(page: Page) -> list[str]:
    return page.get_by_test_id("invoice-row").get_by_test_id("invoice-number").all_inner_texts()


def _nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def _post_forms(page: Page) -> list[str]:
    """Where each POST form of the page sends to: its actions, and the sign-out button."""
    # Attributes, not properties: a field named "action" (the resolve form's) shadows `form.action`.
    return page.eval_on_selector_all(
        "form",
        "forms => forms.filter(f => (f.getAttribute('method') || '').toLowerCase() === 'post')"
        ".map(f => new URL(f.getAttribute('action'), document.baseURI).pathname)",
    )


# ------------------------------------------------------------------------------ signing in


def test_an_admin_signs_in_from_any_page_and_comes_back_to_it(
    page: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    page.goto(dashboard.url("/admin/invoices?currency=eur"))
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    page.get_by_label("Email").fill(ADMIN_EMAIL.upper())  # an email is matched whatever its case
    page.get_by_label("Password").fill("not the password at all")
    _go(page, page.get_by_role("button", name="Sign in"))
    expect(page.get_by_test_id("login-error")).to_be_visible()

    page.get_by_label("Password").fill(PASSWORD)
    _go(page, page.get_by_role("button", name="Sign in"))

    expect(page).to_have_url(dashboard.url("/admin/invoices?currency=eur"))
    expect(page.get_by_test_id("user-email")).to_have_text(ADMIN_EMAIL)
    expect(page.get_by_test_id("user-role")).to_have_text("admin")
    expect(_nav(page, "Invoices")).to_have_attribute("aria-current", "page")
    assert set(_numbers(page)) == {"INV-000001", "INV-000004", "INV-000007", "Draft " + _draft_prefix(dashboard)}
    shot(page, request)


def _draft_prefix(dashboard: Dashboard) -> str:
    return str(dashboard.seeded.invoices["eur-draft"])[:8]


# ------------------------------------------------------------------------------ overview


def test_the_overview_shows_the_figures_of_the_seeded_data(
    admin: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    expect(admin.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    for testid, figure in OVERVIEW.items():
        expect(admin.get_by_test_id(testid), testid).to_have_text(figure)
    expect(admin.get_by_role("img").first).to_be_visible()  # the SVG charts are drawn
    shot(admin, request)

    _go(admin, admin.get_by_test_id("amount-due-usd"))  # the figure leads to the invoices it adds up
    expect(admin).to_have_url(re.compile(r"/admin/invoices\?status=open&currency=usd"))
    assert set(_numbers(admin)) == OPEN_USD
    due = admin.get_by_test_id("invoice-row").get_by_test_id("invoice-amount-due").all_inner_texts()
    assert sum(_minor_units(text) for text in due) == 475_000


# ------------------------------------------------------------------------------ invoices


def test_invoices_are_filtered_and_searched(admin: Page, dashboard: Dashboard, request: pytest.FixtureRequest) -> None:
    _go(admin, _nav(admin, "Invoices"))
    expect(admin.get_by_test_id("invoice-row")).to_have_count(12)

    admin.get_by_label("Status").select_option("open")
    admin.get_by_label("Currency").fill("eur")
    _go(admin, admin.get_by_role("button", name="Apply filters"))
    expect(admin).to_have_url(re.compile(r"status=open.*currency=eur|currency=eur.*status=open"))
    expect(admin.get_by_test_id("invoice-row")).to_have_count(2)
    assert _numbers(admin) == ["INV-000007", "INV-000001"]  # newest first
    expect(admin.get_by_test_id("invoice-status")).to_have_text(["open", "open"])

    _go(admin, admin.get_by_role("link", name="Clear"))
    header = admin.get_by_role("columnheader", name="Amount due")
    orders = []
    for _ in range(2):  # a header sorts by its column; again, the other way round
        _go(admin, header.get_by_role("link"))
        orders.append(header.get_attribute("aria-sort"))
        due = [_minor_units(text) for text in admin.get_by_test_id("invoice-amount-due").all_inner_texts()]
        assert len(due) == 12
        assert due == sorted(due, reverse=orders[-1] == "descending")
    assert sorted(orders) == ["ascending", "descending"]

    _search(admin, "Search", "globex")  # part of a customer's name, any case
    expect(admin.get_by_test_id("invoice-row")).to_have_count(3)
    expect(admin.get_by_test_id("invoice-customer")).to_have_text(["Globex GmbH"] * 3)

    _search(admin, "Search", "INV-00000")  # a number's prefix: INV-000001 to INV-000009, not 10
    expect(admin.get_by_test_id("invoice-row")).to_have_count(9)
    assert set(_numbers(admin)) == {f"INV-00000{n}" for n in range(1, 10)}
    expect(admin.get_by_label("Search")).to_have_value("INV-00000")  # the form keeps what was asked
    shot(admin, request)


def test_an_invoice_is_shown_as_it_stood_before_its_payment(
    admin: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    _go(admin, _nav(admin, "Invoices"))
    _search(admin, "Search", "INV-000003")
    _go(admin, admin.get_by_test_id("invoice-row").get_by_role("link", name="INV-000003"))

    expect(admin.get_by_role("heading", level=1)).to_contain_text("INV-000003")
    expect(admin.get_by_test_id("invoice-status")).to_have_text("open")
    expect(admin.get_by_test_id("invoice-total")).to_have_text("2,000.00 USD")
    expect(admin.get_by_test_id("invoice-amount-paid")).to_have_text("800.00 USD")
    expect(admin.get_by_test_id("invoice-amount-due")).to_have_text("1,200.00 USD")
    expect(admin.get_by_test_id("payment-row")).to_have_count(1)
    expect(admin.get_by_test_id("as-of-banner")).to_have_count(0)
    timeline = admin.get_by_test_id("timeline-event")
    expect(timeline.last).to_contain_text("invoice.payment-applied")

    # Step back to right after it was issued, by the timeline's link.
    issued = timeline.filter(has_text="invoice.issued")
    _go(admin, issued.get_by_test_id("timeline-moment"))
    expect(admin.get_by_test_id("as-of-banner")).to_contain_text("As it stood at 2026-02-01 10:00:00 UTC")
    expect(admin.get_by_test_id("invoice-total")).to_have_text("2,000.00 USD")
    expect(admin.get_by_test_id("invoice-amount-paid")).to_have_text("0.00 USD")
    expect(admin.get_by_test_id("invoice-amount-due")).to_have_text("2,000.00 USD")
    expect(admin.get_by_test_id("invoice-actions")).to_have_count(0)  # no acting on the past
    shot(admin, request)

    # A moment of our choosing: the minute the payment came in.
    admin.get_by_label("At a moment (UTC)").fill("2026-02-24T15:00:00")
    _go(admin, admin.get_by_role("button", name="Show").first)
    expect(admin.get_by_test_id("as-of-banner")).to_contain_text("2026-02-24 15:00:00 UTC")
    expect(admin.get_by_test_id("invoice-amount-due")).to_have_text("1,200.00 USD")

    # Or right after the event of a version: the input holds the version shown.
    version = admin.get_by_label("Right after the event of version")
    expect(version).to_have_value(admin.get_by_test_id("invoice-version").inner_text())
    version.fill("1")
    _go(admin, admin.get_by_role("button", name="Show").nth(1))
    expect(admin.get_by_test_id("as-of-banner")).to_contain_text("As it stood at version 1")
    expect(admin.get_by_test_id("invoice-version")).to_have_text("1")

    _go(admin, admin.get_by_test_id("back-to-now"))
    expect(admin.get_by_test_id("as-of-banner")).to_have_count(0)
    expect(admin.get_by_test_id("invoice-actions")).to_be_visible()


def test_the_filtered_invoice_list_exports_as_csv(
    admin: Page, dashboard: Dashboard, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    admin.goto(dashboard.url("/admin/invoices?status=open&currency=usd"))
    expect(admin.get_by_test_id("invoice-row")).to_have_count(len(OPEN_USD))
    shot(admin, request)

    with admin.expect_download() as started:
        admin.get_by_test_id("invoices-csv").click()
    download = started.value
    assert re.fullmatch(r"invoices-\d{8}-\d{6}\.csv", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    with saved.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert {row["number"] for row in rows} == OPEN_USD
    assert {(row["status"], row["currency"]) for row in rows} == {("open", "usd")}
    assert sum(int(row["amount_due_minor_units"]) for row in rows) == 475_000
    [partial] = [row for row in rows if row["number"] == "INV-000003"]
    assert (partial["customer_name"], partial["total_major_units"], partial["amount_paid_major_units"]) == (
        "Acme Corporation",
        "2000.00",
        "800.00",
    )
    assert partial["invoice_id"] == str(dashboard.seeded.invoices["usd-partial"])


# ------------------------------------------------------------------------------ operations


def test_a_resolved_reconciliation_item_stays_resolved_in_a_new_run(
    admin: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    _go(admin, _nav(admin, "Reconciliation"))
    expect(admin.get_by_test_id("count-missing_in_ledger-open")).to_have_text("1")
    _go(admin, admin.get_by_test_id("count-missing_in_ledger-open").get_by_role("link"))
    expect(admin.get_by_test_id("item-row")).to_have_count(1)
    row = admin.get_by_test_id("item-row")
    expect(row.get_by_test_id("item-status")).to_have_text("open")
    _go(admin, row.get_by_role("link", name="Collected by Stripe, missing in the ledger"))

    expect(admin.get_by_test_id("item-status")).to_have_text("open")
    admin.get_by_label("Action").select_option("explain")
    admin.get_by_label("Note").fill("Paid by the customer's parent company; booked by hand.")
    _go(admin, admin.get_by_role("button", name="Resolve item"))
    expect(admin.get_by_role("status")).to_have_text("Item explained.")
    expect(admin.get_by_test_id("item-status")).to_have_text("explained")
    expect(admin.get_by_test_id("resolution")).to_contain_text(ADMIN_EMAIL)
    expect(admin.get_by_role("button", name="Resolve item")).to_have_count(0)

    dashboard.clock.advance(timedelta(minutes=5))  # the activity lists newest first, by the clock
    _go(admin, _nav(admin, "Reconciliation"))
    admin.get_by_label("From (day included)").fill("2026-02-01")
    admin.get_by_label("To (day included)").fill("2026-03-02")
    admin.get_by_label("Compare with").select_option("stripe")
    _go(admin, admin.get_by_role("button", name="Run reconciliation"))

    expect(admin.get_by_test_id("run-status")).to_have_text("completed")
    expect(admin.get_by_test_id("item-row")).to_have_count(1)
    found = admin.get_by_test_id("item-row")
    expect(found.get_by_test_id("item-status")).to_have_text("explained")
    assert found.get_attribute("data-item-id") == str(dashboard.seeded.reconciliation_item)
    shot(admin, request)

    _go(admin, _nav(admin, "Overview"))
    expect(admin.get_by_test_id("open-reconciliation-items")).to_have_text("0")

    _go(admin, _nav(admin, "Activity"))  # both are recorded as the admin's doing, newest first
    rows = admin.get_by_test_id("activity-row")
    expect(rows).to_have_count(2)
    assert [row.get_attribute("data-action") for row in rows.all()] == ["reconciliation.run", "reconciliation.resolve"]
    expect(admin.get_by_test_id("activity-user")).to_have_text([re.compile(re.escape(ADMIN_EMAIL))] * 2)


def test_a_refused_webhook_is_reprocessed_and_pays_its_invoice(
    admin: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    _go(admin, _nav(admin, "Webhooks"))
    admin.get_by_label("Status").select_option("rejected")
    _go(admin, admin.get_by_role("button", name="Filter"))
    expect(admin.get_by_test_id("webhook-row")).to_have_count(1)
    _go(admin, admin.get_by_test_id("webhook-row").get_by_role("link", name=WEBHOOK_EVENT))

    expect(admin.get_by_test_id("webhook-status")).to_have_text("rejected")
    expect(admin.get_by_test_id("webhook-payload")).to_contain_text(f'"id": "{WEBHOOK_INTENT}"')
    _go(admin, admin.get_by_role("button", name="Reprocess event"))

    expect(admin.get_by_role("status")).to_have_text("Reprocessed: rejected → applied.")
    expect(admin.get_by_test_id("webhook-status")).to_have_text("applied")
    expect(admin.get_by_role("button", name="Reprocess event")).to_have_count(0)
    shot(admin, request)

    admin.goto(dashboard.url(f"/admin/invoices/{dashboard.seeded.invoices['usd-webhook']}"))
    expect(admin.get_by_test_id("invoice-status")).to_have_text("paid")
    expect(admin.get_by_test_id("invoice-amount-due")).to_have_text("0.00 USD")


def test_an_offline_payment_is_recorded_without_javascript(
    no_script: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    sign_in(no_script, dashboard)
    no_script.goto(dashboard.url(f"/admin/invoices/{dashboard.seeded.invoices['usd-open']}"))
    expect(no_script.get_by_test_id("invoice-amount-due")).to_have_text("900.00 USD")

    no_script.get_by_label(re.compile(r"^Amount in USD")).fill("900.00")
    no_script.get_by_label(re.compile(r"^Reference")).fill("wire 2026-03-02")
    _go(no_script, no_script.get_by_role("button", name="Record the payment"))

    expect(no_script.get_by_test_id("flash")).to_be_visible()
    expect(no_script.get_by_test_id("invoice-status")).to_have_text("paid")
    expect(no_script.get_by_test_id("invoice-amount-due")).to_have_text("0.00 USD")
    expect(no_script.get_by_test_id("payment-row")).to_contain_text("wire 2026-03-02")
    shot(no_script, request)


def test_voiding_asks_first_and_a_no_changes_nothing(
    admin: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    admin.goto(dashboard.url(f"/admin/invoices/{dashboard.seeded.invoices['eur-open']}"))
    asked: list[str] = []

    def answer(dialog: Dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    admin.once("dialog", lambda dialog: answer(dialog, accept=False))
    admin.get_by_test_id("action-void").click()
    expect(admin.get_by_test_id("action-void")).to_be_enabled()  # not sent: its button stays usable
    admin.reload()  # and the server agrees that nothing happened
    expect(admin.get_by_test_id("invoice-status")).to_have_text("open")

    admin.once("dialog", lambda dialog: answer(dialog, accept=True))
    admin.get_by_test_id("action-void").click()
    expect(admin.get_by_test_id("invoice-status")).to_have_text("void")
    assert asked == ["Void this invoice? It cannot be undone."] * 2
    expect(admin.get_by_test_id("invoice-amount-due")).to_have_text("0.00 EUR")
    shot(admin, request)


# ------------------------------------------------------------------------------ signing out, roles


def test_after_signing_out_the_dashboard_is_refused(
    admin: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    _go(admin, _nav(admin, "Invoices"))
    [session] = [c for c in admin.context.cookies() if c["name"] == "ledger_admin"]
    assert session.get("httpOnly") is True

    _go(admin, admin.get_by_role("button", name="Sign out"))
    expect(admin).to_have_url(re.compile(r"/admin/login"))

    admin.go_back()  # the page is not kept (no-store): going back asks again, and is refused
    expect(admin).to_have_url(re.compile(r"/admin/login"))
    expect(admin.get_by_test_id("invoice-row")).to_have_count(0)
    admin.goto(dashboard.url("/admin/invoices"))
    expect(admin).to_have_url(re.compile(r"/admin/login\?next="))

    admin.context.add_cookies([session])  # the old session id, kept by someone: revoked
    admin.goto(dashboard.url("/admin/invoices"))
    expect(admin).to_have_url(re.compile(r"/admin/login\?next="))
    expect(admin.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(admin, request)


# The pages where an admin has something to do, and what they may do there.
def _acting_pages(dashboard: Dashboard) -> list[str]:
    invoices = dashboard.seeded.invoices
    return [
        f"/admin/invoices/{invoices['usd-failed']}",
        f"/admin/invoices/{invoices['usd-draft']}",
        "/admin/failed-payments",
        "/admin/reconciliation",
        f"/admin/reconciliation/items/{dashboard.seeded.reconciliation_item}",
        f"/admin/webhooks/{WEBHOOK_EVENT}",
    ]


def test_an_auditor_sees_every_page_and_no_action_on_it(
    page: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    sign_in(page, dashboard)
    for path in _acting_pages(dashboard):
        page.goto(dashboard.url(path))
        assert len(_post_forms(page)) > 1, f"{path}: an admin should have an action here"
    _go(page, page.get_by_role("button", name="Sign out"))

    sign_in(page, dashboard, AUDITOR_EMAIL)
    expect(page.get_by_test_id("user-role")).to_have_text("auditor")
    for path in _acting_pages(dashboard):
        page.goto(dashboard.url(path))
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert _post_forms(page) == ["/admin/logout"], f"{path}: an auditor is offered an action"
    page.goto(dashboard.url(f"/admin/invoices/{dashboard.seeded.invoices['usd-failed']}"))
    expect(page.get_by_test_id("invoice-amount-due")).to_have_text("750.00 USD")
    shot(page, request)


# ------------------------------------------------------------------------------ accessibility, phone


def _tab_until(page: Page, selector: str, *, limit: int = 40) -> None:
    """Press Tab until the focused element matches `selector`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{limit} presses of Tab never reached {selector}")


def _focus_ring(page: Page) -> str:
    """How the focused element shows its focus: its outline or box shadow ('' when nothing)."""
    return str(
        page.evaluate(
            """() => {
                const style = getComputedStyle(document.activeElement);
                if (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) {
                    return `outline ${style.outlineWidth} ${style.outlineStyle} ${style.outlineColor}`;
                }
                return style.boxShadow === 'none' ? '' : `box-shadow ${style.boxShadow}`;
            }"""
        )
    )


def test_the_keyboard_reaches_the_navigation_and_the_filters_with_a_visible_focus(
    admin: Page, request: pytest.FixtureRequest
) -> None:
    _tab_until(admin, "a.skip-link")
    assert admin.evaluate("() => document.activeElement.getBoundingClientRect().top") >= 0  # shown on focus
    assert _focus_ring(admin)

    _tab_until(admin, "nav[aria-label=Main] a[href='/admin/invoices']")
    assert _focus_ring(admin), "the focused navigation link shows no focus"
    admin.keyboard.press("Enter")
    admin.wait_for_load_state()
    expect(admin.get_by_role("heading", name="Invoices", level=1)).to_be_visible()

    _tab_until(admin, "#f-q")
    assert _focus_ring(admin), "the focused search field shows no focus"
    shot(admin, request)
    admin.keyboard.type("umbrella")
    admin.keyboard.press("Enter")
    admin.wait_for_load_state()
    expect(admin.get_by_test_id("invoice-customer")).to_have_text(["Umbrella Ltd"] * 2)

    _tab_until(admin, "a.skip-link")  # the first stop of every page: past the menu, to the content
    admin.keyboard.press("Enter")
    assert admin.evaluate("() => document.activeElement.id") == "main"


# WCAG 2's contrast of each element's own text with the background it is drawn on (the
# backgrounds of its ancestors composited, white under all): 4.5:1, or 3:1 for large text.
LOW_CONTRAST = """() => {
    const parse = (value) => {
        const [r, g, b, a = 1] = value.match(/[\\d.]+/g).map(Number);
        return {r, g, b, a};
    };
    const over = (top, under) => ({
        r: top.r * top.a + under.r * (1 - top.a),
        g: top.g * top.a + under.g * (1 - top.a),
        b: top.b * top.a + under.b * (1 - top.a),
        a: 1,
    });
    const channel = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
    const background = (element) => {
        const layers = [];
        for (let e = element; e; e = e.parentElement) layers.push(parse(getComputedStyle(e).backgroundColor));
        return layers.reverse().reduce((under, top) => over(top, under), {r: 255, g: 255, b: 255, a: 1});
    };
    const failures = [];
    for (const element of document.body.querySelectorAll("*")) {
        if (element.closest("svg") || !element.getClientRects().length) continue;
        const own = [...element.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE && n.data.trim());
        const style = getComputedStyle(element);
        if (!own.length || style.visibility === "hidden" || element.matches(":disabled")) continue;
        const back = background(element);
        const fore = over(parse(style.color), back);
        const [light, dark] = [luminance(fore), luminance(back)].sort((x, y) => y - x);
        const ratio = (light + 0.05) / (dark + 0.05);
        const size = parseFloat(style.fontSize);
        const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
        if (ratio < (large ? 3 : 4.5)) {
            const text = own[0].data.trim().slice(0, 40);
            failures.push(`${text}: ${ratio.toFixed(2)} (${style.color} on ${JSON.stringify(back)})`);
        }
    }
    return failures;
}"""


def test_text_keeps_a_contrast_of_at_least_4_5_to_1(
    admin: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    invoices = dashboard.seeded.invoices
    pages = {
        "overview": "/admin/",
        "invoices": "/admin/invoices",
        "invoice": f"/admin/invoices/{invoices['usd-failed']}",
        "invoice-as-it-stood": f"/admin/invoices/{invoices['usd-partial']}?version=3",
        "failed-payments": "/admin/failed-payments",
        "reconciliation": "/admin/reconciliation",
        "reconciliation-items": "/admin/reconciliation/items",
        "webhooks": "/admin/webhooks",
        "webhook": f"/admin/webhooks/{WEBHOOK_EVENT}",
        "payouts": "/admin/payouts",
        "activity": "/admin/activity",
        "not-found": "/admin/invoices/00000000-0000-0000-0000-000000000000",
    }
    low: dict[str, list[str]] = {}
    for name, path in pages.items():
        admin.goto(dashboard.url(path))
        expect(admin.get_by_role("heading", level=1)).to_be_visible()
        if failures := admin.evaluate(LOW_CONTRAST):
            low[path] = failures
            shot(admin, request, name)
    admin.goto(dashboard.url("/admin/invoices"))
    shot(admin, request)
    assert low == {}, f"text below its contrast minimum: {low}"


# On a phone, what a list's first row must show on the screen (not scrolled off to the side):
# page -> (the row, the cells of it that must be in view: an amount, a status, an action). The
# seeded data set has no payout: the payouts table is stacked the same way, but not checked here.
PHONE_ROWS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "invoices": [("[data-testid=invoice-row]", ("[data-testid=invoice-amount-due]", "[data-testid=invoice-status]"))],
    "invoice": [
        ("[data-testid=invoice-line]", ("[data-testid=line-amount]",)),
        ("[data-testid=payment-row]", ("td.num", ".badge")),
        ("[data-testid=timeline-event]", ("[data-testid=audit-status]",)),
    ],
    "failed-payments": [("[data-testid=failed-payment-row]", ("td.num", "[data-testid=dunning-state]", "button"))],
    "reconciliation": [("[data-testid=class-row]", ("td.num >> nth=-1",))],
    "reconciliation-items": [("[data-testid=item-row]", ("td.num", "[data-testid=item-status]"))],
    "webhooks": [("[data-testid=webhook-row]", ("[data-testid=webhook-status]",))],
    "activity": [("[data-testid=activity-row]", ("th", "td >> nth=-1"))],
}

# Boxes that do not fit the phone's width: a list table's frame scrolling sideways, a caption cut.
CLIPPED = """() => [...document.querySelectorAll(".table-wrap, caption")]
    .filter((e) => e.getClientRects().length && (e.scrollWidth > e.clientWidth + 1
        || e.getBoundingClientRect().right > document.documentElement.clientWidth + 1))
    .map((e) => `${e.tagName.toLowerCase()} ${(e.querySelector("caption") || e).textContent.trim().slice(0, 50)}`)"""


def _off_screen(page: Page, row: str, cells: tuple[str, ...]) -> list[str]:
    """The cells of the first `row` of the page whose box is not within the phone's 0..375 px."""
    first = page.locator(row).first
    expect(first).to_be_visible()
    outside = []
    for cell in cells:
        box = first.locator(cell).first.bounding_box()
        assert box is not None, f"{row} {cell} is not rendered"
        if box["x"] < 0 or box["x"] + box["width"] > PHONE_WIDTH:
            outside.append(f"{row} {cell}: {box['x']:.0f}..{box['x'] + box['width']:.0f} px")
    return outside


PHONE_WIDTH = 375


def test_every_page_fits_a_phone_screen_without_horizontal_scroll(
    phone: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    sign_in(phone, dashboard)
    invoices = dashboard.seeded.invoices
    invoice = f"/admin/invoices/{invoices['usd-partial']}"
    pages = {
        "overview": "/admin/",
        "invoices": "/admin/invoices",
        "invoice": invoice,
        "failed-payments": "/admin/failed-payments",
        "reconciliation": "/admin/reconciliation",
        "reconciliation-items": "/admin/reconciliation/items",
        "reconciliation-item": f"/admin/reconciliation/items/{dashboard.seeded.reconciliation_item}",
        "webhooks": "/admin/webhooks",
        "webhook": f"/admin/webhooks/{WEBHOOK_EVENT}",
        "payouts": "/admin/payouts",
        "activity": "/admin/activity",
    }
    too_wide, clipped, off_screen = {}, {}, {}
    for name, path in pages.items():
        phone.goto(dashboard.url(path))
        expect(phone.get_by_role("heading", level=1)).to_be_visible()
        shot(phone, request, name)
        width = phone.evaluate("() => document.scrollingElement.scrollWidth")
        if width > PHONE_WIDTH + 1:
            too_wide[path] = width
        if boxes := phone.evaluate(CLIPPED):
            clipped[path] = boxes
        for row, cells in PHONE_ROWS.get(name, []):
            if outside := _off_screen(phone, row, cells):
                off_screen[row] = outside
        if name == "failed-payments":  # an action from the phone, for the activity page to list
            _go(phone, phone.get_by_role("button", name="Send reminder").first)
            expect(phone.get_by_test_id("flash")).to_have_text("Reminder requested.")
    assert too_wide == {}, f"pages wider than the phone's 375 px: {too_wide}"
    assert clipped == {}, f"tables scrolling sideways or captions cut on a phone: {clipped}"
    assert off_screen == {}, f"a list's first row is partly off the phone's screen: {off_screen}"

    # The header row is hidden from sight on a phone, not from screen readers: still a table.
    phone.goto(dashboard.url("/admin/invoices"))
    table = phone.get_by_role("table", name=re.compile("^Invoices"))
    expect(table.get_by_role("columnheader", name="Amount due")).to_have_count(1)
    expect(table.get_by_role("row")).to_have_count(1 + phone.get_by_test_id("invoice-row").count())

    # A laptop keeps the table a table: its header row in sight, its cells side by side.
    phone.set_viewport_size({"width": 1280, "height": 800})
    for name in ("invoices", "failed-payments"):
        phone.goto(dashboard.url(pages[name]))
        shot(phone, request, f"{name}-laptop")
        assert phone.locator("table.stacked tr").first.evaluate("e => getComputedStyle(e).display") == "table-row"
        expect(phone.locator("table.stacked thead th").first).to_be_visible()
        row = phone.locator("table.stacked tbody tr").first
        tops = row.locator("td").evaluate_all("cells => cells.map((c) => Math.round(c.getBoundingClientRect().top))")
        assert len(set(tops)) == 1, f"{name}: the cells of a row are not side by side on a laptop: {tops}"


# ------------------------------------------------------------------------------ PostgreSQL


@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_dashboard_stands_up_on_postgresql(
    admin: Page, dashboard: Dashboard, request: pytest.FixtureRequest
) -> None:
    expect(admin.get_by_test_id("amount-due-usd")).to_have_text(OVERVIEW["amount-due-usd"])
    expect(admin.get_by_test_id("collected-this-month-eur")).to_have_text(OVERVIEW["collected-this-month-eur"])
    _go(admin, admin.get_by_test_id("amount-due-usd"))
    assert set(_numbers(admin)) == OPEN_USD
    _go(admin, admin.get_by_role("link", name="INV-000003"))
    expect(admin.get_by_test_id("invoice-amount-due")).to_have_text("1,200.00 USD")
    shot(admin, request)
