"""The dashboard's users: one row per user (email, role, active or disabled, who created them,
when), for `ledger admin list-users` and the dashboard. The password hash is not copied here:
it stays in the log, read only by `app.admin.authenticate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, select

from ledger.admin.users import ACTIVE, DISABLED, AdminUser
from projections.bulk import upsert_rows
from projections.paging import with_utc
from projections.reconciliation.rows import Row, rows_by_key
from projections.tables import admin_users
from projections.tracked import Positioned

users = admin_users


class AdminUsersProjection:
    name = "admin_users"
    tables: tuple[Table, ...] = (admin_users,)
    kinds: tuple[type, ...] = (AdminUser.Event,)  # the events it reads (projections/tracked.py)

    def prepare(self, batch: Sequence[Positioned]) -> None:
        pass  # everything comes from the events and the rows already stored

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        events = [event for _, event in batch if isinstance(event, AdminUser.Event)]
        created = {str(e.originator_id) for e in events if isinstance(e, AdminUser.Created)}
        rows = rows_by_key(conn, users, users.c.user_id, {str(e.originator_id) for e in events} - created)
        changed: dict[str, Row] = {}
        for event in events:
            user_id = str(event.originator_id)
            if isinstance(event, AdminUser.Created):
                rows[user_id] = {
                    "user_id": user_id,
                    "email": event.email,
                    "role": event.role,
                    "status": ACTIVE,
                    "created_by": event.created_by,
                    "created_at": event.timestamp,
                }
            elif user_id not in rows:  # a later event without its creation: not a log the aggregate wrote
                continue
            elif isinstance(event, AdminUser.Disabled):
                rows[user_id]["status"] = DISABLED
            elif isinstance(event, AdminUser.Enabled):
                rows[user_id]["status"] = ACTIVE
            rows[user_id].update(updated_at=event.timestamp, version=event.originator_version)
            changed[user_id] = rows[user_id]
        upsert_rows(conn, users, list(changed.values()), ["user_id"])

    def reset(self) -> None:
        pass  # nothing kept between batches


def list_users(engine: Engine) -> list[dict[str, Any]]:
    """Every dashboard user by email: user_id, email, role, status (active, disabled),
    created_by, created_at and updated_at (UTC), version."""
    with engine.connect() as conn:
        rows = conn.execute(select(users).order_by(users.c.email)).mappings().all()
    return [with_utc(dict(row)) for row in rows]
