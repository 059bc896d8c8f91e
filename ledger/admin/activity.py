"""What a dashboard user did: one `AdminAction` per action, stored in the same transaction as
the events the action made (commands/runner.py), naming them by aggregate id and version.

So the activity page cannot list an action that did not happen, nor miss one that did: the
action and its effects are committed, or refused, together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from eventsourcing.domain import Aggregate

from ledger.events import CopiedCheaply, SharedWhenCopied
from ledger.validation import EMAIL_LIMIT, require_text

ACTION_LIMIT = 64  # e.g. invoice.void, reconciliation.resolve
TARGET_LIMIT = 255  # an invoice id, an item id, a provider event id
DETAIL_LIMIT = 2000


def check_action(action: object, target: object, detail: object) -> tuple[str, str | None, str]:
    """The action's name, target and detail, checked (before anything runs under them)."""
    name = require_text(action, field="action", limit=ACTION_LIMIT)
    aimed = None if target is None else require_text(target, field="target", limit=TARGET_LIMIT)
    said = require_text(detail, field="detail", limit=DETAIL_LIMIT, required=False)
    return name, aimed, said


class AdminAction(CopiedCheaply, Aggregate):
    TOPIC = "admin-action"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Performed(Event, Aggregate.Created):
        TOPIC = "admin-action.performed"
        user_id: str
        email: str
        role: str
        action: str
        target: str | None
        detail: str
        events: list[dict[str, Any]]  # [{"aggregate_id": str, "version": int}]: what it changed

    Created = Performed

    def __init__(
        self,
        user_id: str,
        email: str,
        role: str,
        action: str,
        target: str | None,
        detail: str,
        events: list[dict[str, Any]],
    ) -> None:
        self.user_id = user_id
        self.email = email
        self.role = role
        self.action = action
        self.target = target
        self.detail = detail
        self.events = [dict(event) for event in events]

    @classmethod
    def record(
        cls,
        *,
        user_id: str,
        email: str,
        role: str,
        action: str,
        target: str | None,
        detail: str,
        events: list[tuple[str, int]],
        at: datetime,
    ) -> AdminAction:
        name, aimed, said = check_action(action, target, detail)
        return cls._create(
            cls.Performed,
            id=uuid4(),
            timestamp=at,
            user_id=require_text(user_id, field="user_id", limit=36),
            email=require_text(email, field="email", limit=EMAIL_LIMIT),
            role=require_text(role, field="role", limit=20),
            action=name,
            target=aimed,
            detail=said,
            events=[{"aggregate_id": aggregate_id, "version": version} for aggregate_id, version in events],
        )
