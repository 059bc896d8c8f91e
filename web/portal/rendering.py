"""The portal's HTML: one Jinja2 environment over web/portal/templates, autoescaped.

Filters: `money(amount, currency)` (`Money.format`: "1,234.50 USD", the currency's own
decimals, no locale), `day(moment)` ("2026-03-01"), `status_label(status)` (the words a customer
reads for an invoice's status).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from ledger.money import Money

PREFIX = "/portal"
TEMPLATES = Path(__file__).parent / "templates"

STATUS_LABELS = {
    "open": "Open",
    "paid": "Paid",
    "void": "Void",
    "uncollectible": "Uncollectible",
}


def money(amount: int | None, currency: str | None) -> str:
    if amount is None or not currency:
        return "—"
    return Money(amount, currency).format()


def day(value: datetime | date | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return value[:10]
    if isinstance(value, datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    return value.isoformat()


def status_label(status: str | None) -> str:
    return STATUS_LABELS.get(status or "", (status or "unknown").capitalize())


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template is HTML: escape everything not marked safe
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(money=money, day=day, status_label=status_label)
    return environment


templates = Jinja2Templates(env=_environment())


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    services = getattr(request.app.state, "services", None)
    frame: dict[str, Any] = {"seller": getattr(services, "seller", None)}
    response: HTMLResponse = templates.TemplateResponse(request, name, {**frame, **(context or {})}, status_code)
    return response
