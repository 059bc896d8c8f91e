"""Schemathesis against the served API: requests generated from the OpenAPI document (valid ones
and invalid ones), sent over TCP with the token, each response checked against the document.

Checked for every case: no 5xx, a status the operation documents, the documented content type,
and a body that fits the documented schema. Random ids would only ever meet 404s, so most cases
on one invoice are pointed at a real one made for the case (a draft, or an issued invoice), chosen
from the generated id itself so that a derandomized run repeats exactly. Likewise most generated
Idempotency-Keys get a suffix unique to the case: the generator favours short keys such as "0",
and a key reused for another request is (rightly) refused before anything else is looked at.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import AUTH, INVOICE, Api
from web.openapi import openapi_document

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 100  # enough to reach past the first field of each body; still minutes, not more

schema = schemathesis.openapi.from_dict(openapi_document())
_cases = itertools.count()


def _real_invoice(api: Api, case: Any) -> None:
    """Point the case at an invoice that exists, for 12 of 16 generated ids (the rest stay 404s)."""
    generated = str(case.path_parameters["invoice_id"])
    last = generated[-1:].lower()
    pick = int(last, 16) if last and last in "0123456789abcdef" else 0
    if pick < 4:
        return
    created = api.client.post("/api/invoices", json=INVOICE)
    assert created.status_code == 201, created.text
    invoice = created.json()
    if pick >= 10:
        issued = api.client.post(f"/api/invoices/{invoice['id']}/issue")
        assert issued.status_code == 200, issued.text
    case.path_parameters["invoice_id"] = invoice["id"]
    if "line_id" in case.path_parameters and pick % 2 == 0:
        case.path_parameters["line_id"] = invoice["lines"][0]["id"]


def _fresh_key(case: Any) -> None:
    """Three cases in four get an Idempotency-Key of their own; the fourth keeps the generated one."""
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    number = next(_cases)
    if isinstance(key, str) and 0 < len(key) <= 200 and number % 4:
        headers["Idempotency-Key"] = f"{key}~{number}"


# Headers that frame the message: the HTTP client sets them, and a forged one (`content-length:
# abc`) is refused by uvicorn before the app sees the request (a plain-text 400 on any route).
FRAMING = {"content-length", "transfer-encoding", "host", "connection"}


def _no_forged_framing(case: Any) -> None:
    if case.headers:
        for name in [n for n in case.headers if n.lower() in FRAMING]:
            del case.headers[name]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_keeps_to_its_document(case: Any, api: Api) -> None:
    if "invoice_id" in case.path_parameters:
        _real_invoice(api, case)
    _fresh_key(case)
    _no_forged_framing(case)
    response = case.call(base_url=api.base_url, headers=AUTH, timeout=30)
    case.validate_response(response, checks=CHECKS)


# ------------------------------------------------------------------------------ found and fixed (each was a 500)


def test_non_ascii_digits_are_refused_not_a_500(api: Api) -> None:
    assert api.client.get("/api/invoices", params={"limit": "²"}).status_code == 422
    created = api.client.post("/api/invoices", json=INVOICE).json()
    stale = api.client.patch(
        f"/api/invoices/{created['id']}", json={"memo": "x"}, headers={"If-Match": "²".encode("latin-1")}
    )
    assert stale.status_code == 422
    assert stale.json()["errors"][0]["field"] == "If-Match"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_moments_beyond_what_utc_can_hold_are_refused(api: Api, moment: str) -> None:
    created = api.client.post("/api/invoices", json=INVOICE).json()
    for path, name in [
        ("/api/invoices", "created_from"),
        ("/api/invoices", "created_to"),
        (f"/api/invoices/{created['id']}", "as_of"),
    ]:
        response = api.client.get(path, params={name: moment})
        assert response.status_code == 422, (name, response.text)
        assert response.json()["errors"] == [{"field": name, "message": "is out of range"}]


def test_a_lone_surrogate_escape_is_malformed_json(api: Api) -> None:
    body = b'{"customer": {"email": "a@b.example", "name": "\\ud800"}, "currency": "usd"}'
    response = api.client.post("/api/invoices", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert api.client.get("/api/invoices").json()["data"] == []


# ------------------------------------------------------------------------------ found and fixed, elsewhere


def test_a_nul_in_a_list_filter_is_refused(api: Api) -> None:
    for name in ("customer", "status", "currency"):
        response = api.client.get("/api/invoices", params={name: "a\x00b"})
        assert response.status_code == 422, (name, response.status_code)
        assert response.json()["errors"][0]["field"] == name
    assert api.client.get("/api/invoices", params={"status": "sent"}).status_code == 422
    assert api.client.get("/api/invoices", params={"currency": "usx"}).status_code == 422


def test_a_forged_cursor_out_of_range_is_refused(api: Api) -> None:
    forged = base64.urlsafe_b64encode(json.dumps(["0001-01-01T00:00:00+01:00", "x"]).encode()).decode()
    response = api.client.get("/api/invoices", params={"cursor": forged})
    assert response.status_code == 422


def test_an_email_with_a_trailing_newline_is_refused(api: Api) -> None:
    response = api.client.post("/api/invoices", json={**INVOICE, "customer": {"email": "a@b.example\n", "name": ""}})
    assert response.status_code == 422
