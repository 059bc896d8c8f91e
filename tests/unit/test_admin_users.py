"""The dashboard's users: the aggregate's rules and the commands of `app.admin`, on no store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from uuid import UUID

import pytest
from argon2 import PasswordHasher as Argon2
from argon2.profiles import CHEAPEST

from adapters.admin.passwords import Argon2Hasher
from adapters.clock import ManualClock
from commands.application import BillingApplication
from ledger.admin.users import ADMIN, AUDITOR, AdminUser, normalize_email, user_id_for
from ledger.errors import (
    AdminUserExistsError,
    AdminUserNotFoundError,
    InvalidInputError,
    WeakPasswordError,
)
from tests.fake_hasher import FakeHasher
from tests.unit.given import T0, at, drain
from web.problems import ledger_problem

PASSWORD = "correct horse battery"


@pytest.fixture
def hasher() -> FakeHasher:
    return FakeHasher()


@pytest.fixture
def app(hasher: FakeHasher) -> Iterator[BillingApplication]:
    app = BillingApplication(clock=ManualClock(T0), env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=hasher)
    yield app
    app.close()


# ---------------------------------------------------------------------------- the domain


@pytest.mark.parametrize(
    ("given", "kept"),
    [("Ann@Example.COM", "ann@example.com"), ("  ann@example.com\n", "ann@example.com")],
)
def test_normalize_email_strips_and_lowercases(given: str, kept: str) -> None:
    assert normalize_email(given) == kept


@pytest.mark.parametrize("bad", ["", "   ", "ann", "ann@example", "a n@example.com", "@example.com", 42, None])
def test_normalize_email_refuses_a_malformed_address_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidInputError) as refused:
        normalize_email(bad)
    assert refused.value.field == "email"


def test_the_user_id_is_the_same_for_every_spelling_of_one_address() -> None:
    assert user_id_for("Ann@Example.com ") == user_id_for("ann@example.com")
    assert user_id_for("ann@example.com") != user_id_for("bob@example.com")


def test_a_created_user_is_active_with_its_normalized_email_and_hash() -> None:
    user = AdminUser.create(email="Ann@Example.com", role=AUDITOR, password_hash="h", created_by="cli", at=T0)
    (created,) = drain(user)
    assert (user.email, user.role, user.password_hash, user.active) == ("ann@example.com", AUDITOR, "h", True)
    assert user.id == user_id_for("ann@example.com")
    assert created.created_by == "cli"


def test_an_unknown_role_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInputError) as refused:
        AdminUser.create(email="ann@example.com", role="root", password_hash="h", created_by="cli", at=T0)
    assert refused.value.field == "role"


def test_disabling_twice_records_one_event_and_enabling_brings_the_user_back() -> None:
    user = AdminUser.create(email="ann@example.com", role=ADMIN, password_hash="h", created_by="cli", at=T0)
    drain(user)
    assert user.disable(by="boss@example.com", at=at(1)) is True
    assert user.disable(by="boss@example.com", at=at(2)) is False
    assert [type(e).__name__ for e in drain(user)] == ["Disabled"]
    assert not user.active
    assert user.enable(by="boss@example.com", at=at(3)) is True
    assert user.enable(by="boss@example.com", at=at(3)) is False
    assert user.active
    assert [type(e).__name__ for e in drain(user)] == ["Enabled"]


# ---------------------------------------------------------------------------- the commands


def test_create_then_authenticate_with_the_right_password_only(app: BillingApplication) -> None:
    user_id = app.admin.create_user("Ann@Example.com", role=ADMIN, password=PASSWORD, created_by="cli").result
    assert user_id == user_id_for("ann@example.com")
    user = app.admin.authenticate("ANN@example.com", PASSWORD)
    assert user is not None
    assert user.id == user_id
    assert app.admin.authenticate("ann@example.com", PASSWORD + "!") is None
    stored = app.admin.user(user_id)
    assert stored is not None
    assert PASSWORD not in stored.password_hash


def test_the_same_email_twice_is_a_conflict(app: BillingApplication) -> None:
    app.admin.create_user("ann@example.com", role=ADMIN, password=PASSWORD, created_by="cli")
    with pytest.raises(AdminUserExistsError):
        app.admin.create_user(" ANN@example.com", role=AUDITOR, password=PASSWORD, created_by="cli")


def test_a_short_password_is_refused_before_anything_is_stored(app: BillingApplication) -> None:
    with pytest.raises(WeakPasswordError) as refused:
        app.admin.create_user("ann@example.com", role=ADMIN, password="x" * 11, created_by="cli")
    assert refused.value.field == "password"
    assert app.admin.user_by_email("ann@example.com") is None


def test_a_bad_role_is_refused_before_anything_is_stored(app: BillingApplication) -> None:
    with pytest.raises(InvalidInputError):
        app.admin.create_user("ann@example.com", role="owner", password=PASSWORD, created_by="cli")
    assert app.admin.user_by_email("ann@example.com") is None


def test_a_disabled_user_cannot_log_in_until_enabled(app: BillingApplication) -> None:
    app.admin.create_user("ann@example.com", role=ADMIN, password=PASSWORD, created_by="cli")
    assert app.admin.disable_user("ann@example.com", by="cli").result is True
    assert app.admin.disable_user("ann@example.com", by="cli").result is False
    assert app.admin.authenticate("ann@example.com", PASSWORD) is None
    assert app.admin.enable_user("ann@example.com", by="cli").result is True
    assert app.admin.authenticate("ann@example.com", PASSWORD) is not None


def test_disabling_an_unknown_user_is_not_found(app: BillingApplication) -> None:
    with pytest.raises(AdminUserNotFoundError):
        app.admin.disable_user("nobody@example.com", by="cli")


def test_a_changed_password_replaces_the_old_one(app: BillingApplication) -> None:
    app.admin.create_user("ann@example.com", role=ADMIN, password=PASSWORD, created_by="cli")
    app.admin.change_password("ann@example.com", password="another long password", by="ann@example.com")
    assert app.admin.authenticate("ann@example.com", PASSWORD) is None
    assert app.admin.authenticate("ann@example.com", "another long password") is not None


def test_an_unknown_email_still_costs_a_verification(app: BillingApplication, hasher: FakeHasher) -> None:
    before = hasher.verified
    assert app.admin.authenticate("nobody@example.com", PASSWORD) is None
    assert app.admin.authenticate("not an address", PASSWORD) is None
    assert hasher.verified == before + 2


def test_needs_rehash_follows_the_hashers_parameters(app: BillingApplication, hasher: FakeHasher) -> None:
    app.admin.create_user("ann@example.com", role=ADMIN, password=PASSWORD, created_by="cli")
    user = app.admin.user_by_email("ann@example.com")
    assert user is not None
    assert not app.admin.needs_rehash(user)
    hasher.cost = 2
    assert app.admin.needs_rehash(user)


def test_a_login_with_an_outdated_hash_upgrades_it(app: BillingApplication, hasher: FakeHasher) -> None:
    app.admin.create_user("ann@example.com", role=ADMIN, password=PASSWORD, created_by="cli")
    hasher.cost = 2
    user = app.admin.authenticate("ann@example.com", PASSWORD)
    assert user is not None
    assert user.password_hash.startswith("fake$2$")
    assert not app.admin.needs_rehash(user)
    assert app.admin.authenticate("ann@example.com", PASSWORD) is not None
    changed = [e for _, e in app.events_after(0, 100) if isinstance(e, AdminUser.PasswordChanged)]
    assert [e.by for e in changed] == ["ann@example.com"]  # once: the second login found it current


def test_an_application_without_a_hasher_lets_nobody_in() -> None:
    app = BillingApplication(clock=ManualClock(T0), env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    with pytest.raises(RuntimeError):
        app.admin.create_user("ann@example.com", role=ADMIN, password=PASSWORD, created_by="cli")
    assert app.admin.authenticate("ann@example.com", PASSWORD) is None


# ---------------------------------------------------------------------------- argon2


def test_argon2_hashes_verify_only_their_password() -> None:
    hasher = Argon2Hasher(Argon2.from_parameters(CHEAPEST))
    hashed = hasher.hash(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert hasher.verify(hashed, PASSWORD)
    assert not hasher.verify(hashed, PASSWORD + "x")
    assert not hasher.verify("not a hash", PASSWORD)
    assert not hasher.needs_rehash(hashed)


def test_argon2_defaults_are_rfc_9106_low_memory_and_older_hashes_need_a_rehash() -> None:
    cheap = Argon2Hasher(Argon2.from_parameters(CHEAPEST)).hash(PASSWORD)
    default = Argon2Hasher()
    assert default.needs_rehash(cheap)
    assert default.verify(cheap, PASSWORD)  # old hashes keep working while they are replaced
    assert default.needs_rehash("not a hash")


def test_the_user_id_is_a_uuid() -> None:
    assert isinstance(user_id_for("ann@example.com"), UUID)


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (AdminUserExistsError("ann@example.com"), 409, "admin-user-exists"),
        (AdminUserNotFoundError("ann@example.com"), 404, "admin-user-not-found"),
        (WeakPasswordError(12), 422, "weak-password"),
    ],
)
def test_the_account_errors_answer_their_status(error: Exception, status: int, slug: str) -> None:
    answer = ledger_problem(error)  # type: ignore[arg-type]
    assert answer.status_code == status
    assert json.loads(bytes(answer.body))["type"].endswith(slug)
