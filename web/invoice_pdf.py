"""`GET /api/invoices/{id}/pdf`: the invoice as a PDF document (adapters/pdf, docs/pdf.md).

The document of a version never changes (render_invoice_pdf is deterministic), so the ETag is
the version, as on the JSON. Rendering is CPU work of a tenth of a second or more: it runs in a
worker thread, never on the event loop, and at most RENDERS_AT_ONCE at a time per app (the
client portal's PDFs, web/portal/pages.py, take the same slots).
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from pydantic import ConfigDict, Field, PlainValidator, RootModel, WithJsonSchema
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.pdf.figures import file_name
from adapters.pdf.render import FontMissingError, render_invoice_pdf
from ledger.errors import InvalidInputError, InvoiceDeletedError, InvoiceNotFoundError
from ledger.invoices import DELETED, Invoice
from web.decoding import decode, rule
from web.invoices import invoice_id_of, services_of
from web.models import Query
from web.operations import ON_INVOICE, Endpoint, Operation
from web.problems import RETRY_AFTER_SECONDS, problem
from web.services import Services

PDF = "application/pdf"
MAX_VERSION = 10**18 - 1  # as If-Match: at most 18 digits
# The GIL runs one render at a time anyway: more at once would only hold worker threads (and
# some 11 MB each) that the other requests' reads wait for. The rest queue here, on the loop.
RENDERS_AT_ONCE = 2


def _version(value: object) -> int:
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise InvalidInputError("must be one of the invoice's versions: an integer from 1")
    return int(text)


class PdfQuery(Query):
    version: Annotated[
        int | None,
        PlainValidator(rule(_version)),
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_VERSION}),
    ] = Field(None, description="An earlier version of the invoice (its ETag then); absent: as it stands.")


class InvoicePdf(RootModel[bytes]):
    """The invoice as a PDF document."""

    model_config = ConfigDict(json_schema_extra={"contentMediaType": PDF})


def routes() -> list[Route]:
    return [
        Endpoint(
            "/api/invoices/{invoice_id}/pdf",
            invoice_pdf,
            "GET",
            Operation(
                "getInvoicePdf",
                "The invoice as a PDF document (as it stands, or an earlier version)",
                response=InvoicePdf,
                query=PdfQuery,
                problems=(*ON_INVOICE, 422),
                media_type=PDF,
                response_headers=("ETag", "Content-Disposition"),
            ),
        )
    ]


async def invoice_pdf(request: Request) -> Response:
    """The invoice's PDF: seller, customer, lines, totals, what is due and how to pay it.

    `Content-Disposition: attachment` names the file after the invoice's number (a draft's after
    its id). The same version always gives the same bytes, so its ETag is the version. 404 for
    an unknown or deleted invoice or a version it never had; 503 when the PDF font is missing
    (the problem names the file: install fonts-dejavu-core or set LEDGER_PDF_FONT_DIR).
    """
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    version = decode(PdfQuery, dict(request.query_params)).version
    try:
        async with render_slots(request):
            invoice, body = await run_in_threadpool(_render, services, invoice_id, version)
    except FontMissingError as error:
        return problem(
            503, "PDF font missing", str(error), slug="font-missing", headers={"Retry-After": RETRY_AFTER_SECONDS}
        )
    headers = {
        "ETag": f'"{invoice.version}"',
        "Content-Disposition": f'attachment; filename="{file_name(invoice)}"',
    }
    return Response(body, media_type=PDF, headers=headers)


def render_slots(request: Request) -> asyncio.Semaphore:
    """The app's render slots, made on its event loop at the first PDF asked for: the API's and
    the portal's, whose links anyone holding one may ask for as often as they like."""
    state = request.app.state
    slots: asyncio.Semaphore | None = getattr(state, "pdf_renders", None)
    if slots is None:
        slots = state.pdf_renders = asyncio.Semaphore(RENDERS_AT_ONCE)
    return slots


def _render(services: Services, invoice_id: UUID, version: int | None) -> tuple[Invoice, bytes]:
    invoice = services.app.invoice(invoice_id, version=version)
    if version is not None and invoice.version != version:  # the store gives the latest below it
        raise InvoiceNotFoundError(f"{invoice_id} version {version}")
    if invoice.status == DELETED:
        raise InvoiceDeletedError(invoice.id)
    pdf = render_invoice_pdf(invoice, seller=services.seller, font_dir=services.pdf_font_dir)
    return invoice, pdf
