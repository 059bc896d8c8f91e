"""The invoice routes: parse -> command or query -> render. No SQL, no event store here.

Writes take `Idempotency-Key` (a repeat is answered with the aggregates as the first request
left them: the command's result, kept in its receipt, records their versions) and, where they change an invoice,
`If-Match: <version>` (412 on a stale one). Every response about one invoice carries its
version as the ETag.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from commands.application import BillingApplication
from commands.messages import NewLine
from commands.runner import Outcome
from ledger.errors import InvoiceDeletedError, InvoiceNotFoundError
from ledger.invoices import DELETED, Invoice
from ledger.money import Money
from web import models
from web.body import read_json
from web.decoding import RequestInvalidError, decode
from web.operations import ON_INVOICE, READ, UPDATE, WRITE, Endpoint, Operation
from web.render import event_json, invoice_json, payment_json, row_json
from web.rendered import Rendered
from web.services import Services

T = TypeVar("T")
Q = TypeVar("Q", bound=BaseModel)


def routes() -> list[Route]:
    invoice, key, match = models.Invoice, ("Idempotency-Key",), ("Idempotency-Key", "If-Match")
    etag = ("ETag",)

    def change(operation_id: str, summary: str, body: type[Any] = models.Empty) -> Operation:
        return Operation(
            operation_id, summary, response=invoice, body=body, headers=match, problems=UPDATE, response_headers=etag
        )

    return [
        Endpoint(
            "/api/invoices",
            create_invoice,
            "POST",
            Operation(
                "createInvoice",
                "Create a draft invoice",
                201,
                invoice,
                models.NewInvoice,
                body_required=True,
                headers=key,
                problems=WRITE,
                response_headers=("ETag", "Location"),
            ),
        ),
        Endpoint(
            "/api/invoices",
            list_invoices,
            "GET",
            Operation(
                "listInvoices",
                "List invoices, newest first",
                response=models.InvoiceList,
                query=models.InvoiceListQuery,
                problems=(*READ, 422),
            ),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}",
            read_invoice,
            "GET",
            Operation(
                "getInvoice",
                "Read an invoice (as it stands, or as it stood)",
                response=invoice,
                query=models.InvoiceReadQuery,
                problems=(*ON_INVOICE, 422),
                response_headers=etag,
            ),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}",
            update_invoice,
            "PATCH",
            change("updateInvoice", "Change a draft's customer, due date, memo or metadata", models.InvoiceChanges),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}",
            delete_invoice,
            "DELETE",
            Operation("deleteInvoice", "Delete a draft", 204, None, models.Empty, headers=match, problems=UPDATE),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}/lines",
            add_line,
            "POST",
            Operation(
                "addLine",
                "Add a line to a draft",
                201,
                invoice,
                models.NewLine,
                body_required=True,
                headers=match,
                problems=UPDATE,
                response_headers=etag,
            ),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}/lines/{line_id}",
            remove_line,
            "DELETE",
            change("removeLine", "Remove a line from a draft"),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}/issue",
            issue_invoice,
            "POST",
            change("issueInvoice", "Issue a draft: it gets its number and opens", models.IssueOptions),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}/void", void_invoice, "POST", change("voidInvoice", "Void an open invoice")
        ),
        Endpoint(
            "/api/invoices/{invoice_id}/mark-uncollectible",
            mark_uncollectible,
            "POST",
            change("markUncollectible", "Write an open invoice off as uncollectible"),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}/payments",
            record_payment,
            "POST",
            Operation(
                "recordPayment",
                "Record an offline payment (bank transfer, cheque)",
                201,
                models.PaymentRecorded,
                models.NewPayment,
                body_required=True,
                headers=match,
                problems=UPDATE,
                response_headers=etag,
            ),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}/events",
            invoice_events,
            "GET",
            Operation(
                "listInvoiceEvents",
                "The invoice's audit trail: every event, oldest first",
                response=models.EventList,
                problems=ON_INVOICE,
            ),
        ),
    ]


# ------------------------------------------------------------------------------ helpers


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Commands and queries wait on the database: run them off the event loop."""
    return await run_in_threadpool(function, *args, **kwargs)


def invoice_id_of(request: Request) -> UUID:
    raw = request.path_params["invoice_id"]
    try:
        return UUID(raw)
    except ValueError:
        raise InvoiceNotFoundError(raw) from None  # an id that cannot exist is not found


def idempotency_key_of(request: Request) -> str | None:
    return request.headers.get("idempotency-key")


def expected_version_of(request: Request) -> int | None:
    """`If-Match: 7` or `If-Match: "7"` (an ETag); None when absent."""
    value = request.headers.get("if-match")
    if value is None:
        return None
    text = value.strip()
    text = text.removeprefix("W/").strip('"')
    # At most 18 digits (as the document's pattern says): a longer one is no version, and int()
    # of thousands of digits would be refused by Python itself.
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise RequestInvalidError([{"field": "If-Match", "message": 'must be the invoice\'s version, e.g. "3"'}])
    return int(text)


def _query(model: type[Q], request: Request) -> Q:
    """The query string as `model`; a parameter given twice counts as its last value."""
    return decode(model, dict(request.query_params))


def _invoice_response(services: Services, invoice: Invoice, status: int = 200) -> Response:
    headers = {"ETag": f'"{invoice.version}"'}
    if status == 201:
        headers["Location"] = f"/api/invoices/{invoice.id}"
    today = services.clock.now().date()
    response = JSONResponse(invoice_json(invoice, today=today), status, headers=headers)
    services.rendered.put(invoice.id, Rendered(invoice.version, today, bytes(response.body)))
    return response


def _as_left(app: BillingApplication, outcome: Outcome[object], invoice_id: UUID) -> Invoice:
    """The invoice as the command's outcome says it left it: for a repeated request (same
    Idempotency-Key), the version the first one left, whatever happened since."""
    return _at(app, invoice_id, outcome.version_of(invoice_id))


def _at(app: BillingApplication, invoice_id: UUID, version: int | None) -> Invoice:
    current = app.invoice(invoice_id)  # the cached one, usually already at that version
    if version is None or current.version == version:
        return current
    return app.invoice(invoice_id, version=version)


# ------------------------------------------------------------------------------ handlers


async def create_invoice(request: Request) -> Response:
    services = services_of(request)
    new = decode(models.NewInvoice, await read_json(request))
    key = idempotency_key_of(request)

    def run() -> Invoice:
        outcome = services.app.create_draft(
            customer=new.customer.model_dump(),
            currency=new.currency,
            lines=[NewLine(line.description, line.quantity, line.unit_amount, line.tax_rate) for line in new.lines],
            due_date=new.due_date,
            memo=new.memo,
            metadata=new.metadata,
            idempotency_key=key,
        )
        return _as_left(services.app, outcome, outcome.result)

    return _invoice_response(services, await _blocking(run), 201)


async def list_invoices(request: Request) -> Response:
    services = services_of(request)
    query = _query(models.InvoiceListQuery, request)
    filters = {"status": query.status, "customer": query.customer, "currency": query.currency}

    def run() -> Any:
        services.read_models.catch_up()  # the caller's own writes show in the list
        return services.list_invoices(
            **filters,
            created_from=query.created_from,
            created_to=query.created_to,
            limit=query.limit,
            cursor=query.cursor or None,
        )

    page = await _blocking(run)
    body: models.InvoiceList = {
        "object": "list",
        "data": [row_json(row) for row in page.rows],
        "has_more": page.next_cursor is not None,
        "next_cursor": page.next_cursor,
    }
    return JSONResponse(body)


async def read_invoice(request: Request) -> Response:
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    query = _query(models.InvoiceReadQuery, request)
    if query.as_of is not None:
        invoice = await _blocking(services.app.invoice_as_of, invoice_id, query.as_of)
        return _invoice_response(services, _not_deleted(invoice))
    if services.inline_reads:
        # One indexed read of a local file (~20 us) costs less than the trip to a worker
        # thread and back (~130 us): check what was kept here, on the event loop.
        kept = _kept_response(services, invoice_id)
        if kept is not None:
            return kept
    return await _blocking(_current_invoice, services, invoice_id)


def _kept_response(services: Services, invoice_id: UUID) -> Response | None:
    """The bytes rendered for the invoice's last version, if nothing happened to it since."""
    kept = services.rendered.get(invoice_id, services.clock.now().date())
    if kept is None or services.app.changed_since(invoice_id, kept.version):
        return None
    return Response(kept.body, media_type="application/json", headers={"ETag": f'"{kept.version}"'})


def _current_invoice(services: Services, invoice_id: UUID) -> Response:
    """The invoice as it stands: the bytes rendered for its last version while no event followed."""
    kept = _kept_response(services, invoice_id)
    if kept is not None:
        return kept
    return _invoice_response(services, _not_deleted(services.app.invoice(invoice_id)))


def _not_deleted(invoice: Invoice) -> Invoice:
    """As Stripe: a deleted draft is gone (404), now and as of any moment after its deletion; its
    history is not (/events)."""
    if invoice.status == DELETED:
        raise InvoiceDeletedError(invoice.id)
    return invoice


async def update_invoice(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    changes = decode(models.InvoiceChanges, await read_json(request)).changes()
    return await _change(request, invoice_id, lambda app, options: app.change_details(invoice_id, **changes, **options))


async def delete_invoice(request: Request) -> Response:
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    decode(models.Empty, await read_json(request))
    expected, key = expected_version_of(request), idempotency_key_of(request)
    await _blocking(services.app.delete_draft, invoice_id, expected_version=expected, idempotency_key=key)
    return Response(status_code=204)


async def add_line(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    given = decode(models.NewLine, await read_json(request))
    line = NewLine(given.description, given.quantity, given.unit_amount, given.tax_rate)
    return await _change(request, invoice_id, lambda app, options: app.add_line(invoice_id, line, **options), 201)


async def remove_line(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    line_id = request.path_params["line_id"]
    decode(models.Empty, await read_json(request))
    return await _change(request, invoice_id, lambda app, options: app.remove_line(invoice_id, line_id, **options))


async def issue_invoice(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    due_date = decode(models.IssueOptions, await read_json(request)).due_date
    return await _change(request, invoice_id, lambda app, options: app.issue(invoice_id, due_date=due_date, **options))


async def void_invoice(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    decode(models.Empty, await read_json(request))
    return await _change(request, invoice_id, lambda app, options: app.void(invoice_id, **options))


async def mark_uncollectible(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    decode(models.Empty, await read_json(request))
    return await _change(request, invoice_id, lambda app, options: app.mark_uncollectible(invoice_id, **options))


async def _change(
    request: Request,
    invoice_id: UUID,
    command: Callable[[BillingApplication, dict[str, Any]], Outcome[object]],
    status: int = 200,
) -> Response:
    """Run an invoice command with the request's If-Match and Idempotency-Key; answer with the
    invoice as that command left it."""
    services = services_of(request)
    key = idempotency_key_of(request)
    options = {"expected_version": expected_version_of(request), "idempotency_key": key}

    def run() -> Invoice:
        return _as_left(services.app, command(services.app, options), invoice_id)

    return _invoice_response(services, await _blocking(run), status)


async def record_payment(request: Request) -> Response:
    """An offline payment (bank transfer, cheque): 201 with the payment and the invoice after it."""
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    given = decode(models.NewPayment, await read_json(request))
    expected, key = expected_version_of(request), idempotency_key_of(request)

    def run() -> Response:
        app = services.app
        currency = given.currency or app.invoice(invoice_id).currency
        outcome = app.record_offline_payment(
            invoice_id,
            Money(given.amount, currency),
            reference=given.reference,
            expected_version=expected,
            idempotency_key=key,
        )
        payment = app.payment(outcome.result, version=outcome.version_of(outcome.result))
        invoice = _at(app, invoice_id, outcome.version_of(invoice_id))
        body: models.PaymentRecorded = {
            "payment": payment_json(payment),
            "invoice": invoice_json(invoice, today=services.clock.now().date()),
        }
        return JSONResponse(body, 201, headers={"ETag": f'"{invoice.version}"'})

    return await _blocking(run)


async def invoice_events(request: Request) -> Response:
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    events = await _blocking(lambda: list(services.app.invoice_history(invoice_id)))
    body: models.EventList = {"object": "list", "invoice_id": str(invoice_id), "data": [event_json(e) for e in events]}
    return JSONResponse(body)
