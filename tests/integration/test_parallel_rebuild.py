"""A rebuild split over forked processes (adapters/parallel_rebuild.py) builds what one process
builds, and a part that fails or dies stops the rebuild without leaving a half-applied batch.

`rebuild_read_models` opens its own connections and forks only from a process that runs no
other thread: each test closes its application (PostgreSQL's pool runs threads) and empties its
engine's pool before the call, as `ledger rebuild` has nothing open then."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import TopicError
from sqlalchemy import Connection, Engine

from adapters import parallel_rebuild
from adapters.clock import ManualClock, SystemClock
from adapters.parallel_rebuild import (
    JOBS_MAX,
    SECOND_PROCESS,
    PartRunner,
    Rebuilt,
    _part_runner,
    check_jobs,
    default_jobs,
    rebuild_read_models,
    split,
)
from adapters.persistence import ConfigurationError
from adapters.read_models import (
    READ_MODEL_TOPICS,
    part_runner,
    projection_runner,
    read_model_projections,
    topics_skipped,
)
from adapters.settings import Settings
from commands.application import BillingApplication
from projections.runner import Progress, ProjectionRunner
from projections.tracked import Positioned
from tests.conftest import AppFactory
from tests.integration.test_rebuild_equivalence import _built, _dump, _index_names, _log_with_every_topic
from tests.unit.event_classes import stored_event_classes

BATCH = 9


def _settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


def _expected(make_app: AppFactory, engine: Engine) -> tuple[list[Any], dict[str, Any], set[str], int]:
    """The log with every topic, what one process builds from it (the audit chain at the head),
    the indexes and the head; then nothing left open in this process."""
    app = make_app()
    _log_with_every_topic(app, ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)))
    tables, expected = _built(app, engine, cleared=False)
    indexes = _index_names(engine)
    head = app.head()
    app.close()
    engine.dispose()
    return tables, expected, indexes, head


def _no_children_left() -> None:
    assert multiprocessing.active_children() == []


# `rebuild_read_models` forks only a process that runs no other thread, and by the time these
# tests run the test process has run others (servers, browsers, thread pools). So each rebuild
# here runs in a spawned process of its own, as `ledger rebuild` runs in one.
FRESH_SECONDS = 300


@dataclass(frozen=True)
class _Outcome:
    processes: int = 0
    applied: int = 0
    seen: tuple[tuple[int, int], ...] = ()  # the progress reported
    error: str | None = None  # "TypeName: message"
    cause: str | None = None  # the error's cause, as text
    children_left: int = 0


def _in_a_fresh_process(target: Callable[..., Rebuilt], *args: Any) -> _Outcome:
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=_run_fresh, args=(target, args, sending))
    process.start()
    sending.close()
    try:
        assert receiving.poll(FRESH_SECONDS), f"no outcome from the rebuilding process (exit code {process.exitcode})"
        outcome: _Outcome = receiving.recv()
    finally:
        process.join(FRESH_SECONDS)
        receiving.close()
    return outcome


def _run_fresh(target: Callable[..., Rebuilt], args: tuple[Any, ...], sending: Pipe) -> None:
    seen: list[tuple[int, int]] = []
    try:
        rebuilt = target(*args, progress=lambda done, at: seen.append((done, at)))
    except BaseException as error:
        cause = None if error.__cause__ is None else str(error.__cause__)
        left = len(multiprocessing.active_children())
        sending.send(
            _Outcome(seen=tuple(seen), error=f"{type(error).__name__}: {error}", cause=cause, children_left=left)
        )
        return
    left = len(multiprocessing.active_children())
    sending.send(_Outcome(rebuilt.processes, rebuilt.applied, tuple(seen), children_left=left))


def _recorded_rebuild(database_url: str, pids: Path, progress: Progress) -> Rebuilt:
    @contextmanager
    def recorded(names: frozenset[str]) -> Iterator[ProjectionRunner]:
        with pids.open("a") as out:
            out.write(f"{os.getpid()} {','.join(sorted(names))}\n")
        with _part_runner(_settings(database_url), names) as part:
            yield part

    return rebuild_read_models(_settings(database_url), jobs=2, batch_size=BATCH, progress=progress, parts=recorded)


def test_a_rebuild_in_two_processes_builds_every_table_as_one_process_does(
    make_app: AppFactory, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    tables, expected, indexes, head = _expected(make_app, engine)
    pids = tmp_path / "pids"

    rebuilt = _in_a_fresh_process(_recorded_rebuild, database_url, pids)

    assert rebuilt.error is None
    seen = list(rebuilt.seen)
    assert rebuilt.processes == 2
    assert _dump(engine, tables) == expected
    assert _index_names(engine) == indexes
    parts = dict(line.split(" ") for line in pids.read_text().splitlines())
    assert len(parts) == 2  # two processes, neither of them this one
    assert str(os.getpid()) not in parts
    assert rebuilt.children_left == 0
    every = {row[0] for row in expected["projection_tracking"]}
    assert sorted(parts.values()) == sorted(",".join(sorted(part)) for part in split(every))
    rebuilt_models = every - {"audit_chain"}
    assert rebuilt.applied == head * len(rebuilt_models)  # every model from the start; the chain was at the head
    assert seen
    assert seen[-1] == (head * len(rebuilt_models), head)  # the rebuilt models' positions, not the chain's
    _no_children_left()


class _Unpicklable(Exception):
    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"{what} at {where}")


def _failing_part(database_url: str, how: str) -> PartRunner:
    """Parts as `ledger rebuild` makes them, but the payments model's second batch: its rows
    written, then, before the commit, an error ("raise"), an error that does not unpickle
    ("unpicklable") or the process killed outright ("kill")."""

    @contextmanager
    def made(names: frozenset[str]) -> Iterator[ProjectionRunner]:
        with _part_runner(_settings(database_url), names) as part:
            for projection in part.projections:
                if projection.name == "payments":
                    _fail_on_second_batch(projection, how)
            yield part

    return made


def _fail_on_second_batch(projection: Any, how: str) -> None:
    process = projection.process
    calls = 0

    def failing(conn: Connection, batch: Sequence[Positioned]) -> None:
        nonlocal calls
        calls += 1
        process(conn, batch)
        if calls == 2:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "unpicklable":
                raise _Unpicklable("no such thing", "the payments part")
            raise LookupError("no such thing: the payments part stopped")

    projection.process = failing


def _failing_rebuild(database_url: str, how: str, progress: Progress) -> Rebuilt:
    parts = _failing_part(database_url, how)
    return rebuild_read_models(_settings(database_url), jobs=2, batch_size=BATCH, progress=progress, parts=parts)


@pytest.mark.parametrize("how", ["raise", "unpicklable", "kill"])
def test_a_part_that_fails_or_dies_stops_the_rebuild_and_the_next_catch_up_finishes_it(
    make_app: AppFactory, engine: Engine, database_url: str, how: str
) -> None:
    tables, expected, indexes, _ = _expected(make_app, engine)
    raised = {
        "raise": r"^LookupError: no such thing: the payments part stopped$",
        "unpicklable": r"^ChildProcessError: _Unpicklable: no such thing at the payments part$",
        "kill": r"^ChildProcessError: rebuild .*payments.*: ended with exit code -9$",
    }

    stopped = _in_a_fresh_process(_failing_rebuild, database_url, how)

    assert stopped.error is not None
    assert re.match(raised[how], stopped.error), stopped.error
    if how != "kill":  # the child's traceback comes with its error
        assert stopped.cause is not None
        assert "in failing" in stopped.cause
    assert stopped.children_left == 0
    assert _index_names(engine) == indexes  # made again on the way out
    app = make_app()
    runner = projection_runner(app, engine)
    assert runner.positions()["payments"] == BATCH  # its first batch committed, the second rolled back whole
    runner.catch_up(batch_size=5_000)
    assert _dump(engine, tables) == expected


def _rebuild_beside_a_thread(database_url: str, progress: Progress) -> Rebuilt:
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        return rebuild_read_models(_settings(database_url), jobs=2, batch_size=BATCH, progress=progress)
    finally:
        release.set()
        other.join()


def _default_rebuild(database_url: str, parallel_from: int | None, progress: Progress) -> Rebuilt:
    if parallel_from is not None:
        parallel_rebuild.PARALLEL_FROM = parallel_from  # in this process only
    return rebuild_read_models(_settings(database_url), batch_size=BATCH, progress=progress)


def _one_process_rebuild(database_url: str, progress: Progress) -> Rebuilt:
    return rebuild_read_models(_settings(database_url), jobs=1, batch_size=BATCH, progress=progress)


def test_a_process_running_other_threads_rebuilds_in_one_process(
    make_app: AppFactory, engine: Engine, database_url: str
) -> None:
    tables, expected, _, _ = _expected(make_app, engine)
    beside = _in_a_fresh_process(_rebuild_beside_a_thread, database_url)
    assert beside.error is None
    assert beside.processes == 1
    assert _dump(engine, tables) == expected
    alone = _in_a_fresh_process(_one_process_rebuild, database_url)
    assert alone.error is None
    assert alone.processes == 1


def test_by_default_a_small_log_is_rebuilt_in_one_process_and_a_large_one_in_two(
    make_app: AppFactory, engine: Engine, database_url: str
) -> None:
    tables, expected, _, head = _expected(make_app, engine)
    assert head < parallel_rebuild.PARALLEL_FROM
    small = _in_a_fresh_process(_default_rebuild, database_url, None)
    assert small.error is None
    assert small.processes == 1
    models = {row[0] for row in expected["projection_tracking"]} - {"audit_chain"}
    assert small.seen[-1] == (head * len(models), head)  # the rebuilt models' positions, not the chain's

    large = _in_a_fresh_process(_default_rebuild, database_url, head)  # as if this log were large
    assert large.error is None
    assert large.processes == default_jobs()
    assert _dump(engine, tables) == expected


def test_each_part_decodes_every_topic_its_models_are_handed() -> None:
    """A part's log leaves `topics_skipped(its models)` undecoded; an event of such a topic must
    reach no model of that part (the runner hands each model only its `kinds`), so that the part
    decodes every stored topic one process decodes for those models."""
    app = BillingApplication(clock=SystemClock(), env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    projections = read_model_projections(app)
    classes = [cls for cls in stored_event_classes() if _topic(cls).startswith(READ_MODEL_TOPICS)]
    assert classes
    for part in split(p.name for p in projections):
        models = [p for p in projections if p.name in part]
        skipped = topics_skipped(models)
        for model in models:
            kinds = getattr(model, "kinds", None)
            if not getattr(model, "decodes", True):
                continue
            if kinds is None:  # handed every event: its part decodes every read model's topic
                assert skipped == frozenset()
                continue
            for cls in classes:
                if issubclass(cls, kinds):
                    assert _topic(cls) not in skipped, (model.name, _topic(cls))
    assert "payments" in SECOND_PROCESS
    second = [p for p in projections if p.name in SECOND_PROCESS]
    assert "invoice.issued" in topics_skipped(second)  # the point of it
    assert not any(topic.startswith("payment.") for topic in topics_skipped(second))


def _topic(cls: type) -> str:
    return str(getattr(cls, "TOPIC", ""))


def test_a_model_with_no_kinds_skips_nothing() -> None:
    class Everything:
        name = "everything"

    class Positions:
        name = "positions"
        decodes = False

    assert "invoice.issued" in topics_skipped([Positions()])  # type: ignore[list-item]
    assert topics_skipped([Positions(), Everything()]) == frozenset()  # type: ignore[list-item]


def test_a_topic_no_class_declares_is_decoded_by_a_part_as_by_one_process(
    app: BillingApplication, engine: Engine
) -> None:
    """An alias or an unknown topic under the read models' topics: a part does not skip it, so it
    fails (or is handed on) as it does in one process, not silently left undecoded."""
    state = json.dumps({"timestamp": {"_type_": "datetime_iso", "_data_": "2026-03-02T09:00:00+00:00"}}).encode()
    app.recorder.insert_events([StoredEvent(uuid4(), 1, "invoice.finalised", state)])
    one = projection_runner(app, engine)
    part = part_runner(app, engine, SECOND_PROCESS)
    with pytest.raises(TopicError, match=r"invoice\.finalised"):
        one.log.events_after(0, 10)
    with pytest.raises(TopicError, match=r"invoice\.finalised"):
        part.log.events_after(0, 10)


def test_a_rebuild_runs_on_one_or_two_processes() -> None:
    assert check_jobs(1) == 1
    assert check_jobs(2) == 2
    for bad in (0, JOBS_MAX + 1):
        with pytest.raises(ConfigurationError, match=f"between 1 and {JOBS_MAX}"):
            check_jobs(bad)
