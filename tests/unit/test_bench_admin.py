"""The admin bench's ledger (bench/admin.py): built from the domain's events, so the read models
the pages query hold exactly what the aggregates say; and the client follows the list's own
"next" link."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from uuid import UUID

from sqlalchemy import select

from adapters.admin.passwords import Argon2Hasher
from adapters.clock import SystemClock
from adapters.persistence import event_store_env
from adapters.read_models import read_model_engine
from bench.admin import ADMIN_EMAIL, CUSTOMERS, HEAVY_EVENTS, SEARCH_WORD, Seeded, SeedJob, customer, next_link, seed
from commands.application import BillingApplication
from projections.tables import invoice_status, payments

INVOICES = 400


class _Gate:
    def ready(self) -> None:
        return None


def test_the_seeded_book_is_what_the_read_models_show(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'admin.sqlite3'}"
    seeded: Seeded = seed(SeedJob(url, INVOICES), _Gate()).extra["seeded"]
    app = BillingApplication(clock=SystemClock(), env=event_store_env(url), hasher=Argon2Hasher())
    engine = read_model_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(invoice_status.c.invoice_id, invoice_status.c.status, invoice_status.c.version))
            by_id = {row.invoice_id: row for row in rows}
            provider_payments = conn.execute(select(payments.c.provider)).scalars().all()
        assert len(by_id) == seeded.invoices == INVOICES + 1
        # Every row is its aggregate, as replayed from the store: the projections read the events.
        for invoice_id, row in by_id.items():
            invoice = app.invoice(UUID(invoice_id))
            assert (row.status, row.version) == (invoice.status, invoice.version)
        heavy = by_id.pop(seeded.heavy_invoice)
        assert (heavy.status, heavy.version) == ("open", HEAVY_EVENTS)
        assert Counter(row.status for row in by_id.values()) == Counter(seeded.statuses)
        assert {"draft", "open", "paid", "void", "uncollectible"} <= set(seeded.statuses)
        assert {"offline", "stripe"} <= set(provider_payments)
        assert seeded.events == app.head()
        user = app.admin.authenticate(ADMIN_EMAIL, seeded.admin_password)
        assert user is not None
        assert user.role == "admin"
    finally:
        engine.dispose()
        app.close()


def test_the_search_word_names_one_customer_in_twenty_five() -> None:
    names = [customer(k)["name"].lower() for k in range(CUSTOMERS)]
    assert sum(SEARCH_WORD in name for name in names) == CUSTOMERS // 25
    assert len({customer(k)["email"] for k in range(CUSTOMERS)}) == CUSTOMERS


def test_next_link_is_the_one_marked_next_unescaped() -> None:
    page = (
        b'<a href="/admin/invoices?sort=number&amp;dir=asc">Number</a>'
        b'<a href="/admin/invoices?status=open&amp;cursor=abc%3D" rel="next" data-testid="next-page">Next page</a>'
    )
    assert next_link(page) == "/admin/invoices?status=open&cursor=abc%3D"
    assert next_link(b"<p>the last page</p>") is None
