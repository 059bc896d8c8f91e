"""What the dashboard's users did: one row per `AdminAction` (who, when, which action on what,
the events it made), newest first on the activity page."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, Table, or_, select

from ledger.admin.activity import AdminAction
from ledger.admin.users import normalize_email
from ledger.errors import InvalidInputError
from projections.bulk import insert_rows
from projections.paging import Page, keyset_page
from projections.reconciliation.rows import from_json, to_json
from projections.tables import admin_activity
from projections.tracked import Positioned

activity = admin_activity


class AdminActivityProjection:
    name = "admin_activity"
    tables: tuple[Table, ...] = (admin_activity,)

    def prepare(self, batch: Sequence[Positioned]) -> None:
        pass  # an action is one event, whole

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        rows = [
            {
                "action_id": str(event.originator_id),
                "performed_at": event.timestamp,
                "user_id": event.user_id,
                "email": event.email,
                "action": event.action,
                "target": event.target,
                "detail": event.detail,
                "events": to_json(event.events),
                "position": position,
            }
            for position, event in batch
            if isinstance(event, AdminAction.Performed)
        ]
        insert_rows(conn, activity, rows)

    def reset(self) -> None:
        pass  # nothing kept between batches


def list_activity(
    engine: Engine,
    *,
    user: str | None = None,
    action: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Actions newest first, a keyset page at a time (on performed_at, action_id).

    `user`: an email (any case) or a user id. `action`: a name (`invoice.void`) or the part
    before its dot (`invoice`: every invoice action). Rows: action_id, performed_at (UTC),
    user_id, email, action, target, detail, events (a list of {aggregate_id, version}), position.
    """
    query = select(activity)
    if user:
        query = query.where(or_(activity.c.user_id == user.strip(), activity.c.email == _email(user)))
    if action:
        name = action.strip()
        query = query.where(or_(activity.c.action == name, activity.c.action.startswith(f"{name}.", autoescape=True)))
    page = keyset_page(engine, query, activity.c.performed_at, activity.c.action_id, limit=limit, cursor=cursor)
    return Page([{**row, "events": from_json(row["events"])} for row in page.rows], page.next_cursor)


def _email(user: str) -> str:
    try:
        return normalize_email(user)
    except InvalidInputError:
        return user.strip().lower()  # not an address: it matches no email, and may be an id
