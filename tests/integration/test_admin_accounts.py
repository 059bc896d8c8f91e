"""Dashboard accounts on each backend: users created, authenticated, disabled; sessions kept
server-side with their timeouts and revocation; every dashboard action an event beside its effects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from adapters.admin.sessions import SessionStore, session_hash
from adapters.clock import ManualClock
from adapters.read_models import read_model_projections
from commands.admin.acting import Actor, acting_as
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.admin.activity import AdminAction
from ledger.admin.users import ADMIN, AUDITOR, user_id_for
from ledger.errors import AdminUserExistsError, AdminUserNotFoundError, InvoiceNotOpenError
from projections.admin.activity import list_activity
from projections.admin.users import list_users
from projections.consistency import check
from projections.runner import ProjectionRunner
from projections.schema import upgrade
from projections.tables import admin_sessions

PASSWORD = "correct horse battery"


@pytest.fixture
def sessions(engine: Engine, clock: ManualClock) -> SessionStore:
    upgrade(engine)
    return SessionStore(engine, clock=clock, idle_timeout=timedelta(minutes=30), absolute_timeout=timedelta(hours=12))


def _actions(app: BillingApplication) -> list[Any]:
    return [event for _, event in app.events_after(0, 10_000) if isinstance(event, AdminAction.Performed)]


# ---------------------------------------------------------------------------- users


def test_a_user_is_created_authenticated_disabled_and_enabled(app: BillingApplication) -> None:
    user_id = app.admin.create_user("Ann@Example.com", role=ADMIN, password=PASSWORD, created_by="cli").result
    assert user_id == user_id_for("ann@example.com")
    user = app.admin.authenticate("ann@example.com", PASSWORD)
    assert user is not None
    assert (user.email, user.role, user.active) == ("ann@example.com", ADMIN, True)
    assert app.admin.authenticate("ann@example.com", "wrong password!!") is None
    assert app.admin.authenticate("bob@example.com", PASSWORD) is None

    assert app.admin.disable_user("ann@example.com", by="cli").result is True
    assert app.admin.authenticate("ann@example.com", PASSWORD) is None
    assert app.admin.enable_user("ANN@example.com", by="cli").result is True
    assert app.admin.authenticate("ann@example.com", PASSWORD) is not None

    app.admin.change_password("ann@example.com", password="a new long password", by="ann@example.com")
    assert app.admin.authenticate("ann@example.com", PASSWORD) is None
    assert app.admin.authenticate("ann@example.com", "a new long password") is not None


def test_the_same_email_twice_is_a_conflict_and_stores_nothing_more(app: BillingApplication, make_app: Any) -> None:
    app.admin.create_user("ann@example.com", role=ADMIN, password=PASSWORD, created_by="cli")
    head = app.head()
    other = make_app()  # another process: it has no cached copy of the user
    with pytest.raises(AdminUserExistsError):
        other.admin.create_user("ann@example.com", role=AUDITOR, password="another password!", created_by="cli")
    assert app.head() == head
    user = other.admin.user_by_email("ann@example.com")
    assert user is not None
    assert user.role == ADMIN


def test_an_unknown_user_cannot_be_disabled(app: BillingApplication) -> None:
    with pytest.raises(AdminUserNotFoundError):
        app.admin.disable_user("nobody@example.com", by="cli")


# ---------------------------------------------------------------------------- the actor hook


def test_a_dashboard_action_is_stored_with_its_effects_and_a_refused_one_is_not(app: BillingApplication) -> None:
    actor = Actor(str(user_id_for("ann@example.com")), "ann@example.com", ADMIN)
    invoice_id = app.create_draft(
        customer={"email": "ap@acme.example"}, currency="usd", lines=[NewLine("Fee", 1, 500)]
    ).result
    with acting_as(actor, "invoice.void", target=str(invoice_id)), pytest.raises(InvoiceNotOpenError):
        app.void(invoice_id)
    assert _actions(app) == []
    with acting_as(actor, "invoice.issue", target=str(invoice_id)):
        outcome = app.issue(invoice_id)
    (action,) = _actions(app)
    assert action.action == "invoice.issue"
    assert {e["aggregate_id"]: e["version"] for e in action.events} == {
        str(aggregate_id): version for aggregate_id, version in outcome.versions.items()
    }


# ---------------------------------------------------------------------------- read models


def test_the_users_read_model_lists_each_user_with_their_status(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine, clock: ManualClock
) -> None:
    app.admin.create_user("bob@example.com", role=AUDITOR, password=PASSWORD, created_by="cli")
    clock.advance(timedelta(minutes=1))
    app.admin.create_user("ann@example.com", role=ADMIN, password=PASSWORD, created_by="bob@example.com")
    runner.catch_up()
    clock.advance(timedelta(minutes=1))
    app.admin.disable_user("bob@example.com", by="ann@example.com")
    app.admin.change_password("ann@example.com", password="a new long password", by="ann@example.com")
    runner.catch_up()
    rows = list_users(engine)
    assert [(r["email"], r["role"], r["status"], r["created_by"], r["version"]) for r in rows] == [
        ("ann@example.com", ADMIN, "active", "bob@example.com", 2),
        ("bob@example.com", AUDITOR, "disabled", "cli", 2),
    ]
    assert rows[1]["user_id"] == str(user_id_for("bob@example.com"))
    assert rows[1]["updated_at"] == clock.now()
    assert rows[1]["created_at"] == clock.now() - timedelta(minutes=2)
    assert "password_hash" not in rows[0]


def test_the_activity_read_model_pages_newest_first_and_filters(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine, clock: ManualClock
) -> None:
    ann = Actor(str(user_id_for("ann@example.com")), "ann@example.com", ADMIN)
    bob = Actor(str(user_id_for("bob@example.com")), "bob@example.com", ADMIN)
    done = []
    for n in range(5):
        clock.advance(timedelta(minutes=1))
        actor = ann if n % 2 == 0 else bob
        with acting_as(actor, "invoice.create" if n < 4 else "reconciliation.resolve", target=f"t{n}", detail=f"#{n}"):
            done.append(
                app.create_draft(customer={"email": "ap@acme.example"}, currency="usd", lines=[NewLine("Fee", 1, 9)])
            )
    runner.catch_up()

    first = list_activity(engine, limit=2)
    assert [row["target"] for row in first.rows] == ["t4", "t3"]
    assert first.next_cursor is not None
    second = list_activity(engine, limit=2, cursor=first.next_cursor)
    third = list_activity(engine, limit=2, cursor=second.next_cursor)
    assert [row["target"] for row in second.rows + third.rows] == ["t2", "t1", "t0"]
    assert third.next_cursor is None

    row = first.rows[1]
    assert (row["email"], row["user_id"], row["action"], row["detail"]) == (
        bob.email,
        bob.user_id,
        "invoice.create",
        "#3",
    )
    assert row["performed_at"] == clock.now() - timedelta(minutes=1)
    assert row["events"] == [{"aggregate_id": str(done[3].result), "version": 2}]

    by_ann = list_activity(engine, user="ANN@example.com")
    assert [r["target"] for r in by_ann.rows] == ["t4", "t2", "t0"]
    assert [r["target"] for r in list_activity(engine, user=bob.user_id).rows] == ["t3", "t1"]
    assert [r["target"] for r in list_activity(engine, action="reconciliation").rows] == ["t4"]
    assert len(list_activity(engine, action="invoice.create").rows) == 4
    assert list_activity(engine, action="invoice.cre").rows == []
    assert list_activity(engine, user="nobody@example.com").rows == []


def test_the_admin_read_models_built_live_equal_a_rebuild(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine, clock: ManualClock
) -> None:
    ann = Actor(str(user_id_for("ann@example.com")), "ann@example.com", ADMIN)
    app.admin.create_user("ann@example.com", role=ADMIN, password=PASSWORD, created_by="cli")
    runner.catch_up(batch_size=1)
    clock.advance(timedelta(minutes=1))
    with acting_as(ann, "invoice.create", detail="from a test"):
        app.create_draft(customer={"email": "ap@acme.example"}, currency="usd", lines=[NewLine("Fee", 1, 9)])
    app.admin.disable_user("ann@example.com", by="cli")
    runner.catch_up(batch_size=1)
    report = check(engine, app, lambda: read_model_projections(app), batch_size=2)
    assert report.ok, str(report)
    assert {"admin_users", "admin_activity"} <= {t.table for t in report.tables}
    assert report.table("admin_activity").live_rows == 1


# ---------------------------------------------------------------------------- sessions


def test_a_session_is_found_by_its_raw_id_and_only_its_hash_is_kept(sessions: SessionStore, engine: Engine) -> None:
    raw, session = sessions.create("u-1", address="127.0.0.1", user_agent="pytest")
    assert len(raw) >= 43
    assert session.user_id == "u-1"
    assert session.csrf_token
    found = sessions.get(raw)
    assert found == session
    assert sessions.get(raw + "x") is None
    assert sessions.get("") is None
    with engine.connect() as conn:
        kept = conn.execute(select(admin_sessions.c.session_hash)).scalars().all()
    assert kept == [session_hash(raw)]
    assert raw not in kept


def test_each_session_has_its_own_csrf_token(sessions: SessionStore) -> None:
    _, first = sessions.create("u-1", address="", user_agent="")
    _, second = sessions.create("u-1", address="", user_agent="")
    assert first.csrf_token != second.csrf_token


def test_a_session_left_idle_ends_and_one_in_use_is_kept_alive(sessions: SessionStore, clock: ManualClock) -> None:
    busy, _ = sessions.create("u-1", address="", user_agent="")
    idle, _ = sessions.create("u-2", address="", user_agent="")
    for _ in range(3):
        clock.advance(timedelta(minutes=20))
        assert sessions.get(busy) is not None  # each request moves its idle deadline
    assert sessions.get(idle) is None


def test_the_last_seen_time_is_written_at_most_once_a_minute(sessions: SessionStore, clock: ManualClock) -> None:
    raw, created = sessions.create("u-1", address="", user_agent="")
    clock.advance(timedelta(seconds=30))
    found = sessions.get(raw)
    assert found is not None
    assert found.last_seen_at == created.last_seen_at
    clock.advance(timedelta(seconds=31))
    found = sessions.get(raw)
    assert found is not None
    assert found.last_seen_at == clock.now()
    again = sessions.get(raw)
    assert again is not None
    assert again.last_seen_at == clock.now()


def test_a_session_in_use_still_ends_at_its_absolute_timeout(sessions: SessionStore, clock: ManualClock) -> None:
    raw, session = sessions.create("u-1", address="", user_agent="")
    assert session.expires_at == session.created_at + timedelta(hours=12)
    while clock.now() + timedelta(minutes=20) < session.expires_at:
        clock.advance(timedelta(minutes=20))
        assert sessions.get(raw) is not None
    clock.set(session.expires_at)
    assert sessions.get(raw) is None


def test_revoke_ends_one_session_and_revoke_user_ends_all_of_theirs(sessions: SessionStore) -> None:
    first, _ = sessions.create("u-1", address="", user_agent="")
    second, _ = sessions.create("u-1", address="", user_agent="")
    third, _ = sessions.create("u-1", address="", user_agent="")
    other, _ = sessions.create("u-2", address="", user_agent="")
    sessions.revoke(first)
    assert sessions.get(first) is None
    assert sessions.get(second) is not None
    assert sessions.revoke_user("u-1") == 2
    assert sessions.get(second) is None
    assert sessions.get(third) is None
    assert sessions.get(other) is not None
    sessions.revoke("never issued")  # nothing to end: no error


def test_a_new_session_clears_the_users_ended_ones(sessions: SessionStore, engine: Engine, clock: ManualClock) -> None:
    revoked, _ = sessions.create("u-1", address="", user_agent="")
    sessions.revoke(revoked)
    sessions.create("u-2", address="", user_agent="")
    clock.advance(timedelta(hours=1))
    live, _ = sessions.create("u-1", address="", user_agent="")
    with engine.connect() as conn:
        users = sorted(conn.execute(select(admin_sessions.c.user_id)).scalars().all())
    assert users == ["u-1", "u-2"]  # u-1's revoked row went; u-2's idle one is not u-1's to clear
    assert sessions.get(live) is not None
