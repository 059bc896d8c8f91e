"""Reconciliation in the dashboard: the runs, the items they found by class, settling an item,
and the items as CSV. The engine, the commands and the queries are the API's (web/reconciliation/
routes.py `run_reconciliation`, `app.reconciliation.resolve`, projections/reconciliation/).

GET  /admin/reconciliation                         runs, newest first, open items per class, the run form
POST /admin/reconciliation/runs                    run one for a period (`from`, `to`: days, both included; `source`)
GET  /admin/reconciliation/runs/{run_id}           a run's report exactly as it was
GET  /admin/reconciliation/items                   items (`class`, `status`, `sort`, `dir`, `cursor`)
GET  /admin/reconciliation/items.csv               every item the same filters select
GET  /admin/reconciliation/items/{item_id}         one item, with the form that settles it
POST /admin/reconciliation/items/{item_id}/resolve settle it (`action`, `note`) as the signed-in admin
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from uuid import uuid4

from pydantic import Field, PlainValidator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ledger.errors import InvalidInputError
from ledger.reconciliation.items import CLASSES, OPEN, STATUSES, ReconciliationItemNotFoundError, allowed_actions
from ledger.reconciliation.runs import LEDGER, SOURCES, STRIPE
from projections.reconciliation.engine import ReconciliationRunNotFoundError, past_report
from projections.reconciliation.items import item_counts, item_row, list_items
from projections.reconciliation.runs import list_runs, run_row
from web.admin.context import acting
from web.admin.forms import PAGE_SIZE, done, flash_of, moment_of, path_uuid, read_form, read_query, with_query
from web.admin.rendering import render
from web.admin.sorting import Column, sorting
from web.admin.stripe_links import livemode_of, stripe_url
from web.decoding import rule
from web.invoices import services_of
from web.models import Query
from web.models import Request as Form
from web.reconciliation.models import ItemListQuery, Resolution
from web.reconciliation.routes import run_reconciliation
from web.services import Services

PATH = "/admin/reconciliation"
DEFAULT_DAYS = 30
# What each class means, in a few words; each item's own explanation says what was found.
CLASS_LABELS = {
    "missing_in_ledger": "Collected by Stripe, missing in the ledger",
    "missing_in_stripe": "In the ledger, not at Stripe",
    "amount_mismatch": "Amounts differ",
    "duplicate_payment": "Paid twice",
    "refund_missing_in_ledger": "Refund missing in the ledger",
    "refund_missing_in_stripe": "Refund not at Stripe",
    "dispute_mismatch": "Dispute differs",
    "fee_mismatch": "Fee differs",
    "payout_mismatch": "Payout differs",
    "unattributed": "Not attributed to an invoice",
    "stuck_event": "Webhook stuck",
    "invoice_inconsistent": "Invoice inconsistent with its payments",
}
CSV_COLUMNS = (
    "id",
    "class",
    "status",
    "currency",
    "amount_ledger",
    "amount_stripe",
    "stripe_id",
    "invoice_id",
    "payment_id",
    "explanation",
    "detected_at",
    "resolved_by",
    "resolved_at",
    "resolution",
    "note",
)


def _day(value: object) -> date:
    if not isinstance(value, str):
        raise InvalidInputError("must be a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"{value[:40]!r} is not a date, YYYY-MM-DD") from None


def _source(value: object) -> str:
    if value not in SOURCES:
        raise InvalidInputError(f"must be one of {', '.join(SOURCES)}")
    return str(value)


Day = Annotated[date, PlainValidator(rule(_day))]


class RunForm(Form):
    from_: Day | None = Field(None, alias="from")
    to: Day | None = None
    source: Annotated[str, PlainValidator(rule(_source))] | None = None


class OverviewQuery(Query):
    cursor: str | None = None
    done: str | None = None


class ItemQuery(Query):
    done: str | None = None


class ItemPageQuery(ItemListQuery):
    """The API's item filters, and the list's sort (the API has none: its order is detection's)."""

    sort: str | None = Field(None, max_length=40)
    dir: str | None = Field(None, max_length=4)


ITEM_COLUMNS = (
    Column("class", "Class"),
    Column("amount", "Ledger", descending_first=True, numeric=True),
    Column("detected", "Detected", descending_first=True),
)


def routes() -> list[BaseRoute]:
    return [
        Route("/reconciliation", overview, methods=["GET"]),
        Route("/reconciliation/runs", start_run, methods=["POST"]),
        Route("/reconciliation/runs/{run_id}", run_page, methods=["GET"]),
        Route("/reconciliation/items", items_page, methods=["GET"]),
        Route("/reconciliation/items.csv", items_csv, methods=["GET"]),
        Route("/reconciliation/items/{item_id}", item_page, methods=["GET"]),
        Route("/reconciliation/items/{item_id}/resolve", resolve, methods=["POST"]),
    ]


def _sources(services: Services) -> tuple[str, ...]:
    """Stripe is offered only when the server can read Stripe's records."""
    return (STRIPE, LEDGER) if services.records is not None else (LEDGER,)


def _links(services: Services, item: dict[str, Any]) -> dict[str, Any]:
    """The item as a page shows it: its class's label, moments as datetimes, and its links."""
    resolution = item.get("resolution")
    return {
        **item,
        "label": CLASS_LABELS.get(item["class"], item["class"]),
        "detected": moment_of(item.get("detected_at")),
        "settled_at": moment_of(resolution["at"]) if resolution else None,
        "invoice_url": f"/admin/invoices/{item['invoice_id']}" if item.get("invoice_id") else None,
        "stripe_url": stripe_url(item.get("stripe_id"), livemode=livemode_of(services.records)),
    }


async def overview(request: Request) -> Response:
    services = services_of(request)
    query = read_query(request, OverviewQuery)

    def run() -> tuple[Any, dict[str, dict[str, int]]]:
        services.read_models.catch_up()
        engine = services.read_models.engine
        return list_runs(engine, limit=20, cursor=query.cursor), item_counts(engine)

    page, counts = await run_in_threadpool(run)
    today = services.clock.now().astimezone(UTC).date()
    classes: list[dict[str, Any]] = [
        {
            "class": cls,
            "label": CLASS_LABELS[cls],
            "counts": {status: counts.get(cls, {}).get(status, 0) for status in STATUSES},
        }
        for cls in CLASSES
    ]
    context = {
        "runs": [_run_view(run) for run in page.rows],
        "next_page": with_query(PATH, cursor=page.next_cursor) if page.next_cursor else None,
        "classes": classes,
        "statuses": STATUSES,
        "open_total": sum(counts.get(cls, {}).get(OPEN, 0) for cls in CLASSES),
        "sources": _sources(services),
        "default_from": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
        "default_to": today.isoformat(),
        "flash": flash_of(request, query.done),
    }
    return render(request, "admin/reconciliation.html", context)


def _run_view(run: dict[str, Any]) -> dict[str, Any]:
    return {
        **run,
        "started": moment_of(run["started_at"]),
        "completed": moment_of(run["completed_at"]),
        "from": moment_of(run["period"]["from"]),
        "to": moment_of(run["period"]["to"]),
    }


async def start_run(request: Request) -> Response:
    """Run it for the days asked (the last 30 by default) and show its report."""
    services = services_of(request)
    form = await read_form(request, RunForm)
    source = form.source or _sources(services)[0]
    if source not in _sources(services):
        raise InvalidInputError("source: a Stripe reconciliation needs STRIPE_API_KEY on the server", field="source")
    last = form.to or services.clock.now().astimezone(UTC).date()
    try:  # both days a date can hold: the default start before the first, the end after the last
        first = form.from_ or last - timedelta(days=DEFAULT_DAYS - 1)
        end = datetime.combine(last, time(0), tzinfo=UTC) + timedelta(days=1)  # the last day included
    except OverflowError:
        raise InvalidInputError(f"to: {last} is out of the range of days a period may end on", field="to") from None
    if first > last:
        raise InvalidInputError(f"to: the period ends ({last}) before it starts ({first})", field="to")
    start = datetime.combine(first, time(0), tzinfo=UTC)
    admin = request.state.admin.user

    run_id = uuid4()

    def run() -> None:
        with acting(request, "reconciliation.run", target=str(run_id), detail=f"{first} to {last}, {source}"):
            run_reconciliation(services, start=start, end=end, source=source, requested_by=admin.email, run_id=run_id)
        services.read_models.catch_up()

    await run_in_threadpool(run)
    return done(request, f"{PATH}/runs/{run_id}", "Reconciliation run completed.")


async def run_page(request: Request) -> Response:
    services = services_of(request)
    run_id = path_uuid(request, "run_id", ReconciliationRunNotFoundError)
    query = read_query(request, ItemQuery)

    def run() -> tuple[Any, dict[str, Any]]:
        report, _ = past_report(services.app, run_id)  # 404 when there is no such run
        services.read_models.catch_up()
        row = run_row(services.read_models.engine, str(run_id))
        if row is None:
            raise ReconciliationRunNotFoundError(run_id)
        return report, row

    report, row = await run_in_threadpool(run)
    context = {
        "run": _run_view(row),
        "currencies": report.summary.get("currencies", {}),
        "items": [_links(services, item) for item in report.items],
        "flash": flash_of(request, query.done),
    }
    return render(request, "admin/reconciliation_run.html", context)


async def items_page(request: Request) -> Response:
    services = services_of(request)
    query = read_query(request, ItemPageQuery)
    filters = {"class": query.class_, "status": query.status}
    # The links keep every filter the page was given, those no field of its form sets too (a
    # period, a page size): page two of a period holds no item from outside it.
    given = {name: request.query_params.get(name) for name in ("from", "to")}
    limit = str(query.limit) if "limit" in query.model_fields_set else None
    order = sorting(
        f"{PATH}/items", ITEM_COLUMNS, query.sort, query.dir, "detected", {**filters, **given, "limit": limit}
    )

    def run() -> Any:
        services.read_models.catch_up()
        return list_items(
            services.read_models.engine,
            cls=query.class_,
            status=query.status,
            detected_from=query.from_,
            detected_to=query.to,
            limit=min(query.limit, PAGE_SIZE),
            cursor=query.cursor,
            sort=order.sort,
            descending=order.descending,
        )

    page = await run_in_threadpool(run)
    context = {
        "sorting": order,
        "items": [_links(services, item) for item in page.rows],
        "classes": [(cls, CLASS_LABELS[cls]) for cls in CLASSES],
        "statuses": STATUSES,
        "filters": filters,
        "csv_url": with_query(f"{PATH}/items.csv", **filters, **given),
        "next_page": with_query(
            f"{PATH}/items", **filters, **given, limit=limit, sort=order.sort, dir=order.dir, cursor=page.next_cursor
        )
        if page.next_cursor
        else None,
    }
    return render(request, "admin/reconciliation_items.html", context)


async def items_csv(request: Request) -> Response:
    """Every item the filters select, a page of the query at a time (a CSV streams, it is not built whole)."""
    services = services_of(request)
    query = read_query(request, ItemListQuery)
    await run_in_threadpool(services.read_models.catch_up)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        cursor = None
        while True:
            page = list_items(
                services.read_models.engine,
                cls=query.class_,
                status=query.status,
                detected_from=query.from_,
                detected_to=query.to,
                limit=500,
                cursor=cursor,
            )
            for item in page.rows:
                writer.writerow(_csv_row(item))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    filename = "reconciliation-items.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _csv_row(item: dict[str, Any]) -> list[Any]:
    resolution = item.get("resolution") or {}
    values = {
        **item,
        "resolved_by": resolution.get("by"),
        "resolved_at": resolution.get("at"),
        "resolution": resolution.get("action"),
        "note": resolution.get("note"),
    }
    return [_cell(values.get(column)) for column in CSV_COLUMNS]


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`) is quoted with `'`;
    amounts stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def item_page(request: Request) -> Response:
    services = services_of(request)
    item_id = path_uuid(request, "item_id", ReconciliationItemNotFoundError)
    query = read_query(request, ItemQuery)

    def run() -> dict[str, Any] | None:
        services.read_models.catch_up()
        return item_row(services.read_models.engine, str(item_id))

    item = await run_in_threadpool(run)
    if item is None:
        raise ReconciliationItemNotFoundError(item_id)
    context = {
        "item": _links(services, item),
        "actions": allowed_actions(item["class"]) if item["status"] == OPEN else (),
        "flash": flash_of(request, query.done),
    }
    return render(request, "admin/reconciliation_item.html", context)


async def resolve(request: Request) -> Response:
    services = services_of(request)
    item_id = path_uuid(request, "item_id", ReconciliationItemNotFoundError)
    form = await read_form(request, Resolution)
    admin = request.state.admin.user

    def run() -> dict[str, Any]:
        with acting(request, "reconciliation.resolve", target=str(item_id), detail=f"{form.action}: {form.note[:200]}"):
            item = services.app.reconciliation.resolve(item_id, action=form.action, note=form.note, by=admin.email)
        services.read_models.catch_up()
        return item.result

    item = await run_in_threadpool(run)
    return done(request, f"{PATH}/items/{item_id}", f"Item {item['status']}.")
