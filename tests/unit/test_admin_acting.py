"""`acting_as`: every command run for a dashboard user that changes something is recorded as one
AdminAction, saved with its effects; refused or idle commands record nothing."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from adapters.clock import ManualClock
from commands.admin.acting import Actor, acting_as, current_actor
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.admin.activity import AdminAction
from ledger.errors import InvalidInputError, InvoiceNotOpenError
from tests.fake_hasher import FakeHasher
from tests.unit.given import CUSTOMER, T0

ANN = Actor(user_id="5b0c1f8e-0000-4000-8000-000000000001", email="ann@example.com", role="admin")
BOB = Actor(user_id="5b0c1f8e-0000-4000-8000-000000000002", email="bob@example.com", role="admin")


@pytest.fixture
def app() -> Iterator[BillingApplication]:
    app = BillingApplication(
        clock=ManualClock(T0), env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=FakeHasher()
    )
    yield app
    app.close()


def actions(app: BillingApplication) -> list[Any]:
    return [event for _, event in app.events_after(0, 10_000) if isinstance(event, AdminAction.Performed)]


def draft(app: BillingApplication) -> UUID:
    line = NewLine(description="Consulting", quantity=1, unit_amount=1000)
    return app.create_draft(customer=CUSTOMER, currency="usd", lines=[line]).result


def test_a_command_outside_any_context_records_no_action(app: BillingApplication) -> None:
    draft(app)
    assert actions(app) == []
    assert current_actor() is None


def test_a_context_records_one_action_naming_the_actor_and_what_the_command_changed(app: BillingApplication) -> None:
    invoice_id = draft(app)
    with acting_as(ANN, "invoice.issue", target=str(invoice_id), detail="issued from the dashboard"):
        assert current_actor() == ANN
        outcome = app.issue(invoice_id)
    (action,) = actions(app)
    assert (action.user_id, action.email, action.role) == (ANN.user_id, ANN.email, ANN.role)
    assert (action.action, action.target, action.detail) == (
        "invoice.issue",
        str(invoice_id),
        "issued from the dashboard",
    )
    assert action.events == [
        {"aggregate_id": str(aggregate_id), "version": version} for aggregate_id, version in outcome.versions.items()
    ]
    assert current_actor() is None


def test_several_commands_in_one_context_record_one_action(app: BillingApplication) -> None:
    with acting_as(ANN, "invoice.create_and_issue"):
        invoice_id = draft(app)
        app.issue(invoice_id)
    (action,) = actions(app)
    assert action.events == [{"aggregate_id": str(invoice_id), "version": 2}]  # created with its line


def test_a_refused_command_records_nothing_and_the_next_one_records_the_action(app: BillingApplication) -> None:
    invoice_id = draft(app)
    with acting_as(ANN, "invoice.void", target=str(invoice_id)):
        with pytest.raises(InvoiceNotOpenError):
            app.void(invoice_id)  # a draft cannot be voided
        assert actions(app) == []
        app.issue(invoice_id)
    assert [action.action for action in actions(app)] == ["invoice.void"]


def test_a_command_that_changes_nothing_records_nothing(app: BillingApplication) -> None:
    app.admin.create_user("ann@example.com", role="admin", password="a long enough password", created_by="cli")
    app.admin.disable_user("ann@example.com", by="cli")
    with acting_as(ANN, "admin.disable_user", target="ann@example.com"):
        assert app.admin.disable_user("ann@example.com", by=ANN.email).result is False
    assert actions(app) == []


def test_contexts_in_sequence_record_one_action_each(app: BillingApplication) -> None:
    invoice_id = draft(app)
    with acting_as(ANN, "invoice.issue"):
        app.issue(invoice_id)
    with acting_as(BOB, "invoice.void"):
        app.void(invoice_id)
    assert [(a.email, a.action) for a in actions(app)] == [(ANN.email, "invoice.issue"), (BOB.email, "invoice.void")]


def test_a_nested_context_is_an_action_of_its_own_and_the_outer_one_carries_on(app: BillingApplication) -> None:
    first, second = draft(app), draft(app)
    with acting_as(ANN, "outer"):
        with acting_as(BOB, "inner"):
            assert current_actor() == BOB
            app.issue(first)
        assert current_actor() == ANN
        app.issue(second)
    recorded = actions(app)
    assert [(a.email, a.action) for a in recorded] == [(BOB.email, "inner"), (ANN.email, "outer")]
    assert recorded[1].events[0]["aggregate_id"] == str(second)


def test_a_thread_started_with_the_context_copied_acts_in_it(app: BillingApplication) -> None:
    """As Starlette's run_in_threadpool does: the command runs on another thread."""
    invoice_id = draft(app)
    with acting_as(ANN, "invoice.issue"):
        copied = contextvars.copy_context()
        worker = threading.Thread(target=copied.run, args=(app.issue, invoice_id))
        worker.start()
        worker.join()
        app.void(invoice_id)  # the same context: recorded already
    assert [a.action for a in actions(app)] == ["invoice.issue"]


def test_a_lost_write_race_is_decided_again_and_records_one_action(app: BillingApplication) -> None:
    """The first save collides with another writer: nothing of it is stored, the action neither;
    the retry saves the command's events and one action, together."""
    invoice_id = draft(app)
    attempts: list[int] = []
    save = app.runner._save

    def collide_once(*aggregates: Aggregate) -> object:
        attempts.append(len(aggregates))
        if len(attempts) == 1:
            raise IntegrityError("another writer got there first")
        return save(*aggregates)

    app.runner._save = collide_once
    with acting_as(ANN, "invoice.issue", target=str(invoice_id)):
        app.issue(invoice_id)
    assert attempts == [3, 3]  # the invoice, its number series and the action, each time
    (action,) = actions(app)
    assert action.target == str(invoice_id)


def test_a_bad_action_name_is_refused_before_anything_runs() -> None:
    with pytest.raises(InvalidInputError) as refused, acting_as(ANN, ""):
        pytest.fail("the block must not run")
    assert refused.value.field == "action"
    with pytest.raises(InvalidInputError), acting_as(ANN, "x" * 65):
        pytest.fail("the block must not run")
