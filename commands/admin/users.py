"""The dashboard's users (`app.admin`): create, disable, enable, change a password, log in.

Passwords reach only the `PasswordHasher` port: the aggregate (ledger/admin/users.py) and the
log keep the hash. A user's id derives from the email, so creating one twice collides in the
store; the check before it gives the 409 a name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from commands.ports import PasswordHasher
from commands.runner import CommandRunner, Decision, Outcome
from ledger.admin.users import AdminUser, normalize_email, require_role, user_id_for
from ledger.errors import (
    AdminUserExistsError,
    AdminUserNotFoundError,
    InvalidInputError,
    LedgerError,
    WeakPasswordError,
)

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # hashing is slow on purpose: no megabyte passwords to hash


class AdminUsers:
    """Commands and reads of the dashboard's users, on the application's command runner.

    Without a `hasher` nobody can be created (RuntimeError: the application was built without
    one, not through adapters.bootstrap) and nobody logs in.
    """

    def __init__(self, runner: CommandRunner, hasher: PasswordHasher | None) -> None:
        self._runner = runner
        self._hasher = hasher
        self._dummy_hash: str | None = None

    # ------------------------------------------------------------------------ commands

    def create_user(self, email: str, *, role: str, password: str, created_by: str) -> Outcome[UUID]:
        """A new active user. AdminUserExistsError (409) when the email is taken, InvalidInputError
        (422) for a malformed email or an unknown role, WeakPasswordError (422) for a short password."""
        address = normalize_email(email)
        require_role(role)
        password_hash = self._hashing().hash(_require_password(password))

        def decide(at: datetime) -> Decision:
            if self._runner.get(user_id_for(address), AdminUser) is not None:
                raise AdminUserExistsError(address)
            user = AdminUser.create(email=address, role=role, password_hash=password_hash, created_by=created_by, at=at)
            return {"user_id": str(user.id)}, [user]

        # The hash is not in the arguments: they are only fingerprinted for a receipt, and no key is given.
        arguments = {"email": address, "role": role, "created_by": created_by}
        return self._runner.execute("admin.create_user", arguments, None, decide).map(
            lambda result: UUID(result["user_id"])
        )

    def disable_user(self, email: str, *, by: str) -> Outcome[bool]:
        """Disable the user: they can no longer log in (the caller revokes their sessions).
        False when they were disabled already."""
        return self._step("admin.disable_user", email, by, lambda user, at: user.disable(by=by, at=at))

    def enable_user(self, email: str, *, by: str) -> Outcome[bool]:
        """Let a disabled user log in again. False when they were active."""
        return self._step("admin.enable_user", email, by, lambda user, at: user.enable(by=by, at=at))

    def change_password(self, email: str, *, password: str, by: str) -> Outcome[bool]:
        password_hash = self._hashing().hash(_require_password(password))

        def change(user: AdminUser, at: datetime) -> bool:
            user.change_password(password_hash, by=by, at=at)
            return True

        return self._step("admin.change_password", email, by, change)

    def _step(self, command: str, email: str, by: str, step: Callable[[AdminUser, datetime], bool]) -> Outcome[bool]:
        address = normalize_email(email)

        def decide(at: datetime) -> Decision:
            user = self._runner.get(user_id_for(address), AdminUser)
            if user is None:
                raise AdminUserNotFoundError(address)
            changed = step(user, at)
            return {"changed": changed}, [user] if changed else []

        arguments: dict[str, Any] = {"email": address, "by": by}
        return self._runner.execute(command, arguments, None, decide).map(lambda result: bool(result["changed"]))

    # ------------------------------------------------------------------------ reads

    def authenticate(self, email: str, password: str) -> AdminUser | None:
        """The active user whose password this is; None for an unknown email, a wrong password
        or a disabled user, alike. An unknown email is checked against a dummy hash so that it
        takes as long as a known one (no telling which addresses have accounts by timing).
        A hash made with weaker parameters than the hasher's is made again (`password-changed`
        by the user themselves)."""
        try:
            address = normalize_email(email)
        except InvalidInputError:
            address = None
        user = None if address is None else self.user_by_email(address)
        if self._hasher is None or not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            return None
        if user is None:
            self._hasher.verify(self._dummy(), password)
            return None
        if not self._hasher.verify(user.password_hash, password):
            return None
        if not user.active:
            return None
        if self._hasher.needs_rehash(user.password_hash):
            return self._rehashed(user, password)
        return user

    def _rehashed(self, user: AdminUser, password: str) -> AdminUser:
        """The user with their hash made again with the hasher's current parameters: the one
        moment the password is at hand. A failure keeps the old hash (it still verifies) and
        the login."""
        try:
            self.change_password(user.email, password=password, by=user.email)
        except LedgerError:
            logger.warning("the password hash of %s was not upgraded", user.email, exc_info=True)
            return user
        return self.user(user.id) or user

    def needs_rehash(self, user: AdminUser) -> bool:
        """Whether the user's hash predates the hasher's parameters (re-hash at the next login)."""
        return self._hasher is not None and self._hasher.needs_rehash(user.password_hash)

    def user(self, user_id: UUID) -> AdminUser | None:
        return self._runner.get(user_id, AdminUser)

    def user_by_email(self, email: str) -> AdminUser | None:
        try:
            return self.user(user_id_for(email))
        except InvalidInputError:
            return None

    def _hashing(self) -> PasswordHasher:
        if self._hasher is None:
            raise RuntimeError("no PasswordHasher configured: build the application with adapters.bootstrap")
        return self._hasher

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            # Made with the hasher's own parameters, so verifying it costs what a real one does.
            self._dummy_hash = self._hashing().hash("not any user's password: " + "x" * MIN_PASSWORD_LENGTH)
        return self._dummy_hash


def _require_password(password: object) -> str:
    if not isinstance(password, str):
        raise InvalidInputError("password must be a string", field="password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(MIN_PASSWORD_LENGTH)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(f"password is longer than {MAX_PASSWORD_LENGTH} characters", field="password")
    return password
