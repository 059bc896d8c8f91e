"""Invoice as of a moment, served from the in-process cache of invoice histories
(commands/as_of.py): at every version's moment, and between them, it is what a full replay of
the stored events gives, on SQLite and PostgreSQL, also when another application instance (a
second process) writes to the invoice between two calls."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import takewhile
from uuid import UUID, uuid4

import pytest

from adapters.clock import ManualClock
from commands.application import BillingApplication
from commands.as_of import CHECKPOINT
from ledger.errors import InvoiceNotFoundError
from ledger.invoices import BANK, Invoice
from ledger.money import Money
from tests.as_of_stories import issued_invoice, state


def _replayed(app: BillingApplication, invoice_id: UUID, moment: datetime) -> Invoice | None:
    """The reference: every stored event up to the first one stamped after `moment`, folded."""
    invoice: Invoice | None = None
    for event in takewhile(lambda e: e.timestamp <= moment, app.invoice_history(invoice_id)):
        invoice = event.mutate(invoice)
    return invoice


def _payments(app: BillingApplication, clock: ManualClock, invoice_id: UUID, count: int, per_save: int) -> None:
    """`count` partial payments, `per_save` to a save (those share nothing but the save: each is
    stamped one second after the previous, except every third, stamped with the one before it)."""
    invoice = app.invoice(invoice_id)
    for done in range(count):
        at = clock.now() if done % 3 == 2 else clock.advance(timedelta(seconds=1))
        invoice.apply_payment(payment_id=str(uuid4()), amount=Money(100, "usd"), fee=0, cash_account=BANK, at=at)
        if (done + 1) % per_save == 0 or done == count - 1:
            app.save(invoice)


def _check_every_moment(app: BillingApplication, invoice_id: UUID) -> int:
    stamps = [event.timestamp for event in app.invoice_history(invoice_id)]
    moments = sorted({*stamps, *(s + timedelta(milliseconds=500) for s in stamps)})
    for moment in moments:
        assert state(app.invoice_as_of(invoice_id, moment)) == state(_replayed(app, invoice_id, moment)), moment
    return len(stamps)


def test_as_of_at_every_version_is_the_full_replay_also_after_another_process_wrote(
    make_app: Callable[[], BillingApplication], clock: ManualClock
) -> None:
    app, other = make_app(), make_app()
    invoice_id = issued_invoice(app, clock)
    _payments(app, clock, invoice_id, 2 * CHECKPOINT + 5, per_save=7)  # past two kept states
    versions = _check_every_moment(app, invoice_id)
    assert versions == app.invoice(invoice_id).version > 2 * CHECKPOINT

    _payments(other, clock, invoice_id, CHECKPOINT, per_save=CHECKPOINT)  # another process, one save
    clock.advance(timedelta(days=1))
    other.record_offline_payment(invoice_id, Money(1, "usd"), reference="wire")
    latest = app.invoice_as_of(invoice_id, clock.now())
    assert latest.version == other.invoice(invoice_id).version == versions + CHECKPOINT + 1  # seen: one query
    _check_every_moment(app, invoice_id)

    with pytest.raises(InvoiceNotFoundError):
        app.invoice_as_of(invoice_id, app.invoice(invoice_id, version=1).created_on - timedelta(microseconds=1))
    with pytest.raises(InvoiceNotFoundError):
        app.invoice_as_of(uuid4(), clock.now())


def test_what_as_of_returns_is_a_copy_a_caller_cannot_change_the_cache_through(
    app: BillingApplication, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app, clock)
    _payments(app, clock, invoice_id, CHECKPOINT + 2, per_save=CHECKPOINT + 2)
    moment = clock.now()
    earlier = moment - timedelta(seconds=1)  # between two kept states: folded onto a copy of one
    for invoice in (app.invoice_as_of(invoice_id, moment), app.invoice_as_of(invoice_id, earlier)):
        invoice.payment_ids.append("pi_not_really")
        invoice.lines.clear()
        invoice.amount_paid = 0
    for at in (moment, earlier):
        assert state(app.invoice_as_of(invoice_id, at)) == state(_replayed(app, invoice_id, at))
