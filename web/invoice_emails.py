"""Invoice emails over the API: `POST /api/invoices/{id}/send` queues one (202: the mail worker
delivers it, adapters/mail/worker.py), `GET /api/invoices/{id}/emails` lists an invoice's, and
`GET /api/invoices/{id}/emails/{email_id}` follows one's delivery.

Sending an unchanged invoice again answers with the email queued the first time (one email per
invoice version), unless the body asks for `{"resend": true}`; `Idempotency-Key` makes a retried
resend the same email too. A send never changes the invoice: its version and ETag stay.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, with_config
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typing_extensions import TypedDict

from commands.idempotency import receipt_id_for
from ledger.mail.emails import PURPOSES, STATUSES, InvoiceEmail, InvoiceEmailNotFoundError
from projections.mail.emails import invoice_emails_of
from web.body import read_json
from web.decoding import decode
from web.invoices import idempotency_key_of, invoice_id_of, services_of
from web.models import CLOSED
from web.models import Request as RequestModel
from web.operations import BODY, ON_INVOICE, Endpoint, Operation
from web.render import moment


class SendOptions(RequestModel):
    """No body: send the invoice as it stands, once per version."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"resend": True}]})

    resend: bool = Field(
        False, description="A new email even if this version of the invoice was sent (or queued) already."
    )


@with_config(CLOSED)
class InvoiceEmailResource(TypedDict):
    id: Annotated[str, Field(json_schema_extra={"format": "uuid"})]
    object: Literal["invoice_email"]
    invoice_id: str
    invoice_version: Annotated[int, Field(ge=1, description="The version of the invoice the email shows.")]
    purpose: Annotated[str, Field(json_schema_extra={"enum": list(PURPOSES)})]
    recipient: str
    status: Annotated[
        str,
        Field(
            json_schema_extra={"enum": list(STATUSES)},
            description=(
                "queued -> sending -> sent, or failed (retried at next_attempt_at), bounced, gave_up; "
                "withdrawn: not sent because it no longer applied (a reminder of an invoice paid or "
                "voided since, the email of an invoice voided since), last_error says why."
            ),
        ),
    ]
    attempts: Annotated[int, Field(ge=0)]
    next_attempt_at: Annotated[str | None, Field(description="When the worker tries again; null once settled.")]
    queued_at: str | None
    sent_at: str | None
    message_id: Annotated[str | None, Field(description="The Message-ID header the email went out with.")]
    last_error: Annotated[
        str | None, Field(description="Why the last attempt failed or bounced, or why the email was withdrawn.")
    ]


@with_config(CLOSED)
class InvoiceEmailList(TypedDict):
    object: Literal["list"]
    invoice_id: str
    data: list[InvoiceEmailResource]


def routes() -> list[Route]:
    return [
        Endpoint(
            "/api/invoices/{invoice_id}/send",
            send_invoice,
            "POST",
            Operation(
                "sendInvoice",
                "Email the invoice to its customer, with its PDF",
                202,
                InvoiceEmailResource,
                SendOptions,
                headers=("Idempotency-Key",),
                problems=(*ON_INVOICE, *BODY, 409),
            ),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}/emails",
            list_invoice_emails,
            "GET",
            Operation(
                "listInvoiceEmails",
                "The invoice's emails, oldest first",
                response=InvoiceEmailList,
                problems=ON_INVOICE,
            ),
        ),
        Endpoint(
            "/api/invoices/{invoice_id}/emails/{email_id}",
            read_invoice_email,
            "GET",
            Operation(
                "getInvoiceEmail",
                "One email of the invoice and how its delivery went",
                response=InvoiceEmailResource,
                problems=ON_INVOICE,
            ),
        ),
    ]


async def send_invoice(request: Request) -> Response:
    """202 with the email: queued now, or the one queued before for this version of the invoice.

    Delivery happens after the answer (the mail worker); follow it with
    GET /api/invoices/{id}/emails/{email_id}. A draft or a deleted invoice is refused (409)."""
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    options = decode(SendOptions, await read_json(request))
    key = idempotency_key_of(request)
    if key is not None:
        receipt_id_for(key)  # the same limits as every other write's key (1 to 255 characters)

    def run() -> InvoiceEmailResource:
        mail = services.app.mail
        outcome = mail.queue(invoice_id, trigger="api", resend=options.resend, idempotency_key=key)
        email_id = outcome.result
        return email_json(mail.email(email_id, version=outcome.version_of(email_id)))

    body = await run_in_threadpool(run)
    return JSONResponse(body, 202, headers={"Location": f"/api/invoices/{invoice_id}/emails/{body['id']}"})


async def list_invoice_emails(request: Request) -> Response:
    services = services_of(request)
    invoice_id = invoice_id_of(request)

    def run() -> list[InvoiceEmailResource]:
        services.app.invoice(invoice_id)  # 404 for an invoice that never was
        services.read_models.catch_up()  # the caller's own sends show
        return [row_json(row) for row in invoice_emails_of(services.read_models.engine, invoice_id)]

    body: InvoiceEmailList = {"object": "list", "invoice_id": str(invoice_id), "data": await run_in_threadpool(run)}
    return JSONResponse(body)


async def read_invoice_email(request: Request) -> Response:
    services = services_of(request)
    invoice_id = invoice_id_of(request)
    raw = request.path_params["email_id"]
    try:
        email_id = UUID(raw)
    except ValueError:
        raise InvoiceEmailNotFoundError(raw) from None  # an id that cannot exist is not found

    def run() -> InvoiceEmailResource:
        email = services.app.mail.email(email_id)
        if email.invoice_id != str(invoice_id):
            raise InvoiceEmailNotFoundError(raw)  # another invoice's email is not found here
        return email_json(email)

    return JSONResponse(await run_in_threadpool(run))


def email_json(email: InvoiceEmail) -> InvoiceEmailResource:
    return {
        "id": str(email.id),
        "object": "invoice_email",
        "invoice_id": email.invoice_id,
        "invoice_version": email.invoice_version,
        "purpose": email.purpose,
        "recipient": email.recipient,
        "status": email.status,
        "attempts": email.attempts,
        "next_attempt_at": moment(email.next_attempt_at),
        "queued_at": moment(email.created_on),
        "sent_at": moment(email.sent_at),
        "message_id": email.message_id,
        "last_error": email.last_error,
    }


def row_json(row: dict[str, Any]) -> InvoiceEmailResource:
    """A row of the invoice_emails read model, as the same resource."""
    return {
        "id": row["email_id"],
        "object": "invoice_email",
        "invoice_id": row["invoice_id"],
        "invoice_version": row["invoice_version"],
        "purpose": row["purpose"],
        "recipient": row["recipient"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": moment(row["next_attempt_at"]),
        "queued_at": moment(row["queued_at"]),
        "sent_at": moment(row["sent_at"]),
        "message_id": row["message_id"],
        "last_error": row["last_error"],
    }
