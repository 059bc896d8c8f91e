"""The Dunning aggregate: one per invoice, steps once each and in order, plain and stable events."""

from __future__ import annotations

import dataclasses
from datetime import date
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic

from ledger.dunning.aggregate import EXHAUSTED, STOPPED, Dunning, dunning_id_for, retry_key
from ledger.dunning.policy import DunningPolicy
from ledger.errors import DunningStateError
from tests.unit.given import T0, at, drain
from tests.unit.test_event_shapes import LIBRARY_FIELDS, event_classes, non_json_values

POLICY = DunningPolicy.parse("reminder:1,retry:3,reminder:7,uncollectible:30", 3)
INVOICE = UUID("0b9b6f2e-8c1d-4f5e-9a3b-2c7d1e0f4a56")


def started(invoice_id: UUID = INVOICE) -> Dunning:
    return Dunning.start(invoice_id=invoice_id, anchor=date(2026, 3, 1), policy=POLICY, as_of=T0, at=T0)


def every_dunning_event() -> list[object]:
    exhausted = started()
    exhausted.request_reminder(step=0, reason="scheduled", amount_due=1000, currency="usd", as_of=at(1), at=at(1))
    exhausted.request_retry(
        step=1,
        payment_id=str(uuid4()),
        provider_payment_id="pi_1",
        outcome="succeeded",
        detail="",
        as_of=at(2),
        at=at(2),
    )
    exhausted.retry_by_hand(
        payment_id=str(uuid4()),
        provider_payment_id="pi_1",
        failed_attempts=1,
        outcome="declined",
        detail="card declined",
        as_of=at(2),
        at=at(2),
    )
    exhausted.remind_by_hand(amount_due=1000, currency="usd", as_of=at(2), at=at(2))
    exhausted.skip(step=2, reason="superseded by uncollectible:30", as_of=at(3), at=at(3))
    exhausted.exhaust(reason="schedule", step=3, failed_attempts=2, as_of=at(3), at=at(3))
    stopped = started(uuid4())
    stopped.stop(reason="invoice paid", as_of=at(4), at=at(4))
    return drain(exhausted) + drain(stopped)


def test_an_invoice_has_one_dunning_whose_id_derives_from_it() -> None:
    assert started().id == dunning_id_for(INVOICE) == dunning_id_for(UUID(str(INVOICE)))
    assert dunning_id_for(uuid4()) != dunning_id_for(INVOICE)
    assert dunning_id_for(INVOICE) != INVOICE


def test_a_dunning_keeps_the_policy_it_started_with() -> None:
    dunning = started()
    assert dunning.policy == POLICY
    assert dunning.progress.anchor == date(2026, 3, 1)
    assert dunning.progress.settled == 0


def test_steps_are_settled_in_order_and_counted() -> None:
    dunning = started()
    dunning.request_reminder(step=0, reason="scheduled", amount_due=1000, currency="usd", as_of=at(1), at=at(1))
    with pytest.raises(DunningStateError, match="step 0 is not the next one"):
        dunning.request_reminder(step=0, reason="scheduled", amount_due=1000, currency="usd", as_of=at(1), at=at(1))
    with pytest.raises(DunningStateError, match="step 2 is not the next one"):
        dunning.skip(step=2, reason="", as_of=at(1), at=at(1))
    dunning.request_retry(
        step=1, payment_id="p", provider_payment_id="pi_1", outcome="declined", detail="", as_of=at(2), at=at(2)
    )
    assert (dunning.progress.settled, dunning.progress.retries, dunning.reminders) == (2, 1, 1)
    [retry] = [e for e in drain(dunning) if isinstance(e, Dunning.RetryRequested)]
    assert retry.idempotency_key == retry_key(INVOICE, 1) == f"dunning-{INVOICE}-step-1"


def test_no_more_retries_than_max_attempts_minus_one() -> None:
    policy = DunningPolicy.parse("retry:1,retry:2,retry:3", 2)
    dunning = Dunning.start(invoice_id=INVOICE, anchor=date(2026, 3, 1), policy=policy, as_of=T0, at=T0)
    dunning.request_retry(step=0, payment_id="p", provider_payment_id="pi", outcome="x", detail="", as_of=T0, at=T0)
    with pytest.raises(DunningStateError, match="all 1 retries"):
        dunning.request_retry(step=1, payment_id="p", provider_payment_id="pi", outcome="x", detail="", as_of=T0, at=T0)


def test_nothing_is_recorded_after_the_dunning_finished() -> None:
    exhausted = started()
    exhausted.exhaust(reason="max-attempts", step=None, failed_attempts=3, as_of=at(1), at=at(1))
    assert exhausted.status == EXHAUSTED
    assert exhausted.progress.finished
    with pytest.raises(DunningStateError, match="is exhausted"):
        exhausted.exhaust(reason="max-attempts", step=None, failed_attempts=3, as_of=at(1), at=at(1))
    with pytest.raises(DunningStateError, match="is exhausted"):
        exhausted.request_reminder(step=0, reason="", amount_due=1, currency="usd", as_of=at(1), at=at(1))
    stopped = started()
    stopped.stop(reason="invoice void", as_of=at(1), at=at(1))
    assert stopped.status == STOPPED
    with pytest.raises(DunningStateError, match="is stopped"):
        stopped.stop(reason="invoice void", as_of=at(1), at=at(1))


def test_every_dunning_event_has_an_explicit_topic_and_plain_json_state() -> None:
    assert get_topic(Dunning) == Dunning.TOPIC == "dunning"
    classes = event_classes(Dunning)
    assert {cls.TOPIC for cls in classes.values()} == {  # type: ignore[attr-defined]
        "dunning.started",
        "dunning.reminder-requested",
        "dunning.retry-requested",
        "dunning.step-skipped",
        "dunning.exhausted",
        "dunning.stopped",
        "dunning.retried-by-hand",
        "dunning.reminded-by-hand",
    }
    for cls in set(classes.values()):
        assert get_topic(cls) == vars(cls)["TOPIC"]
    events = every_dunning_event()
    assert {type(e) for e in events} == set(classes.values())
    offences = [
        bad
        for event in events
        for field in dataclasses.fields(event)  # type: ignore[arg-type]
        if field.name not in LIBRARY_FIELDS
        for bad in non_json_values(getattr(event, field.name), f"{type(event).__qualname__}.{field.name}")
    ]
    assert offences == []


def test_hand_steps_settle_no_step_and_retry_each_failed_attempt_once() -> None:
    dunning = started()
    dunning.remind_by_hand(amount_due=1000, currency="usd", as_of=at(1), at=at(1))
    retry = {"payment_id": str(uuid4()), "provider_payment_id": "pi_1", "outcome": "declined", "detail": ""}
    dunning.retry_by_hand(**retry, failed_attempts=1, as_of=at(1), at=at(1))
    with pytest.raises(DunningStateError, match="asked for already"):
        dunning.retry_by_hand(**retry, failed_attempts=1, as_of=at(2), at=at(2))
    dunning.retry_by_hand(**retry, failed_attempts=2, as_of=at(2), at=at(2))
    assert (dunning.settled, dunning.retries, dunning.reminders) == (0, 0, 1)
    dunning.stop(reason="invoice paid", as_of=at(3), at=at(3))
    with pytest.raises(DunningStateError, match="is stopped"):
        dunning.remind_by_hand(amount_due=1000, currency="usd", as_of=at(3), at=at(3))
