"""What the command mixins (commands/usage/commands.py, commands/dunning.py) use of BillingApplication.

The mixins are halves of one application class: they run their commands through its
`_execute` and read through its repository. `CommandHost` declares those members for the type
checker only; at run time BillingApplication provides them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.application import Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ApplicationRecorder, Mapper

from commands.ports import Clock
from ledger.invoices import Invoice

T = TypeVar("T", bound=Aggregate)


class CommandHost:
    if TYPE_CHECKING:
        clock: Clock
        repository: Repository[UUID]
        recorder: ApplicationRecorder
        mapper: Mapper[UUID]

        def _execute(
            self,
            command: str,
            arguments: dict[str, Any],
            idempotency_key: str | None,
            decide: Callable[[datetime], tuple[dict[str, Any], Sequence[Aggregate]]],
        ) -> dict[str, Any]: ...

        def invoice(self, invoice_id: UUID, *, version: int | None = None) -> Invoice: ...

        def _get_or_none(
            self,
            aggregate_id: UUID,
            kind: type[T],
            repository: Repository[UUID] | None = None,
            *,
            version: int | None = None,
        ) -> T | None: ...
