"""Signing in and out of the dashboard.

A wrong password, an unknown email and a disabled account get the same page, text and status
(401), and take about as long (the accounts layer verifies a dummy hash for an unknown email).
Failed attempts are limited per account and per client address (web/limiter.py): past
the limit the answer is 429 with Retry-After, before any hash is computed. Each login starts a
new session with a new id: a cookie sent with the login form is revoked, never promoted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from web.admin.rendering import PREFIX, render
from web.admin.security import blocking, clear_session_cookie, session_cookie, set_session_cookie
from web.services import Services

MAX_FIELD_CHARS = 1024  # longer than any email or password we accept; argon2 is not fed megabytes
FAILED = "The email or the password is not right, or the account is disabled."


def routes() -> list[BaseRoute]:
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", log_in, methods=["POST"]),
        Route("/logout", log_out, methods=["POST"]),
    ]


async def login_page(request: Request) -> Response:
    """The sign-in form."""
    return _form(request, email="", next_url=safe_next(request.query_params.get("next")))


async def log_in(request: Request) -> Response:
    """Check the credentials; on success a new session and a 303 to `next` (inside /admin only)."""
    services: Services = request.app.state.services
    form = await request.form()
    email = _text(form.get("email"))
    password = _text(form.get("password"))
    next_url = safe_next(_text(form.get("next")))
    address = request.client.host if request.client else "unknown"
    refusal = services.login_limiter.check(email, address)
    if refusal is not None:
        response = _form(request, email=email, next_url=next_url, status=429, error=_too_many(refusal.retry_after))
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response
    user = await blocking(services, services.app.admin.authenticate, email, password) if email and password else None
    if user is None:
        services.login_limiter.failed(email, address)
        return _form(request, email=email, next_url=next_url, status=401, error=FAILED)
    store = services.session_store()
    previous = session_cookie(request)
    if previous is not None:
        await blocking(services, store.revoke, previous)
    user_agent = request.headers.get("user-agent", "")[:300]
    raw, _ = await blocking(services, lambda: store.create(str(user.id), address=address, user_agent=user_agent))
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, request, raw)
    return response


async def log_out(request: Request) -> Response:
    """End this session (the middleware has checked it and its CSRF token)."""
    services: Services = request.app.state.services
    raw = session_cookie(request)
    if raw is not None:
        await blocking(services, services.session_store().revoke, raw)
    response = RedirectResponse(f"{PREFIX}/login?done=signed-out", status_code=303)
    clear_session_cookie(response, request)
    return response


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path inside /admin, never another site (`//evil`,
    `/admin/../x`, `https://evil/admin/`, a backslash browsers read as a slash)."""
    home = f"{PREFIX}/"
    if not value or "\\" in value or any(ord(c) < 0x20 for c in value):
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not (parts.path == PREFIX or parts.path.startswith(home)):
        return home
    if any(segment in {".", ".."} for segment in parts.path.split("/")) or "%" in parts.path:
        return home
    return value


def _text(value: object) -> str:
    return value[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


def _too_many(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return f"Too many failed attempts: try again in about {minutes} minute{'s' if minutes != 1 else ''}."


def _form(request: Request, *, email: str, next_url: str, status: int = 200, error: str | None = None) -> Response:
    done = request.query_params.get("done") == "signed-out" and request.method == "GET"
    return render(
        request,
        "admin/login.html",
        {"email": email, "next": next_url, "error": error, "signed_out": done},
        status_code=status,
    )
