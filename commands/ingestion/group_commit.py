"""Group commit: concurrent callers share one transaction, each still answered only after it.

A commit costs far more than deciding what to write (SQLite's fsync, a PostgreSQL round trip
and its table lock), so when webhooks arrive together they are handled together: the first
caller to find no batch in progress becomes the leader, takes every request waiting (up to
`max_batch`), runs them in one transaction and wakes each caller with its own result. Requests
that arrive meanwhile wait for the next batch, whose leader is one of them. Nobody is answered
before the transaction holding its request has committed; if the commit fails, every caller
in that batch gets the failure, and nothing of theirs was stored.

Two ways in, which may be mixed:

- `submit`, from a thread: the caller blocks until its batch has committed, and may lead
  batches itself (with one request at a time, a plain call: a batch of one, no waiting);
- `submit_async`, from an event loop: the caller awaits a future and occupies no thread. The
  batches of async callers are led by one writer thread of the group's own, which runs batches
  for as long as requests wait, then stops leading; each batch's results reach each loop in
  one `call_soon_threadsafe`. So a batch costs one thread wake-up, not one per request (a
  request thread per webhook, each woken to be answered, was about a fifth of a webhook's CPU
  under load: docs/throughput.md, Webhook path). A cancelled async caller (its client gone)
  leads nothing, so nobody is left without a leader: if its request was not yet taken into a
  batch it never runs; if it was, the batch commits it as any other and the answer is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(eq=False)  # slots are found in the queue by identity: two may carry equal items
class _Slot(Generic[Item, Result]):
    item: Item
    ready: threading.Event | None = None  # a sync caller waits on it
    future: asyncio.Future[Result] | None = None  # an async caller awaits it, on `loop`
    loop: asyncio.AbstractEventLoop | None = None
    lead: bool = False  # woken to lead the next batch rather than with a result
    done: bool = False
    result: Result | None = None
    error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Runs `run_batch(items)` for the requests waiting together; one transaction per batch.

    `run_batch` returns one entry per item, in order: the item's result, or an exception for
    that item alone. If `run_batch` itself raises, every item of the batch gets that error.
    """

    def __init__(self, run_batch: Callable[[Sequence[Item]], Sequence[Result | BaseException]], max_batch: int = 200):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Slot[Item, Result]] = []
        self._leading = False
        # the async callers' leader; its one thread starts on the first submit_async and ends
        # when the group is dropped
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
        self.batches = 0  # how many batches ran, and how many items they held
        self.items = 0

    def submit(self, item: Item) -> Result:
        ready = threading.Event()
        slot: _Slot[Item, Result] = _Slot(item, ready=ready)
        with self._lock:
            self._waiting.append(slot)
            if not self._leading:
                self._leading = slot.lead = True
        try:
            while not slot.done:
                if slot.lead:
                    self._lead(slot)
                else:
                    ready.wait()
                    ready.clear()
        except BaseException:
            self._abandon(slot)  # interrupted (a signal, say): never leave the others without a leader
            raise
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    async def submit_async(self, item: Item) -> Result:
        """As `submit`, awaited on the running event loop; no thread is held while it waits."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        slot: _Slot[Item, Result] = _Slot(item, future=future, loop=loop)
        with self._lock:
            self._waiting.append(slot)
            if not self._leading:
                self._leading = True
                self._hand_over()  # we are first in the queue: the writer thread leads for us
        try:
            return await future
        except asyncio.CancelledError:
            with self._lock:
                if slot in self._waiting:  # not yet in a batch: it never runs
                    self._waiting.remove(slot)
            raise

    def _lead(self, own: _Slot[Item, Result]) -> None:
        """Run batches until our own request is done, then hand the lead to a waiting caller."""
        try:
            while not own.done:
                with self._lock:
                    batch = self._take()
                interrupted = self._run(batch)
                if interrupted is not None:
                    raise interrupted
        finally:
            with self._lock:
                own.lead = False
                self._hand_over()

    def _drain(self) -> None:
        """The writer thread, leading for async callers: batches until nobody waits."""
        try:
            while True:
                with self._lock:
                    if not self._waiting:
                        self._leading = False
                        return
                    batch = self._take()
                self._run(batch, writer=True)
        except BaseException:  # a bug here must not leave the waiting without a leader
            with self._lock:
                self._hand_over()
            raise

    def _take(self) -> list[_Slot[Item, Result]]:
        """Under the lock: the next batch, the longest waiting first."""
        batch = self._waiting[: self._max_batch]
        del self._waiting[: self._max_batch]
        return batch

    def _hand_over(self) -> None:
        """Under the lock: the first waiting caller leads next (an async one through the writer
        thread), or nobody is leading."""
        while self._waiting:
            successor = self._waiting[0]
            if successor.ready is not None:
                successor.lead = True
                successor.ready.set()
                return
            try:
                self._writer.submit(self._drain)
                return
            except RuntimeError as error:  # no thread to be had (interpreter shutting down)
                stranded = [slot for slot in self._waiting if slot.ready is None]
                self._waiting = [slot for slot in self._waiting if slot.ready is not None]
                for slot in stranded:
                    slot.error, slot.done = error, True
                self._answer_async(stranded)
        self._leading = False

    def _abandon(self, slot: _Slot[Item, Result]) -> None:
        with self._lock:
            if slot in self._waiting:
                self._waiting.remove(slot)
            if slot.lead:  # named to lead, but leaves before leading
                slot.lead = False
                self._hand_over()

    def _run(self, batch: list[_Slot[Item, Result]], writer: bool = False) -> BaseException | None:
        """Run one batch and answer its callers; a KeyboardInterrupt or SystemExit is returned,
        for the leader to raise. The writer thread has nobody to raise it to: it gives it to the
        batch's first async caller, whose await raises it on the event loop, as a request
        thread leading the batch would have raised it there."""
        interrupted: BaseException | None = None
        try:
            outcomes = list(self._run_batch([slot.item for slot in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(outcomes)} results")
        except Exception as error:  # handed to every caller of the batch
            outcomes = [error] * len(batch)
        except BaseException as error:  # KeyboardInterrupt, SystemExit: the leader's to raise
            interrupted = error
            outcomes = [RuntimeError("the batch was interrupted before it committed")] * len(batch)
            if writer:
                first_async = next((n for n, slot in enumerate(batch) if slot.future is not None), None)
                if first_async is not None:
                    outcomes[first_async] = error
        with self._lock:
            self.batches += 1
            self.items += len(batch)
        waiting_async: list[_Slot[Item, Result]] = []
        for slot, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.result = outcome
            slot.done = True
            if slot.ready is not None:
                slot.ready.set()
            else:
                waiting_async.append(slot)
        self._answer_async(waiting_async)
        return interrupted

    @staticmethod
    def _answer_async(slots: list[_Slot[Item, Result]]) -> None:
        """Resolve the slots' futures on their loops: one call into each loop, not one per slot."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Slot[Item, Result]]] = {}
        for slot in slots:
            assert slot.loop is not None
            by_loop.setdefault(slot.loop, []).append(slot)
        for loop, answered in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits these any more
                loop.call_soon_threadsafe(_settle, answered)


def _settle(slots: list[_Slot[Item, Result]]) -> None:
    """On the slots' loop: each future gets its result or error, unless its caller left."""
    for slot in slots:
        future = slot.future
        assert future is not None
        if future.done():  # cancelled
            continue
        if slot.error is not None:
            future.set_exception(slot.error)
        else:
            future.set_result(slot.result)  # type: ignore[arg-type]
