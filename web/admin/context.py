"""Who is acting on an admin request: the session and the user it belongs to.

The security middleware (web/admin/security.py) puts an `AdminContext` on `request.state.admin`
before any page handler runs; a handler that changes something wraps the command in
`acting(request, ...)`, so the runner records who did it (commands/admin/acting.py) and the
activity page lists it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from starlette.requests import Request

from adapters.admin.sessions import AdminSession
from commands.admin.acting import Acting, Actor, acting_as
from ledger.admin.users import ADMIN


@dataclass(frozen=True)
class AdminContext:
    session: AdminSession
    user: Actor

    @property
    def can_act(self) -> bool:
        """Only an admin changes things; an auditor sees everything and acts on nothing."""
        return self.user.role == ADMIN

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token


def admin_of(request: Request) -> AdminContext | None:
    """The signed-in user's context; None on the pages that need no session (login, errors)."""
    context = request.scope.get("state", {}).get("admin")
    return context if isinstance(context, AdminContext) else None


def acting(
    request: Request, action: str, target: str | None = None, detail: str = ""
) -> AbstractContextManager[Acting]:
    """The context every command of a page handler runs in: it records `action` by this user.

    The middleware has refused every request without a session, so a handler reaching here has one.
    """
    context = admin_of(request)
    if context is None:
        raise RuntimeError("acting() outside an authenticated admin request")
    return acting_as(context.user, action, target, detail)
