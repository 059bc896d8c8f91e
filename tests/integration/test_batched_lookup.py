"""A webhook batch asks in one query which of its records (and payments) are new, and brings
the histories of those found that the cache lacks, on each backend: the answer is exact, a
stale "new" is caught by the save, and the aggregate cache (ADR 0009) still sees another
application's writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent

from adapters.stored_ids import stored_events
from commands.application import BillingApplication
from commands.ingestion.provider_events import VerifiedEvent, provider_event_id
from commands.ingestion.stripe_events import StripeIngestion
from commands.messages import NewLine
from ledger.payments import Payment, payment_id_for
from tests.conftest import AppFactory
from tests.stripe_payloads import payment_succeeded, verified_event


def _open_invoice(app: BillingApplication, amount: int = 10_000) -> UUID:
    invoice_id = app.create_draft(
        customer={"email": "ap@acme.example"}, currency="usd", lines=[NewLine("Fee", 1, amount)]
    ).result
    app.issue(invoice_id)
    return invoice_id


def _refunded(event_id: str, refund: str, intent: str, amount: int) -> VerifiedEvent:
    changes: dict[str, Any] = {"id": refund, "amount": amount, "status": "succeeded", "payment_intent": intent}
    return verified_event(event_id, "refund.created", "refund", **changes)


def _paid_once(app: BillingApplication, name: str) -> tuple[UUID, UUID, UUID, list[UUID]]:
    """An invoice paid by one Stripe payment: the invoice's, the event record's and the
    payment's ids, and ids of nothing, more than one statement's worth on SQLite."""
    invoice_id = _open_invoice(app)
    StripeIngestion(app).ingest(payment_succeeded(f"evt_{name}", f"pi_{name}", invoice_id))
    record = provider_event_id("stripe", f"evt_{name}")
    payment = payment_id_for("stripe", f"pi_{name}")
    return invoice_id, record, payment, [uuid4() for _ in range(1_200)]


def test_stored_events_names_exactly_the_ids_with_events(app: BillingApplication) -> None:
    histories = stored_events(app.recorder)
    assert histories is not None

    def found(ids: list[UUID]) -> set[UUID]:
        return set(histories(dict.fromkeys(ids, 0)))

    invoice_id, record, payment, strangers = _paid_once(app, "l1")
    assert found([invoice_id, record, payment, *strangers]) == {invoice_id, record, payment}
    assert found([*strangers, invoice_id]) == {invoice_id}
    assert found(strangers[:3]) == set()
    assert found([]) == set()


def test_a_redelivery_to_another_application_is_found_by_the_batch_lookup(make_app: AppFactory) -> None:
    """Two applications on one database (two server processes): each answers the other's
    events as duplicates, and applies a later report on the state the other left, its cached
    aggregates fast-forwarded."""
    first, second = make_app(), make_app()
    invoice_id = _open_invoice(first)
    one, other = StripeIngestion(first), StripeIngestion(second)

    assert one.ingest(payment_succeeded("evt_a", "pi_a", invoice_id, amount=6_000)).outcome == "applied"
    assert first.invoice(invoice_id).amount_paid == 6_000  # the invoice is in `first`'s cache now
    again = other.ingest(payment_succeeded("evt_a", "pi_a", invoice_id, amount=6_000))
    assert (again.duplicate, again.outcome) == (True, "applied")

    assert other.ingest(_refunded("evt_b", "re_b", "pi_a", 1_000)).outcome == "applied"
    # `first` never saw evt_b: its lookup finds the record, its cached invoice catches up.
    redelivered = one.ingest(_refunded("evt_b", "re_b", "pi_a", 1_000))
    assert (redelivered.duplicate, redelivered.outcome) == (True, "applied")
    assert one.ingest(_refunded("evt_c", "re_c", "pi_a", 2_000)).outcome == "applied"
    for app in (first, second):
        invoice = app.invoice(invoice_id)
        assert (invoice.amount_paid, invoice.amount_refunded) == (6_000, 3_000)


def test_an_event_stored_by_another_application_after_the_lookup_is_answered_as_a_duplicate(
    make_app: AppFactory,
) -> None:
    """The race the lookup opens: it says "new", the other application then stores the same
    event (and its payment). The save collides or the reads are found stale; the command is
    decided again, finds the record, and the money is applied once."""
    first, second = make_app(), make_app()
    invoice_id = _open_invoice(first)
    event = payment_succeeded("evt_race", "pi_race", invoice_id)
    lookup = first.runner.stored_events
    assert lookup is not None
    raced: list[bool] = []

    def then_the_other_stores_it(asked: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        found = lookup(asked)
        if not raced:
            raced.append(True)
            assert StripeIngestion(second).ingest(event).outcome == "applied"
        return found

    first.runner.stored_events = then_the_other_stores_it
    answer = StripeIngestion(first).ingest(event)
    assert raced
    assert (answer.duplicate, answer.outcome) == (True, "applied")
    invoice = first.invoice(invoice_id)
    payment = str(payment_id_for("stripe", "pi_race"))
    assert (invoice.amount_paid, invoice.payment_ids) == (10_000, [payment])
    record = provider_event_id("stripe", "evt_race")
    assert len(first.recorder.select_events(record)) == 2  # received, handled


def test_stored_events_gives_each_found_id_its_events_after_the_version_asked(app: BillingApplication) -> None:
    histories = stored_events(app.recorder)
    assert histories is not None
    invoice_id, record, payment, strangers = _paid_once(app, "h1")
    found = histories({invoice_id: 0, record: 0, payment: 0, **dict.fromkeys(strangers, 0)})
    assert set(found) == {invoice_id, record, payment}
    for aggregate_id, events in found.items():
        assert events == list(app.recorder.select_events(aggregate_id))
    latest = len(found[invoice_id])
    assert histories({invoice_id: 2, record: 1, payment: 0}) == {
        invoice_id: list(app.recorder.select_events(invoice_id, gt=2)),
        record: list(app.recorder.select_events(record, gt=1)),
        payment: found[payment],
    }
    assert histories({invoice_id: latest, strangers[0]: 0}) == {}
    assert histories({}) == {}


def test_a_batch_reads_what_it_loads_in_its_one_query(make_app: AppFactory) -> None:
    """The invoice a payment names is not in this application's cache (another made it): its
    history comes with the batch's one query, so no step reads it again; cached, and behind the
    log after this application's own save, the next report's query brings what is new. No load
    of the three batches is a read of its own, and every state is the stored one."""
    maker, app = make_app(), make_app()
    invoice_id = _open_invoice(maker)
    recorder = app.recorder
    reads: list[UUID] = []
    select_events = recorder.select_events

    def counted(originator_id: Any, **kwargs: Any) -> Any:
        reads.append(originator_id)
        return select_events(originator_id, **kwargs)

    recorder.select_events = counted  # type: ignore[method-assign]
    ingestion = StripeIngestion(app)
    assert ingestion.ingest(payment_succeeded("evt_m1", "pi_m1", invoice_id, amount=4_000)).outcome == "applied"
    cache = app.repository.cache
    assert cache is not None
    held = cache.get(invoice_id)  # as a request thread copying it might hold it
    held_version = held.version
    assert ingestion.ingest(payment_succeeded("evt_m2", "pi_m2", invoice_id, amount=3_000)).outcome == "applied"
    assert held.version == held_version  # brought up to date on a copy, which replaced it in the cache
    assert cache.get(invoice_id) is not held
    again = ingestion.ingest(payment_succeeded("evt_m1", "pi_m1", invoice_id, amount=4_000))
    assert (again.duplicate, again.outcome) == (True, "applied")
    assert reads == []

    stored = maker.invoice(invoice_id)
    assert stored.amount_paid == 7_000
    assert cache.get(invoice_id).version == stored.version  # the redelivery's batch named it too: brought up to date
    # Folded from the query's rows (decoded by adapters/event_decoding.py), it is the state the
    # library's repository folds from the same events.
    assert vars(cache.get(invoice_id)) == vars(stored)
    payment = payment_id_for("stripe", "pi_m1")  # the redelivery's batch read it, uncached
    assert vars(cache.get(payment)) == vars(maker.runner.get(payment, Payment))
    assert app.invoice(invoice_id).amount_paid == 7_000


def test_a_cached_state_fast_forwarded_by_another_thread_meanwhile_gets_only_what_it_lacks(
    make_app: AppFactory,
) -> None:
    """Between the batch's query and its fold, a request thread's load fast-forwards the cached
    invoice in place (the library's repository): the batch folds only the events past it."""
    maker, app = make_app(), make_app()
    invoice_id = _open_invoice(maker)
    ingestion = StripeIngestion(app)
    assert ingestion.ingest(payment_succeeded("evt_f1", "pi_f1", invoice_id, amount=4_000)).outcome == "applied"
    query = app.runner.stored_events
    assert query is not None

    def then_a_thread_fast_forwards(after: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        found = query(after)
        app.invoice(invoice_id)  # the repository's load: the cached state moves on in place
        return found

    app.runner.stored_events = then_a_thread_fast_forwards
    assert ingestion.ingest(payment_succeeded("evt_f2", "pi_f2", invoice_id, amount=3_000)).outcome == "applied"
    app.runner.stored_events = query
    assert ingestion.ingest(payment_succeeded("evt_f3", "pi_f3", invoice_id, amount=3_000)).outcome == "applied"
    assert vars(app.invoice(invoice_id)) == vars(maker.invoice(invoice_id))
    assert maker.invoice(invoice_id).amount_paid == 10_000


def test_without_a_lookup_the_batch_reads_each_record_as_before(app: BillingApplication) -> None:
    app.runner.stored_events = None
    invoice_id = _open_invoice(app)
    ingestion = StripeIngestion(app)
    assert ingestion.ingest(payment_succeeded("evt_n", "pi_n", invoice_id)).outcome == "applied"
    assert ingestion.ingest(payment_succeeded("evt_n", "pi_n", invoice_id)).duplicate
    assert app.invoice(invoice_id).amount_paid == 10_000
