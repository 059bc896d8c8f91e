"""The dashboard's pages: each entry is a page module's `routes` (its `routes() -> list[Route]`,
paths relative to /admin). Add a module here and it is served under the Mount, behind the
security middleware, and reached by tests/e2e/test_admin_security.py without more ado."""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import BaseRoute

from web.admin import activity, failed_payments, invoice, invoices, overview, payouts, reconciliation, webhooks

PAGES: list[Callable[[], list[BaseRoute]]] = [
    # adminpages1: overview, invoices, invoice
    overview.routes,
    invoices.routes,
    invoice.routes,
    # adminpages2: failed_payments, reconciliation, webhooks, payouts, activity
    failed_payments.routes,
    reconciliation.routes,
    webhooks.routes,
    payouts.routes,
    activity.routes,
]


def page_routes() -> list[BaseRoute]:
    return [route for routes in PAGES for route in routes()]
