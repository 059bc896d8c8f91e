"""What the dashboard's users did: one row per `AdminAction` (who, when, which action on what,
the events it made), newest first on the activity page."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, Table, or_, select

from ledger.admin.activity import AdminAction
from ledger.admin.users import normalize_email
from ledger.errors import InvalidInputError
from projections.admin import keyset
from projections.admin.keyset import INT, MOMENT
from projections.bulk import insert_rows
from projections.paging import MAX_PAGE, Page, with_utc
from projections.reconciliation.rows import from_json, to_json
from projections.tables import admin_activity
from projections.tracked import Positioned

activity = admin_activity

LISTING = "activity"
# Two actions of the same moment are told apart by their place in the log, the order they were
# done in (a random action id would show them in an order nobody did them).
KEYS = (activity.c.performed_at, activity.c.position)


class AdminActivityProjection:
    name = "admin_activity"
    tables: tuple[Table, ...] = (admin_activity,)
    kinds: tuple[type, ...] = (AdminAction.Performed,)  # the events it reads (projections/tracked.py)

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
    descending: bool = True,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Actions newest first (oldest first when not `descending`), a keyset page at a time (on
    performed_at, then the log position; a cursor of another shape or of the other direction,
    an older one's too, is an InvalidInputError).

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
    limit = max(1, min(limit, MAX_PAGE))
    # Newest first keeps the listing's name, so its cursors stay good; oldest first is another listing.
    listing = LISTING if descending else f"{LISTING}:oldest"
    if cursor:
        query = query.where(keyset.after(KEYS, keyset.decode(cursor, listing, (MOMENT, INT)), descending))
    query = keyset.ordered(query, KEYS, descending).limit(limit + 1)
    with engine.connect() as conn:
        rows = [with_utc(dict(row)) for row in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = keyset.encode(listing, [rows[-1]["performed_at"], rows[-1]["position"]]) if more else None
    return Page([{**row, "events": from_json(row["events"])} for row in rows], next_cursor)


def _email(user: str) -> str:
    try:
        return normalize_email(user)
    except InvalidInputError:
        return user.strip().lower()  # not an address: it matches no email, and may be an id
