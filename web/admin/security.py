"""The dashboard's defences, on by default for every /admin route (a page added later is
covered without declaring anything):

- `SecurityHeaders` (on the whole app, for paths under /admin: also the router's own redirects
  and 404s that never reach the Mount): a Content-Security-Policy without 'unsafe-inline',
  nosniff, no framing, same-origin referrers and opener, and `no-store` on everything but the
  static files.
- `AdminSecurity` (on the /admin Mount), before any handler runs:
  1. a path with a `.` or `..` segment is refused (404), whatever the static files would do;
  2. static files and the login page need no session;
  3. an unsafe method from another origin (Origin header) is refused (403);
  4. without a valid session (cookie `ledger_admin`, server-side, not expired, its user still
     active) a page is a 303 to the login page and anything else a 401;
  5. an unsafe method must carry the session's CSRF token (form field `csrf_token` or header
     `X-CSRF-Token`, compared in constant time) and come from an admin (an auditor may only log
     out), else 403;
  6. every error below it is an HTML page with the right status (admin/error.html), never a
     stack trace.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commands.admin.acting import Actor
from ledger.errors import LedgerError
from web.admin.context import AdminContext
from web.admin.rendering import PREFIX, render
from web.error_pages import with_error_pages
from web.problems import STATUSES, problem
from web.services import Services

log = logging.getLogger("ledger.admin")
T = TypeVar("T")

COOKIE = "ledger_admin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 1024 * 1024
MAX_COOKIE_CHARS = 128  # the ids are 43 characters; a longer value is not one of ours
SAFE_METHODS = frozenset({"GET", "HEAD"})
PLAIN: dict[int, tuple[str, str]] = {  # status: (title, what it means when nothing more was said)
    400: ("Bad request", "the request could not be read"),
    401: ("Sign in required", "sign in to the dashboard first"),
    403: ("Forbidden", "this is not allowed"),
    404: ("Not found", "there is no such page"),
    405: ("Method not allowed", "this page cannot be used that way"),
    413: ("Too large", "the form is too large"),
}

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HEADER_NAMES = frozenset(name for name, _ in HEADERS) | {b"cache-control"}


class SecurityHeaders:
    """Pure ASGI: adds the headers to every response under `prefix`, whoever answered it.
    `referrer_policy`: the client portal's pages carry a secret in their URL and send none;
    `csp`: theirs lets a form's redirect reach the payment provider's page."""

    def __init__(
        self, app: ASGIApp, prefix: str = PREFIX, referrer_policy: bytes = b"same-origin", csp: str = CSP
    ) -> None:
        self.app = app
        self.prefix = prefix
        replaced = {b"referrer-policy": referrer_policy, b"content-security-policy": csp.encode()}
        self.headers = tuple((name, replaced.get(name, value)) for name, value in HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        # Static files may be kept, but checked again (their ETag) before each use.
        cache = b"no-cache" if path.startswith(self.prefix + "/static/") else b"no-store"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(name, value) for name, value in message.get("headers", []) if name not in HEADER_NAMES]
                message["headers"] = [*kept, *self.headers, (b"cache-control", cache)]
            await send(message)

        await self.app(scope, receive, with_headers)


class AdminSecurity:
    """Pure ASGI, on the /admin Mount: see the module's docstring for the order of the checks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Everything below renders its errors as pages, the handlers' own included.
        await with_error_pages(scope, receive, send, self._guarded, on_admin_error)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, request: Request) -> None:
        path = _local_path(scope)
        if any(segment in {".", ".."} for segment in path.split("/")):
            raise HTTPException(404, "no such page")
        if path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        safe = scope["method"] in SAFE_METHODS
        if not safe and not _same_origin(request):
            raise HTTPException(403, "a form of another site cannot act here")
        if path == "/login":
            if not safe:  # anyone may post here: held to the forms' size limit like any POST
                receive = _replay(await _read_body(receive), receive)
            await self.app(scope, receive, send)
            return
        services: Services = request.app.state.services
        context = await _context(services, request)
        if context is None:
            await _refuse_anonymous(request, safe)(scope, receive, send)
            return
        scope.setdefault("state", {})["admin"] = context
        if not safe:
            body = await _read_body(receive)
            if not _csrf_matches(request, body, context.csrf_token):
                raise HTTPException(403, "the form is stale or was not sent from this dashboard: reload and try again")
            if not context.can_act and path != "/logout":
                raise HTTPException(403, "an auditor can see everything and change nothing")
            receive = _replay(body, receive)
        await self.app(scope, receive, send)


# ------------------------------------------------------------------------------ sessions


def session_cookie(request: Request) -> str | None:
    raw = request.cookies.get(COOKIE)
    return raw if raw and len(raw) <= MAX_COOKIE_CHARS else None


async def _context(services: Services, request: Request) -> AdminContext | None:
    raw = session_cookie(request)
    if raw is None:
        return None
    session = await blocking(services, services.session_store().get, raw)
    if session is None:
        return None
    user = await blocking(services, services.app.admin.user, UUID(session.user_id))
    if user is None or not user.active:  # disabled since: its sessions end even if not revoked
        return None
    return AdminContext(session, Actor(user_id=session.user_id, email=user.email, role=user.role))


def _refuse_anonymous(request: Request, safe: bool) -> Response:
    response: Response
    if not safe:
        response = unauthorized(request)
    else:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='/')}", status_code=303)
    if COOKIE in request.cookies:  # an expired or revoked id: forget it
        clear_session_cookie(response, request)
    return response


def unauthorized(request: Request) -> Response:
    detail = "sign in to the dashboard first"
    if _wants_json(request):
        return problem(401, "Unauthorized", detail, slug="unauthorized")
    return error_page(request, 401, "Sign in required", detail)


def secure_cookies(request: Request) -> bool:
    services: Services = request.app.state.services
    if services.secure_cookies is not None:
        return services.secure_cookies
    return request.url.scheme == "https" or (services.public_url or "").startswith("https:")


def set_session_cookie(response: Response, request: Request, raw: str) -> None:
    # No max_age: the server ends the session (idle and absolute timeouts); the browser forgets
    # the id when it closes.
    response.set_cookie(COOKIE, raw, path=PREFIX, httponly=True, samesite="lax", secure=secure_cookies(request))


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="lax", secure=secure_cookies(request))


async def blocking(services: Services, function: Callable[..., T], *args: Any) -> T:
    """A read or write on the database: inline on a local file, else off the event loop."""
    if services.inline_reads:
        return function(*args)
    return await run_in_threadpool(function, *args)


# ------------------------------------------------------------------------------ requests


def _local_path(scope: Scope) -> str:
    """The path under the Mount ("/login"), whatever the app is mounted under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _same_origin(request: Request) -> bool:
    """A browser names the page a form came from in Origin; another site's is refused. Clients
    that send none (scripts) still need the session's CSRF token. Ours is the Host the request
    came to, or the public URL's (behind a proxy that does not pass the Host on)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    services: Services = request.app.state.services
    ours = {request.headers.get("host", ""), urlsplit(services.public_url or "").netloc} - {""}
    return urlsplit(origin).netloc in ours


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPException(400, "the request ended before its body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise HTTPException(413, f"a form is at most {MAX_FORM_BYTES:,} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, handed to the handler as if it arrived now."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _csrf_matches(request: Request, body: bytes, expected: str) -> bool:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(CSRF_FIELD, [])
        given = values[0] if len(values) == 1 else None
    # Multipart forms are not used by the dashboard: without the header they carry no token here.
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


# ------------------------------------------------------------------------------ errors


def _status_of(error: Exception) -> tuple[int, str, str]:
    if isinstance(error, HTTPException):
        title, plain = PLAIN.get(error.status_code, ("Refused", str(error.detail)))
        # Starlette's own 404 and 405 carry only the status's name: say it in words instead.
        detail = plain if error.detail == HTTPStatus(error.status_code).phrase else str(error.detail)
        return error.status_code, title, detail
    if isinstance(error, LedgerError):
        found = next(((status, title) for kind, status, title in STATUSES if isinstance(error, kind)), (400, "Refused"))
        return found[0], found[1], str(error)
    log.error("unexpected error on an admin page", exc_info=error)
    return 500, "Something went wrong", "the server failed; nothing was half-applied (commands are atomic)"


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    response = render(request, "admin/error.html", {"status": status, "title": title, "detail": detail}, status)
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


async def on_admin_error(request: Request, error: Exception) -> Response:
    status, title, detail = _status_of(error)
    if status == 401:
        return unauthorized(request)
    response = error_page(request, status, title, detail)
    if isinstance(error, HTTPException) and error.headers:
        response.headers.update(error.headers)
    return response
