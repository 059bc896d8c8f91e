"""The aggregates we store and their event classes, found by walking the code, not by a list.

Every module under `ledger/` and `commands/` is imported (pkgutil.walk_packages), then every
subclass of the library's `Aggregate` defined there is collected with the event classes it
declares. A new aggregate or event class is found without anyone remembering to add it.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from eventsourcing.domain import Aggregate

import commands
import ledger

PACKAGES: tuple[ModuleType, ...] = (ledger, commands)


def _import_all() -> None:
    for package in PACKAGES:
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            importlib.import_module(module.name)


def _ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] in {p.__name__ for p in PACKAGES}


def stored_aggregates() -> list[type[Aggregate]]:
    """Every aggregate class defined under ledger/ and commands/, by topic."""
    _import_all()
    found: dict[str, type[Aggregate]] = {}
    pending: list[type[Aggregate]] = list(Aggregate.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if _ours(cls):
            found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


def event_classes(aggregate: type[Aggregate]) -> dict[str, type[Aggregate.Event]]:
    """The concrete event classes an aggregate stores (not the abstract base `Event`), by name;
    an alias (`Created = Initiated`) is listed under each of its names."""
    return {
        name: value
        for name, value in vars(aggregate).items()
        if isinstance(value, type) and issubclass(value, Aggregate.Event) and name != "Event"
    }


def stored_event_classes() -> list[type[Aggregate.Event]]:
    """Every event class of every stored aggregate, each once."""
    seen: dict[type[Aggregate.Event], None] = {}
    for aggregate in stored_aggregates():
        for cls in event_classes(aggregate).values():
            seen.setdefault(cls)
    return list(seen)
