"""What our aggregates and events share: copying cheaply, and the mark of a money event.

`MovesMoney`, on an event class, declares that the event changes the ledger's books: the
journal (ledger/accounting.py) must have a posting rule for its topic, a test walks every event
class to check it, and an event so marked without a rule raises instead of posting nothing.
The Payment aggregate's events are not marked: they are the provider's view of movements that
the invoice's events post.

Copying:

Aggregates are copied often: every load from the repository's cache is a `deepcopy`, and
`Work.attempt` copies what a step reaches so that it can put it back. The generic deepcopy
rebuilds every UUID, datetime and event through `__reduce_ex__`, about 130 us for an invoice.
These never change once made, so a copy may share them:

- `SharedWhenCopied`, on every event class: events are frozen and nothing mutates them after
  they are triggered (each `apply` copies what it keeps);
- `CopiedCheaply`, on every aggregate: copies its attribute dictionary, sharing immutable
  values and deep-copying only containers (lists and dicts of plain values).
"""

from __future__ import annotations

from copy import deepcopy
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

T = TypeVar("T")

_IMMUTABLE = (str, int, bool, type(None), UUID, datetime, date)


class MovesMoney:
    """Marks an event class whose events post to the journal (see the module docstring)."""


class SharedWhenCopied:
    def __deepcopy__(self, memo: dict[int, Any]) -> SharedWhenCopied:
        return self


class CopiedCheaply:
    def __deepcopy__(self: T, memo: dict[int, Any]) -> T:
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        copied = clone.__dict__
        for name, value in self.__dict__.items():
            copied[name] = value if isinstance(value, _IMMUTABLE) else _copy(value, memo)
        return clone


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    if type(value) is list:
        if all(isinstance(item, (*_IMMUTABLE, SharedWhenCopied)) for item in value):
            return list(value)  # pending events, ids: a new list of the same items
        return deepcopy(value, memo)
    return deepcopy(value, memo)
