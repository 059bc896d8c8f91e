"""The webhook inbox: every Stripe event received, with what was done with it, and the
reprocessing of one that found nothing of ours or was refused (its invoice exists now, a bug was
fixed). Parse -> query or command -> render; the list reads the read model
(projections/webhook_inbox.py), caught up first so that a caller sees what it just sent.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.stripe.payloads import read_event
from commands.ingestion import stripe_events
from commands.ingestion.provider_events import ProviderEventNotFoundError
from projections.webhook_inbox import list_webhook_events, status_of, webhook_event_row
from web.body import read_json
from web.decoding import decode
from web.invoices import _blocking, idempotency_key_of, services_of
from web.models import Empty
from web.operations import BODY, READ, Endpoint, Operation
from web.webhook_events import models


def routes() -> list[Route]:
    return [
        Endpoint("/api/webhook-events", list_events, "GET", Operation(
            "listWebhookEvents", "List the Stripe events received, newest first", response=models.WebhookEventList,
            query=models.WebhookEventListQuery, problems=(*READ, 422))),
        Endpoint("/api/webhook-events/{event_id}", read_event_row, "GET", Operation(
            "getWebhookEvent", "Read one Stripe event received", response=models.WebhookEvent,
            problems=(*READ, 404))),
        Endpoint("/api/webhook-events/{event_id}/reprocess", reprocess, "POST", Operation(
            "reprocessWebhookEvent", "Handle an unmatched, rejected or never-handled Stripe event again",
            response=models.WebhookEventReprocessed, body=Empty, headers=("Idempotency-Key",),
            problems=(*READ, *BODY, 404, 409))),
    ]  # fmt: skip


def _json(row: dict[str, Any]) -> models.WebhookEvent:
    body: models.WebhookEvent = {"object": "webhook_event", **row}  # type: ignore[typeddict-item]
    return body


async def list_events(request: Request) -> Response:
    services = services_of(request)
    query = decode(models.WebhookEventListQuery, dict(request.query_params))

    def run() -> Any:
        services.read_models.catch_up()
        return list_webhook_events(
            services.read_models.engine, status=query.status, limit=query.limit, cursor=query.cursor or None
        )

    page = await _blocking(run)
    body: models.WebhookEventList = {
        "object": "list",
        "data": [_json(row) for row in page.rows],
        "has_more": page.next_cursor is not None,
        "next_cursor": page.next_cursor,
    }
    return JSONResponse(body)


async def read_event_row(request: Request) -> Response:
    services = services_of(request)
    event_id = request.path_params["event_id"]

    def run() -> dict[str, Any] | None:
        services.read_models.catch_up()
        return webhook_event_row(services.read_models.engine, event_id, provider=stripe_events.PROVIDER)

    row = await _blocking(run)
    if row is None:
        raise ProviderEventNotFoundError(stripe_events.PROVIDER, event_id)
    return JSONResponse(_json(row))


async def reprocess(request: Request) -> Response:
    """Handle a kept event again, through the same steps as its delivery: for an event that was
    `unmatched`, `rejected` or never handled (`received`).

    409 for one that is `applied`, `duplicate`, `ignored` (nothing more to do) or `waiting` (its
    payment releases it); 404 for an id never received. Money is never applied twice: every step
    is keyed by Stripe's ids. With an `Idempotency-Key`, a repeat is answered as the first was."""
    services = services_of(request)
    decode(Empty, await read_json(request))
    event_id = request.path_params["event_id"]
    key = idempotency_key_of(request)
    done = await _blocking(stripe_events.reprocess, services.app, event_id, decode=read_event, idempotency_key=key)
    body: models.WebhookEventReprocessed = {
        "id": done.event_id,
        "object": "webhook_event_reprocessing",
        "previous_status": status_of(done.previous_outcome),  # type: ignore[typeddict-item]
        "status": status_of(done.outcome),  # type: ignore[typeddict-item]
        "detail": done.detail,
        "reprocessing": done.reprocessing,
    }
    return JSONResponse(body)
