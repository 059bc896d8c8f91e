"""A rebuild split over forked processes (adapters/parallel_rebuild.py) builds what one process
builds, and a part that fails or dies stops the rebuild without leaving a half-applied batch."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adapters.clock import ManualClock
from adapters.parallel_rebuild import (
    JOBS_MAX,
    SECOND_PROCESS,
    ForkedReplay,
    GroupRunner,
    _group_runner,
    check_jobs,
    split,
)
from adapters.persistence import ConfigurationError
from adapters.read_models import READ_MODEL_TOPICS, projection_runner, read_model_projections, topics_read
from adapters.settings import Settings
from commands.application import BillingApplication
from projections.runner import ProjectionRunner
from tests.integration.test_rebuild_equivalence import (
    _built,
    _dump,
    _index_names,
    _log_with_every_topic,
)
from tests.unit.event_classes import stored_event_classes


def _settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


def test_a_rebuild_in_two_processes_builds_every_table_as_one_process_does(
    app: BillingApplication, clock: ManualClock, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    _log_with_every_topic(app, clock)
    tables, expected = _built(app, engine, cleared=False)
    runner = projection_runner(app, engine)
    every_index = _index_names(engine)
    pids = tmp_path / "pids"

    @contextmanager
    def recorded(names: frozenset[str]) -> Iterator[ProjectionRunner]:
        with pids.open("a") as out:
            out.write(f"{os.getpid()} {','.join(sorted(names))}\n")
        with _group_runner(_settings(database_url), names) as part:
            yield part

    seen: list[tuple[int, int]] = []
    replay = ForkedReplay(runner, recorded)
    applied = runner.rebuild(batch_size=9, progress=lambda done, head: seen.append((done, head)), replay=replay)

    assert _dump(engine, tables) == expected
    assert _index_names(engine) == every_index
    parts = dict(line.split(" ") for line in pids.read_text().splitlines())
    assert len(parts) == 2  # two processes, neither of them this one
    assert str(os.getpid()) not in parts
    split_names = split(p.name for p in runner.projections)
    assert sorted(parts.values()) == sorted(",".join(sorted(part)) for part in split_names)
    rebuilt = [p.name for p in runner.rebuildable()]
    assert applied == app.head() * len(rebuilt)  # every model from the start; the chain was at the head
    assert seen
    assert seen[-1] == (sum(runner.positions().values()), app.head())


def topic_of(cls: type) -> str:
    return str(getattr(cls, "TOPIC", ""))


def _failing_part(database_url: str, failing: str, how: str) -> GroupRunner:
    """A group runner whose part holding `failing` stops after its first batch: by an error
    ("raise") or killed outright ("kill")."""

    @contextmanager
    def made(names: frozenset[str]) -> Iterator[ProjectionRunner]:
        with _group_runner(_settings(database_url), names) as part:
            if failing in names:
                passes = 0
                run_once = part.run_once

                def once(batch_size: int = 1_000) -> int:
                    nonlocal passes
                    passes += 1
                    if passes == 2:
                        if how == "kill":
                            os.kill(os.getpid(), signal.SIGKILL)
                        raise LookupError("no such thing: the part stopped")
                    return run_once(batch_size)

                part.run_once = once  # type: ignore[method-assign]
            yield part

    return made


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_part_that_fails_or_dies_stops_the_rebuild_and_the_next_catch_up_finishes_it(
    app: BillingApplication, clock: ManualClock, engine: Engine, database_url: str, how: str
) -> None:
    _log_with_every_topic(app, clock)
    tables, expected = _built(app, engine, cleared=False)
    runner = projection_runner(app, engine)
    every_index = _index_names(engine)
    replay = ForkedReplay(runner, _failing_part(database_url, "payments", how))

    expected_error = ChildProcessError if how == "kill" else LookupError
    with pytest.raises(expected_error, match="exit code -9" if how == "kill" else "the part stopped"):
        runner.rebuild(batch_size=9, replay=replay)

    assert _index_names(engine) == every_index  # made again on the way out
    positions = runner.positions()
    assert 0 < positions["payments"] < app.head()  # stopped after a whole batch, its rows with it
    projection_runner(app, engine).catch_up(batch_size=5_000)
    assert _dump(engine, tables) == expected


def test_each_part_decodes_every_topic_its_models_are_handed() -> None:
    """A part's log decodes only `topics_read(its models)`; an event of a topic left out would
    reach no model of that part, as the runner hands each model only its `kinds`: the part must
    decode every stored topic under those kinds that one process decodes."""
    from adapters.clock import SystemClock

    app = BillingApplication(clock=SystemClock(), env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    projections = read_model_projections(app)
    classes = [cls for cls in stored_event_classes() if topic_of(cls).startswith(READ_MODEL_TOPICS)]
    assert classes
    for part in split(p.name for p in projections):
        models = [p for p in projections if p.name in part]
        decoded = topics_read(models)
        for model in models:
            kinds = getattr(model, "kinds", None)
            if not getattr(model, "decodes", True):
                continue
            if kinds is None:  # handed every event: its part decodes every read model's topic
                assert decoded == READ_MODEL_TOPICS
                continue
            for cls in classes:
                if issubclass(cls, kinds):
                    assert topic_of(cls).startswith(decoded), (model.name, topic_of(cls))
    assert "payments" in SECOND_PROCESS
    second = [p for p in projections if p.name in SECOND_PROCESS]
    assert not any(topic.startswith("invoice.") for topic in topics_read(second))  # the point of it


def test_a_model_with_no_kinds_reads_every_topic_and_one_that_does_not_decode_reads_none() -> None:
    class Everything:
        name = "everything"

    class Positions:
        name = "positions"
        decodes = False

    assert topics_read([Positions()]) == ()  # type: ignore[list-item]
    assert topics_read([Positions(), Everything()]) == READ_MODEL_TOPICS  # type: ignore[list-item]


def test_a_rebuild_runs_on_one_or_two_processes() -> None:
    assert check_jobs(1) == 1
    assert check_jobs(2) == 2
    for bad in (0, JOBS_MAX + 1):
        with pytest.raises(ConfigurationError, match=f"between 1 and {JOBS_MAX}"):
            check_jobs(bad)
