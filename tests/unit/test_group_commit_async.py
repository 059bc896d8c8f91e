"""Group commit from an event loop: awaited callers share batches run on the writer thread,
each answered only after its batch, and mix with thread callers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from commands.ingestion.group_commit import GroupCommit

T = TypeVar("T")


class Gated:
    """A batch runner that says when a batch has started and holds it until the gate opens."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: list[str] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def run(self, items: Sequence[int]) -> list[int | BaseException]:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        self.gate.wait(5)
        self.batches.append(list(items))
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(5_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the condition never held")


def stops_leading(group: GroupCommit[int, int]) -> bool:
    """Whether the writer, once nobody waits, stops leading (it answers first, then looks)."""
    for _ in range(5_000):
        if not group._leading:
            return True
        threading.Event().wait(0.001)
    return False


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), 10)

    return asyncio.run(bounded())


async def _started_and_held(gated: Gated, group: GroupCommit[int, int], item: int) -> asyncio.Task[int]:
    """A first caller whose batch is running and held at the gate: later callers queue behind it."""
    gated.gate.clear()
    first = asyncio.ensure_future(group.submit_async(item))
    await until(gated.started.is_set)
    return first


def test_an_awaited_caller_gets_its_result_from_a_batch_run_on_the_writer_thread() -> None:
    gated = Gated()
    group = GroupCommit(gated.run)
    assert run(lambda: group.submit_async(4)) == 40
    assert gated.batches == [[4]]
    assert gated.threads[0].startswith("group-commit")
    assert stops_leading(group)  # nobody waits


def test_awaited_callers_arriving_during_a_batch_share_the_next_one_in_arrival_order() -> None:
    gated = Gated()
    group = GroupCommit(gated.run, max_batch=100)

    async def main() -> tuple[int, list[int | BaseException]]:
        first = await _started_and_held(gated, group, 0)
        rest = [asyncio.ensure_future(group.submit_async(n)) for n in range(1, 9)]
        await until(lambda: len(group._waiting) == 8)
        gated.gate.set()
        return await first, await asyncio.gather(*rest, return_exceptions=True)

    first, rest = run(main)
    assert first == 0
    assert [r if isinstance(r, int) else str(r) for r in rest] == [
        "odd 1", 20, "odd 3", 40, "odd 5", 60, "odd 7", 80,
    ]  # fmt: skip
    assert gated.batches == [[0], list(range(1, 9))]
    assert (group.batches, group.items) == (2, 9)


def test_awaited_callers_occupy_no_thread_while_they_wait() -> None:
    gated = Gated()
    group = GroupCommit(gated.run, max_batch=100)

    async def main() -> tuple[int, int]:
        before = threading.active_count()
        first = await _started_and_held(gated, group, 0)  # the writer thread, held at the gate
        rest = [asyncio.ensure_future(group.submit_async(n * 2)) for n in range(1, 51)]
        await until(lambda: len(group._waiting) == 50)
        during = threading.active_count()
        gated.gate.set()
        await first
        await asyncio.gather(*rest)
        return before, during

    before, during = run(main)
    assert during <= before + 1  # the writer thread; a finished test's writer may have left meanwhile


def test_a_failing_batch_fails_every_awaited_caller_in_it_and_the_next_still_gets_through() -> None:
    gate = threading.Event()
    calls: list[list[int]] = []

    def broken_once(items: Sequence[int]) -> list[int | BaseException]:
        calls.append(list(items))
        gate.wait(5)
        if len(calls) <= 2:
            raise ConnectionError("store down")
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(broken_once)

    async def main() -> list[int | BaseException]:
        first = asyncio.ensure_future(group.submit_async(1))
        await until(lambda: len(calls) == 1)
        rest = [asyncio.ensure_future(group.submit_async(n)) for n in (2, 3, 4)]
        await until(lambda: len(group._waiting) == 3)
        gate.set()
        answers = await asyncio.gather(first, *rest, return_exceptions=True)
        return [*answers, await group.submit_async(5)]

    answers = run(main)
    assert [type(a) for a in answers[:4]] == [ConnectionError] * 4
    assert answers[4] == 5
    assert calls == [[1], [2, 3, 4], [5]]


def test_a_cancelled_waiter_not_yet_in_a_batch_never_runs_and_the_others_are_answered() -> None:
    gated = Gated()
    group = GroupCommit(gated.run, max_batch=100)

    async def main() -> tuple[int, int, int]:
        first = await _started_and_held(gated, group, 0)
        gone = asyncio.ensure_future(group.submit_async(2))
        after = asyncio.ensure_future(group.submit_async(4))
        await until(lambda: len(group._waiting) == 2)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        gated.gate.set()
        return await first, await after, await group.submit_async(6)

    assert run(main) == (0, 40, 60)
    assert gated.batches == [[0], [4], [6]]  # 2 was never run
    assert stops_leading(group)


def test_a_cancelled_waiter_whose_batch_is_running_is_committed_and_counted_and_the_rest_answered() -> None:
    gated = Gated()
    group = GroupCommit(gated.run, max_batch=100)

    async def main() -> tuple[list[int], int]:
        first = await _started_and_held(gated, group, 0)
        gated.started.clear()
        gated.gate.set()
        await first
        gated.gate.clear()
        batch = [asyncio.ensure_future(group.submit_async(n)) for n in (2, 4, 6)]
        await until(gated.started.is_set)  # 2, 4 and 6 are in the running batch
        batch[0].cancel()
        gated.gate.set()
        answered = await asyncio.gather(*batch[1:])
        return answered, await group.submit_async(8)

    answered, later = run(main)
    assert answered == [40, 60]
    assert later == 80
    assert gated.batches == [[0], [2, 4, 6], [8]]  # the cancelled caller's item was committed
    assert (group.batches, group.items) == (3, 5)


def test_a_thread_leader_hands_over_to_the_writer_for_awaited_callers_and_the_writer_answers_threads() -> None:
    gated = Gated()
    gated.gate.clear()
    group = GroupCommit(gated.run, max_batch=100)

    async def main() -> tuple[int, list[int], int]:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(2) as pool:
            leader = loop.run_in_executor(pool, group.submit, 0)  # a thread caller leads batch [0]
            await until(gated.started.is_set)
            waiting = [asyncio.ensure_future(group.submit_async(n)) for n in (2, 4)]
            await until(lambda: len(group._waiting) == 2)
            thread_caller = loop.run_in_executor(pool, group.submit, 6)  # queued behind them
            await until(lambda: len(group._waiting) == 3)
            gated.gate.set()
            return await leader, list(await asyncio.gather(*waiting)), await thread_caller

    assert run(main) == (0, [20, 40], 60)
    assert gated.batches == [[0], [2, 4, 6]]
    assert gated.threads[0] != gated.threads[1]
    assert gated.threads[1].startswith("group-commit")  # the writer led the second batch


def test_mixed_thread_and_awaited_callers_all_get_their_own_answers() -> None:
    gated = Gated()
    group = GroupCommit(gated.run, max_batch=7)

    async def main() -> tuple[list[int], list[int]]:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(8) as pool:
            threads = [loop.run_in_executor(pool, group.submit, n * 4) for n in range(150)]
            awaited = [asyncio.ensure_future(group.submit_async(n * 4 + 2)) for n in range(150)]
            return list(await asyncio.gather(*threads)), list(await asyncio.gather(*awaited))

    threads, awaited = run(main)
    assert threads == [n * 40 for n in range(150)]
    assert awaited == [(n * 4 + 2) * 10 for n in range(150)]
    assert sorted(i for batch in gated.batches for i in batch) == sorted(range(0, 600, 2))
    assert max(len(batch) for batch in gated.batches) <= 7
    assert stops_leading(group)


def test_an_interrupted_batch_on_the_writer_is_raised_in_its_first_awaited_caller_and_the_next_gets_through() -> None:
    calls: list[list[int]] = []
    gate = threading.Event()

    def interrupted_once(items: Sequence[int]) -> list[int | BaseException]:
        calls.append(list(items))
        gate.wait(5)
        if len(calls) == 2:
            raise SystemExit(3)
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(interrupted_once)
    seen: dict[int, BaseException] = {}

    async def caller(n: int) -> None:
        try:
            await group.submit_async(n)
        except BaseException as error:  # SystemExit too: it would stop the loop, as it does a server
            seen[n] = error

    async def main() -> None:
        first = asyncio.ensure_future(group.submit_async(1))
        await until(lambda: len(calls) == 1)
        held = [asyncio.ensure_future(caller(n)) for n in (2, 3)]
        await until(lambda: len(group._waiting) == 2)
        gate.set()
        assert await first == 1
        await asyncio.gather(*held)

    run(main)
    assert [type(seen[2]), type(seen[3])] == [SystemExit, RuntimeError]
    assert run(lambda: group.submit_async(4)) == 4  # the lead was given back
    assert calls == [[1], [2, 3], [4]]
    assert stops_leading(group)


def test_an_interrupt_reaching_an_awaited_caller_stops_its_event_loop() -> None:
    def interrupted(items: Sequence[int]) -> list[int | BaseException]:
        raise KeyboardInterrupt

    group: GroupCommit[int, int] = GroupCommit(interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(lambda: group.submit_async(1))
    assert stops_leading(group)
