"""The dashboard's HTML: one Jinja2 environment over web/admin/templates, autoescaped, and
`render`, which every page uses so each template gets the same frame (the user, the CSRF token,
whether the user may act, the menu, the moment).

Filters: `money(amount, currency)` ("1,234.50 USD": the currency's own decimals, no locale),
`moment(dt)` ("2026-03-01 14:05 UTC"), `badge(status)` (the CSS classes of a status badge).
Global: `url_with(request, **params)` (this page's URL with some query parameters replaced;
None drops one), for filters, sorting and the next page's link.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from ledger.money import Money
from web.admin.context import admin_of

PREFIX = "/admin"
TEMPLATES = Path(__file__).parent / "templates"

# The menu, in order: (label, path under /admin). The current page is the longest prefix match.
NAV: tuple[tuple[str, str], ...] = (
    ("Overview", "/"),
    ("Invoices", "/invoices"),
    ("Failed payments", "/failed-payments"),
    ("Reconciliation", "/reconciliation"),
    ("Webhooks", "/webhooks"),
    ("Payouts", "/payouts"),
    ("Activity", "/activity"),
)


def money(amount: int | None, currency: str | None) -> str:
    if amount is None or not currency:
        return "—"
    return Money(int(amount), currency).format()


def moment(value: datetime | date | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite hands back naive moments; every stored moment is UTC
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def badge(status: str | None) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", (status or "unknown").lower()).strip("-") or "unknown"
    return f"badge badge-{slug}"


def url_with(request: Request, **params: Any) -> str:
    query = dict(request.query_params)
    for name, value in params.items():
        if value is None or value == "":
            query.pop(name, None)
        else:
            query[name] = str(value)
    return request.url.path + ("?" + urlencode(query) if query else "")


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template is HTML: escape everything not marked safe
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(money=money, moment=moment, badge=badge)
    environment.globals.update(url_with=url_with)
    return environment


templates = Jinja2Templates(env=_environment())


def nav(request: Request) -> list[dict[str, Any]]:
    """The menu; the current entry is the one whose section this page is in (`/invoices/<id>`
    is under Invoices)."""
    here = request.url.path.removeprefix(PREFIX) or "/"
    sections = [path for _, path in NAV if here == path or (path != "/" and here.startswith(path + "/"))]
    current = max(sections, key=len, default=None)
    return [{"label": label, "href": PREFIX + path, "current": path == current} for label, path in NAV]


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    """The template `name` in the dashboard's frame, with `admin`, `csrf_token`, `can_act`, `nav`
    and `now` beside the page's own `context`."""
    admin = admin_of(request)
    services = getattr(request.app.state, "services", None)
    frame: dict[str, Any] = {
        "admin": admin,
        "csrf_token": admin.csrf_token if admin else "",
        "can_act": admin.can_act if admin else False,
        "nav": nav(request),
        "now": services.clock.now() if services is not None else datetime.now(UTC),
    }
    response: HTMLResponse = templates.TemplateResponse(request, name, {**frame, **(context or {})}, status_code)
    return response
