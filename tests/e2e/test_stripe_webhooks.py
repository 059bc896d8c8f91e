"""POST /webhooks/stripe: deliveries signed exactly as Stripe signs them, recorded once, raw."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import stripe

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from adapters.settings import Settings
from adapters.stripe.webhooks import TOLERANCE_SECONDS, StripeWebhookVerifier
from commands.application import BillingApplication
from tests.conftest import AppFactory
from tests.e2e.conftest import WEBHOOK_SECRET, Api, serve
from tests.pg_cluster import Cluster
from tests.served import until_not_503
from tests.stripe_payloads import event_payload

SECRET = WEBHOOK_SECRET
URL = "/webhooks/stripe"


class Hook:
    def __init__(self, base_url: str, app: BillingApplication) -> None:
        self.base_url = base_url
        self.app = app

    def deliver(self, body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> httpx.Response:
        return httpx.post(self.base_url + URL, content=body, headers=_signed(body, secret, timestamp), timeout=30)


def _signed(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The Stripe-Signature header Stripe would send for `body`."""
    return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp)}


@pytest.fixture
def hook(api: Api) -> Hook:
    """The served API, its webhooks checked against WEBHOOK_SECRET."""
    return Hook(api.base_url, api.app)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_a_signed_event_is_recorded_once_with_its_raw_payload(hook: Hook) -> None:
    body = event_payload("payment_intent.succeeded", "payment_intent", event_id="evt_1PaymentSucceeded")
    first = hook.deliver(body)
    # Stripe's example PaymentIntent names no invoice of ours: kept, answered, marked unmatched.
    assert (first.status_code, first.json()) == (
        200,
        {"received": True, "duplicate": False, "id": "evt_1PaymentSucceeded", "outcome": "unmatched"},
    )
    kept = hook.app.provider_event("stripe", "evt_1PaymentSucceeded")
    assert kept is not None
    assert kept.payload == body.decode()  # the evidence, byte for byte
    assert kept.event_type == "payment_intent.succeeded"
    head = hook.app.head()
    again = hook.deliver(body)
    assert again.json()["duplicate"] is True
    assert hook.app.head() == head  # a redelivery stores nothing


def test_unknown_event_types_are_acknowledged_and_kept(hook: Hook) -> None:
    body = event_payload("plan.created", "plan", event_id="evt_1SomethingElse")
    assert hook.deliver(body).status_code == 200
    assert hook.app.provider_event("stripe", "evt_1SomethingElse") is not None


def test_concurrent_duplicate_deliveries_record_one_event(hook: Hook) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body = event_payload("charge.succeeded", "charge", event_id="evt_1Concurrent")
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: hook.deliver(body), range(8)))
    assert {r.status_code for r in responses} == {200}
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 7


def _tampered(body: bytes) -> bytes:
    event = json.loads(body)
    event["data"]["object"]["amount"] += 1
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    "delivery",
    [
        "tampered body",
        "wrong secret",
        "stale timestamp",
        "future timestamp",
        "years in the future",
        "no header",
        "garbage header",
        "not JSON",
        "not an event",
        "event without id",
        "nested 10,000 deep",
        "object nested 10,000 deep",
    ],
)
def test_rejected_deliveries_record_nothing(hook: Hook, delivery: str) -> None:
    body = event_payload("payment_intent.succeeded", "payment_intent", event_id="evt_1Rejected")
    post: dict[str, Any] = {"content": body, "headers": _signed(body)}
    if delivery == "tampered body":
        post["content"] = _tampered(body)
    elif delivery == "wrong secret":
        post["headers"] = {
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body.decode(), "whsec_other")
        }
    elif delivery in ("stale timestamp", "future timestamp", "years in the future"):
        # A minute beyond the tolerance: a slow machine may take seconds between signing and checking,
        # which must not bring the timestamp back inside it (the exact edge is a unit test's, on a fixed clock).
        beyond = TOLERANCE_SECONDS + 60
        skew = {"stale timestamp": -beyond, "future timestamp": beyond, "years in the future": 5 * 365 * 86_400}
        moment = int(time.time()) + skew[delivery]
        post["headers"] = {
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, moment)
        }
    elif delivery == "no header":
        post["headers"] = {}
    elif delivery == "garbage header":
        post["headers"] = {"Stripe-Signature": "t=abc,v1=nothex"}
    else:
        content = {
            "not JSON": b"{not json",
            "not an event": json.dumps({"object": "charge", "id": "ch_1"}).encode(),
            "event without id": json.dumps({**json.loads(body), "id": None}).encode(),
            "nested 10,000 deep": b"[" * 10_000 + b"]" * 10_000,
            "object nested 10,000 deep": body.replace(
                b'"object":{', b'"object":' + b"[" * 10_000 + b"]" * 10_000 + b',"x":{', 1
            ),
        }[delivery]
        post = {
            "content": content,
            "headers": {
                "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(content.decode(), SECRET)
            },
        }
    head = hook.app.head()
    response = httpx.post(hook.base_url + URL, timeout=30, **post)
    assert _problem(response, 400)["type"] == "urn:ledger:problem:webhook-rejected"
    assert hook.app.head() == head
    assert hook.app.provider_event("stripe", "evt_1Rejected") is None


def test_webhooks_need_no_bearer_token_but_a_configured_secret(
    make_app: AppFactory, database_url: str, clock: ManualClock
) -> None:
    app = make_app()
    engine = read_model_engine(database_url)
    served = serve(app, engine, clock)  # no webhook secret
    try:
        body = event_payload("charge.succeeded", "charge", event_id="evt_1NoSecret")
        response = httpx.post(served.base_url + URL, content=body, headers=_signed(body), timeout=30)
        assert _problem(response, 503)["type"] == "urn:ledger:problem:webhooks-not-configured"
        assert app.head() == 0
    finally:
        served.stop()
        engine.dispose()


@pytest.mark.postgres
def test_a_lost_database_answers_503_and_redelivery_loses_nothing(pg_cluster: Cluster, clock: ManualClock) -> None:
    with pg_cluster.database() as url:
        app = bootstrap(Settings(database_url=url), clock=clock)
        engine = read_model_engine(url)
        served = serve(app, engine, clock, webhooks=StripeWebhookVerifier(SECRET))
        dbname = url.rsplit("/", 1)[1]
        try:
            hook = Hook(served.base_url, app)
            before = event_payload("charge.succeeded", "charge", event_id="evt_1BeforeOutage")
            assert hook.deliver(before).status_code == 200
            with pg_cluster.admin() as admin:
                admin.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS false')
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [dbname])
            during = event_payload("charge.refunded", "charge", event_id="evt_1DuringOutage")
            refused = hook.deliver(during)
            assert _problem(refused, 503)["status"] == 503
            assert refused.headers["retry-after"]
            with pg_cluster.admin() as admin:
                admin.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS true')
            redelivered = until_not_503(lambda: hook.deliver(during))  # Stripe retries until it is taken
            assert (redelivered.status_code, redelivered.json()["duplicate"]) == (200, False)
            assert hook.deliver(before).json()["duplicate"] is True
            kept = app.provider_event("stripe", "evt_1DuringOutage")
            assert kept is not None
            assert kept.payload == during.decode()
        finally:
            served.stop()
            engine.dispose()
            app.close()
            with pg_cluster.admin() as admin:
                admin.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS true')
