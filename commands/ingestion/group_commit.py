"""Group commit: concurrent callers share one transaction, each still answered only after it.

A commit costs far more than deciding what to write (SQLite's fsync, a PostgreSQL round trip
and its table lock), so when webhooks arrive together they are handled together: the first
caller to find no batch in progress becomes the leader, takes every request waiting (up to
`max_batch`), runs them in one transaction and wakes each caller with its own result. Requests
that arrive meanwhile wait for the next batch, whose leader is one of them. Nobody is answered
before the transaction holding its request has committed; if the commit fails, every caller
in that batch gets the failure, and nothing of theirs was stored.

With one request at a time this is a plain call: a batch of one, no waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Slot(Generic[Item, Result]):
    item: Item
    ready: threading.Event = field(default_factory=threading.Event)
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
        self.batches = 0  # how many batches ran, and how many items they held
        self.items = 0

    def submit(self, item: Item) -> Result:
        slot: _Slot[Item, Result] = _Slot(item)
        with self._lock:
            self._waiting.append(slot)
            if not self._leading:
                self._leading = slot.lead = True
        try:
            while not slot.done:
                if slot.lead:
                    self._lead(slot)
                else:
                    slot.ready.wait()
                    slot.ready.clear()
        except BaseException:
            self._abandon(slot)  # interrupted (a signal, say): never leave the others without a leader
            raise
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self, own: _Slot[Item, Result]) -> None:
        """Run batches until our own request is done, then hand the lead to a waiting caller."""
        try:
            while not own.done:
                with self._lock:
                    batch = self._waiting[: self._max_batch]
                    del self._waiting[: self._max_batch]
                self._run(batch)
        finally:
            with self._lock:
                own.lead = False
                self._hand_over()

    def _hand_over(self) -> None:
        """Under the lock: the first waiting caller leads next, or nobody is leading."""
        if self._waiting:
            successor = self._waiting[0]
            successor.lead = True
            successor.ready.set()
        else:
            self._leading = False

    def _abandon(self, slot: _Slot[Item, Result]) -> None:
        with self._lock:
            if slot in self._waiting:
                self._waiting.remove(slot)
            if slot.lead:  # named to lead, but leaves before leading
                slot.lead = False
                self._hand_over()

    def _run(self, batch: list[_Slot[Item, Result]]) -> None:
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
        with self._lock:
            self.batches += 1
            self.items += len(batch)
        for slot, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.result = outcome
            slot.done = True
            slot.ready.set()
        if interrupted is not None:
            raise interrupted
