"""The dashboard's pages: each entry is a page module's `routes` (its `routes() -> list[Route]`,
paths relative to /admin). Add a module here and it is served under the Mount, behind the
security middleware, and reached by tests/e2e/test_admin_security.py without more ado."""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import BaseRoute

from web.admin import invoice, invoices, overview

PAGES: list[Callable[[], list[BaseRoute]]] = [
    overview.routes,
    invoices.routes,
    invoice.routes,
    # adminpages2: failed_payments, reconciliation, webhooks, payouts, activity
]


def page_routes() -> list[BaseRoute]:
    return [route for routes in PAGES for route in routes()]
