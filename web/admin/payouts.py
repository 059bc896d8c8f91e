"""Payouts in the dashboard: each payout the ledger recorded with its reconciliation status, and
one payout with its journal postings, the balance transactions (fees) known on it and the
reconciliation items about it (projections/admin/payouts.py).

GET /admin/payouts               newest first (`status`, `sort`, `dir`, `cursor`)
GET /admin/payouts/{payout_id}   one payout (the ledger's id for it)
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, PlainValidator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ledger.errors import InvalidInputError, NotFoundError
from projections.admin.payouts import STATUSES, list_payouts, payout_detail
from web.admin.forms import PAGE_SIZE, path_uuid, read_query, with_query
from web.admin.rendering import render
from web.admin.sorting import Column, sorting
from web.admin.stripe_links import livemode_of, stripe_url
from web.decoding import rule
from web.invoices import services_of
from web.models import Query

PATH = "/admin/payouts"


class PayoutNotFoundError(NotFoundError):
    def __init__(self, payout_id: object) -> None:
        super().__init__(f"payout {payout_id} not found")
        self.payout_id = payout_id


def _status(value: object) -> str:
    if value not in STATUSES:
        raise InvalidInputError(f"must be one of {', '.join(STATUSES)}")
    return str(value)


COLUMNS = (
    Column("reported", "Reported", descending_first=True),
    Column("amount", "Amount", descending_first=True, numeric=True),
    Column("status", "Status"),
)


class PayoutListQuery(Query):
    status: Annotated[str, PlainValidator(rule(_status))] | None = None
    sort: str | None = Field(None, max_length=40)
    dir: str | None = Field(None, max_length=4)
    cursor: str | None = None


def routes() -> list[BaseRoute]:
    return [
        Route("/payouts", payouts_page, methods=["GET"]),
        Route("/payouts/{payout_id}", payout_page, methods=["GET"]),
    ]


async def payouts_page(request: Request) -> Response:
    services = services_of(request)
    query = read_query(request, PayoutListQuery)
    order = sorting(PATH, COLUMNS, query.sort, query.dir, "reported", {"status": query.status})

    def run() -> Any:
        services.read_models.catch_up()
        return list_payouts(
            services.read_models.engine,
            status=query.status,
            sort=order.sort,
            descending=order.descending,
            limit=PAGE_SIZE,
            cursor=query.cursor,
        )

    page = await run_in_threadpool(run)
    next_page = with_query(PATH, status=query.status, sort=order.sort, dir=order.dir, cursor=page.next_cursor)
    context = {
        "payouts": page.rows,
        "statuses": STATUSES,
        "status": query.status or "",
        "sorting": order,
        "next_page": next_page if page.next_cursor else None,
    }
    return render(request, "admin/payouts.html", context)


async def payout_page(request: Request) -> Response:
    services = services_of(request)
    payout_id = path_uuid(request, "payout_id", PayoutNotFoundError)

    def run() -> dict[str, Any] | None:
        services.read_models.catch_up()
        return payout_detail(services.read_models.engine, str(payout_id))

    payout = await run_in_threadpool(run)
    if payout is None:
        raise PayoutNotFoundError(payout_id)
    livemode = livemode_of(services.records)
    context = {
        "payout": payout,
        "payout_url": stripe_url(payout["provider_payout_id"], livemode=livemode),
        "items": [
            {
                **item,
                "url": f"/admin/reconciliation/items/{item['id']}",
                "stripe_url": stripe_url(item["stripe_id"], livemode=livemode),
            }
            for item in payout["items"]
        ],
    }
    return render(request, "admin/payout.html", context)
