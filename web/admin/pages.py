"""The dashboard's pages: each entry is a page module's `routes` (its `routes() -> list[Route]`,
paths relative to /admin). Add a module here and it is served under the Mount, behind the
security middleware, and reached by tests/e2e/test_admin_security.py without more ado."""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import BaseRoute

from web.admin.activity import routes as activity_routes
from web.admin.failed_payments import routes as failed_payments_routes
from web.admin.invoice import routes as invoice_routes
from web.admin.invoices import routes as invoices_routes
from web.admin.overview import routes as overview_routes
from web.admin.payouts import routes as payouts_routes
from web.admin.reconciliation import routes as reconciliation_routes
from web.admin.webhooks import routes as webhooks_routes

PAGES: list[Callable[[], list[BaseRoute]]] = [
    # what is owed and each invoice
    overview_routes,
    invoices_routes,
    invoice_routes,
    # the day-to-day operations
    failed_payments_routes,
    reconciliation_routes,
    webhooks_routes,
    payouts_routes,
    activity_routes,
]


def page_routes() -> list[BaseRoute]:
    return [route for routes in PAGES for route in routes()]
