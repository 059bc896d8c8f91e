"""One attempt of one command: the aggregates it loaded and the ones it changed.

A command made of several steps (a webhook event that records itself, applies a payment and
releases the refunds that were waiting for it; or a batch of such events sharing a commit)
loads each aggregate once through its `Work`, so every step sees what the earlier ones did, and
the command saves `changed` in one transaction. `attempt` runs one step all or nothing: if the
step raises, every aggregate it reached is put back as it was before the step, pending events
included, so a refused step leaves no half.

Steps reach aggregates through `get` (or `invoice`, `payment`, `add`): that is how `attempt`
knows what to put back. An aggregate the step's attempt loaded from the store is simply
forgotten on failure; one that an earlier step had already loaded is copied when the step
first reaches it, so a long batch copies only what its steps share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from typing import TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.errors import InvoiceNotFoundError, PaymentNotFoundError
from ledger.invoices import Invoice
from ledger.payments import Payment

T = TypeVar("T", bound=Aggregate)
R = TypeVar("R")

Load = Callable[[UUID], Aggregate | None]


class StaleReadError(Exception):
    """What this attempt read no longer hangs together (another writer committed between two of
    its reads): the command is decided again from fresh state, as after a write conflict."""


_ABSENT = object()  # in a backup: the aggregate was not in this work before the step


class _Backup:
    def __init__(self, changed: dict[UUID, None]) -> None:
        self.changed = dict(changed)
        self.seen: dict[UUID, object] = {}


class Work:
    def __init__(self, load: Load) -> None:
        self._load = load
        self._seen: dict[UUID, Aggregate | None] = {}
        self._changed: dict[UUID, None] = {}  # insertion-ordered set of changed ids
        self._backups: list[_Backup] = []  # one per attempt in progress, innermost last
        self._absent: set[UUID] = set()  # ids found with nothing stored by a batch lookup: no load
        self.loads: list[tuple[UUID, int | None]] = []  # every load from the store: id, version (None: absent)

    def get(self, aggregate_id: UUID, kind: type[T]) -> T | None:
        """The aggregate as this attempt has it (loaded once), or None if there is none of that kind."""
        self._keep(aggregate_id)
        if aggregate_id not in self._seen:
            loaded = None if aggregate_id in self._absent else self._load(aggregate_id)
            self._seen[aggregate_id] = loaded
            self.loads.append((aggregate_id, None if loaded is None else loaded.version))
        found = self._seen[aggregate_id]
        return found if isinstance(found, kind) else None

    def known_absent(self, ids: Iterable[UUID]) -> None:
        """These ids had nothing stored when this attempt began (one lookup for all of them,
        CommandRunner.work): `get` answers None for them without a load, and records that load
        as absent, as a load that found nothing would be."""
        self._absent.update(ids)

    def invoice(self, invoice_id: UUID) -> Invoice:
        invoice = self.get(invoice_id, Invoice)
        if invoice is None:  # a deleted draft is still found: its rules refuse what comes for it
            raise InvoiceNotFoundError(invoice_id)
        return invoice

    def payment(self, payment_id: UUID) -> Payment:
        payment = self.get(payment_id, Payment)
        if payment is None:
            raise PaymentNotFoundError(payment_id)
        return payment

    def add(self, aggregate: Aggregate) -> None:
        """Mark an aggregate (new or loaded through `get`) as changed: it is saved with the rest."""
        self._keep(aggregate.id)
        self._seen[aggregate.id] = aggregate
        self._changed[aggregate.id] = None

    def touch(self, *aggregates: Aggregate) -> None:
        for aggregate in aggregates:
            self.add(aggregate)

    @property
    def changed(self) -> list[Aggregate]:
        """Changed aggregates with events to save, in the order they were first changed."""
        found = [self._seen[i] for i in self._changed]
        return [a for a in found if a is not None and a.pending_events]

    @staticmethod
    def check_reads(loads: Sequence[tuple[UUID, int | None]], unchanged: Callable[[UUID, int | None], bool]) -> None:
        """StaleReadError if any of these loads (from `loads`) has been written since it was made
        (`unchanged(id, version)` asks the store). A decision that writes nothing but its own
        record (a refusal) would not conflict with the writer that made it stale: ask instead."""
        for aggregate_id, version in dict(loads).items():
            if not unchanged(aggregate_id, version):
                raise StaleReadError(f"{aggregate_id} changed after it was read at version {version}")

    def attempt(self, step: Callable[[], R]) -> R:
        """Run `step`; if it raises, undo everything it did to this work, then re-raise."""
        backup = _Backup(self._changed)
        self._backups.append(backup)
        try:
            return step()
        except BaseException:
            self._restore(backup)
            raise
        finally:
            self._backups.pop()

    def _keep(self, aggregate_id: UUID) -> None:
        """Before a step first reaches an aggregate: remember it as it is, for every attempt."""
        for backup in self._backups:
            if aggregate_id not in backup.seen:
                present = aggregate_id in self._seen
                backup.seen[aggregate_id] = deepcopy(self._seen[aggregate_id]) if present else _ABSENT

    def _restore(self, backup: _Backup) -> None:
        for aggregate_id, kept in backup.seen.items():
            current = self._seen.get(aggregate_id)
            if kept is _ABSENT:
                self._seen.pop(aggregate_id, None)
            elif current is not None and type(current) is type(kept):
                # In place: a reference a caller still holds sees the state put back too.
                current.__dict__ = kept.__dict__
            else:
                self._seen[aggregate_id] = kept  # type: ignore[assignment]
        self._changed = backup.changed
