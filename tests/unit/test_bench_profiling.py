"""The bench's profile of the served webhook path (bench/profiling.py): every thread that starts
after `ThreadProfiles.start` is profiled on its own CPU clock, and the top table ranks functions
by cumulative time with their share of the profiled total."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from bench.profiling import ThreadProfiles, Top, render_top, stats_of, top_entries


def _spin(n: int) -> int:
    return sum(i * i for i in range(n))


def _worker_body() -> None:
    _spin(200_000)


def _waits(event: threading.Event) -> None:
    event.wait(0.3)  # waiting costs no CPU: it must not rank above the work


def test_a_thread_started_after_start_is_profiled_and_waiting_costs_nothing() -> None:
    before = sys.getprofile()
    profiles = ThreadProfiles()
    try:
        profiles.start()
        threads = [threading.Thread(target=_worker_body), threading.Thread(target=_waits, args=(threading.Event(),))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        snapshots = profiles.snapshots()
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
        sys.setprofile(before)

    total, entries = top_entries(stats_of(snapshots), count=50)
    worker = next(e for e in entries if e.function.endswith("(_worker_body)"))
    assert worker.calls == 1
    assert worker.share > 0.5  # the thread CPU clock: the spinning thread is most of the total
    waiting = [e for e in entries if e.function.endswith("(_waits)")]
    assert not waiting or waiting[0].cumulative < worker.cumulative / 10
    assert total > 0
    assert [e.cumulative for e in entries] == sorted((e.cumulative for e in entries), reverse=True)


def test_clear_forgets_what_was_profiled(tmp_path: Path) -> None:
    before = sys.getprofile()
    profiles = ThreadProfiles()
    try:
        profiles.start()
        _spin(50_000)
        profiles.clear()
        thread = threading.Thread(target=_worker_body)
        thread.start()
        thread.join()
        snapshots = profiles.snapshots()
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
        sys.setprofile(before)

    _, entries = top_entries(stats_of(snapshots), count=200)
    [spin] = [e for e in entries if e.function.endswith("(_spin)")]
    assert spin.calls == 1  # the worker's; the main thread's call before clear() is gone
    text = render_top(Top("test", "thread CPU", 4, "webhook", 1.0, entries[:3], tmp_path / "p.txt", 0.004))
    assert "Top 3 functions by cumulative time [test]" in text
    assert "1.00 ms per webhook" in text
