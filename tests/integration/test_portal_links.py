"""`app.portal` on both backends: links issued, read back, revoked; a link for an invoice made
once per idempotency key; and the portal's list query over the read model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, text

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.settings import Settings
from commands.application import BillingApplication
from commands.messages import NewLine
from commands.portal.links import PortalDraftError, PortalOffError
from commands.portal.tokens import link_id_from
from ledger.errors import InvalidInputError, InvoiceNotFoundError
from ledger.money import Money
from ledger.portal.links import PortalLinkNotFoundError, PortalLinkRevokedError
from projections.portal import OPEN_GROUP, _group, customer_invoices
from projections.runner import ProjectionRunner

SECRET = "integration-portal-secret-0123456789abcdef"
BASE = "https://billing.example"


@pytest.fixture
def portal_app(database_url: str, clock: ManualClock) -> Iterator[BillingApplication]:
    app = bootstrap(Settings(database_url=database_url, secret_key=SECRET), clock=clock)
    yield app
    app.close()


def _invoice(app: BillingApplication, email: str = "Ann@Customer.example", *, issue: bool = True) -> UUID:
    invoice_id = app.create_draft(
        customer={"email": email, "name": "Ann"}, currency="usd", lines=[NewLine("Plan", 1, 5_000)]
    ).result
    if issue:
        app.issue(invoice_id)
    return invoice_id


def test_a_link_is_issued_read_back_and_revoked(portal_app: BillingApplication, clock: ManualClock) -> None:
    issued = portal_app.portal.issue(
        "ann@customer.example", expires_at=clock.now() + timedelta(days=7), issued_by="cli"
    )
    link = portal_app.portal.link(issued.result)
    assert link is not None
    assert (link.customer_email, link.issued_by, link.expiry) == (
        "ann@customer.example",
        "cli",
        clock.now() + timedelta(days=7),
    )
    assert portal_app.portal.revoke(issued.result, reason="lost laptop").result is True
    assert portal_app.portal.revoke(issued.result, reason="again").result is False
    revoked = portal_app.portal.link(issued.result)
    assert revoked is not None
    with pytest.raises(PortalLinkRevokedError):
        revoked.require_usable(at=clock.now())
    with pytest.raises(PortalLinkNotFoundError):
        portal_app.portal.revoke(uuid4(), reason="")


def test_a_link_for_an_invoice_is_made_once_per_key(portal_app: BillingApplication) -> None:
    invoice_id = _invoice(portal_app)
    head = portal_app.head()
    first = portal_app.portal.link_for_invoice(invoice_id, base_url=BASE + "/", idempotency_key="send-1").result
    assert portal_app.head() == head + 1
    again = portal_app.portal.link_for_invoice(invoice_id, base_url=BASE, idempotency_key="send-1").result
    assert again == first
    assert portal_app.head() == head + 1  # nothing more stored
    other = portal_app.portal.link_for_invoice(invoice_id, base_url=BASE, idempotency_key="send-2").result
    unkeyed = portal_app.portal.link_for_invoice(invoice_id, base_url=BASE).result
    assert len({first, other, unkeyed}) == 3

    token = first.removeprefix(f"{BASE}/portal/").removesuffix(f"/invoices/{invoice_id}")
    link = portal_app.portal.link(link_id_from(token, SECRET))
    assert link is not None
    assert (link.customer_email, link.invoice_id, link.issued_by) == ("ann@customer.example", str(invoice_id), "mail")


def test_no_link_for_a_draft_an_unknown_invoice_or_without_a_secret(
    portal_app: BillingApplication, database_url: str, clock: ManualClock
) -> None:
    with pytest.raises(PortalDraftError):
        portal_app.portal.link_for_invoice(_invoice(portal_app, issue=False), base_url=BASE)
    with pytest.raises(InvoiceNotFoundError):
        portal_app.portal.link_for_invoice(uuid4(), base_url=BASE)
    off = bootstrap(Settings(database_url=database_url), clock=clock)
    try:
        with pytest.raises(PortalOffError):
            off.portal.link_for_invoice(_invoice(off), base_url=BASE)
    finally:
        off.close()


def test_the_list_query_pages_one_customers_invoices_open_first(
    app: BillingApplication, clock: ManualClock, engine: Engine, runner: ProjectionRunner
) -> None:
    paid: list[UUID] = []
    still_open: list[UUID] = []
    for n in range(3):
        clock.advance(timedelta(seconds=1))
        paid.append(_invoice(app))
        app.record_offline_payment(paid[-1], Money(5_000, "usd"), reference=f"wire-{n}")
        clock.advance(timedelta(seconds=1))
        still_open.append(_invoice(app))
    _invoice(app, "bob@other.example")
    _invoice(app, issue=False)
    runner.catch_up()

    # The link's lower-cased address and the one the invoices were written with.
    emails = {"ann@customer.example", "Ann@Customer.example"}
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = customer_invoices(engine, emails, limit=2, cursor=cursor)
        pages.append([row["invoice_id"] for row in page.rows])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [i for page in pages for i in page] == [str(i) for i in [*reversed(still_open), *reversed(paid)]]
    assert [len(page) for page in pages] == [2, 2, 2]
    assert customer_invoices(engine, {"bob@other.example"}, limit=10).rows[0]["status"] == "open"


def test_the_list_finds_the_customers_invoices_however_the_address_was_written(
    app: BillingApplication, clock: ManualClock, engine: Engine, runner: ProjectionRunner
) -> None:
    """A link keeps the address lower-cased; invoices keep it as written. Every one of them is
    the customer's, on the list as on the invoice's own page (PortalLink.shows)."""
    written = ["ann@customer.example", "Ann@Customer.example", "ANN@CUSTOMER.EXAMPLE"]
    invoices: list[UUID] = []
    for email in written:
        clock.advance(timedelta(seconds=1))
        invoices.append(_invoice(app, email))
    clock.advance(timedelta(seconds=1))
    _invoice(app, "anne@customer.example")
    runner.catch_up()

    listed = customer_invoices(engine, {"ann@customer.example"}, limit=10).rows

    assert [row["invoice_id"] for row in listed] == [str(i) for i in reversed(invoices)]
    # Only ASCII letters fold on SQLite: the spelling an invoice was written with still finds it.
    clock.advance(timedelta(seconds=1))
    accented = _invoice(app, "ÉLODIE@customer.example")
    runner.catch_up()
    assert [
        row["invoice_id"]
        for row in customer_invoices(engine, {"élodie@customer.example", "ÉLODIE@customer.example"}).rows
    ] == [str(accented)]


def test_the_list_query_can_read_through_the_lower_email_index(engine: Engine, runner: ProjectionRunner) -> None:
    """The query's lower(customer_email) is the index's expression (migration 0008), so one
    customer's rows are an index lookup; PostgreSQL is kept off a sequential scan to say so on
    a table this small."""
    runner.catch_up()  # the schema
    query = _group(engine, {"Ann@Customer.example"}, OPEN_GROUP, None, 26)
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(conn.execute(text(f"EXPLAIN {compiled}")).scalars())
        else:
            plan = "\n".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_invoice_status_customer_email_lower" in plan, plan


def test_a_link_cannot_name_another_customers_invoice(portal_app: BillingApplication, clock: ManualClock) -> None:
    bobs = _invoice(portal_app, "bob@other.example")
    head = portal_app.head()
    expires_at = clock.now() + timedelta(days=1)

    with pytest.raises(InvalidInputError, match=r"not billed to ann@customer\.example") as refused:
        portal_app.portal.issue("ann@customer.example", expires_at=expires_at, invoice_id=bobs, issued_by="cli")

    assert refused.value.field == "invoice_id"
    assert portal_app.head() == head  # nothing stored
    with pytest.raises(InvoiceNotFoundError):
        portal_app.portal.issue("ann@customer.example", expires_at=expires_at, invoice_id=uuid4(), issued_by="cli")
    # The invoice's customer, whatever the case the invoice was written with.
    anns = _invoice(portal_app, "Ann@Customer.example")
    assert portal_app.portal.issue(
        "ANN@customer.example", expires_at=expires_at, invoice_id=anns, issued_by="cli"
    ).result
