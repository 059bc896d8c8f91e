"""The route table: every route of the app, each documented by the operation it carries."""

from __future__ import annotations

from starlette.routing import BaseRoute

from web import checkout, invoice_pdf, invoices, meta, webhooks
from web.admin import admin_routes
from web.portal import portal_routes
from web.reconciliation import routes as reconciliation
from web.usage import routes as usage
from web.webhook_events import routes as webhook_events


def route_table() -> list[BaseRoute]:
    return [
        *meta.routes(),
        *invoices.routes(),
        *invoice_pdf.routes(),
        *checkout.routes(),
        *usage.routes(),
        *webhooks.routes(),
        *reconciliation.routes(),
        *webhook_events.routes(),
        *admin_routes(),
        *portal_routes(),
    ]
