"""Group commit: concurrent callers share a batch, each gets its own result, errors stay theirs."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from commands.ingestion.group_commit import GroupCommit


class Recorder:
    """A batch runner that holds each batch until released, so callers pile up behind it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def run(self, items: Sequence[int]) -> list[int | BaseException]:
        self.gate.wait(5)
        self.batches.append(list(items))
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


def test_a_lone_caller_runs_a_batch_of_one() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.run)
    assert group.submit(4) == 40
    assert recorder.batches == [[4]]


def test_each_caller_gets_its_own_result_or_its_own_error() -> None:
    group = GroupCommit(Recorder().run)
    with pytest.raises(ValueError, match="odd 3"):
        group.submit(3)
    assert group.submit(2) == 20


def test_callers_arriving_during_a_batch_share_the_next_one() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    group = GroupCommit(recorder.run, max_batch=100)
    with ThreadPoolExecutor(9) as pool:
        first = pool.submit(group.submit, 0)
        while not group._leading:  # the first caller leads and waits at the gate
            pass
        rest = [pool.submit(group.submit, n) for n in range(2, 18, 2)]
        while len(group._waiting) < len(rest):
            threading.Event().wait(0.001)
        recorder.gate.set()
        assert first.result() == 0
        assert [f.result() for f in rest] == [n * 10 for n in range(2, 18, 2)]
    assert recorder.batches[0] == [0]
    assert sorted(recorder.batches[1]) == list(range(2, 18, 2))  # all eight in one batch
    assert (group.batches, group.items) == (2, 9)


def test_a_failing_batch_fails_every_caller_in_it() -> None:
    def broken(items: Sequence[int]) -> list[int | BaseException]:
        raise ConnectionError("store down")

    group: GroupCommit[int, int] = GroupCommit(broken)
    with pytest.raises(ConnectionError):
        group.submit(1)
    with pytest.raises(ConnectionError):
        group.submit(2)  # and the lead was handed back: the next caller is not stuck


def test_many_concurrent_callers_all_get_answers() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.run, max_batch=7)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda n: group.submit(n * 2), range(500)))
    assert results == [n * 20 for n in range(500)]
    assert sorted(i for batch in recorder.batches for i in batch) == [n * 2 for n in range(500)]
    assert max(len(batch) for batch in recorder.batches) <= 7


def test_an_interrupted_batch_is_raised_in_its_leader_and_the_next_caller_still_gets_through() -> None:
    calls: list[list[int]] = []

    def interrupted_once(items: Sequence[int]) -> list[int | BaseException]:
        calls.append(list(items))
        if len(calls) == 1:
            raise KeyboardInterrupt
        return list(items)

    group = GroupCommit(interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        group.submit(1)
    assert group.submit(2) == 2  # the lead was handed back
    assert not group._leading
