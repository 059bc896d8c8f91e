"""The dunning read model: one row per invoice whose dunning started, with what it did and what
it does next (ledger/dunning/aggregate.py, ledger/dunning/plan.py).

`next_step` is the schedule's first step not yet settled, as the next pass will take it: a
`retry` once `max_attempts - 1` retries were requested is a `reminder` (plan rule 6); the
provider may still turn a retry into a reminder or a skip when the pass asks it.
`next_step_at` is 00:00 UTC of the day that step falls due (the anchor plus its days): the
first pass on or after it takes the step (and skips earlier ones it supersedes). An invoice
reaching `max_attempts` failed attempts is exhausted by the next pass whatever the schedule
says; that depends on the invoice, not on the dunning's events, so it is not shown here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, Table, select

from ledger.dunning.aggregate import ACTIVE, Dunning
from ledger.dunning.policy import REMINDER, RETRY
from projections.bulk import upsert_rows
from projections.invoice_states import AggregateStates
from projections.paging import with_utc
from projections.tables import dunning_status
from projections.tracked import Positioned

LoadDunning = Callable[[UUID, int], Dunning]

# What each event says the dunning did last.
_LAST_STEP = {
    Dunning.ReminderRequested: "reminder",
    Dunning.RetryRequested: "retry",
    Dunning.StepSkipped: "skipped",
    Dunning.Exhausted: "exhausted",
    Dunning.Stopped: "stopped",
    Dunning.RetriedByHand: "retry by hand",  # the dashboard's "retry now" (commands/dunning.py)
    Dunning.RemindedByHand: "reminder by hand",
}


class DunningStatusProjection:
    name = "dunning_status"
    tables: tuple[Table, ...] = (dunning_status,)
    kinds: tuple[type, ...] = (Dunning.Event,)  # the events it reads (projections/tracked.py)

    def __init__(self, load: LoadDunning) -> None:
        self.states = AggregateStates(Dunning, load)

    def prepare(self, batch: Sequence[Positioned]) -> None:
        self.states.prepare(event for _, event in batch)

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        rows: dict[UUID, dict[str, Any]] = {}
        for _, event in batch:
            if isinstance(event, Dunning.Event):
                rows[event.originator_id] = row_of(self.states.apply(event), event)
        upsert_rows(conn, dunning_status, list(rows.values()), ["invoice_id"])

    def reset(self) -> None:
        self.states.forget()


def row_of(dunning: Dunning, event: Dunning.Event) -> dict[str, Any]:
    """The row right after `event` (every event but `dunning.started` is a step, or the end)."""
    next_step, next_step_at = _next_step(dunning)
    last_step = _LAST_STEP.get(type(event))
    row: dict[str, Any] = {
        "invoice_id": dunning.invoice_id,
        "dunning_id": str(dunning.id),
        "status": dunning.status,
        "anchor": dunning.anchor,
        "steps_done": dunning.settled,
        "steps_total": len(dunning.schedule),
        "reminders": dunning.reminders,
        "retries": dunning.retries,
        "last_step": last_step,
        "last_step_at": event.timestamp if last_step else None,
        "next_step": next_step,
        "next_step_at": next_step_at,
        "reason": _reason(event),
        "started_at": dunning.created_on,
        "version": dunning.version,
    }
    return row


def _reason(event: Dunning.Event) -> str | None:
    if isinstance(event, (Dunning.RetryRequested, Dunning.RetriedByHand)):
        return f"{event.provider_payment_id}: {event.outcome}"  # the provider's answer to the retry
    reason = getattr(event, "reason", None)
    return str(reason) if reason is not None else None


def _next_step(dunning: Dunning) -> tuple[str | None, datetime | None]:
    if dunning.status != ACTIVE or dunning.settled >= len(dunning.schedule):
        return None, None
    step = dunning.schedule[dunning.settled]
    action = str(step["action"])
    if action == RETRY and dunning.retries >= dunning.max_attempts - 1:
        action = REMINDER  # retries used up: the pass reminds instead
    day = date.fromisoformat(dunning.anchor) + timedelta(days=int(step["days"]))
    return action, datetime.combine(day, time(0), tzinfo=UTC)


def dunning_row(engine: Engine, invoice_id: str) -> dict[str, Any] | None:
    """The dunning of one invoice, or None when it never started."""
    with engine.connect() as conn:
        row = conn.execute(select(dunning_status).where(dunning_status.c.invoice_id == invoice_id)).mappings().first()
    return with_utc(dict(row)) if row else None
