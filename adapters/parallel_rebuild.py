"""A rebuild of the read models split over two processes.

`ProjectionRunner.rebuild` empties the models, replays the log into them and makes their
indexes again. Here the replay runs in two forked processes at once, each a runner of its own
over a part of the models, reading the log itself: one process's Python holds its own GIL only,
so the two use both cores of a small machine (with PostgreSQL's backends). Each child's runner
keeps the runner's promise (a model's rows and its position in one transaction), so a child
that fails or is killed leaves its models where their last commit put them, and the next
`catch_up` (or rebuild) finishes the job, as after a one-process rebuild killed part way.

On SQLite the two passes' transactions take turns at the database's write lock; reading and
decoding the next batch (outside the transaction) overlaps the other's pass, which is most of
the gain there (docs/throughput.md §Replay, "Sixth round").

The processes are forked, not spawned: a spawned one imports the application again (0.5 s
measured, a fifth of a 100,000-event rebuild). Each child opens its own connections (an
application that does not make the event store's tables, a read-model engine) and never uses
the parent's, whose pool is emptied before the fork. They inherit the collector's thresholds
the rebuild set (projections/runner.py `REBUILD_GC_THRESHOLDS`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import cast

from adapters.bootstrap import bootstrap
from adapters.persistence import ConfigurationError
from adapters.read_models import part_runner, read_model_engine
from adapters.settings import Settings
from projections.runner import Progress, ProjectionRunner

# The models the second process replays; the first replays every other. Chosen by the CPU each
# model took in a 100,005-event rebuild (docs/throughput.md): the log's read and decode about a
# third of each process, then payments and the reconciliation's ledger side in one (with the
# audit chain, which writes nothing in a rebuild from a chained log), the shared invoice fold's
# two models, the journal and the small ones in the other. Models that share a fold (invoice
# status and invoice versions share `InvoiceStates`) must stay in one process.
SECOND_PROCESS = frozenset({"payments", "reconciliation_ledger", "audit_chain"})
JOBS_MAX = 2
PROGRESS_SECONDS = 0.25  # how often the parent reads the children's positions for `progress`

# (the models' names) -> a runner over exactly those models, in the calling process, closed on exit
GroupRunner = Callable[[frozenset[str]], AbstractContextManager[ProjectionRunner]]


def default_jobs() -> int:
    """Two processes where the machine has two cores or more, else one."""
    return min(JOBS_MAX, os.cpu_count() or 1)


def check_jobs(jobs: int) -> int:
    """`jobs`, if a rebuild can run on that many processes."""
    if not 1 <= jobs <= JOBS_MAX:
        raise ConfigurationError(f"--jobs must be between 1 and {JOBS_MAX}, not {jobs}")
    return jobs


def rebuild_read_models(
    settings: Settings,
    runner: ProjectionRunner,
    *,
    jobs: int,
    batch_size: int = 5_000,
    progress: Progress | None = None,
) -> int:
    """`runner.rebuild` (every read model of `settings`' database) on `jobs` processes (1 or 2).
    Returns the events applied, summed over the models."""
    if check_jobs(jobs) == 1:
        return runner.rebuild(batch_size, progress)
    replay = ForkedReplay(runner, lambda names: _group_runner(settings, names))
    return runner.rebuild(batch_size, progress, replay=replay)


def split(names: Iterable[str]) -> list[frozenset[str]]:
    """The models of each process, the empty part left out."""
    every = frozenset(names)
    return [part for part in (every - SECOND_PROCESS, every & SECOND_PROCESS) if part]


class ForkedReplay:
    """A rebuild's replay (projections/runner.py `Replay`) by one forked process per part of
    `runner`'s models (`split`), each running `catch_up` on a runner `group_runner` makes there.

    The parent reads the models' positions every `PROGRESS_SECONDS` for `progress` (the sum of
    the positions: a rebuild's progress bar counts events per model). The first child that
    fails has its error raised once every other child is stopped (SIGTERM: its open
    transaction is rolled back); a child that dies without a word raises `ChildProcessError`.
    """

    def __init__(self, runner: ProjectionRunner, group_runner: GroupRunner) -> None:
        self.runner = runner
        self.group_runner = group_runner

    def __call__(self, batch_size: int, progress: Progress | None) -> int:
        context = multiprocessing.get_context("fork")
        # The parent's pooled connections are closed first, so no child holds a copy of one.
        self.runner.engine.dispose()
        children: list[tuple[BaseProcess, Connection]] = []
        try:
            for names in split(p.name for p in self.runner.projections):
                receiving, sending = context.Pipe(duplex=False)
                child: BaseProcess = context.Process(
                    target=_replay_part,
                    args=(self.group_runner, names, batch_size, sending),
                    name=f"rebuild {', '.join(sorted(names))}",
                    daemon=True,  # stopped if the parent exits first
                )
                child.start()
                sending.close()  # the child's end: EOF here once the child is gone
                children.append((child, receiving))
            return self._results(children, progress)
        finally:
            for child, receiving in children:
                if child.is_alive():
                    child.terminate()
                child.join()
                receiving.close()

    def _results(self, children: Sequence[tuple[BaseProcess, Connection]], progress: Progress | None) -> int:
        applied = 0
        waiting = {receiving: child for child, receiving in children}
        while waiting:
            for ready in wait(list(waiting), timeout=PROGRESS_SECONDS):
                receiving = cast(Connection, ready)  # wait() gives back what it was given
                child = waiting.pop(receiving)
                try:
                    value = receiving.recv()  # the events applied, or the error
                except EOFError:
                    child.join()
                    raise ChildProcessError(f"{child.name}: ended with exit code {child.exitcode}") from None
                if isinstance(value, BaseException):
                    raise value
                applied += int(value)
            if progress is not None:
                progress(sum(self.runner.positions().values()), self.runner.log.head())
        return applied


def _replay_part(group_runner: GroupRunner, names: frozenset[str], batch_size: int, result: Connection) -> None:
    """In the child: catch the models named up with the log; send back the events applied, or the
    exception that stopped it."""
    try:
        with group_runner(names) as runner:
            applied = runner.catch_up(batch_size)
    except BaseException as error:  # Ctrl-C reaches the children too: the parent stops them all
        try:
            result.send(error)
        except Exception:  # an exception that does not pickle: its text
            result.send(ChildProcessError(f"{type(error).__name__}: {error}"))
        return
    result.send(applied)


@contextmanager
def _group_runner(settings: Settings, names: frozenset[str]) -> Iterator[ProjectionRunner]:
    """A runner over the models named, on connections of this process's own."""
    app = bootstrap(settings, make_tables=False)  # the parent made them
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    try:
        yield part_runner(app, engine, names)
    finally:
        engine.dispose()
        app.close()
