"""Failed payments: the open invoices whose payment failed, with the reason, the attempts and
where their dunning stands (projections/admin/failed_payments.py), and two actions.

GET  /admin/failed-payments                        the list (`currency`, `sort`, `dir`, `cursor`)
POST /admin/failed-payments/{invoice_id}/retry     ask the provider to charge the failed payment now
POST /admin/failed-payments/{invoice_id}/remind    request a reminder to the customer now (`version`,
                                                   `dunning_version`: what the page showed; stale: 412)

Both actions are dunning steps taken by hand (commands/dunning.py `retry_by_hand`,
`remind_by_hand`): kept as `dunning.retried-by-hand` / `dunning.reminded-by-hand` events beside
the schedule's. Without a payment provider there is nothing to retry with: no button, and the
POST is refused (409).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field, PlainValidator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from commands.dunning import NO_PROVIDER
from ledger.dunning.aggregate import dunning_id_for
from ledger.errors import DunningStateError, InvalidInputError, InvoiceNotFoundError
from projections.admin.failed_payments import failed_payments
from web.admin.context import acting
from web.admin.forms import PAGE_SIZE, done, flash_of, path_uuid, read_form, read_query, with_query
from web.admin.rendering import render
from web.admin.sorting import Column, sorting
from web.decoding import rule
from web.invoices import services_of
from web.models import Query
from web.models import Request as Form

PATH = "/admin/failed-payments"


COLUMNS = (
    Column("number", "Invoice"),
    Column("amount_due", "Amount due", descending_first=True, numeric=True),
    Column("attempts", "Attempts", descending_first=True, numeric=True),
    Column("last_failure", "Last failure", descending_first=True),
)


class FailedPaymentsQuery(Query):
    currency: str | None = Field(None, max_length=3)
    sort: str | None = Field(None, max_length=40)
    dir: str | None = Field(None, max_length=4)
    cursor: str | None = None
    done: str | None = None


class NoFields(Form):
    """A button: the form carries its CSRF token and nothing else."""


def _count(least: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        text = str(value)
        if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < least:
            raise InvalidInputError(f"must be a version number, {least} or more")
        return int(text)

    return check


class RemindForm(Form):
    """The versions the page showed: the invoice's and its dunning's (0: not started). A reminder
    changes the dunning only, so its version is what refuses the same form posted twice (a double
    click without JavaScript). Optional, as on the invoice page: a script may leave them out."""

    version: Annotated[int | None, PlainValidator(rule(_count(1)))] = None
    dunning_version: Annotated[int | None, PlainValidator(rule(_count(0)))] = None


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
    order = sorting(PATH, COLUMNS, query.sort, query.dir, "last_failure", {"currency": currency})

    def run() -> Any:
        services.read_models.catch_up()
        return failed_payments(
            services.read_models.engine,
            currency=currency,
            sort=order.sort,
            descending=order.descending,
            limit=PAGE_SIZE,
            cursor=query.cursor,
        )

    page = await run_in_threadpool(run)
    next_page = with_query(PATH, currency=currency, sort=order.sort, dir=order.dir, cursor=page.next_cursor)
    context = {
        "rows": page.rows,
        "currency": currency or "",
        "sorting": order,
        "can_retry": services.payments is not None,
        "next_page": next_page if page.next_cursor else None,
        "flash": flash_of(request, query.done),
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
    return done(request, PATH, f"Retry requested ({reason}).")


async def remind_now(request: Request) -> Response:
    services = services_of(request)
    invoice_id = path_uuid(request, "invoice_id", InvoiceNotFoundError)
    form = await read_form(request, RemindForm)

    def run() -> None:
        with acting(request, "dunning.remind", target=str(invoice_id)):
            services.app.dunning.remind_by_hand(
                invoice_id,
                policy=services.dunning_policy,
                expected_version=form.version,
                expected_dunning_version=form.dunning_version,
            )
        services.read_models.catch_up()

    await run_in_threadpool(run)
    return done(request, PATH, "Reminder requested.")
