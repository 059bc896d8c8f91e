"""The OpenAPI document: valid OpenAPI 3.1, complete (every route, nothing else), served without a
token with its HTML docs, and true to what the handlers answer along an invoice's life."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from adapters.clock import ManualClock
from tests.e2e.conftest import TOKEN, Api
from tests.served import ServedApp
from web.app import create_app
from web.openapi import openapi_document
from web.services import Services

METHODS = {"get", "post", "put", "patch", "delete"}


def _validator(name: str) -> jsonschema.Draft202012Validator:
    document = openapi_document()
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def conforms(instance: Any, name: str) -> None:
    errors = sorted(_validator(name).iter_errors(instance), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def _spec_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in METHODS
    }


# ------------------------------------------------------------------------------ the document


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_is_documented_and_nothing_else() -> None:
    services = Services(
        app=cast(Any, None), read_models=cast(Any, None), clock=ManualClock(datetime.now(UTC)), api_token=TOKEN
    )
    routes = {
        (method, route.path)
        for route in create_app(services).routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"  # Starlette adds HEAD to every GET
    }
    assert routes, "no routes found"
    assert routes == _spec_operations()


def test_health_with_the_database_down_fits_the_document() -> None:
    services = Services(
        app=cast(Any, None),
        read_models=cast(Any, None),
        clock=ManualClock(datetime.now(UTC)),
        api_token=TOKEN,
        database_up=lambda: False,  # a database that does not answer
    )
    served = ServedApp(create_app(services))
    try:
        health = httpx.get(served.base_url + "/healthz")
    finally:
        served.stop()
    assert (health.status_code, health.headers["content-type"]) == (503, "application/problem+json")
    assert health.headers["Retry-After"]
    assert health.json()["database"] == "down"
    conforms(health.json(), "Problem")


def test_every_api_operation_needs_the_token_and_the_others_do_not() -> None:
    document = openapi_document()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            if path.startswith("/api/"):
                assert operation["security"] == [{"bearerAuth": []}], (method, path)
                assert "401" in operation["responses"], (method, path)
            else:
                assert operation["security"] == [], (method, path)


def test_operations_are_unique_and_named() -> None:
    ids = [
        operation["operationId"]
        for item in openapi_document()["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-zA-Z]+", operation_id) for operation_id in ids)


def test_request_bodies_refuse_unknown_fields() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for name in (
        "NewInvoice",
        "NewLine",
        "InvoiceChanges",
        "IssueOptions",
        "Empty",
        "NewPayment",
        "CustomerInput",
        "NewRun",
        "Resolution",
    ):
        assert schemas[name]["additionalProperties"] is False, name


def test_the_examples_fit_their_schemas() -> None:
    schemas = openapi_document()["components"]["schemas"]
    checked = 0
    for name, schema in schemas.items():
        for example in schema.get("examples", []):
            conforms(example, name)
            checked += 1
    assert checked >= 4


def test_the_limits_are_the_domains() -> None:
    from ledger.money import MAX_MINOR_UNITS
    from ledger.validation import DESCRIPTION_LIMIT, MEMO_LIMIT

    schemas = openapi_document()["components"]["schemas"]
    line = schemas["NewLine"]["properties"]
    assert line["unit_amount"]["maximum"] == MAX_MINOR_UNITS
    assert line["unit_amount"]["minimum"] == -MAX_MINOR_UNITS
    assert line["description"]["maxLength"] == DESCRIPTION_LIMIT
    assert schemas["NewInvoice"]["properties"]["memo"]["maxLength"] == MEMO_LIMIT
    assert schemas["NewPayment"]["properties"]["amount"]["minimum"] == 1


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (1, True),
        ("12", True),
        ("0.5", True),
        ("1000000000", True),
        ("0", False),
        ("-1", False),
        ("1000000001", False),
        ("0.0000000000001", False),
        (0, False),
        (True, False),
    ],
)
def test_the_quantity_schema(value: object, valid: bool) -> None:
    line = {"description": "x", "quantity": value, "unit_amount": 1}
    assert _validator("NewLine").is_valid(line) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [(None, True), (0, True), (100, True), ("7.25", True), ("100", True), ("100.5", False), (101, False)],
)
def test_the_tax_rate_schema(value: object, valid: bool) -> None:
    line = {"description": "x", "quantity": 1, "unit_amount": 1, "tax_rate": value}
    assert _validator("NewLine").is_valid(line) is valid


# ------------------------------------------------------------------------------ the docs page


def test_every_request_body_has_an_example_that_fits_it() -> None:
    document = openapi_document()
    for name in ("NewInvoice", "NewLine", "NewPayment", "InvoiceChanges", "CustomerInput", "NewMeter", "NewPrice"):
        conforms(_example(document, name), name)


def test_every_operation_documents_its_bodies_and_problems() -> None:
    document = openapi_document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert any(status.startswith("2") for status in responses), (method, path)
            if method in {"post", "patch", "delete"} and path.startswith("/api/"):
                assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"], (method, path)
                assert {"400", "422"} <= set(responses), (method, path)
            for status, response in responses.items():
                if not status.startswith("2"):
                    name = response["$ref"].rsplit("/", 1)[-1]
                    problem = document["components"]["responses"][name]
                    assert problem["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")


def _example(document: dict[str, Any], name: str) -> Any:
    return document["components"]["schemas"][name]["examples"][0]


# ------------------------------------------------------------------------------ served


def test_the_document_and_the_docs_are_served_without_a_token(api: Api) -> None:
    with httpx.Client(base_url=api.base_url, timeout=30) as anonymous:
        document = anonymous.get("/openapi.json")
        docs = anonymous.get("/docs")
        refused = anonymous.get("/api/invoices")
    assert document.status_code == 200
    assert document.headers["content-type"] == "application/json"
    assert document.json() == openapi_document()
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert not re.search(r"""(href|src)=["']?(https?:)?//""", docs.text)  # nothing loaded from elsewhere
    assets = re.findall(r'(?:href|src)="(docs/assets/[^"]+)"', docs.text)
    assert {"docs/assets/swagger-ui-bundle.js", "docs/assets/swagger-ui.css"} <= set(assets)
    with httpx.Client(base_url=api.base_url, timeout=30) as anonymous:
        for asset in assets:
            served = anonymous.get(f"/{asset}")
            assert served.status_code == 200, asset
            assert len(served.content) > 1000, asset
        bundle = anonymous.get("/docs/assets/swagger-ui-bundle.js").text
        # Only what the page loads: not the rest of the package (its editor, its sample initializer).
        others = [
            anonymous.get(f"/docs/assets/{name}").status_code for name in ("swagger-initializer.js", "..%2Fapp.py")
        ]
    assert others == [404, 404]
    assert 'PACKAGE_VERSION:"5.' in bundle  # Swagger UI 5: it reads OpenAPI 3.1
    assert "persistAuthorization: true" in docs.text  # the token set with Authorize outlives a reload
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    conforms(refused.json(), "Problem")


def test_responses_along_an_invoice_life_fit_the_document(api: Api) -> None:
    """Every shape the handlers return, from a real run: draft, edits, issue, payment, void, lists."""
    document = openapi_document()
    client = api.client
    health = client.get("/healthz")
    assert health.status_code == 200
    conforms(health.json(), "Health")

    created = client.post("/api/invoices", json=_example(document, "NewInvoice"))
    assert created.status_code == 201, created.text
    invoice = created.json()
    conforms(invoice, "Invoice")
    assert created.headers["ETag"] == f'"{invoice["version"]}"'
    assert created.headers["Location"] == f"/api/invoices/{invoice['id']}"
    invoice_id = invoice["id"]

    added = client.post(
        f"/api/invoices/{invoice_id}/lines",
        json={"description": "Support", "quantity": "1.5", "unit_amount": 10_000, "tax_rate": "7.25"},
    )
    assert added.status_code == 201, added.text
    conforms(added.json(), "Invoice")
    line_id = added.json()["lines"][-1]["id"]

    removed = client.delete(f"/api/invoices/{invoice_id}/lines/{line_id}", headers={"If-Match": added.headers["ETag"]})
    assert removed.status_code == 200, removed.text
    conforms(removed.json(), "Invoice")

    patched = client.patch(f"/api/invoices/{invoice_id}", json={"memo": "revised", "due_date": None, "metadata": None})
    assert patched.status_code == 200, patched.text
    conforms(patched.json(), "Invoice")

    stale = client.patch(f"/api/invoices/{invoice_id}", json={"memo": "again"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    conforms(stale.json(), "Problem")

    issued = client.post(f"/api/invoices/{invoice_id}/issue", json={"due_date": "2026-04-01"})
    assert issued.status_code == 200, issued.text
    conforms(issued.json(), "Invoice")
    assert issued.json()["number"] is not None

    not_editable = client.patch(f"/api/invoices/{invoice_id}", json={"memo": "late"})
    assert not_editable.status_code == 409
    conforms(not_editable.json(), "Problem")

    paid = client.post(
        f"/api/invoices/{invoice_id}/payments",
        json={"amount": 1_000, "reference": "BT-1"},
        headers={"Idempotency-Key": "p-1"},
    )
    assert paid.status_code == 201, paid.text
    conforms(paid.json(), "PaymentRecorded")
    again = client.post(
        f"/api/invoices/{invoice_id}/payments",
        json={"amount": 1_000, "reference": "BT-1"},
        headers={"Idempotency-Key": "p-1"},
    )
    assert again.status_code == 201
    assert again.json() == paid.json()

    uncollectible = client.post(f"/api/invoices/{invoice_id}/mark-uncollectible")
    assert uncollectible.status_code == 200, uncollectible.text
    conforms(uncollectible.json(), "Invoice")

    events = client.get(f"/api/invoices/{invoice_id}/events")
    assert events.status_code == 200
    conforms(events.json(), "EventList")

    listed = client.get("/api/invoices", params={"limit": 1, "status": "uncollectible"})
    assert listed.status_code == 200
    conforms(listed.json(), "InvoiceList")
    assert [row["id"] for row in listed.json()["data"]] == [invoice_id]

    as_of = client.get(f"/api/invoices/{invoice_id}", params={"as_of": invoice["created_at"]})
    assert as_of.status_code == 200, as_of.text
    conforms(as_of.json(), "Invoice")

    other = client.post("/api/invoices", json={"customer": {"email": "b@b.example", "name": ""}, "currency": "eur"})
    conforms(other.json(), "Invoice")
    deleted = client.delete(f"/api/invoices/{other.json()['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""

    invalid = client.post("/api/invoices", json={"currency": "USD", "lines": [{"quantity": 1.5}]})
    assert invalid.status_code == 422
    conforms(invalid.json(), "Problem")
    assert {error["field"] for error in invalid.json()["errors"]} >= {"customer", "currency", "lines[0].quantity"}

    missing = client.get("/api/invoices/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    conforms(missing.json(), "Problem")

    for bad in (
        client.post("/api/invoices", content=b"{", headers={"Content-Type": "application/json"}),
        client.post("/api/invoices", content=b"a=b", headers={"Content-Type": "text/plain"}),
        client.post("/api/invoices", content=b" " * (1024 * 1024 + 1), headers={"Content-Type": "application/json"}),
    ):
        assert bad.status_code in (400, 413, 415)
        assert bad.headers["content-type"] == "application/problem+json"
        conforms(bad.json(), "Problem")
