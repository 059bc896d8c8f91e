"""The dashboard's server-side sessions, in the table `admin_sessions` (projections/tables.py).

The cookie carries a random id (`secrets.token_urlsafe(32)`: 256 bits); the table keeps only its
sha256, so a copy of the table (a backup, a read replica) opens no session. A session ends when
it is revoked (logout, the user disabled), after `idle_timeout` without a request, or
`absolute_timeout` after it began, whichever comes first. Each has its own CSRF token.

Not a read model: nothing in the log makes these rows and a rebuild leaves them alone.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, and_, delete, or_, select, update

from commands.ports import Clock
from projections.paging import with_utc
from projections.tables import admin_sessions

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# last_seen_at is written at most this often: a page with many requests costs one write, not one
# each, and the idle timeout is still kept to the minute.
TOUCH_INTERVAL = timedelta(minutes=1)
RAW_ID_LIMIT = 100  # token_urlsafe(32) is 43 characters; anything much longer is not ours
ADDRESS_LIMIT = 64
USER_AGENT_LIMIT = 300


@dataclass(frozen=True)
class AdminSession:
    session_hash: str
    user_id: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the absolute timeout


def session_hash(raw_id: str) -> str:
    return hashlib.sha256(raw_id.encode()).hexdigest()


class SessionStore:
    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock,
        idle_timeout: timedelta = IDLE_TIMEOUT,
        absolute_timeout: timedelta = ABSOLUTE_TIMEOUT,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout

    def create(self, user_id: UUID | str, *, address: str, user_agent: str) -> tuple[str, AdminSession]:
        """A new session: the raw id (for the cookie, never stored) and the session."""
        raw_id = secrets.token_urlsafe(32)
        now = self._clock.now().astimezone(UTC)
        session = AdminSession(
            session_hash=session_hash(raw_id),
            user_id=str(user_id),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.absolute_timeout,
        )
        with self._engine.begin() as conn:
            # The user's ended sessions go when they start a new one: the table stays the size
            # of the sessions in use, without a sweeper.
            conn.execute(
                delete(admin_sessions).where(
                    admin_sessions.c.user_id == session.user_id,
                    or_(
                        admin_sessions.c.revoked_at.is_not(None),
                        admin_sessions.c.expires_at <= self._stored(now),
                        admin_sessions.c.last_seen_at <= self._stored(now - self.idle_timeout),
                    ),
                )
            )
            conn.execute(
                admin_sessions.insert().values(
                    session_hash=session.session_hash,
                    user_id=session.user_id,
                    csrf_token=session.csrf_token,
                    created_at=self._stored(now),
                    last_seen_at=self._stored(now),
                    expires_at=self._stored(session.expires_at),
                    revoked_at=None,
                    address=(address or "")[:ADDRESS_LIMIT],
                    user_agent=(user_agent or "")[:USER_AGENT_LIMIT],
                )
            )
        return raw_id, session

    def get(self, raw_id: str | None) -> AdminSession | None:
        """The live session of this cookie value; None when unknown, revoked or timed out."""
        if not raw_id or not isinstance(raw_id, str) or len(raw_id) > RAW_ID_LIMIT:
            return None
        hashed = session_hash(raw_id)
        with self._engine.connect() as conn:
            row = conn.execute(select(admin_sessions).where(admin_sessions.c.session_hash == hashed)).mappings().first()
        if row is None:
            return None
        found = self._row(dict(row))
        now = self._clock.now().astimezone(UTC)
        if found["revoked_at"] is not None:
            return None
        if now >= found["expires_at"] or now >= found["last_seen_at"] + self.idle_timeout:
            return None
        session = AdminSession(
            session_hash=hashed,
            user_id=found["user_id"],
            csrf_token=found["csrf_token"],
            created_at=found["created_at"],
            last_seen_at=found["last_seen_at"],
            expires_at=found["expires_at"],
        )
        if now - session.last_seen_at >= TOUCH_INTERVAL:
            session = self._touch(session, now)
        return session

    def revoke(self, raw_id: str | None) -> None:
        """End the session of this cookie value (logout); nothing when there is none."""
        if not raw_id or not isinstance(raw_id, str) or len(raw_id) > RAW_ID_LIMIT:
            return
        self._revoke(admin_sessions.c.session_hash == session_hash(raw_id))

    def revoke_user(self, user_id: UUID | str) -> int:
        """End every session of the user (disabled, or their password changed); how many were live."""
        return self._revoke(admin_sessions.c.user_id == str(user_id))

    def _revoke(self, which: Any) -> int:
        now = self._stored(self._clock.now().astimezone(UTC))
        with self._engine.begin() as conn:
            result = conn.execute(
                update(admin_sessions).where(and_(which, admin_sessions.c.revoked_at.is_(None))).values(revoked_at=now)
            )
        return int(result.rowcount)

    def _touch(self, session: AdminSession, now: datetime) -> AdminSession:
        with self._engine.begin() as conn:
            conn.execute(
                update(admin_sessions)
                .where(admin_sessions.c.session_hash == session.session_hash)
                .values(last_seen_at=self._stored(now))
            )
        return AdminSession(
            session.session_hash, session.user_id, session.csrf_token, session.created_at, now, session.expires_at
        )

    def _stored(self, moment: datetime) -> datetime:
        """SQLite keeps naive datetimes (read back as UTC by `with_utc`): store UTC without a zone."""
        moment = moment.astimezone(UTC)
        return moment if self._engine.dialect.name == "postgresql" else moment.replace(tzinfo=None)

    @staticmethod
    def _row(row: dict[str, Any]) -> dict[str, Any]:
        row = with_utc(row)
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = value.astimezone(UTC)
        return row
