"""Who a command runs for: the dashboard user behind it, and the action they asked for.

    with acting_as(actor, "invoice.void", target=str(invoice_id)):
        app.void(invoice_id)

`CommandRunner._attempt` (commands/runner.py) reads the context: the first command run inside
it that changes something also saves one `AdminAction` (ledger/admin/activity.py) naming the
actor, the action and the events it made, in the same transaction as those events. Later
commands in the same context record no other action (one action a person asked for may take
several commands); a refused command saves nothing, so it records nothing either. A context
opened inside another is an action of its own; the outer one carries on when it closes.

The context lives in a `ContextVar`: a thread or task started from inside it with the context
copied (Starlette's `run_in_threadpool`, `asyncio.to_thread`) acts as the same actor, and a
command's signature never has to carry who ran it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from threading import Lock

from ledger.admin.activity import check_action


@dataclass(frozen=True)
class Actor:
    """A dashboard user as the commands see them (their user id as a string)."""

    user_id: str
    email: str
    role: str


class Acting:
    """One open `acting_as` context: who, what, and whether its action is recorded yet."""

    def __init__(self, actor: Actor, action: str, target: str | None, detail: str) -> None:
        self.actor = actor
        self.action = action
        self.target = target
        self.detail = detail
        self._recorded = False
        # Commands of one context may run on two threads at once (each with a copy of the
        # context, sharing this object): only one of them may record the action.
        self._lock = Lock()

    @property
    def recorded(self) -> bool:
        return self._recorded

    @contextmanager
    def recording(self) -> Iterator[bool]:
        """Whether the command about to save should record the action; marks it recorded when
        the block ends without an error (the save committed)."""
        with self._lock:
            record = not self._recorded
            yield record
            if record:
                self._recorded = True


_acting: ContextVar[Acting | None] = ContextVar("ledger_acting", default=None)


@contextmanager
def acting_as(actor: Actor, action: str, target: str | None = None, detail: str = "") -> Iterator[Acting]:
    """Run the block's commands as `actor` doing `action` (see the module docstring).

    The action's name, target and detail are checked first: bad ones raise InvalidInputError
    before anything runs.
    """
    name, aimed, said = check_action(action, target, detail)
    acting = Acting(actor, name, aimed, said)
    token = _acting.set(acting)
    try:
        yield acting
    finally:
        _acting.reset(token)


def current_actor() -> Actor | None:
    acting = _acting.get()
    return None if acting is None else acting.actor


def current_acting() -> Acting | None:
    """The open context, for the runner."""
    return _acting.get()
