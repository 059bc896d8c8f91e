"""`POST /webhooks/stripe`: a delivery is verified on its raw bytes, then recorded once.

- 400 (problem+json) for a missing or bad signature, a timestamp outside the tolerance (either
  way), or a body that does not decode as an event (including JSON nested too deep to decode):
  nothing is recorded;
- 200 `{"received": true, "duplicate": ..., "outcome": ...}` once the event is durably recorded
  and handled (commands/ingestion/stripe_events.py: `applied`, `duplicate`, `waiting`, `unmatched`,
  `refused` or `ignored`); a redelivery of a handled event is a duplicate: 200, nothing changes
  (GET /api/webhook-events lists them all: web/webhook_events/);
- 503 when the store cannot commit (Stripe retries), or when no signing secret is configured.

Deliveries that arrive together share one commit (commands/ingestion/group_commit.py); each is answered
only after the commit that holds it. The route awaits its batch on the event loop; the batches run
on the group commit's writer thread, not on a request thread per delivery.

No bearer token here: the signature is the authentication.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from commands.ingestion.provider_events import WebhookRejectedError
from web import models
from web.body import read_raw
from web.operations import Endpoint, Operation
from web.problems import problem
from web.services import Services

PATH = "/webhooks/stripe"


def routes() -> list[Route]:
    operation = Operation(
        "receiveStripeWebhook",
        "Receive a Stripe event (signed; no bearer token)",
        response=models.WebhookReceived,
        headers=("Stripe-Signature",),
        problems=(400, 413, 503),
        secured=False,
    )
    return [Endpoint(PATH, stripe_webhook, "POST", operation)]


async def stripe_webhook(request: Request) -> Response:
    services: Services = request.app.state.services
    verifier = services.webhooks
    if verifier is None:
        return problem(
            503,
            "Webhooks not configured",
            "set STRIPE_WEBHOOK_SECRET to receive Stripe webhooks",
            slug="webhooks-not-configured",
            headers={"Retry-After": "60"},
        )
    payload = await read_raw(request)
    try:
        event = verifier.verify(payload, request.headers.get("stripe-signature"))
    except WebhookRejectedError as error:
        return problem(400, "Webhook rejected", str(error), slug="webhook-rejected")
    done = await services.ingestion.ingest_async(event)  # no request thread: see group_commit.py
    body: models.WebhookReceived = {
        "received": True,
        "duplicate": done.duplicate,
        "id": event.event_id,
        "outcome": done.outcome,
    }
    return JSONResponse(body)
