"""/api/reconciliation: runs against Stripe's stand-in, the items they found, settling them, and
past reports read back as they were, over HTTP on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from adapters.settings import Settings
from adapters.stripe import StripePaymentProvider
from ledger.money import Money
from tests.conftest import AppFactory
from tests.e2e.conftest import AUTH, INVOICE, Api, serve, served_api
from tests.e2e.test_openapi import conforms
from tests.stripe_server import API_KEY, StripeServer
from web.openapi import openapi_document

FEE = 2_524  # what Stripe keeps of the example invoice's 860.00 USD


@pytest.fixture
def recon(database_url: str, clock: ManualClock, stripe_server: StripeServer) -> Iterator[Api]:
    """The API with a Stripe stand-in of its own: a run lists every object the account holds.
    The application asks Stripe for refunds itself (refund_duplicate), as adapters/web_server.py
    composes it."""
    provider = StripePaymentProvider(API_KEY, api_base=stripe_server.base_url, max_network_retries=0)
    app = bootstrap(Settings(database_url=database_url), clock=clock, payments=lambda: provider)
    engine = read_model_engine(database_url)
    try:
        with served_api(app, engine, clock, stripe_server.base_url) as api:
            yield api
    finally:
        engine.dispose()
        app.close()
        provider.close()


def _period(api: Api) -> dict[str, str]:
    now = api.clock.now()
    return {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}


def _invoice(api: Api) -> str:
    created = api.client.post("/api/invoices", json=INVOICE)
    assert created.status_code == 201, created.text
    issued = api.client.post(f"/api/invoices/{created.json()['id']}/issue")
    assert issued.status_code == 200, issued.text
    assert issued.json()["total"] == 86_000
    invoice_id: str = issued.json()["id"]
    return invoice_id


def _stripe_collects(api: Api, stripe_server: StripeServer, invoice_id: str) -> Any:
    """Stripe collects the invoice now (by the test's clock)."""
    return stripe_server.seed_payment(
        amount=86_000, fee=FEE, invoice_id=invoice_id, created=int(api.clock.now().timestamp())
    )


def _paid_on_both_sides(api: Api, stripe_server: StripeServer) -> str:
    invoice_id = _invoice(api)
    paid = _stripe_collects(api, stripe_server, invoice_id)
    api.app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=paid.payment_intent,
        amount_captured=Money(86_000, "usd"),
        fee=FEE,
        charge_id=paid.charge,
        invoice_id=UUID(invoice_id),
    )
    return invoice_id


def _missing_in_ledger(api: Api, stripe_server: StripeServer) -> str:
    """Stripe collected an invoice whose webhook never arrived: the PaymentIntent's id."""
    intent: str = _stripe_collects(api, stripe_server, _invoice(api)).payment_intent
    return intent


def _missing_in_stripe(api: Api) -> str:
    """The ledger holds a payment Stripe does not show: its PaymentIntent's id."""
    intent = f"pi_{uuid4().hex[:24]}"
    api.app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=intent,
        amount_captured=Money(86_000, "usd"),
        invoice_id=UUID(_invoice(api)),
    )
    return intent


def _run(api: Api, **body: Any) -> dict[str, Any]:
    response = api.client.post("/api/reconciliation/runs", json={**_period(api), "source": "stripe", **body})
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/api/reconciliation/runs/{response.json()['id']}"
    run: dict[str, Any] = response.json()
    conforms(run, "Run")
    return run


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    conforms(body, "Problem")
    return body


def _resolve(api: Api, item_id: str, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    return api.client.post(f"/api/reconciliation/items/{item_id}/resolve", json=body, headers=headers or {})


def test_a_run_answers_with_its_report_and_reads_back_exactly_as_it_was(
    recon: Api, stripe_server: StripeServer
) -> None:
    _paid_on_both_sides(recon, stripe_server)
    intent = _missing_in_ledger(recon, stripe_server)

    run = _run(recon)

    assert (run["status"], run["source"], run["requested_by"], run["items"]) == ("completed", "stripe", "api", 1)
    report = run["report"]
    assert list(report) == ["period", "source", "summary", "items"]
    [item] = report["items"]
    assert (item["class"], item["status"], item["stripe_id"], item["amount_stripe"]) == (
        "missing_in_ledger",
        "open",
        intent,
        86_000,
    )
    usd = report["summary"]["currencies"]["usd"]
    assert usd["stripe"]["gross"] - usd["ledger"]["gross"] == 86_000
    assert report["summary"]["classes"]["missing_in_ledger"] == 1
    assert report["summary"]["matched"]["payments"] == 1

    read = recon.client.get(f"/api/reconciliation/runs/{run['id']}")
    assert read.status_code == 200, read.text
    assert read.json() == run

    settled = _resolve(recon, item["id"], action="explain", note="a test payment, refunded by hand")
    assert settled.status_code == 200, settled.text
    recon.clock.advance(timedelta(minutes=5))  # runs are listed newest first, by when they started
    later = _run(recon)
    assert [i["status"] for i in later["report"]["items"]] == ["explained"]
    assert later["report"]["summary"]["classes"]["missing_in_ledger"] == 0
    assert later["summary"] == later["report"]["summary"]

    again = recon.client.get(f"/api/reconciliation/runs/{run['id']}")
    assert again.json()["report"] == run["report"]  # still open, as it was shown then
    assert recon.client.get(f"/api/reconciliation/runs/{later['id']}").json() == later

    listed = recon.client.get("/api/reconciliation/runs", params={"limit": 1})
    assert listed.status_code == 200, listed.text
    conforms(listed.json(), "RunList")
    assert [r["id"] for r in listed.json()["data"]] == [later["id"]]
    assert listed.json()["has_more"] is True
    rest = recon.client.get("/api/reconciliation/runs", params={"cursor": listed.json()["next_cursor"]})
    assert [r["id"] for r in rest.json()["data"]] == [run["id"]]
    assert rest.json()["has_more"] is False


def test_items_are_listed_by_class_and_status_a_keyset_page_at_a_time(recon: Api, stripe_server: StripeServer) -> None:
    missing = {_missing_in_ledger(recon, stripe_server) for _ in range(3)}
    ours = _missing_in_stripe(recon)
    run = _run(recon)
    assert {i["stripe_id"]: i["class"] for i in run["report"]["items"]} == {
        **dict.fromkeys(missing, "missing_in_ledger"),
        ours: "missing_in_stripe",
    }

    first = recon.client.get("/api/reconciliation", params={"class": "missing_in_ledger", "limit": 2})
    assert first.status_code == 200, first.text
    conforms(first.json(), "ItemList")
    assert (len(first.json()["data"]), first.json()["has_more"]) == (2, True)
    second = recon.client.get(
        "/api/reconciliation",
        params={"class": "missing_in_ledger", "limit": 2, "cursor": first.json()["next_cursor"]},
    )
    assert (len(second.json()["data"]), second.json()["has_more"], second.json()["next_cursor"]) == (1, False, None)
    paged = first.json()["data"] + second.json()["data"]
    assert {i["stripe_id"] for i in paged} == missing
    assert {i["class"] for i in paged} == {"missing_in_ledger"}

    [theirs] = [i for i in run["report"]["items"] if i["stripe_id"] == ours]
    assert _resolve(recon, theirs["id"], action="explain", note="paid by bank transfer").status_code == 200
    explained = recon.client.get("/api/reconciliation", params={"status": "explained"})
    assert [i["id"] for i in explained.json()["data"]] == [theirs["id"]]
    still_open = recon.client.get("/api/reconciliation", params={"status": "open"})
    assert {i["stripe_id"] for i in still_open.json()["data"]} == missing
    everything = recon.client.get("/api/reconciliation")
    assert len(everything.json()["data"]) == 4
    later = (recon.clock.now() + timedelta(seconds=1)).isoformat()
    assert recon.client.get("/api/reconciliation", params={"from": later}).json()["data"] == []
    assert len(recon.client.get("/api/reconciliation", params={"to": later}).json()["data"]) == 4

    for params in ({"class": "lost"}, {"status": "closed"}, {"limit": 0}, {"limit": 10_000}, {"cursor": "!!"}):
        _problem(recon.client.get("/api/reconciliation", params=params), 422)


def test_an_item_is_read_and_settled_once(recon: Api, stripe_server: StripeServer) -> None:
    _missing_in_ledger(recon, stripe_server)
    _missing_in_stripe(recon)
    items = {i["class"]: i for i in _run(recon)["report"]["items"]}
    theirs, ours = items["missing_in_ledger"], items["missing_in_stripe"]

    read = recon.client.get(f"/api/reconciliation/items/{theirs['id']}")
    assert read.status_code == 200, read.text
    conforms(read.json(), "ReconciliationItem")
    assert read.json() == theirs

    _problem(recon.client.get(f"/api/reconciliation/items/{uuid4()}"), 404)
    _problem(recon.client.get("/api/reconciliation/items/not-a-uuid"), 404)
    _problem(_resolve(recon, str(uuid4()), action="explain", note="x"), 404)
    _problem(_resolve(recon, "not-a-uuid", action="explain", note="x"), 404)

    _problem(_resolve(recon, ours["id"], action="apply", note="bring it in"), 422)  # nothing in Stripe to apply
    _problem(_resolve(recon, theirs["id"], action="refund_duplicate", note="x"), 422)  # not a duplicate
    _problem(_resolve(recon, theirs["id"], action="explain"), 422)  # a note is required
    _problem(_resolve(recon, theirs["id"], action="explain", note="   "), 422)
    _problem(_resolve(recon, theirs["id"], action="ignore", note="x"), 422)
    assert recon.client.get(f"/api/reconciliation/items/{theirs['id']}").json()["status"] == "open"

    key = {"Idempotency-Key": "apply-once"}
    applied = _resolve(recon, theirs["id"], key, action="apply", note="the webhook was lost", by="ana")
    assert applied.status_code == 200, applied.text
    conforms(applied.json(), "ReconciliationItem")
    assert applied.json()["status"] == "resolved"
    assert applied.json()["resolution"]["by"] == "ana"
    assert applied.json()["resolution"]["events"]
    replayed = _resolve(recon, theirs["id"], key, action="apply", note="the webhook was lost", by="ana")
    assert (replayed.status_code, replayed.json()) == (200, applied.json())  # the same answer, nothing twice
    other = _resolve(recon, theirs["id"], key, action="apply", note="another note")
    _problem(other, 422)  # the key was used for another request
    invoice = recon.client.get(f"/api/invoices/{theirs['invoice_id']}")
    assert invoice.json()["status"] == "paid"

    problem = _problem(_resolve(recon, theirs["id"], action="explain", note="again"), 409)
    assert theirs["id"] in problem["detail"]
    assert recon.client.get(f"/api/reconciliation/items/{theirs['id']}").json() == applied.json()


def test_runs_unknown_or_malformed_are_problems(recon: Api) -> None:
    """Each a problem, never a 500; only the valid runs (the widest period Stripe can list, one in
    far offsets) are recorded."""
    _problem(recon.client.get(f"/api/reconciliation/runs/{uuid4()}"), 404)
    _problem(recon.client.get("/api/reconciliation/runs/not-a-uuid"), 404)
    now = recon.clock.now().isoformat()
    _problem(recon.client.post("/api/reconciliation/runs", json={"from": now, "to": now}), 422)
    _problem(recon.client.post("/api/reconciliation/runs", json={"source": "paypal"}), 422)
    widest = _run(recon, **{"from": "1970-01-04T00:00:00Z", "to": "9999-12-31T23:59:59Z"})
    assert widest["report"]["items"] == []
    # Offsets ISO 8601 allows and PostgreSQL's timestamps do not (beyond 15:59): kept in UTC.
    far = _run(recon, **{"from": "2026-03-02T08:00:00+23:30", "to": "2026-03-01T12:00:00-23:00"})
    assert far["period"] == {"from": "2026-03-01T08:30:00+00:00", "to": "2026-03-02T11:00:00+00:00"}
    assert far["report"]["period"] == far["period"]
    _problem(recon.client.post("/api/reconciliation/runs", json={"stuck_after_minutes": 0}), 422)
    _problem(recon.client.post("/api/reconciliation/runs", json={"surprise": 1}), 422)
    _problem(recon.client.get("/api/reconciliation/runs", params={"limit": -1}), 422)
    assert [r["status"] for r in recon.client.get("/api/reconciliation/runs").json()["data"]] == ["completed"] * 2


def test_a_refused_key_is_a_503_and_the_run_is_recorded_failed(recon: Api, stripe_server: StripeServer) -> None:
    stripe_server.fail_next("authentication")

    problem = _problem(recon.client.post("/api/reconciliation/runs", json=_period(recon)), 503)

    assert "sk_test_...6789" in problem["detail"]
    [failed] = recon.client.get("/api/reconciliation/runs").json()["data"]
    assert (failed["status"], failed["items"]) == ("failed", 0)
    assert "sk_test_...6789" in failed["failure"]


def test_without_stripe_a_stripe_run_is_a_503_and_the_ledger_alone_still_runs(
    make_app: AppFactory, database_url: str, clock: ManualClock
) -> None:
    engine = read_model_engine(database_url)
    served = serve(make_app(), engine, clock)
    try:
        with httpx.Client(base_url=served.base_url, headers=AUTH, timeout=30) as client:
            problem = _problem(client.post("/api/reconciliation/runs", json={"source": "stripe"}), 503)
            assert "STRIPE_API_KEY" in problem["detail"]
            assert client.get("/api/reconciliation/runs").json()["data"] == []  # nothing was started

            default = client.post("/api/reconciliation/runs", json={})
            assert default.status_code == 201, default.text
            assert (default.json()["source"], default.json()["report"]["items"]) == ("ledger", [])
            assert default.json()["report"]["summary"]["currencies"] == {}
    finally:
        served.stop()
        engine.dispose()


def test_the_document_describes_every_reconciliation_operation() -> None:
    paths = openapi_document()["paths"]

    def response(path: str, method: str, status: str) -> Any:
        return paths[path][method]["responses"][status]["content"]["application/json"]["schema"]

    assert response("/api/reconciliation", "get", "200") == {"$ref": "#/components/schemas/ItemList"}
    assert response("/api/reconciliation/items/{item_id}", "get", "200") == {
        "$ref": "#/components/schemas/ReconciliationItem"
    }
    resolve = paths["/api/reconciliation/items/{item_id}/resolve"]["post"]
    assert resolve["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Resolution"
    }
    assert {"200", "404", "409", "422", "503"} <= set(resolve["responses"])
    assert "Idempotency-Key" in {p["name"] for p in resolve.get("parameters", [])}
    start = paths["/api/reconciliation/runs"]["post"]
    assert start["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NewRun"}
    assert "Location" in start["responses"]["201"]["headers"]
    assert response("/api/reconciliation/runs", "post", "201") == {"$ref": "#/components/schemas/Run"}
    assert response("/api/reconciliation/runs", "get", "200") == {"$ref": "#/components/schemas/RunList"}
    assert response("/api/reconciliation/runs/{run_id}", "get", "200") == {"$ref": "#/components/schemas/Run"}
    listing = {p["name"] for p in paths["/api/reconciliation"]["get"]["parameters"]}
    assert {"class", "status", "from", "to", "limit", "cursor"} <= listing
    schemas = openapi_document()["components"]["schemas"]
    item = schemas["ReconciliationItem"]
    assert set(item["required"]) == set(item["properties"]) >= {"id", "class", "status", "explanation", "resolution"}
    assert set(schemas["Report"]["properties"]) == {"period", "source", "summary", "items"}


def test_a_duplicate_payment_is_refunded_through_stripe(recon: Api, stripe_server: StripeServer) -> None:
    invoice_id = _paid_on_both_sides(recon, stripe_server)
    recon.clock.advance(timedelta(minutes=2))
    second = _stripe_collects(recon, stripe_server, invoice_id)
    recon.app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=second.payment_intent,
        amount_captured=Money(86_000, "usd"),
        fee=FEE,
        charge_id=second.charge,
        invoice_id=UUID(invoice_id),
    )
    [duplicate] = _run(recon)["report"]["items"]
    assert (duplicate["class"], duplicate["invoice_id"]) == ("duplicate_payment", invoice_id)
    _problem(_resolve(recon, duplicate["id"], action="apply", note="x"), 422)

    refunded = _resolve(recon, duplicate["id"], action="refund_duplicate", note="paid twice", by="ana")

    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["status"] == "resolved"
    [sent] = stripe_server.requests_to("POST", "/v1/refunds")
    assert sent.form["charge"] == second.charge  # the later payment is the one refunded
    assert sent.form["amount"] == "86000"
    [refund_id] = stripe_server.objects("refund")
    assert refund_id in refunded.json()["resolution"]["note"]
