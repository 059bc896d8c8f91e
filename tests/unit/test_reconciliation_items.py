"""The ReconciliationItem aggregate: a stable id per difference, the actions each class allows,
one settlement, reopened when found again after it was resolved."""

from __future__ import annotations

import json

import pytest

from ledger.errors import InvalidTextError, LedgerError
from ledger.reconciliation.items import (
    APPLY,
    CLASSES,
    DISPUTE_MISMATCH,
    DUPLICATE_PAYMENT,
    EXPLAIN,
    EXPLAINED,
    FIXED,
    MISSING_IN_LEDGER,
    MISSING_IN_STRIPE,
    NOTE_LIMIT,
    OPEN,
    PAYOUT_MISMATCH,
    REFUND_DUPLICATE,
    REFUND_MISSING_IN_LEDGER,
    RESOLVED,
    ApplyRefusedError,
    Difference,
    ItemSettledError,
    PaymentNotInLedgerError,
    ReconciliationActionError,
    ReconciliationItem,
    ReconciliationItemNotFoundError,
    allowed_actions,
    item_id_for,
)
from tests.unit.given import T0, at, drain
from web.problems import ledger_problem


def difference(cls: str = MISSING_IN_LEDGER, key: str = "pi_1", amount: int = 5_000) -> Difference:
    return Difference(
        id=str(item_id_for(cls, key)),
        cls=cls,
        currency="usd",
        amount_ledger=None,
        amount_stripe=amount,
        stripe_id=key,
        invoice_id=None,
        payment_id=None,
        explanation=f"{key} succeeded at Stripe for {amount}; the ledger has no payment for it",
    )


def detected(cls: str = MISSING_IN_LEDGER, key: str = "pi_1") -> ReconciliationItem:
    item = ReconciliationItem.detect(difference(cls, key), run_id="run-1", at=T0)
    drain(item)
    return item


def test_the_same_difference_has_the_same_id_and_another_one_another() -> None:
    assert item_id_for(MISSING_IN_LEDGER, "pi_1") == item_id_for(MISSING_IN_LEDGER, "pi_1")
    assert item_id_for(MISSING_IN_LEDGER, "pi_1") != item_id_for(MISSING_IN_LEDGER, "pi_2")
    assert item_id_for(MISSING_IN_LEDGER, "pi_1") != item_id_for(MISSING_IN_STRIPE, "pi_1")


def test_ids_do_not_change_between_releases() -> None:
    # Stored items are found again by these ids: a change of namespace or key format would turn
    # every known difference into a new one.
    assert [str(item_id_for(cls, "pi_1")) for cls in (MISSING_IN_LEDGER, DUPLICATE_PAYMENT)] == [
        "18a6a6ab-238a-5300-b93d-a7c0ab0e11ca",
        "bcf740aa-20f4-5480-9ecc-6e27959bc98b",
    ]


def test_an_unknown_class_has_no_id() -> None:
    with pytest.raises(ValueError, match="unknown reconciliation class"):
        item_id_for("missing_everywhere", "pi_1")


@pytest.mark.parametrize(
    ("cls", "actions"),
    [
        (MISSING_IN_LEDGER, (APPLY, EXPLAIN)),
        (REFUND_MISSING_IN_LEDGER, (APPLY, EXPLAIN)),
        (DISPUTE_MISMATCH, (APPLY, EXPLAIN)),
        (PAYOUT_MISMATCH, (APPLY, EXPLAIN)),
        (DUPLICATE_PAYMENT, (REFUND_DUPLICATE, EXPLAIN)),
        (MISSING_IN_STRIPE, (EXPLAIN,)),
    ],
)
def test_each_class_allows_its_actions(cls: str, actions: tuple[str, ...]) -> None:
    assert allowed_actions(cls) == actions


@pytest.mark.parametrize("cls", CLASSES)
def test_an_action_the_class_does_not_allow_is_refused(cls: str) -> None:
    item = detected(cls)
    for action in (APPLY, REFUND_DUPLICATE, "delete"):
        if action in allowed_actions(cls):
            continue
        with pytest.raises(ReconciliationActionError):
            item.settle(action=action, by="ana", note="because", at=at(1))
    with pytest.raises(ReconciliationActionError):  # the ledger's own action, never a person's
        item.require_settleable(FIXED, note="because", by="ana")
    assert item.status == OPEN
    assert drain(item) == []


def test_a_new_item_is_open_and_keeps_what_was_found() -> None:
    item = ReconciliationItem.detect(difference(), run_id="run-1", at=T0)
    assert (item.status, item.resolution, item.cls) == (OPEN, None, MISSING_IN_LEDGER)
    assert item.found == difference()
    assert item.created_on == T0


def test_explain_records_who_when_and_why() -> None:
    item = detected()
    item.settle(action=EXPLAIN, by="ana", note="paid by bank transfer, booked by hand", at=at(5))
    assert item.status == EXPLAINED
    assert item.resolution == {
        "by": "ana",
        "at": at(5).isoformat(),
        "action": EXPLAIN,
        "note": "paid by bank transfer, booked by hand",
        "events": [],
    }


def test_an_explanation_needs_a_note_and_an_author() -> None:
    item = detected()
    for note, by in (("", "ana"), ("   ", "ana"), ("x" * (NOTE_LIMIT + 1), "ana"), ("fine", "")):
        with pytest.raises(InvalidTextError):
            item.settle(action=EXPLAIN, by=by, note=note, at=at(1))
    assert item.status == OPEN
    assert drain(item) == []


def test_an_item_is_settled_once() -> None:
    item = detected()
    item.settle(action=APPLY, by="ana", note="the webhook never came", at=at(1), events=[{"id": "p", "version": 2}])
    drain(item)
    for action in (APPLY, EXPLAIN):
        with pytest.raises(ItemSettledError):
            item.settle(action=action, by="bo", note="again", at=at(2))
    assert item.resolution is not None
    assert item.resolution["by"] == "ana"
    assert drain(item) == []


def test_an_explained_item_is_not_settled_again_by_a_person() -> None:
    item = detected()
    item.settle(action=EXPLAIN, by="ana", note="known", at=at(1))
    with pytest.raises(ItemSettledError):
        item.require_settleable(APPLY, note="now apply", by="ana")


def test_fixed_resolves_an_open_item_with_the_events_that_fixed_it() -> None:
    item = detected()
    fixing = [{"id": "0b9b6f2e-8c1d-4f5e-9a3b-2c7d1e0f4a56", "version": 3}]
    item.settle(action=FIXED, by="ledger", note="not found again", at=at(1), events=fixing)
    assert item.status == RESOLVED
    assert item.resolution is not None
    assert (item.resolution["action"], item.resolution["by"], item.resolution["events"]) == (FIXED, "ledger", fixing)


def test_fixed_after_it_was_resolved_is_a_no_op() -> None:
    item = detected()
    item.settle(action=APPLY, by="ana", note="applied", at=at(1))
    drain(item)
    item.settle(action=FIXED, by="ledger", note="not found again", at=at(2))
    assert drain(item) == []
    assert item.resolution is not None
    assert item.resolution["action"] == APPLY


def test_fixed_resolves_an_explained_item_that_is_no_longer_found() -> None:
    item = detected()
    item.settle(action=EXPLAIN, by="ana", note="known", at=at(1))
    item.settle(action=FIXED, by="ledger", note="not found again", at=at(2))
    assert item.status == RESOLVED


def test_found_again_after_it_was_resolved_it_is_reopened_with_what_was_found() -> None:
    item = detected()
    item.settle(action=APPLY, by="ana", note="applied", at=at(1))
    drain(item)
    again = difference(amount=4_000)
    assert item.reopen(again, run_id="run-2", at=at(2)) is True
    assert (item.status, item.resolution, item.found) == (OPEN, None, again)
    assert item.created_on == T0  # first detected then, whatever happened since
    [event] = drain(item)
    assert event.run_id == "run-2"


@pytest.mark.parametrize("settled", [None, EXPLAIN])
def test_found_again_while_open_or_explained_it_stays_as_it_is(settled: str | None) -> None:
    item = detected()
    if settled:
        item.settle(action=settled, by="ana", note="known", at=at(1))
    drain(item)
    assert item.reopen(difference(amount=4_000), run_id="run-2", at=at(2)) is False
    assert drain(item) == []
    assert item.found == difference()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ReconciliationActionError(MISSING_IN_STRIPE, APPLY), 422),
        (ItemSettledError("item", EXPLAINED), 409),
        (ReconciliationItemNotFoundError("item"), 404),
        (ApplyRefusedError("a closed dispute is not reopened"), 409),
        (PaymentNotInLedgerError("pi_1", "missing", "refund re_1"), 409),
    ],
)
def test_the_api_answers_each_refusal_with_its_status(error: LedgerError, status: int) -> None:
    response = ledger_problem(error)
    assert response.status_code == status
    body = json.loads(bytes(response.body))
    assert (body["status"], body["detail"]) == (status, str(error))
    if isinstance(error, ReconciliationActionError):
        assert body["errors"] == [{"field": "action", "message": str(error)}]
