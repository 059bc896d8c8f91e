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

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from commands.application import BillingApplication
from ledger.errors import InvoiceDeletedError, InvoiceNotFoundError
from ledger.invoices import DELETED, Invoice
from ledger.money import Money
from web import requests
from web.body import read_json
from web.render import event_json, invoice_json, payment_json, row_json
from web.rendered import Rendered
from web.services import Services

T = TypeVar("T")


def routes() -> list[Route]:
    return [
        Route("/api/invoices", create_invoice, methods=["POST"]),
        Route("/api/invoices", list_invoices, methods=["GET"]),
        Route("/api/invoices/{invoice_id}", read_invoice, methods=["GET"]),
        Route("/api/invoices/{invoice_id}", update_invoice, methods=["PATCH"]),
        Route("/api/invoices/{invoice_id}", delete_invoice, methods=["DELETE"]),
        Route("/api/invoices/{invoice_id}/lines", add_line, methods=["POST"]),
        Route("/api/invoices/{invoice_id}/lines/{line_id}", remove_line, methods=["DELETE"]),
        Route("/api/invoices/{invoice_id}/issue", issue_invoice, methods=["POST"]),
        Route("/api/invoices/{invoice_id}/void", void_invoice, methods=["POST"]),
        Route("/api/invoices/{invoice_id}/mark-uncollectible", mark_uncollectible, methods=["POST"]),
        Route("/api/invoices/{invoice_id}/payments", record_payment, methods=["POST"]),
        Route("/api/invoices/{invoice_id}/events", invoice_events, methods=["GET"]),
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


def _expected(request: Request) -> int | None:
    return requests.version(request.headers.get("if-match"))


def _invoice_response(services: Services, invoice: Invoice, status: int = 200) -> Response:
    headers = {"ETag": f'"{invoice.version}"'}
    if status == 201:
        headers["Location"] = f"/api/invoices/{invoice.id}"
    today = services.clock.now().date()
    response = JSONResponse(invoice_json(invoice, today=today), status, headers=headers)
    services.rendered.put(invoice.id, Rendered(invoice.version, today, bytes(response.body)))
    return response


def _as_left(app: BillingApplication, invoice_id: UUID) -> Invoice:
    """The invoice as the command just run on this thread left it: for a repeated request (same
    Idempotency-Key), the version the first one left, whatever happened since."""
    return _at(app, invoice_id, _versions(app).get(str(invoice_id)))


def _versions(app: BillingApplication) -> dict[str, int]:
    versions: dict[str, int] = (app.last_outcome() or {}).get("versions", {})
    return versions


def _at(app: BillingApplication, invoice_id: UUID, version: int | None) -> Invoice:
    current = app.invoice(invoice_id)  # the cached one, usually already at that version
    if version is None or current.version == version:
        return current
    return app.invoice(invoice_id, version=version)


# ------------------------------------------------------------------------------ handlers


async def create_invoice(request: Request) -> Response:
    services = services_of(request)
    new = requests.new_invoice(await read_json(request))
    key = idempotency_key_of(request)

    def run() -> Invoice:
        invoice_id = services.app.create_draft(
            customer=new.customer,
            currency=new.currency,
            lines=new.lines,
            due_date=new.due_date,
            memo=new.memo,
            metadata=new.metadata,
            idempotency_key=key,
        )
        return _as_left(services.app, invoice_id)

    return _invoice_response(services, await _blocking(run), 201)


async def list_invoices(request: Request) -> Response:
    services = services_of(request)
    query = request.query_params
    unknown = sorted(set(query) - {"status", "customer", "currency", "created_from", "created_to", "limit", "cursor"})
    if unknown:
        raise requests.RequestInvalidError([{"field": name, "message": "unknown query parameter"} for name in unknown])
    limit = requests.limit(query.get("limit"))
    created_from = requests.moment(query["created_from"], "created_from") if "created_from" in query else None
    created_to = requests.moment(query["created_to"], "created_to") if "created_to" in query else None

    filters = requests.invoice_filters(query.get("status"), query.get("customer"), query.get("currency"))

    def run() -> Any:
        services.read_models.catch_up()  # the caller's own writes show in the list
        return services.list_invoices(
            **filters,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            cursor=query.get("cursor") or None,
        )

    page = await _blocking(run)
    return JSONResponse(
        {
            "object": "list",
            "data": [row_json(row) for row in page.rows],
            "has_more": page.next_cursor is not None,
            "next_cursor": page.next_cursor,
        }
    )


async def read_invoice(request: Request) -> Response:
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    as_of = request.query_params.get("as_of")
    unknown = sorted(set(request.query_params) - {"as_of"})
    if unknown:
        raise requests.RequestInvalidError([{"field": name, "message": "unknown query parameter"} for name in unknown])
    if as_of is not None:
        moment = requests.moment(as_of, "as_of")
        invoice = await _blocking(services.app.invoice_as_of, invoice_id, moment)
        return _invoice_response(services, invoice)
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
    invoice = services.app.invoice(invoice_id)
    if invoice.status == DELETED:  # as Stripe: a deleted draft is gone; its history is not
        raise InvoiceDeletedError(invoice_id)
    return _invoice_response(services, invoice)


async def update_invoice(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    changes = requests.invoice_changes(await read_json(request))
    return await _change(request, invoice_id, lambda app, options: app.change_details(invoice_id, **changes, **options))


async def delete_invoice(request: Request) -> Response:
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    requests.empty(await read_json(request))
    expected, key = _expected(request), idempotency_key_of(request)
    await _blocking(services.app.delete_draft, invoice_id, expected_version=expected, idempotency_key=key)
    return Response(status_code=204)


async def add_line(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    line = requests.new_line(await read_json(request))
    return await _change(request, invoice_id, lambda app, options: app.add_line(invoice_id, line, **options), 201)


async def remove_line(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    line_id = request.path_params["line_id"]
    requests.empty(await read_json(request))
    return await _change(request, invoice_id, lambda app, options: app.remove_line(invoice_id, line_id, **options))


async def issue_invoice(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    due_date = requests.issue_options(await read_json(request))
    return await _change(request, invoice_id, lambda app, options: app.issue(invoice_id, due_date=due_date, **options))


async def void_invoice(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    requests.empty(await read_json(request))
    return await _change(request, invoice_id, lambda app, options: app.void(invoice_id, **options))


async def mark_uncollectible(request: Request) -> Response:
    invoice_id = invoice_id_of(request)
    requests.empty(await read_json(request))
    return await _change(request, invoice_id, lambda app, options: app.mark_uncollectible(invoice_id, **options))


async def _change(
    request: Request,
    invoice_id: UUID,
    command: Callable[[BillingApplication, dict[str, Any]], object],
    status: int = 200,
) -> Response:
    """Run an invoice command with the request's If-Match and Idempotency-Key; answer with the
    invoice as that command left it."""
    services = services_of(request)
    key = idempotency_key_of(request)
    options = {"expected_version": _expected(request), "idempotency_key": key}

    def run() -> Invoice:
        command(services.app, options)
        return _as_left(services.app, invoice_id)

    return _invoice_response(services, await _blocking(run), status)


async def record_payment(request: Request) -> Response:
    """An offline payment (bank transfer, cheque): 201 with the payment and the invoice after it."""
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    given = requests.offline_payment(await read_json(request))
    key = idempotency_key_of(request)

    def run() -> Response:
        app = services.app
        currency = given.currency or app.invoice(invoice_id).currency
        payment_id = app.record_offline_payment(
            invoice_id, Money(given.amount, currency), reference=given.reference, idempotency_key=key
        )
        versions = _versions(app)
        payment = app.payment(payment_id, version=versions.get(str(payment_id)))
        invoice = _at(app, invoice_id, versions.get(str(invoice_id)))
        body = {"payment": payment_json(payment), "invoice": invoice_json(invoice, today=services.clock.now().date())}
        return JSONResponse(body, 201, headers={"ETag": f'"{invoice.version}"'})

    return await _blocking(run)


async def invoice_events(request: Request) -> Response:
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    events = await _blocking(lambda: list(services.app.invoice_history(invoice_id)))
    return JSONResponse({"object": "list", "invoice_id": str(invoice_id), "data": [event_json(e) for e in events]})
