"""Failed payments: the open invoices whose payment failed, with the reason, the attempts and
where their dunning stands (projections/admin/failed_payments.py), and two actions.

GET  /admin/failed-payments                        the list (`currency`, `cursor`)
POST /admin/failed-payments/{invoice_id}/retry     ask the provider to charge the failed payment now
POST /admin/failed-payments/{invoice_id}/remind    request a reminder to the customer now

Both actions are dunning steps taken by hand (commands/dunning.py `retry_by_hand`,
`remind_by_hand`): kept as `dunning.retried-by-hand` / `dunning.reminded-by-hand` events beside
the schedule's. Without a payment provider there is nothing to retry with: no button, and the
POST is refused (409).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from commands.dunning import NO_PROVIDER
from ledger.dunning.aggregate import dunning_id_for
from ledger.errors import DunningStateError, InvoiceNotFoundError
from projections.admin.failed_payments import failed_payments
from web.admin.context import acting
from web.admin.forms import PAGE_SIZE, done, path_uuid, read_form, read_query, with_query
from web.admin.rendering import render
from web.invoices import services_of
from web.models import Query
from web.models import Request as Form

PATH = "/admin/failed-payments"


class FailedPaymentsQuery(Query):
    currency: str | None = Field(None, max_length=3)
    cursor: str | None = None
    done: str | None = None


class NoFields(Form):
    """A button: the form carries its CSRF token and nothing else."""


def routes() -> list[BaseRoute]:
    return [
        Route("/failed-payments", list_failed_payments, methods=["GET"]),
        Route("/failed-payments/{invoice_id}/retry", retry_now, methods=["POST"]),
        Route("/failed-payments/{invoice_id}/remind", remind_now, methods=["POST"]),
    ]


async def list_failed_payments(request: Request) -> Response:
    services = services_of(request)
    query = read_query(request, FailedPaymentsQuery)
    currency = query.currency.lower() if query.currency else None

    def run() -> Any:
        services.read_models.catch_up()
        return failed_payments(services.read_models.engine, currency=currency, limit=PAGE_SIZE, cursor=query.cursor)

    page = await run_in_threadpool(run)
    context = {
        "rows": page.rows,
        "currency": currency or "",
        "can_retry": services.payments is not None,
        "next_page": with_query(PATH, currency=currency, cursor=page.next_cursor) if page.next_cursor else None,
        "flash": query.done,
    }
    return render(request, "admin/failed_payments.html", context)


async def retry_now(request: Request) -> Response:
    services = services_of(request)
    invoice_id = path_uuid(request, "invoice_id", InvoiceNotFoundError)
    await read_form(request, NoFields)
    if services.payments is None:  # refused before anything runs: there is nothing to charge with
        raise DunningStateError(dunning_id_for(invoice_id), NO_PROVIDER)

    def run() -> str:
        with acting(request, "dunning.retry", target=str(invoice_id)):
            action = services.app.dunning.retry_by_hand(
                invoice_id, policy=services.dunning_policy, payments=services.payments
            ).result
        services.read_models.catch_up()
        return action.reason

    reason = await run_in_threadpool(run)
    return done(PATH, f"Retry requested ({reason}).")


async def remind_now(request: Request) -> Response:
    services = services_of(request)
    invoice_id = path_uuid(request, "invoice_id", InvoiceNotFoundError)
    await read_form(request, NoFields)

    def run() -> None:
        with acting(request, "dunning.remind", target=str(invoice_id)):
            services.app.dunning.remind_by_hand(invoice_id, policy=services.dunning_policy)
        services.read_models.catch_up()

    await run_in_threadpool(run)
    return done(PATH, "Reminder requested.")
