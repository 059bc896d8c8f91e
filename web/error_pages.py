"""What the dashboard's and the portal's guards share: every error below the guard, its own and
the handlers', becomes the page its renderer makes (web/admin/security.py, web/portal/security.py),
never a stack trace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

ErrorRenderer = Callable[[Request, Exception], Awaitable[Response]]
Guarded = Callable[[Scope, Receive, Send, Request], Awaitable[None]]


async def with_error_pages(
    scope: Scope, receive: Receive, send: Send, guarded: Guarded, on_error: ErrorRenderer
) -> None:
    """Runs `guarded` on an HTTP scope, with `on_error` as the handlers' exception handler and
    for what the guard itself raises. An error after the response has started cannot become a
    page any more: it goes on up (the server closes the connection)."""
    scope = {**scope, "starlette.exception_handlers": ({Exception: on_error}, {})}
    request = Request(scope)
    started = False

    async def tracking(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await guarded(scope, receive, tracking, request)
    except Exception as error:
        if started:
            raise
        response = await on_error(request, error)
        await response(scope, receive, send)
