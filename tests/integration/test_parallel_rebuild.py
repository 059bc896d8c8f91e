"""A rebuild split over forked processes (adapters/parallel_rebuild.py) builds what one process
builds, and a part that fails or dies stops the rebuild without leaving a half-applied batch.

`rebuild_read_models` opens its own connections and forks only from a process that runs no
other thread: each test closes its application (PostgreSQL's pool runs threads) and empties its
engine's pool before the call, as `ledger rebuild` has nothing open then."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
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
    PartTraceback,
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
from projections.runner import ProjectionRunner
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


def test_a_rebuild_in_two_processes_builds_every_table_as_one_process_does(
    make_app: AppFactory, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    tables, expected, indexes, head = _expected(make_app, engine)
    pids = tmp_path / "pids"

    @contextmanager
    def recorded(names: frozenset[str]) -> Iterator[ProjectionRunner]:
        with pids.open("a") as out:
            out.write(f"{os.getpid()} {','.join(sorted(names))}\n")
        with _part_runner(_settings(database_url), names) as part:
            yield part

    seen: list[tuple[int, int]] = []
    rebuilt = rebuild_read_models(
        _settings(database_url),
        jobs=2,
        batch_size=BATCH,
        progress=lambda done, at: seen.append((done, at)),
        parts=recorded,
    )

    assert rebuilt.processes == 2
    assert _dump(engine, tables) == expected
    assert _index_names(engine) == indexes
    parts = dict(line.split(" ") for line in pids.read_text().splitlines())
    assert len(parts) == 2  # two processes, neither of them this one
    assert str(os.getpid()) not in parts
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


@pytest.mark.parametrize("how", ["raise", "unpicklable", "kill"])
def test_a_part_that_fails_or_dies_stops_the_rebuild_and_the_next_catch_up_finishes_it(
    make_app: AppFactory, engine: Engine, database_url: str, how: str
) -> None:
    tables, expected, indexes, _ = _expected(make_app, engine)
    raised: dict[str, tuple[type[BaseException], str]] = {
        "raise": (LookupError, "the payments part stopped"),
        "unpicklable": (ChildProcessError, "_Unpicklable: no such thing at the payments part"),
        "kill": (ChildProcessError, "payments.*ended with exit code -9"),
    }
    error, message = raised[how]

    with pytest.raises(error, match=message) as stopped:
        rebuild_read_models(_settings(database_url), jobs=2, batch_size=BATCH, parts=_failing_part(database_url, how))

    if how != "kill":  # the child's traceback comes with its error
        assert isinstance(stopped.value.__cause__, PartTraceback)
        assert "in failing" in str(stopped.value.__cause__)
    _no_children_left()
    assert _index_names(engine) == indexes  # made again on the way out
    app = make_app()
    runner = projection_runner(app, engine)
    assert runner.positions()["payments"] == BATCH  # its first batch committed, the second rolled back whole
    runner.catch_up(batch_size=5_000)
    assert _dump(engine, tables) == expected


def test_a_process_running_other_threads_rebuilds_in_one_process(
    make_app: AppFactory, engine: Engine, database_url: str
) -> None:
    tables, expected, _, _ = _expected(make_app, engine)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        rebuilt = rebuild_read_models(_settings(database_url), jobs=2, batch_size=BATCH)
    finally:
        release.set()
        other.join()
    assert rebuilt.processes == 1
    assert _dump(engine, tables) == expected
    assert rebuild_read_models(_settings(database_url), jobs=1, batch_size=BATCH).processes == 1


def test_by_default_a_small_log_is_rebuilt_in_one_process_and_a_large_one_in_two(
    make_app: AppFactory, engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables, expected, _, head = _expected(make_app, engine)
    assert head < parallel_rebuild.PARALLEL_FROM
    seen: list[tuple[int, int]] = []
    rebuilt = rebuild_read_models(_settings(database_url), batch_size=BATCH, progress=lambda *at: seen.append(at))
    assert rebuilt.processes == 1
    models = {row[0] for row in expected["projection_tracking"]} - {"audit_chain"}
    assert seen[-1] == (head * len(models), head)  # the rebuilt models' positions, not the chain's

    monkeypatch.setattr(parallel_rebuild, "PARALLEL_FROM", head)  # as if this log were large
    assert rebuild_read_models(_settings(database_url), batch_size=BATCH).processes == default_jobs()
    assert _dump(engine, tables) == expected
    _no_children_left()


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
