"""GET /api/invoices/{id}/pdf over real HTTP, on SQLite and PostgreSQL: the PDF says what the
JSON says, per version, and the refusals are problems."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.clock import ManualClock
from adapters.read_models import InProcessProjections, read_model_engine
from ledger.money import Money
from tests.conftest import AppFactory
from tests.e2e.conftest import AUTH, INVOICE, TOKEN, Api
from tests.invoice_documents import flat, printed, reader, text_of
from tests.served import ServedApp
from web.app import create_app
from web.services import Services

PDF = "application/pdf"
PROBLEM = "application/problem+json"


def _issued_and_part_paid(api: Api) -> dict[str, Any]:
    created = api.client.post("/api/invoices", json=INVOICE)
    assert created.status_code == 201, created.text
    url = f"/api/invoices/{created.json()['id']}"
    assert api.client.post(url + "/issue").status_code == 200
    paid = api.client.post(url + "/payments", json={"amount": 6_000, "reference": "wire 7781"})
    assert paid.status_code == 201, paid.text
    invoice: dict[str, Any] = paid.json()["invoice"]
    return invoice


def _formatted(invoice: dict[str, Any], field: str) -> str:
    return Money(invoice[field], invoice["currency"]).format()


def test_the_pdf_says_what_the_json_says(api: Api) -> None:
    invoice = _issued_and_part_paid(api)
    url = f"/api/invoices/{invoice['id']}"
    as_json = api.client.get(url)

    response = api.client.get(url + "/pdf")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PDF
    assert response.headers["content-disposition"] == f'attachment; filename="{invoice["number"]}.pdf"'
    assert response.headers["etag"] == as_json.headers["etag"] == f'"{invoice["version"]}"'
    assert response.content.startswith(b"%PDF-")
    text = text_of(response.content)
    assert invoice["number"] in text
    assert invoice["customer"]["name"] in text
    assert printed("Total", text) == _formatted(as_json.json(), "total")
    assert printed("Amount due", text) == _formatted(as_json.json(), "amount_due")
    assert reader(response.content).metadata.title == f"Invoice {invoice['number']}"  # type: ignore[union-attr]
    assert api.client.get(url + "/pdf").content == response.content  # the same version, the same bytes


def test_an_earlier_version_is_printed_as_it_stood(api: Api) -> None:
    invoice = _issued_and_part_paid(api)
    url = f"/api/invoices/{invoice['id']}/pdf"

    first = api.client.get(url, params={"version": "1"})

    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"1"'
    assert first.headers["content-disposition"] == f'attachment; filename="draft-{invoice["id"]}.pdf"'
    text = text_of(first.content)
    assert "DRAFT" in text
    assert printed("Amount paid", text) == Money(0, invoice["currency"]).format()
    current = api.client.get(url, params={"version": str(invoice["version"])})
    assert current.content == api.client.get(url).content


@pytest.mark.parametrize("version", ["0", "-1", "x", "1.5", "9" * 19])
def test_a_version_that_is_no_number_is_refused(api: Api, version: str) -> None:
    invoice = _issued_and_part_paid(api)
    refused = api.client.get(f"/api/invoices/{invoice['id']}/pdf", params={"version": version})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "version"


def test_unknown_invoices_versions_and_deleted_drafts_are_404(api: Api) -> None:
    invoice = _issued_and_part_paid(api)
    draft = api.client.post("/api/invoices", json=INVOICE).json()["id"]
    assert api.client.delete(f"/api/invoices/{draft}").status_code == 204

    for url in [
        "/api/invoices/00000000-0000-0000-0000-000000000000/pdf",
        "/api/invoices/not-a-uuid/pdf",
        f"/api/invoices/{invoice['id']}/pdf?version=999",
        f"/api/invoices/{draft}/pdf",
    ]:
        missing = api.client.get(url)
        assert missing.status_code == 404, (url, missing.text)
        assert missing.headers["content-type"] == PROBLEM
    # Before its deletion the draft was a draft, and printed as one.
    assert "DRAFT" in text_of(api.client.get(f"/api/invoices/{draft}/pdf?version=1").content)


def test_the_pdf_needs_the_token(api: Api) -> None:
    invoice = _issued_and_part_paid(api)
    anonymous = httpx.get(f"{api.base_url}/api/invoices/{invoice['id']}/pdf")
    assert anonymous.status_code == 401


@pytest.fixture
def fontless(make_app: AppFactory, database_url: str, clock: ManualClock, tmp_path: Path) -> Iterator[httpx.Client]:
    """The API with LEDGER_PDF_FONT_DIR pointing at an empty directory."""
    app = make_app()
    engine = read_model_engine(database_url)
    services = Services(
        app=app,
        read_models=InProcessProjections(app, engine),
        clock=clock,
        api_token=TOKEN,
        pdf_font_dir=tmp_path,
    )
    served = ServedApp(create_app(services))
    try:
        with httpx.Client(base_url=served.base_url, headers=AUTH, timeout=30) as client:
            yield client
    finally:
        served.stop()
        engine.dispose()


def test_a_missing_font_is_503_naming_it(fontless: httpx.Client, tmp_path: Path) -> None:
    created = fontless.post("/api/invoices", json=INVOICE)
    assert created.status_code == 201, created.text

    refused = fontless.get(f"/api/invoices/{created.json()['id']}/pdf")

    assert refused.status_code == 503
    assert refused.headers["content-type"] == PROBLEM
    assert "retry-after" in refused.headers
    detail = flat(refused.json()["detail"])
    assert str(tmp_path / "DejaVuSans.ttf") in detail
    assert "fonts-dejavu-core" in detail
