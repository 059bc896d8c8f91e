"""The webhook inbox in the dashboard: every Stripe event received with what was done with it
(projections/webhook_inbox.py), one event's payload as delivered, and reprocessing one.

GET  /admin/webhooks                          events, newest first (`status`, `type`, `sort`, `dir`, `cursor`)
GET  /admin/webhooks/{event_key}              one event (`event_key` is Stripe's id, `evt_...`)
POST /admin/webhooks/{event_key}/reprocess    handle it again, as `ledger webhooks reprocess` and the API do

The payload is read from the ProviderEvent aggregate (the body exactly as Stripe sent it),
shown indented; the template escapes it like any other text.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, PlainValidator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from adapters.stripe.payloads import read_event
from commands.ingestion import stripe_events
from commands.ingestion.provider_events import UNMATCHED, ProviderEventNotFoundError
from projections.webhook_inbox import (
    RECEIVED,
    REJECTED,
    STATUSES,
    list_webhook_events,
    status_of,
    webhook_event_row,
)
from web.admin.context import acting
from web.admin.forms import PAGE_SIZE, done, flash_of, moment_of, read_form, read_query, with_query
from web.admin.rendering import render
from web.admin.sorting import Column, sorting
from web.admin.stripe_links import stripe_url
from web.decoding import rule
from web.invoices import services_of
from web.models import Query
from web.models import Request as Form
from web.webhook_events.models import _status

PATH = "/admin/webhooks"
# The statuses whose event can be handled again (commands/ingestion/provider_events.py REPROCESSABLE).
REPROCESSABLE = (UNMATCHED, REJECTED, RECEIVED)


# One sortable column: newest first, or oldest first (`dir=asc`).
COLUMNS = (Column("received", "Received", descending_first=True),)


class WebhookListQuery(Query):
    status: Annotated[str, PlainValidator(rule(_status))] | None = None
    type: str | None = Field(None, max_length=200)
    sort: str | None = Field(None, max_length=40)
    dir: str | None = Field(None, max_length=4)
    cursor: str | None = None
    done: str | None = None


class EventQuery(Query):
    done: str | None = None


class NoFields(Form):
    """A button: the form carries its CSRF token and nothing else."""


def routes() -> list[BaseRoute]:
    return [
        Route("/webhooks", list_events, methods=["GET"]),
        Route("/webhooks/{event_key}", event_page, methods=["GET"]),
        Route("/webhooks/{event_key}/reprocess", reprocess, methods=["POST"]),
    ]


def _event_id(request: Request) -> str:
    """Stripe's id of the event; one no event can have (a NUL, longer than any id) is not found."""
    event_id: str = request.path_params["event_key"]
    if "\x00" in event_id or len(event_id) > 255:
        raise ProviderEventNotFoundError(stripe_events.PROVIDER, event_id.replace("\x00", "")[:255])
    return event_id


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "received": moment_of(row["received_at"]),
        "handled": moment_of(row["handled_at"]),
        "reprocessable": row["status"] in REPROCESSABLE,
    }


async def list_events(request: Request) -> Response:
    services = services_of(request)
    query = read_query(request, WebhookListQuery)
    filters = {"status": query.status, "type": query.type}
    order = sorting(PATH, COLUMNS, query.sort, query.dir, "received", filters)

    def run() -> Any:
        services.read_models.catch_up()
        return list_webhook_events(
            services.read_models.engine,
            status=query.status,
            event_type=query.type,
            limit=PAGE_SIZE,
            cursor=query.cursor,
            oldest_first=not order.descending,
        )

    page = await run_in_threadpool(run)
    context = {
        "events": [_view(row) for row in page.rows],
        "statuses": STATUSES,
        "filters": filters,
        "sorting": order,
        "next_page": with_query(PATH, **filters, sort=order.sort, dir=order.dir, cursor=page.next_cursor)
        if page.next_cursor
        else None,
        "flash": flash_of(request, query.done),
    }
    return render(request, "admin/webhooks.html", context)


async def event_page(request: Request) -> Response:
    services = services_of(request)
    event_id = _event_id(request)
    query = read_query(request, EventQuery)

    def run() -> tuple[dict[str, Any] | None, str | None, bool]:
        services.read_models.catch_up()
        row = webhook_event_row(services.read_models.engine, event_id, provider=stripe_events.PROVIDER)
        event = services.app.provider_event(stripe_events.PROVIDER, event_id)
        return row, event.payload if event else None, bool(event and event.livemode)

    row, payload, livemode = await run_in_threadpool(run)
    if row is None or payload is None:
        raise ProviderEventNotFoundError(stripe_events.PROVIDER, event_id)
    context = {
        "event": _view(row),
        "payload": _pretty(payload),
        "object_url": stripe_url(row["object_id"], livemode=livemode),
        "event_url": stripe_url(row["id"], livemode=livemode),
        "flash": flash_of(request, query.done),
    }
    return render(request, "admin/webhook.html", context)


def _pretty(payload: str) -> str:
    """The payload indented, keys in Stripe's order; as delivered if it does not read as JSON."""
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return payload


async def reprocess(request: Request) -> Response:
    """The API's reprocessing (commands/ingestion/stripe_events.py `reprocess`): 409 for an event
    there is nothing more to do with, 404 for one never received."""
    services = services_of(request)
    event_id = _event_id(request)
    await read_form(request, NoFields)

    def run() -> str:
        with acting(request, "webhook.reprocess", target=event_id):
            result = stripe_events.reprocess(services.app, event_id, decode=read_event)
        services.read_models.catch_up()
        return f"Reprocessed: {status_of(result.previous_outcome)} → {status_of(result.outcome)}."

    message = await run_in_threadpool(run)
    return done(request, f"{PATH}/{event_id}", message)
