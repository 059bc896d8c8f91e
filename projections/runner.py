"""The projection runner: applies the event log to read models, each event exactly once.

For each read model, one transaction reads its position, writes the rows for the next batch
of events and moves the position past them. A crash before the commit leaves both as they
were; the batch is applied again, whole, on restart. Two runners on one database cannot both
apply a batch: on PostgreSQL the position row is locked (SELECT ... FOR UPDATE); on SQLite
the second writer's transaction fails and is rolled back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from projections.tables import metadata, tracking
from projections.tracked import Positioned, Projection

Progress = Callable[[int, int], None]  # (events applied so far, position of the log's head)


class EventLog(Protocol):
    """The ordered log of every stored event."""

    def events_after(self, position: int, limit: int) -> Sequence[Positioned]: ...

    def head(self) -> int: ...


class ProjectionRunner:
    def __init__(self, engine: Engine, log: EventLog, projections: Sequence[Projection]) -> None:
        self.engine = engine
        self.log = log
        self.projections = list(projections)

    def create_tables(self) -> None:
        metadata.create_all(self.engine, tables=[tracking, *self._tables()])

    def positions(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tracking.c.projection, tracking.c.position)).all()
        known = {name: int(position) for name, position in rows}
        return {p.name: known.get(p.name, 0) for p in self.projections}

    def run_once(self, batch_size: int = 1_000) -> int:
        """Advance every read model by at most one batch. Returns the events applied.

        Read models at the same position share one read (and one decoding) of the batch.
        """
        read: dict[int, Sequence[Positioned]] = {}
        return sum(self._advance(projection, batch_size, read) for projection in self.projections)

    def catch_up(self, batch_size: int = 1_000, progress: Progress | None = None) -> int:
        """Apply everything logged so far. Returns the events applied (summed over read models)."""
        applied = 0
        while True:
            step = self.run_once(batch_size)
            applied += step
            if progress is not None:
                progress(applied, self.log.head())
            if step == 0:
                return applied

    def follow(self, poll_seconds: float = 0.2, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Keep the read models up to date until `should_stop()` says so."""
        while not should_stop():
            if self.run_once() == 0:
                time.sleep(poll_seconds)

    def rebuild(self, batch_size: int = 5_000, progress: Progress | None = None) -> int:
        """Empty every rebuildable read model and replay the whole log into it.

        Rows and positions are cleared in ONE transaction (DML, transactional on SQLite and
        PostgreSQL alike; DROP TABLE is not on SQLite's driver): a rebuild killed at any point
        leaves either the old models with their positions, or empty models at position 0,
        and `catch_up` finishes the job either way.
        """
        self.create_tables()
        disposable = self.rebuildable()
        with self.engine.begin() as conn:
            for table in reversed([t for p in disposable for t in p.tables]):
                conn.execute(table.delete())
            conn.execute(tracking.delete().where(tracking.c.projection.in_([p.name for p in disposable])))
        for projection in disposable:
            projection.reset()
        return self.catch_up(batch_size, progress)

    def rebuildable(self) -> list[Projection]:
        """The models a rebuild may empty. Evidence (the audit chain) is only ever extended:
        re-deriving it from the log as it stands now would bless any tampering."""
        return [p for p in self.projections if getattr(p, "rebuildable", True)]

    def _advance(self, projection: Projection, batch_size: int, read: dict[int, Sequence[Positioned]]) -> int:
        try:
            with self.engine.begin() as conn:
                position = self._locked_position(conn, projection.name)
                # The log only grows: a batch read earlier from the same position is still a
                # true prefix of what follows it.
                batch = read.get(position)
                if batch is None:
                    batch = read[position] = self.log.events_after(position, batch_size)
                if not batch:
                    return 0
                projection.process(conn, batch)
                conn.execute(
                    tracking.update().where(tracking.c.projection == projection.name).values(position=batch[-1][0])
                )
                return len(batch)
        except BaseException:
            projection.reset()  # its in-memory state may be ahead of what was committed
            raise

    def _locked_position(self, conn: Connection, name: str) -> int:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(tracking).values(projection=name, position=0).on_conflict_do_nothing())
        query = select(tracking.c.position).where(tracking.c.projection == name)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return int(conn.execute(query).scalar_one())

    def _tables(self) -> list[Table]:
        return [table for projection in self.projections for table in projection.tables]
