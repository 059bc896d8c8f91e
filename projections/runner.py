"""The projection runner: applies the event log to read models, each event exactly once.

Each pass reads every read model's position and next batch of events (and lets each model read
what else it needs from the event store), then ONE transaction locks the positions, checks they
did not move, writes the rows for each model's batch and moves each position past its batch. A
crash before the commit leaves rows and positions as they were; the batches are applied again,
whole, on restart. Two runners on one database cannot both apply a batch: on PostgreSQL the
position rows are locked (SELECT ... FOR UPDATE); on SQLite the first INSERT takes the
database's write lock and the second runner waits. Nothing waits on the event store while that
lock is held: on SQLite the store's writers need the same lock.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from operator import itemgetter
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection, Engine, Index, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, DropIndex
from sqlalchemy.sql.expression import ClauseElement

from ledger.errors import StoreUnavailableError
from projections.schema import upgrade
from projections.tables import tracking
from projections.tracked import Positioned, Projection

PASS_ATTEMPTS = 5
# A follower that finds new events on two passes in a row is under load: it waits this long
# before the next pass, so that the pass takes the events of that interval together instead
# of a few at a time. A pass has a fixed cost of milliseconds (its statements, the write lock
# the event store's writers then wait for), paid per pass, not per event (docs/throughput.md).
# An event waits for the read models at most this much longer; an event after a quiet spell
# does not wait for it at all.
GATHER_SECONDS = 0.05
# The garbage collector's thresholds while a rebuild replays the log. With the default (700, 10,
# 10) a rebuild of 100,000 events ran about 950 young, 87 middle and 8 full collections (a full
# one walks every object of the process: the application, the folds' states, the decoder's
# caches); together they were about a sixth of the rebuild's time. Refcounting frees a batch's
# events when it is done; the collector is only for cycles, which a replay barely makes
# (docs/throughput.md §Replay). The setting is the process's: two rebuilds at once on threads
# of one process (nothing does that) would put back each other's thresholds.
REBUILD_GC_THRESHOLDS = (20_000, 10, 10)
INDEX_BUILDERS = 2  # PostgreSQL: indexes made at once, after a rebuild or at a runner's start (`_create_missing`)
Progress = Callable[[int, int], None]  # (events applied so far, position of the log's head)
# What replays the emptied models to the log's head in a rebuild: (batch size, progress) -> events
# applied. `ProjectionRunner.catch_up` by default; adapters/parallel_rebuild.py splits the models
# over processes.
Replay = Callable[[int, Progress | None], int]

log = logging.getLogger("ledger.read_models")


class EventLog(Protocol):
    """The ordered log of every stored event."""

    def events_after(self, position: int, limit: int) -> Sequence[Positioned]: ...

    def head(self) -> int: ...


@runtime_checkable
class UndecodedLog(Protocol):
    """A log that can also hand a batch with no event decoded (`Undecoded` in their place)."""

    def undecoded_after(self, position: int, limit: int) -> Sequence[Positioned]: ...


class ProjectionRunner:
    def __init__(self, engine: Engine, log: EventLog, projections: Sequence[Projection]) -> None:
        self.engine = engine
        self.log = log
        self.projections = list(projections)
        self._statements = _PassStatements(engine.dialect, sorted(p.name for p in self.projections))
        # Models that read only the batch's positions (`decodes = False`: the audit chain, which
        # hashes the stored bytes). At a position only they are at, the log is read without
        # decoding: a rebuild's models start at 0 while the audit chain is elsewhere, and
        # decoding its batches too was most of a second read of the log (docs/throughput.md).
        self._positions_only = {p.name for p in self.projections if not getattr(p, "decodes", True)}
        self._undecoded = log.undecoded_after if isinstance(log, UndecodedLog) else None

    def create_tables(self) -> None:
        """Bring every read-model table to the newest migration (projections/schema.py), with
        every index a rebuild killed before its end left dropped (see `rebuild`)."""
        upgrade(self.engine)
        _create_missing(self.engine, _secondary_indexes(self.projections))

    def positions(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(self._statements.positions).all()
        known = {name: int(position) for name, position in rows}
        return {p.name: known.get(p.name, 0) for p in self.projections}

    def run_once(self, batch_size: int = 1_000) -> int:
        """Advance every read model by at most one batch, in one transaction. Returns the events
        applied (summed over read models).

        The batches are read, and each model prepares what it needs from the event store,
        BEFORE the transaction takes the write lock (see Projection.prepare); models at the same
        position share one read (and one decoding). If another runner moved a position in
        between, the pass starts again. A failure rolls back every model's rows and positions.
        """
        for _ in range(PASS_ATTEMPTS):
            applied = self._pass(batch_size)
            if applied is not None:
                return applied
        return 0  # other runners keep moving the positions: they are doing the work

    def _pass(self, batch_size: int) -> int | None:
        try:
            planned = self.positions()
            read: dict[int, Sequence[Positioned]] = {}
            handed = _Handed()
            decoded = {planned[p.name] for p in self.projections if p.name not in self._positions_only}
            for projection in self.projections:
                position = planned[projection.name]
                if position not in read:
                    if position in decoded or self._undecoded is None:
                        read[position] = self.log.events_after(position, batch_size)
                    else:
                        read[position] = self._undecoded(position, batch_size)
                projection.prepare(handed(projection, read[position]))
            if not any(read.values()):
                return 0  # nothing new: no transaction, so no write lock taken (SQLite) for nothing
            with self.engine.begin() as conn:
                if self._locked_positions(conn) != planned:
                    conn.rollback()
                    return None
                applied = 0
                moved: dict[int, list[str]] = {}  # new position -> the models that reach it
                for projection in self.projections:
                    batch = read[planned[projection.name]]
                    if not batch:
                        continue
                    projection.process(conn, handed(projection, batch))
                    moved.setdefault(batch[-1][0], []).append(projection.name)
                    applied += len(batch)
                # One UPDATE per new position (the models usually share one), not one per model:
                # building and running a statement per model was a fixed cost of every pass that
                # the webhook path paid in CPU and in write-lock time (docs/throughput.md).
                for position, names in moved.items():
                    conn.execute(tracking.update().where(tracking.c.projection.in_(names)).values(position=position))
                return applied
        except BaseException:
            for projection in self.projections:
                projection.reset()  # their in-memory state may be ahead of what was committed
            raise

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

    def follow(
        self,
        poll_seconds: float = 0.2,
        should_stop: Callable[[], bool] = lambda: False,
        wait: Callable[[float], None] = time.sleep,
        gather_seconds: float = GATHER_SECONDS,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        """Keep the read models up to date until `should_stop()` says so.

        When a pass finds nothing new, `wait(poll_seconds)` blocks until new events may exist
        or the poll interval passes: plain polling by default; a waiter woken by the database
        (PostgreSQL NOTIFY, adapters/log_notifications.py) returns early. A lost wake-up can
        only delay the next pass, by at most `poll_seconds`, never stall the follower. Under
        load, `pause(gather_seconds)` between passes (see `Gathering`); `pause` is not the
        waiter, which a busy log would wake at once.
        """
        gathering = Gathering(gather_seconds)
        while not should_stop():
            try:
                applied = self.run_once()
            except StoreUnavailableError as error:
                # Transient: a lock held too long, a lost connection, or (SQLite) a statement
                # prepared before a rebuild beside it dropped or made an index. The pass wrote
                # nothing (one transaction); the next poll tries again. Anything else stops it.
                log.warning("read models not updated, trying again: %s", error)
                applied = 0
            delay = gathering.after(applied)  # every pass, empty ones too: they end a busy spell
            if applied == 0:
                wait(poll_seconds)
            elif delay:
                pause(delay)

    def rebuild(self, batch_size: int = 5_000, progress: Progress | None = None, replay: Replay | None = None) -> int:
        """Empty every rebuildable read model and replay the whole log into it.

        Rows and positions are cleared in ONE transaction (DML, transactional on SQLite and
        PostgreSQL alike; DROP TABLE is not on SQLite's driver): a rebuild killed at any point
        leaves either the old models with their positions, or empty models at position 0,
        and `catch_up` finishes the job either way. `replay` brings every model of this runner
        to the log's head once they are emptied: this runner's `catch_up` unless given.
        """
        self.create_tables()
        disposable = self.rebuildable()
        with self.engine.begin() as conn:
            for table in reversed([t for p in disposable for t in p.tables]):
                conn.execute(table.delete())
            conn.execute(tracking.delete().where(tracking.c.projection.in_([p.name for p in disposable])))
        for projection in disposable:
            projection.reset()
        # The emptied tables' secondary indexes are dropped while the log is replayed and made
        # again once, from the rows: kept up to date row by row they cost about half of a
        # rebuild's writes on SQLite (docs/throughput.md §Replay). Unique ones stay (upserts need
        # them). Killed in between, the next runner's create_tables makes them again.
        indexes = _secondary_indexes(disposable)
        for index in indexes:  # one transaction each: a table's writers wait for its own index only
            with self.engine.begin() as conn:
                conn.execute(DropIndex(index, if_exists=True))
        try:
            with _collector_tuned(REBUILD_GC_THRESHOLDS):
                applied = (replay or self.catch_up)(batch_size, progress)
        except BaseException:
            with suppress(Exception):  # the store may be down: the next runner makes them then
                _create_missing(self.engine, indexes)
            raise
        _create_missing(self.engine, indexes)
        return applied

    def rebuildable(self) -> list[Projection]:
        """The models a rebuild may empty. Evidence (the audit chain) is only ever extended:
        re-deriving it from the log as it stands now would bless any tampering."""
        return [p for p in self.projections if getattr(p, "rebuildable", True)]

    def _locked_positions(self, conn: Connection) -> dict[str, int]:
        """Every model's position, its row created if new and locked until the commit (FOR UPDATE
        on PostgreSQL; on SQLite the INSERT takes the database's write lock first)."""
        conn.exec_driver_sql(self._statements.create)
        return {name: int(position) for name, position in conn.exec_driver_sql(self._statements.lock)}


@contextmanager
def _collector_tuned(thresholds: tuple[int, int, int]) -> Iterator[None]:
    """Run the block with the garbage collector's thresholds set, and the previous ones back
    after it, however it ends."""
    before = gc.get_threshold()
    gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _secondary_indexes(projections: Sequence[Projection]) -> list[Index]:
    """The non-unique indexes of the models' tables: only queries need them, never a write."""
    return [index for p in projections for table in p.tables for index in table.indexes if not index.unique]


def _create_missing(engine: Engine, indexes: Sequence[Index]) -> None:
    """Make the indexes that do not exist. Their names are read first: on PostgreSQL even a
    CREATE INDEX IF NOT EXISTS of an existing index waits for a lock that writers hold. Each
    index is made in its own transaction, so writers to a table wait for that table's index
    only, not for every index of the rebuild."""
    if not indexes:
        return
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'index'"
        existing = {str(name) for (name,) in conn.exec_driver_sql(query)}
    missing = [index for index in indexes if index.name not in existing]

    def make(index: Index) -> None:
        with engine.begin() as conn:
            conn.execute(CreateIndex(index, if_not_exists=True))  # another runner may make it meanwhile

    if engine.dialect.name != "postgresql" or len(missing) < 2:
        for index in missing:  # SQLite has one writer: a second thread would only wait for the first
            make(index)
        return
    # Each build runs in a server process of its own connection: two at a time use both of a
    # small machine's cores (53 indexes after a rebuild: 0.30 -> 0.20 s; docs/throughput.md).
    pool = ThreadPoolExecutor(INDEX_BUILDERS)
    builds: list[Future[None]] = []
    try:
        builds += [pool.submit(make, index) for index in missing]
        wait(builds, return_when=FIRST_EXCEPTION)
    finally:
        # An error or an interruption drops the builds not yet begun (the serial loop stops at its
        # first error too); the next create_tables makes them.
        pool.shutdown(wait=True, cancel_futures=True)
    errors = [error for build in builds if not build.cancelled() and (error := build.exception()) is not None]
    for error in errors[1:]:
        log.warning("index not made: %s", error)
    if errors:
        raise errors[0]


class _Handed:
    """What each model of a pass is handed: a model that names its `kinds` (see
    projections/tracked.py) only the batch's events of those classes, the others the whole batch.
    A batch is grouped by event class once, not tested by every model event by event; models of
    equal kinds get the same list (models that share a fold recognise their batch by it)."""

    def __init__(self) -> None:
        self._grouped: dict[int, dict[type, list[Positioned]]] = {}  # id(batch) -> items by event class
        self._handed: dict[tuple[int, tuple[type, ...]], Sequence[Positioned]] = {}

    def __call__(self, projection: Projection, batch: Sequence[Positioned]) -> Sequence[Positioned]:
        kinds: tuple[type, ...] | None = getattr(projection, "kinds", None)
        if kinds is None or not batch:
            return batch
        key = (id(batch), kinds)  # the batches are the pass's own, alive as long as this is
        handed = self._handed.get(key)
        if handed is None:
            grouped = self._grouped.get(id(batch))
            if grouped is None:
                grouped = self._grouped[id(batch)] = {}
                for item in batch:
                    grouped.setdefault(type(item[1]), []).append(item)
            wanted = [items for cls, items in grouped.items() if issubclass(cls, kinds)]
            if len(wanted) == len(grouped):
                handed = batch
            else:
                handed = [item for items in wanted for item in items]
                if len(wanted) > 1:
                    handed.sort(key=itemgetter(0))  # back to log order, by position
            self._handed[key] = handed
        return handed


class Gathering:
    """When a follower pauses before its next pass: after a pass that applied events right after
    another that did (the log is busy), `gather_seconds`; otherwise not at all, so the first
    event after a quiet spell reaches the read models as soon as a pass sees it."""

    def __init__(self, gather_seconds: float) -> None:
        self.gather_seconds = gather_seconds
        self._busy = False

    def after(self, applied: int) -> float:
        """The pause before the next pass, given the events the last one applied."""
        busy, self._busy = self._busy, applied > 0
        return self.gather_seconds if busy and applied > 0 else 0.0


class _PassStatements:
    """The statements every pass runs, compiled once per runner into the dialect's SQL, their
    values (the models' names, fixed for the runner) written in: SQLAlchemy's per-execution
    work (building the statement, its cache key, binding a dozen names) was part of each
    pass's fixed cost, paid under load on the webhook path (docs/throughput.md)."""

    def __init__(self, dialect: Dialect, names: list[str]) -> None:
        module = postgresql if dialect.name == "postgresql" else sqlite
        create = module.insert(tracking).values([{"projection": n, "position": 0} for n in names])
        lock = select(tracking.c.projection, tracking.c.position).where(tracking.c.projection.in_(names))
        if dialect.name == "postgresql":
            lock = lock.order_by(tracking.c.projection).with_for_update()  # one lock order for every runner

        def compiled(statement: ClauseElement) -> str:
            return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

        self.positions = compiled(select(tracking.c.projection, tracking.c.position))
        self.create = compiled(create.on_conflict_do_nothing())
        self.lock = compiled(lock)
