"""Reconciliation runs: one row per run (when, the period, the source, who asked, how many items
it found, its summary or why it failed), and their queries. A run's items as it found them stay
in its events (`reconciliation-run.items-found`); the report of a past run is read from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, select

from ledger.reconciliation.runs import COMPLETED, FAILED, RUNNING, ReconciliationRun
from projections.bulk import upsert_rows
from projections.paging import Page, keyset_page
from projections.reconciliation.rows import Row, from_json, iso, rows_by_key, to_json
from projections.tables import reconciliation_runs
from projections.tracked import Positioned

runs = reconciliation_runs


class ReconciliationRunsProjection:
    name = "reconciliation_runs"
    tables: tuple[Table, ...] = (reconciliation_runs,)
    kinds: tuple[type, ...] = (ReconciliationRun.Event,)  # the events it reads (projections/tracked.py)

    def prepare(self, batch: Sequence[Positioned]) -> None:
        pass  # everything comes from the events and the rows already stored

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        events = [event for _, event in batch if isinstance(event, ReconciliationRun.Event)]
        started = {str(e.originator_id) for e in events if isinstance(e, ReconciliationRun.Started)}
        rows = rows_by_key(conn, runs, runs.c.run_id, {str(e.originator_id) for e in events} - started)
        changed: dict[str, Row] = {}
        for event in events:
            run_id = str(event.originator_id)
            if isinstance(event, ReconciliationRun.Started):
                rows[run_id] = {
                    "run_id": run_id,
                    "started_at": event.timestamp,
                    "completed_at": None,
                    "period_start": datetime.fromisoformat(event.period_start),
                    "period_end": datetime.fromisoformat(event.period_end),
                    "source": event.source,
                    "status": RUNNING,
                    "requested_by": event.requested_by,
                    "items": 0,
                    "summary": None,
                    "failure": None,
                }
            elif run_id not in rows:  # a later event without its start: not in a log the aggregate wrote
                continue
            elif isinstance(event, ReconciliationRun.ItemsFound):
                rows[run_id]["items"] += len(event.items)
            elif isinstance(event, ReconciliationRun.Completed):
                rows[run_id].update(status=COMPLETED, completed_at=event.timestamp, summary=to_json(event.summary))
            elif isinstance(event, ReconciliationRun.Failed):
                # completed_at is when the run ended, whichever way it did.
                rows[run_id].update(status=FAILED, completed_at=event.timestamp, failure=event.reason)
            rows[run_id]["version"] = event.originator_version
            changed[run_id] = rows[run_id]
        upsert_rows(conn, runs, list(changed.values()), ["run_id"])

    def reset(self) -> None:
        pass  # nothing kept between batches


# --------------------------------------------------------------------------- queries


def run_of(row: Row) -> dict[str, Any]:
    """A stored row as the API shows a run, moments in ISO 8601 UTC."""
    return {
        "id": row["run_id"],
        "started_at": iso(row["started_at"]),
        "completed_at": iso(row["completed_at"]),
        "period": {"from": iso(row["period_start"]), "to": iso(row["period_end"])},
        "source": row["source"],
        "status": row["status"],
        "requested_by": row["requested_by"],
        "items": row["items"],
        "summary": from_json(row["summary"]),
        "failure": row["failure"],
    }


def run_row(engine: Engine, run_id: str) -> dict[str, Any] | None:
    """The run, or None when there is no such run."""
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
    return run_of(dict(row)) if row else None


def list_runs(engine: Engine, *, limit: int = 50, cursor: str | None = None) -> Page:
    """Runs newest start first, a page at a time (keyset pagination: stable under inserts)."""
    page = keyset_page(engine, select(runs), runs.c.started_at, runs.c.run_id, limit=limit, cursor=cursor)
    return Page([run_of(row) for row in page.rows], page.next_cursor)
