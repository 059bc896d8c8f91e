"""A dashboard user: who may log in, with which role, and whether they still may.

A user's id is derived from the normalized email (uuid5), so a second `create-user` of the same
address collides in the store instead of making a twin; the address never changes afterwards.

The domain never sees a password, only its hash (commands/ports.py `PasswordHasher` makes and
checks them): the hash is in the log, as every fact about the user is (docs/adr/0018).

    active ──disable──> disabled ──enable──> active
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.errors import InvalidInputError
from ledger.events import CopiedCheaply, SharedWhenCopied
from ledger.validation import EMAIL_LIMIT, require_email, require_text

ADMIN = "admin"  # may act: void, retry, resolve, reprocess
AUDITOR = "auditor"  # may only look
ROLES = (ADMIN, AUDITOR)

ACTIVE = "active"
DISABLED = "disabled"

HASH_LIMIT = 500  # an argon2 encoded hash is ~100 characters; room for stronger parameters

_NAMESPACE = UUID("db914440-cd02-49c0-a470-1557a5c0ce78")


def normalize_email(email: object) -> str:
    """The address as the ledger keeps and compares it: stripped and lowercased.

    Lowercasing the local part is not what RFC 5321 promises, but no mail provider a dashboard
    user has treats `Ann@` and `ann@` as two people, and two accounts that differ only by case
    would be a trap at login.
    """
    if not isinstance(email, str):
        raise InvalidInputError(f"email must be a string, got {type(email).__name__}", field="email")
    return require_email(email.strip().lower(), field="email")


def user_id_for(email: object) -> UUID:
    return uuid5(_NAMESPACE, normalize_email(email))


def require_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}, not {role!r}", field="role")
    return str(role)


class AdminUser(CopiedCheaply, Aggregate):
    TOPIC = "admin-user"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "admin-user.created"
        email: str
        role: str
        password_hash: str
        created_by: str

    class PasswordChanged(Event):
        TOPIC = "admin-user.password-changed"
        password_hash: str
        by: str

        def apply(self, aggregate: AdminUser) -> None:
            aggregate.password_hash = self.password_hash

    class Disabled(Event):
        TOPIC = "admin-user.disabled"
        by: str

        def apply(self, aggregate: AdminUser) -> None:
            aggregate.active = False

    class Enabled(Event):
        TOPIC = "admin-user.enabled"
        by: str

        def apply(self, aggregate: AdminUser) -> None:
            aggregate.active = True

    def __init__(self, email: str, role: str, password_hash: str, created_by: str) -> None:
        self.email = email
        self.role = role
        self.password_hash = password_hash
        self.created_by = created_by
        self.active = True

    @property
    def status(self) -> str:
        return ACTIVE if self.active else DISABLED

    @classmethod
    def create(cls, *, email: object, role: object, password_hash: str, created_by: object, at: datetime) -> AdminUser:
        address = normalize_email(email)
        return cls._create(
            cls.Created,
            id=user_id_for(address),
            timestamp=at,
            email=address,
            role=require_role(role),
            password_hash=require_text(password_hash, field="password_hash", limit=HASH_LIMIT),
            created_by=_by(created_by),
        )

    def change_password(self, password_hash: str, *, by: object, at: datetime) -> None:
        checked = require_text(password_hash, field="password_hash", limit=HASH_LIMIT)
        self.trigger_event(self.PasswordChanged, timestamp=at, password_hash=checked, by=_by(by))

    def disable(self, *, by: object, at: datetime) -> bool:
        """Disable the user: False (and nothing recorded) when they were disabled already."""
        who = _by(by)
        if not self.active:
            return False
        self.trigger_event(self.Disabled, timestamp=at, by=who)
        return True

    def enable(self, *, by: object, at: datetime) -> bool:
        """Enable the user again: False (and nothing recorded) when they were active."""
        who = _by(by)
        if self.active:
            return False
        self.trigger_event(self.Enabled, timestamp=at, by=who)
        return True


def _by(by: object) -> str:
    """Who did it: an email, or `cli` / `demo` for the ledger's own tools."""
    return require_text(by, field="by", limit=EMAIL_LIMIT)
