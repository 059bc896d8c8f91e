"""Stripe events for the tests, built from Stripe's own example objects (fixtures3.json)."""

from __future__ import annotations

import copy
import json
import time
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

from adapters.stripe import STRIPE_API_VERSION
from adapters.stripe.payloads import read_event
from commands.ingestion.provider_events import VerifiedEvent

# Copied from Stripe's fixtures3.json (the resources used here), so a clean clone has them.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "stripe_objects.json"


@cache
def _resources() -> dict[str, Any]:
    resources: dict[str, Any] = json.loads(FIXTURES.read_text())["resources"]
    return resources


def stripe_object(resource: str, **changes: Any) -> dict[str, Any]:
    """A copy of Stripe's example `resource` (e.g. "payment_intent", "charge"), with `changes`."""
    obj: dict[str, Any] = copy.deepcopy(_resources()[resource])
    obj.update(changes)
    return obj


def event_payload(
    event_type: str, resource: str, *, event_id: str, created: int | None = None, **changes: Any
) -> bytes:
    """The body of a webhook delivery: Stripe's example event around an example object."""
    event = copy.deepcopy(_resources()["event"])
    event.update(
        id=event_id,
        type=event_type,
        api_version=STRIPE_API_VERSION,  # as an endpoint created at the SDK's version writes it
        created=int(time.time()) if created is None else created,
        data={"object": stripe_object(resource, **changes)},
    )
    return json.dumps(event, separators=(",", ":")).encode()


def verified_event(
    event_id: str, event_type: str, resource: str, *, created: int = 1_700_000_000, **changes: Any
) -> VerifiedEvent:
    """The event as the Stripe adapter hands it over once verified: Stripe's example event around
    an example object, decoded by adapters/stripe/payloads.py."""
    payload = event_payload(event_type, resource, event_id=event_id, created=created, **changes)
    return read_event(payload.decode())


def payment_succeeded(event_id: str, intent: str, invoice_id: UUID | None, amount: int = 10_000) -> VerifiedEvent:
    """A verified payment_intent.succeeded of `amount` cents (usd) for the invoice its metadata
    names (none: a payment Stripe took for no invoice of ours)."""
    metadata = {"invoice_id": str(invoice_id)} if invoice_id else {}
    return verified_event(
        event_id,
        "payment_intent.succeeded",
        "payment_intent",
        id=intent,
        amount=amount,
        amount_received=amount,
        currency="usd",
        status="succeeded",
        latest_charge=f"ch_{intent}",
        metadata=metadata,
    )
