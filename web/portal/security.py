"""The portal's guard, on the /portal Mount, before any handler runs:

1. the portal is off (no LEDGER_SECRET_KEY): every path under /portal is a 404 page;
2. a path with a `.` or `..` segment is refused (404), whatever the static files would do;
3. an unsafe method from another site (the browser's Sec-Fetch-Site, else the Origin header) is
   refused (403): the token in the URL is the credential, and only a page of ours should post
   with it;
4. every error below it is an HTML page with its status (portal/error.html), never a trace:
   a token we did not sign 403, a link expired or revoked 410, an invoice that is not the
   customer's 404 (web/portal/access.py).

The headers (a CSP without 'unsafe-inline' whose form-action also allows the payment provider's
checkout page, Pay's redirect; nosniff, no framing, `Referrer-Policy: no-referrer`
so the token never leaves in a Referer, `Cache-Control: no-store`) are set app-wide for
/portal by web/admin/security.py's SecurityHeaders (web/app.py), so the router's own 404s
carry them too.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.pdf.render import FontMissingError
from commands.portal.tokens import TamperedTokenError
from ledger.errors import InvalidInputError, LedgerError, NotFoundError, ProviderError, RuleViolationError
from ledger.portal.links import PortalLinkExpiredError, PortalLinkGoneError
from web.admin.security import CSP
from web.error_pages import with_error_pages
from web.portal.rendering import render
from web.problems import STATUSES
from web.services import Services

log = logging.getLogger("ledger.portal")

SAFE_METHODS = frozenset({"GET", "HEAD"})
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
NOT_FOUND = ("Not found", "There is no such page. Check the link you were sent, or ask for a new one.")


def portal_csp(checkout_origins: tuple[str, ...]) -> str:
    """The dashboard's policy, but a form may also be sent on (Pay's 303) to the provider's
    checkout page. Origins that are not plain scheme://host[:port] are left out."""
    allowed = " ".join(origin for origin in checkout_origins if _ORIGIN.fullmatch(origin))
    return CSP.replace("form-action 'self'", f"form-action 'self' {allowed}".rstrip())


class PortalGuard:
    """Pure ASGI, on the /portal Mount: see the module's docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await with_error_pages(scope, receive, send, self._guarded, on_portal_error)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, request: Request) -> None:
        services: Services = request.app.state.services
        if services.secret_key is None:
            raise HTTPException(404)
        path: str = scope["path"]
        if any(segment in {".", ".."} for segment in path.split("/")):
            raise HTTPException(404)
        if scope["method"] not in SAFE_METHODS and not _same_origin(request, services):
            raise HTTPException(403, "A form of another site cannot act here.")
        await self.app(scope, receive, send)


def _same_origin(request: Request, services: Services) -> bool:
    """Whether an unsafe request came from one of our pages. The pages send no referrer, so a
    browser's POST from them carries `Origin: null`: the browser's own `Sec-Fetch-Site` is asked
    first, and a null or absent Origin (scripts, older browsers) is let through; the token in
    the path is what no other site has."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    ours = {request.headers.get("host", ""), urlsplit(services.public_url or "").netloc} - {""}
    return urlsplit(origin).netloc in ours


def refusal(error: Exception) -> tuple[int, str, str]:
    """The status, title and words of the page an error becomes. Nothing of the store's or the
    provider's own messages reaches a customer but what the ledger says on purpose."""
    if isinstance(error, TamperedTokenError):
        return 403, "This link is not valid", "The link may have been copied incompletely. Ask for a new one."
    if isinstance(error, PortalLinkGoneError):
        said = "expired" if isinstance(error, PortalLinkExpiredError) else "been withdrawn"
        return 410, f"This link has {said}", "Ask the sender of your invoices for a new link."
    if isinstance(error, NotFoundError):
        return 404, *NOT_FOUND
    if isinstance(error, HTTPException):
        if error.status_code == 404:
            return 404, *NOT_FOUND
        phrase = HTTPStatus(error.status_code).phrase
        detail = "This page cannot be used that way." if error.detail == phrase else str(error.detail)
        return error.status_code, phrase, detail
    if isinstance(error, InvalidInputError | RuleViolationError | ProviderError):
        status = next((status for kind, status, _ in STATUSES if isinstance(error, kind)), 400)
        if status >= 500:
            return status, "Please try again shortly", "The payment service could not be reached. Nothing was charged."
        return status, "This cannot be done", str(error)
    if isinstance(error, LedgerError):
        status = next((status for kind, status, _ in STATUSES if isinstance(error, kind)), 400)
        if status >= 500:
            return status, "Please try again shortly", "The service is busy. Nothing was changed."
        return status, "This cannot be done", str(error)
    if isinstance(error, FontMissingError):
        log.error("the portal could not render a PDF: %s", error)
        return (
            503,
            "Please try again shortly",
            "The PDF cannot be made right now. The invoice page shows everything in it.",
        )
    log.error("unexpected error on a portal page", exc_info=error)
    return 500, "Something went wrong", "Please try again later. Nothing was charged or changed."


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    response = render(request, "portal/error.html", {"status": status, "title": title, "detail": detail}, status)
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


async def on_portal_error(request: Request, error: Exception) -> Response:
    status, title, detail = refusal(error)
    return error_page(request, status, title, detail)
