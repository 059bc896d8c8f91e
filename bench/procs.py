"""Run a benchmark body in N fresh processes (spawn), started together behind a barrier.

Each worker builds its own application (and connections) before the barrier, so set-up is not
timed; it then times its own loop with the system-wide monotonic clock, and the parent turns the
earliest start and the latest end into one wall-clock interval. Processes, not threads: a
thread pool on this 2-core machine would measure the GIL, not the database.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import resource
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier, Lock
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Gate:
    """Handed to every worker: `setup()` one at a time, then `ready()` to start together.

    Set-up is serialised because the library runs CREATE TABLE IF NOT EXISTS and CREATE OR
    REPLACE FUNCTION each time an application is constructed on PostgreSQL, and two of those
    at once fail with "tuple concurrently updated".
    """

    lock: Lock
    barrier: Barrier

    @contextmanager
    def setup(self) -> Iterator[None]:
        with self.lock:
            yield

    def ready(self) -> None:
        self.barrier.wait()


@dataclass
class Measured:
    """What one worker did in its timed section."""

    ops: int
    started: float
    finished: float
    conflicts: int = 0
    exhausted: int = 0
    peak_rss_kib: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """All workers of one case, merged."""

    workers: list[Measured]

    @property
    def ops(self) -> int:
        return sum(w.ops for w in self.workers)

    @property
    def seconds(self) -> float:
        return max(w.finished for w in self.workers) - min(w.started for w in self.workers)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @property
    def conflicts(self) -> int:
        return sum(w.conflicts for w in self.workers)

    @property
    def exhausted(self) -> int:
        return sum(w.exhausted for w in self.workers)

    @property
    def peak_rss_mib(self) -> float:
        """The largest worker's peak resident set."""
        return max(w.peak_rss_kib for w in self.workers) / 1024


def peak_rss_kib() -> int:
    """This process's peak resident set in KiB.

    VmHWM belongs to the current address space; ru_maxrss would also count the parent's
    resident set inherited across fork+exec, which inflates a freshly spawned worker's figure.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for row in status.read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def clock() -> float:
    return time.monotonic()


def _entry(body: Callable[[Any, Gate], Measured], job: Any, gate: Gate, results: Any) -> None:
    try:
        measured = body(job, gate)
        measured.peak_rss_kib = peak_rss_kib()
        results.put(("ok", measured))
    except BaseException:  # reported to the parent, which raises it
        gate.barrier.abort()
        results.put(("error", traceback.format_exc()))


def run_workers(body: Callable[[Any, Gate], Measured], jobs: list[Any], timeout: float = TIMEOUT_SECONDS) -> Outcome:
    """Run `body(job, gate)` in one spawned process per job; `gate.ready()` waits for all of them,
    each of which must report within `timeout` seconds."""
    ctx = mp.get_context("spawn")
    gate = Gate(ctx.Lock(), ctx.Barrier(len(jobs)))
    results = ctx.Queue()
    processes = [ctx.Process(target=_entry, args=(body, job, gate, results)) for job in jobs]
    for process in processes:
        process.start()
    collected: list[Measured] = []
    errors: list[str] = []
    try:
        for _ in jobs:
            status, payload = results.get(timeout=timeout)
            if status == "ok":
                collected.append(payload)
            else:
                errors.append(payload)
    except queue_module.Empty:
        errors.append("a worker neither reported nor failed in time")
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    if errors:
        raise RuntimeError("benchmark worker failed:\n" + "\n".join(errors))
    return Outcome(collected)
