"""The usage API served for real (both backends): meters, prices, usage customers, batches
with duplicates and per-record errors, closing a period, idempotent writes, every response
in the shape the OpenAPI document gives it."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Api
from tests.e2e.test_openapi import conforms
from web.usage.models import NewMeter, NewPrice, NewUsageCustomer

METER: dict[str, Any] = NewMeter.model_json_schema()["examples"][0]
PRICE: dict[str, Any] = NewPrice.model_json_schema()["examples"][0]
CUSTOMER: dict[str, Any] = NewUsageCustomer.model_json_schema()["examples"][0]


def _record(identifier: str, quantity: object = 3, timestamp: str = "2026-01-15T10:00:00Z") -> dict[str, Any]:
    return {
        "customer": "acme",
        "meter": "api_calls",
        "quantity": quantity,
        "timestamp": timestamp,
        "identifier": identifier,
    }


def _set_up(api: Api) -> None:
    for path, body in (("/api/meters", METER), ("/api/prices", PRICE), ("/api/usage-customers", CUSTOMER)):
        created = api.client.post(path, json=body)
        assert created.status_code == 201, created.text


def test_a_period_of_usage_becomes_a_draft_invoice_with_its_tiers(api: Api) -> None:
    client = api.client
    meter = client.post("/api/meters", json=METER)
    assert meter.status_code == 201, meter.text
    conforms(meter.json(), "Meter")
    assert client.post("/api/meters", json=METER).status_code == 409  # meters never change
    price = client.post("/api/prices", json=PRICE)
    assert price.status_code == 201, price.text
    conforms(price.json(), "Price")
    customer = client.post("/api/usage-customers", json=CUSTOMER)
    assert customer.status_code == 201, customer.text
    conforms(customer.json(), "UsageCustomer")

    records = [_record(f"r-{i}") for i in range(500)]
    accepted = client.post("/api/usage", json={"records": records})
    assert accepted.status_code == 200, accepted.text
    conforms(accepted.json(), "UsageBatch")
    assert (accepted.json()["accepted"], accepted.json()["duplicates"]) == (500, 0)
    again = client.post("/api/usage", json={"records": [*records[:2], _record("r-new", "1.5")]})
    assert [r["status"] for r in again.json()["records"]] == ["duplicate", "duplicate", "accepted"]

    preview = client.get("/api/usage-customers/acme")
    conforms(preview.json(), "UsageCustomer")
    january = preview.json()["periods"][0]
    assert (january["start_date"], january["status"]) == ("2026-01-01", "open")
    assert january["usage"][0]["quantity"] == "1501.5"

    closed = client.post("/api/usage-customers/acme/close-period")
    assert closed.status_code == 201, closed.text
    conforms(closed.json(), "PeriodClosed")
    invoice = closed.json()["invoice"]
    assert invoice["status"] == "draft"
    assert [line["amount"] for line in invoice["lines"]] == [0, 125]  # 1,000 free; 500.5 x 0.25 = 125.125
    assert "tier 2" in invoice["lines"][1]["description"]
    assert client.get(f"/api/invoices/{invoice['id']}").json()["total"] == 125

    late = client.post("/api/usage", json={"records": [_record("late-1", 400, "2026-01-31T12:00:00Z")]})
    assert late.status_code == 200
    february = client.post("/api/usage-customers/acme/close-period").json()["invoice"]
    assert february["lines"][-1]["amount"] == 100
    assert "late usage" in february["lines"][-1]["description"]
    not_ended = client.post("/api/usage-customers/acme/close-period")
    assert not_ended.status_code == 409
    conforms(not_ended.json(), "Problem")

    listed = client.get("/api/meters")
    conforms(listed.json(), "MeterList")
    conforms(client.get("/api/prices").json(), "PriceList")
    conforms(client.get("/api/prices/api-calls-graduated").json(), "Price")
    conforms(client.get("/api/meters/api_calls").json(), "Meter")


def test_each_bad_record_is_named_and_nothing_is_stored(api: Api) -> None:
    _set_up(api)
    records = [
        _record("ok"),
        {**_record("fraction"), "quantity": 1.5},
        {**_record("unknown-meter"), "meter": "storage"},
        {**_record("zone-less"), "timestamp": "2026-01-15T10:00:00"},
        {**_record("extra"), "colour": "red"},
        {**_record("arabic-indic"), "quantity": "٣"},  # was stored as 3
        {**_record("padded"), "quantity": " 1 "},  # was stored as 1
    ]
    refused = api.client.post("/api/usage", json={"records": records})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    conforms(refused.json(), "Problem")
    fields = {error["field"] for error in refused.json()["errors"]}
    assert fields == {
        "records[1].quantity",
        "records[3].timestamp",
        "records[4].colour",
        "records[5].quantity",
        "records[6].quantity",
    }
    unknown = api.client.post("/api/usage", json={"records": [records[2]]})
    assert [e["field"] for e in unknown.json()["errors"]] == ["records[0].meter"]
    assert api.client.get("/api/usage-customers/acme").json()["records"] == 0
    too_many = api.client.post("/api/usage", json={"records": [_record(f"x{i}") for i in range(1001)]})
    assert too_many.status_code == 422


def test_writes_with_the_same_idempotency_key_are_answered_as_the_first(api: Api) -> None:
    _set_up(api)
    headers = {"Idempotency-Key": "usage-batch-1"}
    body = {"records": [_record("a"), _record("b")]}
    first = api.client.post("/api/usage", json=body, headers=headers)
    second = api.client.post("/api/usage", json=body, headers=headers)
    assert first.json() == second.json()
    assert second.json()["accepted"] == 2  # the first answer, not "2 duplicates"
    reused = api.client.post("/api/usage", json={"records": [_record("c")]}, headers=headers)
    assert reused.status_code == 422
    close = {"Idempotency-Key": "close-1"}
    assert api.client.post("/api/usage-customers/acme/close-period", headers=close).json() == (
        api.client.post("/api/usage-customers/acme/close-period", headers=close).json()
    )


def test_bad_definitions_are_refused_naming_each_field(api: Api) -> None:
    meter = api.client.post("/api/meters", json={"key": "bad key", "name": "", "aggregation": "avg", "x": 1})
    assert meter.status_code == 422
    assert {e["field"] for e in meter.json()["errors"]} == {"key", "name", "aggregation", "x"}
    price = api.client.post(
        "/api/prices", json={"key": "p", "meter": "missing", "currency": "usd", "model": "per_unit", "unit_amount": "1"}
    )
    assert price.status_code == 422
    assert [e["field"] for e in price.json()["errors"]] == ["meter"]
    customer = api.client.post(
        "/api/usage-customers",
        json={**CUSTOMER, "timezone": "Mars/Olympus", "prices": ["nope"], "billing_anchor_day": 0},
    )
    assert customer.status_code == 422
    assert {e["field"] for e in customer.json()["errors"]} == {"timezone", "billing_anchor_day"}
    assert api.client.get("/api/usage-customers/nobody").status_code == 404
    assert api.client.post("/api/usage-customers/nobody/close-period").status_code == 404
    assert api.client.get("/api/meters/nothing").status_code == 404
