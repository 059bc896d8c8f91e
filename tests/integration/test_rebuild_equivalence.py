"""A rebuild in large batches builds, row for row, what the follower builds event by event.

The rebuild path reads the log with its own SELECT and msgspec decoder (adapters/read_models.py
`_ReadModelLog`), hands the audit chain the rows it read, and writes each table's rows in bulk;
the reference here is the path the follower took before (the application's `events_after`, the
library's mapper, the audit chain reading the log itself), one event per pass. The log holds
every topic the stories of tests/unit/test_event_shapes.py trigger, a story driven through the
application's commands, and the pinned examples (tests/fixtures/events) of the other kinds, stored as the
store keeps them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent, find_id_convertor, str_to_uuid_convertor
from sqlalchemy import Column, Engine, Index, Integer, MetaData, Table, select
from sqlalchemy.schema import DropIndex

from adapters.clock import ManualClock
from adapters.read_models import _ReadModelLog, projection_runner, read_model_projections
from commands.application import BillingApplication
from ledger.invoices import Invoice
from projections.invoice_states import AggregateStates
from projections.runner import EventLog, ProjectionRunner, _create_missing, _secondary_indexes
from projections.tables import audit_chain, journal, tracking
from projections.tracked import Projection
from tests.event_examples import FIXTURES, read_example
from tests.integration.test_read_models import _scenario
from tests.unit.event_classes import stored_event_classes
from tests.unit.test_event_shapes import (
    STORY_AGGREGATES,
    every_invoice_event,
    every_payment_and_series_event,
    every_provider_event,
)

Dump = dict[str, list[tuple[Any, ...]]]
STORY_TOPICS = tuple(f"{aggregate.TOPIC}." for aggregate in STORY_AGGREGATES)  # type: ignore[attr-defined]


def _pinned_examples() -> list[StoredEvent]:
    """Every pinned example of the kinds the stories do not drive (their examples were recorded
    from unrelated aggregates, which would not fold in one), stored as the store keeps it: one
    aggregate per kind (the topic's prefix), its examples in the order of their versions as
    recorded, renumbered 1, 2, ..."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(FIXTURES.glob("*/v*.json")):
        example = read_example(path)
        if example["topic"].startswith(STORY_TOPICS):
            continue
        kinds.setdefault(example["topic"].split(".")[0], []).append(example)
    stored = []
    for examples in kinds.values():
        aggregate_id = uuid4()
        examples.sort(key=lambda example: example["originator_version"])
        for version, example in enumerate(examples, start=1):
            state = json.dumps(example["state"]).encode()
            stored.append(StoredEvent(aggregate_id, version, example["topic"], state))
    return stored


def _log_with_every_topic(app: BillingApplication, clock: ManualClock) -> None:
    _scenario(app, clock)
    stories = every_invoice_event() + every_payment_and_series_event() + every_provider_event()
    # The stories' aggregates whose ids derive from names the commands above used too (the number
    # series, stripe's pi_1) are stored under ids of their own: those ids are taken.
    taken = {n.originator_id for n in app.recorder.select_notifications(start=1, limit=10_000)}
    renamed = {aggregate_id: uuid4() for aggregate_id in taken}
    stored = [app.mapper.to_stored_event(event) for event in stories]
    app.recorder.insert_events(
        [
            StoredEvent(renamed.get(s.originator_id, s.originator_id), s.originator_version, s.topic, s.state)
            for s in stored
        ]
    )
    app.recorder.insert_events(_pinned_examples())


def _tables(runner: ProjectionRunner) -> list[Table]:
    return [table for projection in runner.projections for table in projection.tables] + [tracking]


def _dump(engine: Engine, tables: list[Table]) -> Dump:
    with engine.connect() as conn:
        return {table.name: sorted(tuple(row) for row in conn.execute(select(table))) for table in tables}


def _today(app: BillingApplication, engine: Engine) -> ProjectionRunner:
    """The runner as the follower ran before: the application's reader and decoder, the audit
    chain reading the stored bytes through the library."""
    runner = ProjectionRunner(engine, _ReadModelLog(app), read_model_projections(app))
    runner.create_tables()
    return runner


def _built(app: BillingApplication, engine: Engine, *, cleared: bool) -> tuple[list[Table], Dump]:
    """The tables, and every row the follower's runner of before builds over the log in one go
    (the reference another way must match); `cleared`: the tables then emptied for that way."""
    reference = _today(app, engine)
    reference.catch_up(batch_size=5_000)
    tables = _tables(reference)
    built = _dump(engine, tables)
    if cleared:
        with engine.begin() as conn:
            for table in reversed(tables):
                conn.execute(table.delete())
    return tables, built


def test_a_rebuild_builds_every_table_as_the_follower_does_event_by_event(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    _log_with_every_topic(app, clock)
    runner = projection_runner(app, engine)
    tables = _tables(runner)
    topics = {n.topic for n in app.recorder.select_notifications(start=1, limit=10_000)}
    assert topics == {path.parent.name for path in FIXTURES.glob("*/v*.json")}  # every topic stored

    followed = _today(app, engine)
    assert followed.catch_up(batch_size=1) == app.head() * len(followed.projections)
    by_event = _dump(engine, tables)
    assert all(by_event[table.name] for table in tables if table.name in {"journal_postings", "audit_chain"})

    with engine.begin() as conn:  # the chain is never rebuilt: cleared here, so it is chained again in bulk
        conn.execute(audit_chain.delete())
        conn.execute(tracking.delete().where(tracking.c.projection == "audit_chain"))
    fresh = projection_runner(app, engine)
    fresh.rebuild(batch_size=5_000)

    assert _dump(engine, tables) == by_event


def test_the_follower_in_small_batches_builds_what_a_rebuild_builds(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    """The new reader on the follower's path: batches that end anywhere in the log, and models
    (the audit chain) that reach a position in a pass of their own."""
    _log_with_every_topic(app, clock)
    tables, rebuilt = _built(app, engine, cleared=True)

    runner = projection_runner(app, engine)
    runner.catch_up(batch_size=7)
    assert _dump(engine, tables) == rebuilt


def _keeping_one(projections: Sequence[Projection]) -> None:
    """The models with every bound on what they keep in memory at one entry: each aggregate's
    next event after another's finds its state (its currency, its last version) evicted."""
    bounded = 0
    for projection in projections:
        for name, value in vars(projection).items():
            if isinstance(value, AggregateStates):
                value.max_size = 1
                bounded += 1
            elif name in {"max_invoices", "max_payments", "max_reached"}:
                setattr(projection, name, 1)
                bounded += 1
    assert bounded >= 8  # 4 models' states (invoice status and versions share one), 3 maps, versions'


def test_models_that_evict_at_every_event_build_what_models_keeping_every_state_build(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    """An evicted aggregate's next event loads its state from the store at the version before
    it, and gives the row it would have given from the kept state (docs/throughput.md §Peak
    memory of a rebuild: the caps are small enough to be full early in a log)."""
    _log_with_every_topic(app, clock)
    tables, expected = _built(app, engine, cleared=True)
    loads: list[UUID] = []
    invoice = app.invoice

    def counted(invoice_id: UUID, *, version: int | None = None) -> Invoice:
        loads.append(invoice_id)
        return invoice(invoice_id, version=version)

    app.invoice = counted  # type: ignore[method-assign]  # the models load through the app
    runner = projection_runner(app, engine)
    _keeping_one(runner.projections)

    runner.catch_up(batch_size=3)

    assert _dump(engine, tables) == expected
    assert len(set(loads)) > 1  # invoices were evicted and loaded again


def test_the_log_hands_the_audit_chain_the_rows_it_read(app: BillingApplication, engine: Engine) -> None:
    app.recorder.insert_events(_pinned_examples()[:10])
    log = _ReadModelLog(app, engine=engine)
    events = log.events_after(2, 5)
    records = log.records_after(3, 4)
    assert [r.id for r in records] == [position for position, _ in events[1:]]
    assert records == log.records_after(3, 4)
    library = app.records_after(3, 4)
    assert [(r.id, r.originator_id, r.originator_version, r.topic, r.state) for r in records] == [
        (n.id, str(n.originator_id), n.originator_version, n.topic, n.state) for n in library
    ]
    assert [UUID(r.originator_id) for r in log.records_after(8, 5)] == [
        n.originator_id for n in app.records_after(8, 5)
    ]


def _index_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'index'"
        return {str(name) for (name,) in conn.exec_driver_sql(query)}


def test_a_rebuild_replays_without_the_secondary_indexes_and_makes_them_again(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    _log_with_every_topic(app, clock)
    runner = projection_runner(app, engine)
    every = _index_names(engine)
    secondary = {
        str(index.name) for p in runner.rebuildable() for t in p.tables for index in t.indexes if not index.unique
    }
    assert "ix_journal_postings_account" in secondary
    assert not any(name.startswith("ix_audit_chain") for name in secondary)  # the chain is only extended
    during: list[set[str]] = []

    runner.rebuild(batch_size=50, progress=lambda _applied, _head: during.append(_index_names(engine)))

    assert during
    assert all(seen == every - secondary for seen in during)
    assert _index_names(engine) == every


def test_indexes_a_failed_or_killed_rebuild_left_dropped_are_made_again(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    _log_with_every_topic(app, clock)
    runner = projection_runner(app, engine)
    every = _index_names(engine)

    def fail(_applied: int, _head: int) -> None:
        raise RuntimeError("the replay failed")

    with pytest.raises(RuntimeError, match="the replay failed"):
        runner.rebuild(batch_size=50, progress=fail)
    assert _index_names(engine) == every  # made again on the way out

    # A kill runs no cleanup: the indexes stay dropped until the next runner starts.
    with engine.begin() as conn:
        for projection in runner.rebuildable():
            for table in projection.tables:
                for index in table.indexes:
                    if not index.unique:
                        conn.exec_driver_sql(f"DROP INDEX {index.name}")
    assert _index_names(engine) < every

    projection_runner(app, engine)

    assert _index_names(engine) == every


def test_an_index_that_cannot_be_made_stops_the_index_builds_and_the_next_start_makes_the_rest(
    app: BillingApplication, clock: ManualClock, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """projections/runner.py `_create_missing`: on PostgreSQL two indexes are made at a time
    (`INDEX_BUILDERS`), on SQLite one. The first build that fails stops the builds not yet begun
    and its error is raised once the running ones have ended; another failure among those is
    logged. Nothing is left half made, and the next call makes every index that is missing."""
    _log_with_every_topic(app, clock)
    runner = projection_runner(app, engine)
    every = _index_names(engine)
    secondary = _secondary_indexes(runner.rebuildable())
    with engine.begin() as conn:
        for index in secondary:
            conn.execute(DropIndex(index))
    # On a table object of their own (the journal's name, columns it does not have): an index
    # on the journal's own Table object would stay in its indexes for every later test.
    elsewhere = Table(journal.name, MetaData(), *(Column(f"no_such_column_{n}", Integer) for n in (1, 2)))
    broken = [Index(f"ix_test_broken_{n}", elsewhere.c[f"no_such_column_{n}"]) for n in (1, 2)]

    with (
        caplog.at_level(logging.WARNING, logger="ledger.read_models"),
        pytest.raises(Exception, match="no_such_column_1"),
    ):
        _create_missing(engine, [*broken, *secondary])

    made = _index_names(engine)
    assert made < every
    assert not any(name.startswith("ix_test_broken") for name in made)
    if engine.dialect.name == "postgresql":  # both broken builds ran at once; the second is logged
        assert "no_such_column_2" in caplog.text
    _create_missing(engine, secondary)
    assert _index_names(engine) == every


def test_every_stored_event_class_takes_uuid_ids() -> None:
    """The log selects ids as UUID text on both backends, which the decoder turns into a UUID as
    the library does for these classes. A class with text ids would get the library's stored
    spelling there (32 hex digits on SQLite, a UUID object on PostgreSQL): not what it gets here."""
    assert [cls for cls in stored_event_classes() if find_id_convertor(cls, str) is not str_to_uuid_convertor] == []


class _Counting(ProjectionRunner):
    """A runner that records what each of its passes applied."""

    def __init__(self, engine: Engine, log: EventLog, projections: Sequence[Projection]) -> None:
        super().__init__(engine, log, projections)
        self.applied: list[int] = []

    def run_once(self, batch_size: int = 1_000) -> int:
        done = super().run_once(batch_size)
        self.applied.append(done)
        return done


def test_a_rebuild_beside_a_running_follower_ends_with_every_row_and_every_index(
    make_app: Any, clock: ManualClock, engine: Engine
) -> None:
    """`ledger rebuild` while `ledger serve` follows the log: the serve's follower applies
    passes between the rebuild's (its models are emptied under it, their indexes dropped and
    made again); both end with the rows a follower builds and with every index."""
    app: BillingApplication = make_app()
    _log_with_every_topic(app, clock)
    tables, expected = _built(app, engine, cleared=False)
    every = _index_names(engine)

    serving = projection_runner(make_app(), engine)
    served = _Counting(engine, serving.log, serving.projections)
    stop = threading.Event()
    failures: list[BaseException] = []

    def follow() -> None:
        try:
            served.follow(poll_seconds=0.001, should_stop=stop.is_set, wait=time.sleep, gather_seconds=0.0)
        except BaseException as failure:
            failures.append(failure)

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        for _ in range(3):
            projection_runner(make_app(), engine).rebuild(batch_size=3)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert failures == []
    assert sum(served.applied) > 0  # it did apply passes beside the rebuilds
    served.catch_up()
    assert _dump(engine, tables) == expected
    assert _index_names(engine) == every


class _RecordingLog(_ReadModelLog):
    """The read models' log, noting the positions it was read after, decoded or not."""

    def __init__(self, app: BillingApplication, engine: Engine) -> None:
        super().__init__(app, engine=engine)
        self.decoded: list[int] = []
        self.undecoded: list[int] = []

    def events_after(self, position: int, limit: int) -> list[tuple[int, Any]]:
        self.decoded.append(position)
        return super().events_after(position, limit)

    def undecoded_after(self, position: int, limit: int) -> list[tuple[int, Any]]:
        self.undecoded.append(position)
        return super().undecoded_after(position, limit)


def test_a_rebuild_reads_the_audit_chain_s_own_batches_undecoded_and_chains_what_the_follower_chains(
    app: BillingApplication, clock: ManualClock, engine: Engine
) -> None:
    """The chain is never rebuilt, so a rebuild's models start at 0 while it is elsewhere (here
    behind, as when nothing followed the log for a while): at a position only the chain is at,
    the log is read without decoding (the chain hashes the stored bytes)."""
    _log_with_every_topic(app, clock)
    tables, expected = _built(app, engine, cleared=False)
    head = app.head()
    behind = head // 3 // 10 * 10 + 5  # never one of the other models' positions, multiples of 10
    with engine.begin() as conn:
        conn.execute(audit_chain.delete().where(audit_chain.c.position > behind))
        conn.execute(tracking.update().where(tracking.c.projection == "audit_chain").values(position=behind))
    log = _RecordingLog(app, engine)
    runner = ProjectionRunner(engine, log, read_model_projections(app, log))

    runner.rebuild(batch_size=10)

    assert _dump(engine, tables) == expected
    assert behind in log.undecoded
    assert len(set(log.undecoded)) > 2
    assert not (set(log.undecoded) - {head}) & set(log.decoded)  # the chain alone at each of them
    assert 0 in log.decoded
    assert behind not in log.decoded
