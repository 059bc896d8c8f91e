"""Stripe events for the tests, built from Stripe's own example objects (fixtures3.json)."""

from __future__ import annotations

import copy
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

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
        created=int(time.time()) if created is None else created,
        data={"object": stripe_object(resource, **changes)},
    )
    return json.dumps(event, separators=(",", ":")).encode()
