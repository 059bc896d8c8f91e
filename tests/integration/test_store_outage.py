"""When the database goes away, commands fail with StoreUnavailableError and store nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import Engine, event, text

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.settings import Settings
from adapters.web_server import build_app
from commands.messages import NewLine
from ledger.errors import StoreUnavailableError
from tests.pg_cluster import Cluster, find_pg_bin, running_cluster
from tests.served import ServedApp, until_not_503
from tests.stripe_payloads import event_payload

CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}


@pytest.mark.postgres
def test_a_lost_database_is_reported_as_store_unavailable(pg_cluster: Cluster, clock: ManualClock) -> None:
    with pg_cluster.database() as url:
        app = bootstrap(Settings(database_url=url), clock=clock)
        try:
            app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)])
            dbname = url.rsplit("/", 1)[1]
            with pg_cluster.admin() as admin:
                admin.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
            with pytest.raises(StoreUnavailableError):
                app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)])
        finally:
            app.close()


# The bound the test configures (LEDGER_DATABASE_TIMEOUT), and a generous slack over it: what is
# measured is a few seconds against the 40-50 s a request took before the wait was bounded.
WAIT_SECONDS = 2.0
SLACK_SECONDS = 3.0
TOKEN = "outage-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEBHOOK_SECRET = "whsec_outage"
INVOICE = {"customer": CUSTOMER, "currency": "usd", "lines": [{"description": "x", "quantity": 1, "unit_amount": 100}]}


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster for this test alone: it is stopped mid-run, and the session's serves the others."""
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    with running_cluster() as cluster:
        yield cluster


def _signed_webhook() -> dict[str, Any]:
    body = event_payload("payment_intent.succeeded", "payment_intent", event_id="evt_outage")
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), WEBHOOK_SECRET)
    return {"content": body, "headers": {"Stripe-Signature": header}}


@pytest.mark.postgres
def test_with_the_database_stopped_every_request_is_a_503_within_the_configured_wait(own_cluster: Cluster) -> None:
    with own_cluster.database() as url:
        settings = Settings(
            database_url=url, api_token=TOKEN, stripe_webhook_secret=WEBHOOK_SECRET, database_timeout=WAIT_SECONDS
        )
        served = ServedApp(build_app(settings, follow=False))
        try:
            with httpx.Client(base_url=served.base_url, timeout=120) as client:
                _check_outage(own_cluster, client)
        finally:
            served.stop()


def _check_outage(own_cluster: Cluster, client: httpx.Client) -> None:
    """Up, then stopped: each kind of request fails soon, as a 503 to retry; then up again."""
    assert client.get("/healthz").json() == {"status": "ok", "database": "up"}
    created = client.post("/api/invoices", json=INVOICE, headers=AUTH)
    assert created.status_code == 201, created.text
    invoice = f"/api/invoices/{created.json()['id']}"

    own_cluster.stop()
    try:
        started = time.monotonic()
        health = client.get("/healthz")
        assert time.monotonic() - started < WAIT_SECONDS, "/healthz waited instead of answering at once"
        assert health.status_code == 503
        assert health.json()["database"] == "down"
        assert health.headers["Retry-After"]

        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/api/invoices", {"json": INVOICE, "headers": AUTH}),
            ("GET", invoice, {"headers": AUTH}),
            ("GET", "/api/invoices", {"headers": AUTH}),
            ("POST", invoice + "/issue", {"headers": AUTH}),
            ("POST", "/webhooks/stripe", _signed_webhook()),
        ]
        # Twice: first the pool hands out connections the server dropped; then it has none and
        # each request waits for one, up to the bound.
        for method, path, options in requests * 2:
            started = time.monotonic()
            response = client.request(method, path, **options)
            took = time.monotonic() - started
            assert response.status_code == 503, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["Retry-After"]
            assert took < WAIT_SECONDS + SLACK_SECONDS, f"{method} {path} took {took:.1f} s"
    finally:
        own_cluster.start()
    assert client.get("/healthz").json() == {"status": "ok", "database": "up"}
    # Nothing of the refused requests was stored, and the store's pool reconnects by itself.
    again = until_not_503(lambda: client.get(invoice, headers=AUTH))
    assert (again.status_code, again.json()["status"]) == (200, "draft")
    assert client.post("/webhooks/stripe", **_signed_webhook()).status_code == 200


def test_ctrl_c_during_a_read_model_query_still_stops_the_command(engine: Engine) -> None:
    """SQLAlchemy reports a KeyboardInterrupt mid-query as a disconnect: it must not become a 503."""

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    event.listen(engine, "before_cursor_execute", interrupted)
    with pytest.raises(KeyboardInterrupt), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
