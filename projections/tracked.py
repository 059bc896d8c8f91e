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

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        """Write the rows for `batch`; the runner commits them with the new position."""
        ...

    def reset(self) -> None:
        """Forget in-memory state: the transaction that used it was rolled back."""
        ...
