"""Which of several aggregate ids have events in the store, and those events: one query for
a batch of them.

A group-commit batch of webhooks (commands/ingestion/group_commit.py) looks up each delivery's
provider-event record before deciding; a new event (the usual case) has none. Through the
library's repository each of those lookups is one SELECT in its own read transaction (pool,
lock, BEGIN, rollback) that finds nothing. `stored_events(recorder)` answers for the whole
batch in one indexed SELECT (the events' primary key starts with `originator_id`): each id's
events after the version the caller already has (0: all of them). An id it leaves out has
none, and an aggregate found (an invoice made by another process, a payment saved since it was
read, a cached state behind the log) is brought up to date from them instead of being read
again, each in a read transaction of its own, when a step first loads it (CommandRunner.work).

It only reads, through the recorder's own datastore (its pool, its lock timeout), with the
recorder's table and its originator-id type. A recorder of another kind gives None: the
commands then look each id up through the repository.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

# Ids and the version each is known at (0: nothing known) -> each id with stored events after
# that version, and those events in version order; an id with none after it is left out.
StoredEvents = Callable[[Mapping[UUID, int]], dict[UUID, list[StoredEvent]]]

# SQLite's default limit on a statement's parameters is 32,766 (999 before 3.32): a batch is
# at most a few hundred, but a larger one is asked in chunks rather than refused.
_SQLITE_CHUNK = 500


def stored_events(recorder: ApplicationRecorder) -> StoredEvents | None:
    """A reader of several ids' events after given versions in one query, for the recorders we
    run on (an aggregate's first event is version 1, so after 0 is its whole history)."""
    if isinstance(recorder, SQLiteAggregateRecorder):
        return _sqlite_events(recorder)
    if isinstance(recorder, PostgresAggregateRecorder):
        return _postgres_events(recorder)
    return None


def _grouped(rows: list[tuple[UUID, int, str, bytes]]) -> dict[UUID, list[StoredEvent]]:
    histories: dict[UUID, list[StoredEvent]] = {}
    for originator_id, version, topic, state in rows:
        histories.setdefault(originator_id, []).append(StoredEvent(originator_id, version, topic, state))
    return histories


def _sqlite_events(recorder: SQLiteAggregateRecorder) -> StoredEvents:
    datastore = recorder.datastore
    table = recorder.events_table_name
    as_uuid = datastore.originator_id_type == "uuid"

    def found(after: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        keys = sorted((i.hex if as_uuid else str(i), version) for i, version in after.items())
        rows: list[tuple[UUID, int, str, bytes]] = []
        if not keys:
            return {}
        with datastore.transaction(commit=False) as cursor:  # one snapshot of the log for every chunk
            for start in range(0, len(keys), _SQLITE_CHUNK // 2):
                chunk = keys[start : start + _SQLITE_CHUNK // 2]
                pairs = ",".join(["(?,?)"] * len(chunk))
                # The pairs drive the join: one primary-key range scan per id.
                cursor.execute(
                    f"WITH after(id, version) AS (VALUES {pairs}) "  # noqa: S608 (the library's table name, placeholders for values)
                    "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                    f"FROM after CROSS JOIN {table} AS e "
                    "WHERE e.originator_id = after.id AND e.originator_version > after.version "
                    "ORDER BY e.originator_id, e.originator_version",
                    [value for pair in chunk for value in pair],
                )
                rows += [(UUID(row[0]), row[1], row[2], row[3]) for row in cursor.fetchall()]
        return _grouped(rows)

    return found


def _postgres_events(recorder: PostgresAggregateRecorder) -> StoredEvents:
    datastore = recorder.datastore
    as_uuid = datastore.originator_id_type == "uuid"
    statement = SQL(
        "SELECT e.originator_id, e.originator_version, e.topic, e.state "
        "FROM unnest(%s::{id_type}[], %s::bigint[]) AS after(id, version) "
        "JOIN {schema}.{table} AS e ON e.originator_id = after.id AND e.originator_version > after.version "
        "ORDER BY e.originator_id, e.originator_version"
    ).format(
        id_type=SQL("uuid" if as_uuid else "text"),
        schema=Identifier(datastore.schema),
        table=Identifier(recorder.events_table_name),
    )

    def found(after: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        if not after:
            return {}
        ids = list(after)
        keys: list[UUID] | list[str] = ids if as_uuid else [str(i) for i in ids]
        with datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, [keys, [after[i] for i in ids]])
            rows = [
                (UUID(str(row["originator_id"])), row["originator_version"], row["topic"], bytes(row["state"]))
                for row in cursor.fetchall()
            ]
        return _grouped(rows)

    return found
