"""A rebuild of the read models split over two processes.

`ProjectionRunner.rebuild` empties the models, replays the log into them and makes their
indexes again. Here the replay runs in two forked processes at once, each a runner of its own
over a part of the models, reading the log itself: one process's Python holds its own GIL only,
so the two use both cores of a small machine (with PostgreSQL's backends). Each child's runner
keeps the runner's promise (a model's rows and its position in one transaction), so a child
that fails or is killed leaves its models where their last commit put them; the parent stops
the other, makes the indexes again and raises the error, and the next `ledger project` catches
the models up from there (a new `ledger rebuild` starts over).

On SQLite the two parts' transactions take turns at the database's write lock; reading and
decoding the next batch (outside the transaction) overlaps the other's pass, which is most of
the gain there (docs/throughput.md §Replay, "Sixth round").

The processes are forked, not spawned: a spawned one imports the application again (0.5 s
measured, a fifth of a 100,000-event rebuild). A fork copies the calling thread only, and a
forked child must not use a connection its parent opened (SQLite's own rule; a PostgreSQL
connection's socket would be shared). So the parent forks only when it runs no other thread,
and closes what it opened first: its event store's connections (the application is closed,
which also ends PostgreSQL's pool threads) and the read-model engine's pool. Each child opens
its own. Elsewhere (another thread, a daemonic process, SQLite in memory, no `fork` on the
platform) the rebuild runs in one process, and says why in the log.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import cast

from sqlalchemy.engine import make_url

from adapters.bootstrap import bootstrap
from adapters.persistence import ConfigurationError, read_model_url
from adapters.read_models import part_runner, projection_runner, read_model_engine
from adapters.settings import Settings
from projections.forking import fork_refusal
from projections.runner import Progress, ProjectionRunner

# The models the second process replays; the first replays every other. Chosen by the CPU each
# model took in a 100,005-event rebuild (docs/throughput.md): the log's read and decode about a
# third of each process, then payments and the reconciliation's ledger side in one (with the
# audit chain, which writes nothing in a rebuild from a chained log), the shared invoice fold's
# two models, the journal and the small ones in the other. Models that share a fold (invoice
# status and invoice versions share `InvoiceStates`) must stay in one process.
SECOND_PROCESS = frozenset({"payments", "reconciliation_ledger", "audit_chain"})
JOBS_MAX = 2
# The log's head from which a rebuild forks unless told: below it the processes' fixed cost
# outweighs their overlap (the demo's 99 events: 0.35 s in two processes, 0.09 s in one; at
# 25,005 events SQLite was slower in two in 3 of 4 pairs, at 100,005 faster in 9 of 10;
# docs/throughput.md §Replay, "Sixth round"), as for `ledger audit verify`'s processes.
PARALLEL_FROM = 50_000
PROGRESS_SECONDS = 0.25  # how often the parent reads the children's positions for `progress`
STOP_SECONDS = 5.0  # how long a child stopped by SIGTERM may take before it is killed

log = logging.getLogger("ledger.read_models")

# (the models' names) -> a runner over exactly those models, on connections of the calling
# process's own, closed when the block ends
PartRunner = Callable[[frozenset[str]], AbstractContextManager[ProjectionRunner]]


@dataclass(frozen=True)
class Rebuilt:
    applied: int  # events applied, summed over the models
    processes: int  # that replayed the log


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
    *,
    jobs: int | None = None,
    batch_size: int = 5_000,
    progress: Progress | None = None,
    parts: PartRunner | None = None,
) -> Rebuilt:
    """Rebuild every read model of `settings`' database on `jobs` processes (1 or 2; by default
    `default_jobs()` from a log of `PARALLEL_FROM` events, else one; one wherever a fork is not
    safe, see the module's doc). It opens, and closes, its own connections. `parts` makes each
    child's runner (`_part_runner` unless given)."""
    asked = default_jobs() if jobs is None else check_jobs(jobs)
    one_process = _why_one_process(settings, asked)  # before this call opens anything (its threads)
    app = bootstrap(settings)
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    try:
        runner = projection_runner(app, engine)
        head = app.head()
        if one_process is None and jobs is None and head < PARALLEL_FROM:
            one_process = f"a log of fewer than {PARALLEL_FROM:,} events"
        if one_process is not None:
            if asked > 1:
                log.info("rebuild in one process: %s", one_process)
            reported = None if progress is None else _rebuilt_positions(runner, progress)
            return Rebuilt(runner.rebuild(batch_size, reported), 1)
        app.close()  # no connection of the event store's, nor a pool thread, goes into a fork
        make = parts or (lambda names: _part_runner(settings, names))
        replay = ForkedReplay(runner, head, make)
        return Rebuilt(runner.rebuild(batch_size, progress, replay=replay), len(replay.parts))
    finally:
        engine.dispose()
        app.close()


def _rebuilt_done(runner: ProjectionRunner) -> Callable[[], int]:
    """The sum of the rebuilt models' positions, read when called: a rebuild's progress (the
    runner's own count adds the audit chain's events, which a rebuild extends, not rebuilds)."""
    rebuilt = {p.name for p in runner.rebuildable()}
    return lambda: sum(at for name, at in runner.positions().items() if name in rebuilt)


def _rebuilt_positions(runner: ProjectionRunner, progress: Progress) -> Progress:
    """`progress` handed `_rebuilt_done`, as `ForkedReplay` reports it."""
    done = _rebuilt_done(runner)
    return lambda _applied, head: progress(done(), head)


def _why_one_process(settings: Settings, jobs: int) -> str | None:
    """Why this rebuild must not fork, or None."""
    if jobs == 1:
        return "asked for one"
    return fork_refusal(make_url(read_model_url(settings.database_url)))


def split(names: Iterable[str]) -> list[frozenset[str]]:
    """The models of each process, the empty part left out."""
    every = frozenset(names)
    return [part for part in (every - SECOND_PROCESS, every & SECOND_PROCESS) if part]


class PartTraceback(Exception):
    """A child's traceback, as text: the cause of the error the parent raises for it."""


class ForkedReplay:
    """A rebuild's replay (projections/runner.py `Replay`) by one forked process per part of
    `runner`'s models (`split`), each catching up on a runner `parts` makes there.

    The parent reads the models' positions every `PROGRESS_SECONDS` for `progress`: the sum of
    the rebuilt models' positions (a rebuild's progress bar counts events per model), against
    `head`, the log's head before the fork. The first child that fails has its error raised,
    with the child's traceback as its cause, once every other child is stopped (SIGTERM, then
    SIGKILL after `STOP_SECONDS`; its open transaction is rolled back). A child that dies
    without a word raises `ChildProcessError`. A child whose parent is gone stops at its next pass.
    """

    def __init__(self, runner: ProjectionRunner, head: int, parts: PartRunner) -> None:
        self.runner = runner
        self.head = head
        self.make_part = parts
        self.parts = split(p.name for p in runner.projections)
        self._done = _rebuilt_done(runner)
        self._reported: set[BaseProcess] = set()  # the children that sent their result

    def __call__(self, batch_size: int, progress: Progress | None) -> int:
        context = multiprocessing.get_context("fork")
        self.runner.engine.dispose()  # the parent's pooled connections: none goes into a fork
        if threading.active_count() > 1:  # a pool's thread that outlived its close, say
            raise RuntimeError("a rebuild does not fork a process that runs other threads: run it with --jobs 1")
        children: list[tuple[BaseProcess, Connection]] = []
        self._reported.clear()
        try:
            for names in self.parts:
                receiving, sending = context.Pipe(duplex=False)
                child: BaseProcess = context.Process(
                    target=_replay_part,
                    args=(self.make_part, names, batch_size, os.getpid(), sending),
                    name=f"rebuild {', '.join(sorted(names))}",
                    daemon=True,  # terminated when the parent's interpreter exits
                )
                child.start()
                sending.close()  # the child's end: EOF here once the child is gone
                children.append((child, receiving))
            return self._results(children, progress)
        finally:
            for child, _ in children:  # every one still working is stopped at once, then waited for
                if child.is_alive() and child not in self._reported:
                    child.terminate()
            deadline = time.monotonic() + STOP_SECONDS
            for child, receiving in children:
                child.join(max(0.0, deadline - time.monotonic()))
                if child.is_alive():
                    child.kill()
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
                    value, trace = receiving.recv()  # the events applied, or the error and its traceback
                except EOFError:
                    child.join()
                    raise ChildProcessError(f"{child.name}: ended with exit code {child.exitcode}") from None
                except Exception as error:
                    raise ChildProcessError(f"{child.name}: its result could not be read: {error}") from error
                self._reported.add(child)
                if isinstance(value, BaseException):
                    raise value from PartTraceback(f"in {child.name}:\n{trace}")
                applied += int(value)
            if progress is not None:
                self._report(progress)
        return applied

    def _report(self, progress: Progress) -> None:
        try:
            done = self._done()
        except Exception as error:  # the children go on; the next report may read them
            log.warning("rebuild progress not read: %s", error)
            return
        progress(done, self.head)


def _replay_part(make: PartRunner, names: frozenset[str], batch_size: int, parent: int, result: Connection) -> None:
    """In the child: catch the models named up with the log, a pass at a time, while the parent
    lives; send back (events applied, None) or (the exception, its traceback as text)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's stop, whatever handler it had
    try:
        applied = 0
        with make(names) as runner:
            while step := runner.run_once(batch_size):
                applied += step
                if os.getppid() != parent:
                    raise ChildProcessError("the rebuilding process is gone: stopped")
    except BaseException as error:  # Ctrl-C reaches the children too: the parent stops them all
        result.send((_portable(error), traceback.format_exc()))
        return
    result.send((applied, None))


def _portable(error: BaseException) -> BaseException:
    """`error` if it crosses a pipe as itself, else a ChildProcessError with its text (an
    exception whose constructor takes other arguments than it gives `args` does not unpickle)."""
    try:
        if type(pickle.loads(pickle.dumps(error))) is type(error):  # noqa: S301  # our own bytes
            return error
    except Exception:  # noqa: S110  # any failure to cross: its text instead
        pass
    return ChildProcessError(f"{type(error).__name__}: {error}")


@contextmanager
def _part_runner(settings: Settings, names: frozenset[str]) -> Iterator[ProjectionRunner]:
    """A runner over the models named, on connections of this process's own."""
    app = bootstrap(settings, make_tables=False)  # the parent made them
    engine = read_model_engine(settings.database_url, settings.database_timeout)
    try:
        yield part_runner(app, engine, names)
    finally:
        engine.dispose()
        app.close()
