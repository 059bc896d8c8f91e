"""The one path every command takes, shared by the feature command classes.

`CommandRunner.execute` loads what a command needs, lets the aggregates decide, and saves every
changed aggregate and the idempotency receipt atomically. A conflicting concurrent writer makes
the save fail as a whole; the command is then re-run from fresh state, a bounded number of times.
A repeated idempotency key is answered from its receipt and changes nothing.

A command run inside `acting_as` (commands/admin/acting.py) also saves, with the first changes of
its context, one `AdminAction` naming the dashboard user, the action and what it changed.

A command answers with an `Outcome`: its result, the version each aggregate it changed was left
at, and whether a receipt answered it (a repeat). Callers that render what a command left (the
web layer's ETag and `version`) read the versions from it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper, PersistenceError, StoredEvent

from commands.admin.acting import Acting, current_acting
from commands.idempotency import Receipt, fingerprint, receipt_id_for
from commands.ports import Clock
from commands.work import StaleReadError, Work
from ledger.admin.activity import AdminAction
from ledger.errors import (
    ConcurrencyRetriesExhaustedError,
    InvoiceDeletedError,
    InvoiceNotFoundError,
    StaleVersionError,
    StoreUnavailableError,
)
from ledger.invoices import DELETED, Invoice

A = TypeVar("A", bound=Aggregate)
R_co = TypeVar("R_co", covariant=True)
U = TypeVar("U")

# What a command's `decide(at)` returns: its result (JSON-able: a receipt stores it) and the
# aggregates it changed.
Decision = tuple[dict[str, Any], Sequence[Aggregate]]

# Bounded retries on optimistic-concurrency conflicts, with capped exponential "full jitter"
# backoff: four writers hammering one invoice all get through, and a hopeless case gives up
# within about a second instead of hanging.
MAX_ATTEMPTS = 25
BACKOFF_BASE_SECONDS = 0.001
BACKOFF_CAP_SECONDS = 0.05

# The key under which a receipt keeps the versions next to the result. Receipts already stored
# hold it there, so the shape stays.
_VERSIONS = "versions"


@dataclass(frozen=True)
class Outcome(Generic[R_co]):
    """What a command answered.

    `versions`: each aggregate the command changed and the version it left it at (for a repeat,
    the versions the first run left, whatever happened since). `replayed`: True when an
    idempotency receipt answered, and nothing was run.
    """

    result: R_co
    versions: Mapping[UUID, int] = field(default_factory=dict)
    replayed: bool = False

    def map(self, convert: Callable[[R_co], U]) -> Outcome[U]:
        return Outcome(convert(self.result), self.versions, self.replayed)

    def version_of(self, aggregate_id: UUID) -> int | None:
        return self.versions.get(aggregate_id)


class Save(Protocol):
    def __call__(self, *aggregates: Aggregate) -> object: ...


class CommandRunner:
    """Runs commands for the feature command classes: the clock, the repository, the retries and
    the receipts, in one place."""

    def __init__(
        self,
        *,
        clock: Clock,
        repository: Repository[UUID],
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        save: Save,
    ) -> None:
        self.clock = clock
        self.repository = repository
        self.recorder = recorder
        self.mapper = mapper
        self._save = save
        # Which of several ids have stored events, and those events, in one query
        # (adapters/stored_ids.py `stored_events`; set by adapters/bootstrap.py). None:
        # `work(absent_unless_stored=...)` looks each id up as usual.
        self.stored_events: Callable[[Mapping[UUID, int]], dict[UUID, list[StoredEvent]]] | None = None
        # How `work` decodes what `stored_events` brings: the mapper's way, or a decoder giving
        # the same events faster (adapters/event_decoding.py; set by adapters/bootstrap.py).
        self.decode: Callable[[StoredEvent], Any] = mapper.to_domain_event

    # ------------------------------------------------------------------------ running

    def execute(
        self,
        command: str,
        arguments: dict[str, Any],
        idempotency_key: str | None,
        decide: Callable[[datetime], Decision],
    ) -> Outcome[dict[str, Any]]:
        """Run `decide` and save what it changed, with the receipt when a key is given."""
        receipt_id = None if idempotency_key is None else receipt_id_for(idempotency_key)
        digest = fingerprint(command, arguments)
        with storage_errors_as_unavailable():
            return self._attempt(command, receipt_id, idempotency_key, digest, decide)

    def run_step(self, command: str, step: Callable[[Work, datetime], bool]) -> Outcome[bool]:
        """A command of one step on a `Work`: True if it changed anything."""

        def decide(at: datetime) -> Decision:
            work = self.work()
            changed = step(work, at)
            return {"recorded": changed}, work.changed

        return self.execute(command, {}, None, decide).map(lambda result: bool(result["recorded"]))

    def _attempt(
        self,
        command: str,
        receipt_id: UUID | None,
        idempotency_key: str | None,
        digest: str,
        decide: Callable[[datetime], Decision],
    ) -> Outcome[dict[str, Any]]:
        for attempt in range(MAX_ATTEMPTS):
            if receipt_id is not None:
                prior = self.get(receipt_id, Receipt)
                if prior is not None:
                    return _outcome(prior.replay(digest), replayed=True)
            at = self.clock.now()
            try:
                result, changed = decide(at)
            except StaleReadError:
                back_off(attempt)
                continue
            to_save = list(changed)
            if changed:
                # What each aggregate's version became: a repeat of the request is answered
                # with the aggregates as they stood then (the API renders them at these versions).
                result = {**result, _VERSIONS: {str(a.id): a.version for a in changed}}
            if idempotency_key is not None:
                to_save.append(
                    Receipt.record(key=idempotency_key, command=command, fingerprint=digest, result=result, at=at)
                )
            if not to_save:
                return _outcome(result, replayed=False)
            try:
                self._save_acting(to_save, changed, at)
            except IntegrityError:
                # Someone else wrote one of these aggregates first. Nothing of ours was stored:
                # back off a little and decide again from the state they left.
                back_off(attempt)
                continue
            return _outcome(result, replayed=False)
        raise ConcurrencyRetriesExhaustedError(MAX_ATTEMPTS)

    def _save_acting(self, to_save: list[Aggregate], changed: Sequence[Aggregate], at: datetime) -> None:
        """Save, with the dashboard action the command runs under when it is the first of its
        `acting_as` context to change something (commands/admin/acting.py): in the same
        transaction, so the action is recorded exactly when its effects are."""
        acting = current_acting()
        if acting is None or not changed:
            self._save(*to_save)
            return
        with acting.recording() as record:
            if record:
                to_save = [*to_save, _action(acting, changed, at)]
            self._save(*to_save)

    # ------------------------------------------------------------------------ reading

    def get(
        self,
        aggregate_id: UUID,
        kind: type[A],
        repository: Repository[UUID] | None = None,
        *,
        version: int | None = None,
    ) -> A | None:
        """The aggregate, if one of that kind is stored under the id."""
        try:
            with storage_errors_as_unavailable():
                aggregate: object = (repository or self.repository).get(
                    aggregate_id, version=version, projector_func=fold
                )
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, kind) else None

    def invoice(self, invoice_id: UUID, *, version: int | None = None) -> Invoice:
        invoice = self.get(invoice_id, Invoice, version=version)
        if invoice is None:
            raise InvoiceNotFoundError(invoice_id)
        return invoice

    def invoice_for_update(self, invoice_id: UUID, expected_version: int | None) -> Invoice:
        invoice = self.invoice(invoice_id)
        if invoice.status == DELETED:  # gone, as a read says: a second DELETE is a 404, not a 409
            raise InvoiceDeletedError(invoice_id)
        if expected_version is not None and invoice.version != expected_version:
            raise StaleVersionError(invoice_id, expected_version, invoice.version)
        return invoice

    def work(self, *, absent_unless_stored: Collection[UUID] = ()) -> Work:
        """A `Work` loading through the repository. `absent_unless_stored`: ids the command will
        probably look up and that are probably new (a batch's provider-event records); they are
        asked about in one query, and the ones with nothing stored are known absent, at no further
        read. A writer that stores one of them meanwhile collides with this command's save (the
        store's unique version), which then decides again, as after any stale read.

        The same query (`stored_events`) brings the ids' events: those the repository's cache
        lacks (an invoice made by another process, a payment saved since it was read: most of a
        batch's loads) are folded from their whole history and put in the cache, as the
        repository would on a miss; a cached one behind the log is copied, the events stored
        since folded onto the copy, and the copy replaces it in the cache (a cached state is
        never changed here: a request thread may be copying or fast-forwarding it). A step's
        load of any of them is then a copy of that state, not a read of its own. The state so
        read is the log as of this one query: a writer after it makes the save collide or the
        reads stale, as above."""
        read: dict[UUID, Aggregate] = {}  # states the cache holds too: copied when a step loads one

        def load(aggregate_id: UUID) -> Aggregate | None:
            if aggregate_id in read:
                copied: Aggregate = deepcopy(read.pop(aggregate_id))
                return copied
            return self.get(aggregate_id, Aggregate)

        work = Work(load)
        if absent_unless_stored and self.stored_events is not None:
            cache = self.repository.cache
            for aggregate_id in absent_unless_stored:
                try:
                    cached = None if cache is None else cache.get(aggregate_id)
                except KeyError:
                    continue
                if isinstance(cached, Aggregate):
                    read[aggregate_id] = cached
            after = {i: read[i].version if i in read else 0 for i in absent_unless_stored}
            with storage_errors_as_unavailable():
                stored = self.stored_events(after)
            for aggregate_id, events in stored.items():
                cached = read.get(aggregate_id)
                start = None if cached is None else deepcopy(cached)
                # A thread's fast-forward may have moved the cached state on since its version was
                # asked: fold only what the copy lacks.
                newer = [e for e in events if start is None or e.originator_version > start.version]
                aggregate = fold(start, [self.decode(event) for event in newer])
                if cache is not None:
                    cache.put(aggregate_id, aggregate)
                read[aggregate_id] = aggregate
            work.known_absent(i for i in absent_unless_stored if i not in read)
        return work

    def unchanged(self, aggregate_id: UUID, version: int | None) -> bool:
        """Whether the store holds nothing for the aggregate beyond `version` (None: nothing at all)."""
        with storage_errors_as_unavailable():
            return not self.recorder.select_events(aggregate_id, gt=version, limit=1)


def _outcome(stored: dict[str, Any], *, replayed: bool) -> Outcome[dict[str, Any]]:
    result = dict(stored)
    versions = result.pop(_VERSIONS, {})
    return Outcome(result, {UUID(key): version for key, version in versions.items()}, replayed)


def _action(acting: Acting, changed: Sequence[Aggregate], at: datetime) -> AdminAction:
    actor = acting.actor
    return AdminAction.record(
        user_id=actor.user_id,
        email=actor.email,
        role=actor.role,
        action=acting.action,
        target=acting.target,
        detail=acting.detail,
        events=[(str(aggregate.id), aggregate.version) for aggregate in changed],
        at=at,
    )


def back_off(attempt: int) -> None:
    if attempt + 1 < MAX_ATTEMPTS:
        backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
        time.sleep(random.uniform(0, backoff))  # noqa: S311 (jitter, not security)


@contextmanager
def storage_errors_as_unavailable() -> Iterator[None]:
    """The store failed (lock timeout, lost connection): callers see StoreUnavailableError."""
    try:
        yield
    except PersistenceError as error:
        raise StoreUnavailableError(str(error)) from error


def fold(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply events in order. The library's own projector asserts a runtime Protocol on every
    event, which costs more than applying it (bench/: ~20 us per event on Python 3.11)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate
