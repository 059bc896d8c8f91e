"""The contract between the runner and a read model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Table

#: An event with its position in the log (the notification id).
Positioned = tuple[int, Any]


class Projection(Protocol):
    """A read model: turns a batch of logged events into rows, inside the runner's transaction."""

    name: str
    tables: tuple[Table, ...]
    # Optional: `kinds`, a tuple of the event classes the model reads. The runner then hands it
    # only those events of each batch (in log order; the position it moves to is still the
    # batch's last), and the same list to every model of equal kinds (projections/runner.py).
    # Optional: `decodes = False`, for a model that reads only the batch's positions: where no
    # other model is at its position, the runner may hand it the events undecoded.

    def prepare(self, batch: Sequence[Positioned]) -> None:
        """Read from the event store what `process` will need (states to fold onto, stored
        records), before the runner takes the read models' write lock. On SQLite the store and
        the read models share one database: waiting on the store's connections while holding
        its write lock could deadlock with a command waiting for that lock."""
        ...

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        """Write the rows for `batch`; the runner commits them with the new position."""
        ...

    def reset(self) -> None:
        """Forget in-memory state: the transaction that used it was rolled back."""
        ...
