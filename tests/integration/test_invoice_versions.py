"""Invoice as of a moment from the invoice_versions read model (projections/invoice_versions.py,
commands/as_of.py InvoicesAsOf), on SQLite and PostgreSQL: at every version's moment and between
them it is what a full replay of the stored events gives, with the read model empty, part-way
through the invoice (lagging), current, and behind new events again; stamps that go backwards
give what the replay gives; a rebuild keeps the same rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, func, select

from adapters.clock import ManualClock
from adapters.read_models import invoice_version_index, projection_runner
from commands.application import BillingApplication
from ledger.errors import InvoiceNotFoundError
from ledger.invoices import BANK, Invoice
from ledger.money import Money
from projections.invoice_versions import STATE_INTERVAL, InvoiceVersionIndex
from projections.tables import invoice_version_states, invoice_versions
from tests.as_of_stories import issued_invoice, state

# The index alone (the events to fold read from the store through the library), and with the
# event store's table, as `ledger serve` has it (the events read in the locating statement).
WAYS = ("store", "one statement")


def _index(way: str, app: BillingApplication, engine: Engine) -> InvoiceVersionIndex:
    return InvoiceVersionIndex(engine) if way == "store" else invoice_version_index(app, engine)


def _payments(app: BillingApplication, clock: ManualClock, invoice_id: UUID, count: int, per_save: int) -> None:
    """`count` partial payments, `per_save` to a save; every fifth is stamped 1.5 seconds
    BEFORE the previous one (a clock that went back), every third with the previous one's stamp."""
    invoice = app.invoice(invoice_id)
    for done in range(count):
        if done % 5 == 4:
            at = clock.advance(timedelta(milliseconds=-1500))
        elif done % 3 == 2:
            at = clock.now()
        else:
            at = clock.advance(timedelta(seconds=1))
        invoice.apply_payment(payment_id=str(uuid4()), amount=Money(100, "usd"), fee=0, cash_account=BANK, at=at)
        if (done + 1) % per_save == 0 or done == count - 1:
            app.save(invoice)
    clock.advance(timedelta(seconds=5))  # past every stamp so far


def _check_every_moment(app: BillingApplication, invoice_id: UUID) -> int:
    """as_of at each stamp, just before and half a second after it, against the full replay."""
    history = list(app.invoice_history(invoice_id))
    stamps = [event.timestamp for event in history]
    moments = sorted(
        {*stamps, *(s - timedelta(microseconds=1) for s in stamps), *(s + timedelta(milliseconds=500) for s in stamps)}
    )
    for moment in moments:
        replayed: Invoice | None = None
        for event in history:
            if event.timestamp > moment:
                break
            replayed = event.mutate(replayed)
        if replayed is None:
            with pytest.raises(InvoiceNotFoundError):
                app.invoice_as_of(invoice_id, moment)
        else:
            assert state(app.invoice_as_of(invoice_id, moment)) == state(replayed), moment
    return len(stamps)


def _rows(engine: Engine, invoice_id: UUID) -> tuple[int, list[int]]:
    key = str(invoice_id)
    with engine.connect() as conn:
        versions = conn.execute(select(func.count()).where(invoice_versions.c.invoice_id == key)).scalar_one()
        kept = conn.execute(
            select(invoice_version_states.c.version)
            .where(invoice_version_states.c.invoice_id == key)
            .order_by(invoice_version_states.c.version)
        ).scalars()
        return int(versions), [int(v) for v in kept]


@pytest.mark.parametrize("way", WAYS)
def test_as_of_is_the_full_replay_with_the_read_model_empty_lagging_and_current(
    app: BillingApplication, engine: Engine, clock: ManualClock, way: str
) -> None:
    app.use_version_index(_index(way, app, engine))
    runner = projection_runner(app, engine)
    invoice_id = issued_invoice(app, clock)
    _payments(app, clock, invoice_id, 2 * STATE_INTERVAL + 10, per_save=7)  # past two kept states
    versions = app.invoice(invoice_id).version
    assert versions > 2 * STATE_INTERVAL

    assert _rows(engine, invoice_id) == (0, [])  # empty: every event from the store
    assert _check_every_moment(app, invoice_id) == versions

    runner.run_once(batch_size=STATE_INTERVAL + 20)  # part-way: past the first kept state only
    indexed, kept = _rows(engine, invoice_id)
    assert STATE_INTERVAL < indexed < 2 * STATE_INTERVAL
    assert kept == [STATE_INTERVAL]
    _check_every_moment(app, invoice_id)

    runner.catch_up()  # current
    assert _rows(engine, invoice_id) == (versions, [STATE_INTERVAL, 2 * STATE_INTERVAL])
    _check_every_moment(app, invoice_id)
    located = _index(way, app, engine).locate(invoice_id, clock.now())
    assert located.past is None
    assert located.base is not None
    assert located.base.version == 2 * STATE_INTERVAL
    if way == "one statement":  # the events after the kept state came with it: the store was not asked
        assert [e.originator_version for e in located.events or ()] == list(range(2 * STATE_INTERVAL + 1, versions + 1))

    _payments(app, clock, invoice_id, STATE_INTERVAL, per_save=STATE_INTERVAL)  # lagging again: one save
    clock.advance(timedelta(days=1))
    app.record_offline_payment(invoice_id, Money(1, "usd"), reference="wire")
    assert app.invoice_as_of(invoice_id, clock.now()).version == versions + STATE_INTERVAL + 1
    _check_every_moment(app, invoice_id)

    runner.catch_up()
    assert _rows(engine, invoice_id)[0] == versions + STATE_INTERVAL + 1
    _check_every_moment(app, invoice_id)

    with pytest.raises(InvoiceNotFoundError):
        app.invoice_as_of(uuid4(), clock.now())


@pytest.mark.parametrize("way", WAYS)
def test_a_second_process_and_a_rebuild_see_the_same_versions(
    make_app: Any, engine: Engine, clock: ManualClock, way: str
) -> None:
    writer: BillingApplication = make_app()
    invoice_id = issued_invoice(writer, clock)
    _payments(writer, clock, invoice_id, STATE_INTERVAL + 3, per_save=STATE_INTERVAL + 3)  # one save
    runner = projection_runner(writer, engine)
    runner.catch_up()
    with engine.connect() as conn:
        before = conn.execute(select(invoice_versions).order_by(invoice_versions.c.version)).all()
        states = conn.execute(select(invoice_version_states)).all()

    reader: BillingApplication = make_app()  # another process: nothing of the invoice in memory
    reader.use_version_index(_index(way, reader, engine))
    _check_every_moment(reader, invoice_id)

    projection_runner(make_app(), engine).rebuild()
    with engine.connect() as conn:
        assert conn.execute(select(invoice_versions).order_by(invoice_versions.c.version)).all() == before
        assert conn.execute(select(invoice_version_states)).all() == states
    assert [row.version for row in before] == list(range(1, writer.invoice(invoice_id).version + 1))
    reached = [row.reached for row in before]
    assert reached == sorted(reached)  # a running maximum, though stamps went backwards
    _check_every_moment(reader, invoice_id)
