"""The reconciliation routes: parse -> engine, command or query -> render.

GET  /api/reconciliation                       the latest items, filtered, a keyset page at a time
GET  /api/reconciliation/items/{id}            one item
POST /api/reconciliation/items/{id}/resolve    apply / explain / refund_duplicate
POST /api/reconciliation/runs                  run one now (answers with the run and its report)
GET  /api/reconciliation/runs                  the runs, newest first
GET  /api/reconciliation/runs/{id}             one run, with its report exactly as it was
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from commands.reconciliation.facts import Period
from ledger.errors import ProviderConfigurationError
from ledger.reconciliation.items import ReconciliationItemNotFoundError
from ledger.reconciliation.runs import LEDGER, STRIPE
from projections.reconciliation.engine import STUCK_AFTER, ReconciliationRunNotFoundError, past_report, reconcile
from projections.reconciliation.items import item_row, list_items
from projections.reconciliation.runs import list_runs, run_row
from web.body import read_json
from web.decoding import decode
from web.invoices import _blocking, _query, idempotency_key_of, services_of
from web.operations import READ, WRITE, Endpoint, Operation
from web.reconciliation import models
from web.services import Services

DEFAULT_DAYS = 30


def routes() -> list[Route]:
    key = ("Idempotency-Key",)
    one = (*READ, 404)
    return [
        Endpoint("/api/reconciliation", list_reconciliation_items, "GET", Operation(
            "listReconciliationItems", "List the latest reconciliation items", response=models.ItemList,
            query=models.ItemListQuery, problems=(*READ, 422))),
        Endpoint("/api/reconciliation/items/{item_id}", read_item, "GET", Operation(
            "getReconciliationItem", "Read a reconciliation item", response=models.ReconciliationItem,
            problems=one)),
        Endpoint("/api/reconciliation/items/{item_id}/resolve", resolve_item, "POST", Operation(
            "resolveReconciliationItem", "Settle an item: apply the Stripe fact, explain it, or refund the duplicate",
            response=models.ReconciliationItem, body=models.Resolution, body_required=True, headers=key,
            problems=(*WRITE, 404, 409))),
        Endpoint("/api/reconciliation/runs", start_run, "POST", Operation(
            "startReconciliationRun", "Run a reconciliation now", 201, models.Run, models.NewRun, headers=(),
            problems=(*WRITE,), response_headers=("Location",))),
        Endpoint("/api/reconciliation/runs", list_reconciliation_runs, "GET", Operation(
            "listReconciliationRuns", "List the reconciliation runs", response=models.RunList,
            query=models.RunListQuery, problems=(*READ, 422))),
        Endpoint("/api/reconciliation/runs/{run_id}", read_run, "GET", Operation(
            "getReconciliationRun", "Read a run, with its report as it was", response=models.Run, problems=one)),
    ]  # fmt: skip


def _item_id(request: Request) -> UUID:
    raw = request.path_params["item_id"]
    try:
        return UUID(raw)
    except ValueError:
        raise ReconciliationItemNotFoundError(raw) from None  # an id that cannot exist is not found


def _run_id(request: Request) -> UUID:
    raw = request.path_params["run_id"]
    try:
        return UUID(raw)
    except ValueError:
        raise ReconciliationRunNotFoundError(raw) from None


async def list_reconciliation_items(request: Request) -> Response:
    services = services_of(request)
    query = _query(models.ItemListQuery, request)

    def run() -> Any:
        services.read_models.catch_up()
        return list_items(
            services.read_models.engine,
            cls=query.class_,
            status=query.status,
            detected_from=query.from_,
            detected_to=query.to,
            limit=query.limit,
            cursor=query.cursor or None,
        )

    page = await _blocking(run)
    body: models.ItemList = {
        "object": "list",
        "data": page.rows,
        "has_more": page.next_cursor is not None,
        "next_cursor": page.next_cursor,
    }
    return JSONResponse(body)


async def read_item(request: Request) -> Response:
    services = services_of(request)
    item_id = _item_id(request)

    def run() -> Any:
        services.read_models.catch_up()
        return item_row(services.read_models.engine, str(item_id))

    item = await _blocking(run)
    if item is None:
        raise ReconciliationItemNotFoundError(item_id)
    return JSONResponse(item)


async def resolve_item(request: Request) -> Response:
    """Settle an item: 200 with it; 409 if it was settled already; 422 for an action its class
    does not allow; 503 for refund_duplicate without Stripe configured."""
    services = services_of(request)
    item_id = _item_id(request)
    resolution = decode(models.Resolution, await read_json(request))
    key = idempotency_key_of(request)

    def run() -> Any:
        commands = services.app.reconciliation
        return commands.resolve(
            item_id, action=resolution.action, note=resolution.note, by=resolution.by or "api", idempotency_key=key
        ).result

    return JSONResponse(await _blocking(run))


async def start_run(request: Request) -> Response:
    """Run a reconciliation for the period and answer with it (201); the run is recorded either way.
    Stripe is the source when the server has STRIPE_API_KEY (or `source` says so)."""
    services = services_of(request)
    new = decode(models.NewRun, await read_json(request))

    def run() -> Any:
        run_id = run_reconciliation(
            services,
            start=new.from_,
            end=new.to,
            source=new.source,
            requested_by="api",
            stuck_after=timedelta(minutes=new.stuck_after_minutes),
        )
        return _run_json(services, run_id)

    body = await _blocking(run)
    return JSONResponse(body, 201, headers={"Location": f"/api/reconciliation/runs/{body['id']}"})


async def list_reconciliation_runs(request: Request) -> Response:
    services = services_of(request)
    query = _query(models.RunListQuery, request)

    def run() -> Any:
        services.read_models.catch_up()
        return list_runs(services.read_models.engine, limit=query.limit, cursor=query.cursor or None)

    page = await _blocking(run)
    body: models.RunList = {
        "object": "list",
        "data": page.rows,
        "has_more": page.next_cursor is not None,
        "next_cursor": page.next_cursor,
    }
    return JSONResponse(body)


async def read_run(request: Request) -> Response:
    services = services_of(request)
    run_id = _run_id(request)
    return JSONResponse(await _blocking(_run_json, services, run_id))


def run_reconciliation(
    services: Services,
    *,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
    requested_by: str,
    stuck_after: timedelta = STUCK_AFTER,
    run_id: UUID | None = None,
) -> UUID:
    """Run a reconciliation for [start, end) and record it; its run id. The API and the admin
    dashboard both start runs here. `end` defaults to now and `start` to DEFAULT_DAYS before it;
    `source` to stripe when the server has Stripe's records, and stripe without them is refused.
    `run_id` names the run beforehand (the dashboard records it as the action's target)."""
    source = source or (STRIPE if services.records is not None else LEDGER)
    if source == STRIPE and services.records is None:
        raise ProviderConfigurationError("a Stripe reconciliation needs STRIPE_API_KEY on the server")
    end = end or services.clock.now()
    start = start or _days_before(end, DEFAULT_DAYS)
    report = reconcile(
        services.app,
        services.read_models,
        period=Period(start, end),
        records=services.records if source == STRIPE else None,
        requested_by=requested_by,
        stuck_after=stuck_after,
        run_id=run_id,
    )
    return report.run_id


def _days_before(moment: datetime, days: int) -> datetime:
    """`days` before `moment`, or the first moment there is (a `to` in year 1 has no 30 days before it)."""
    try:
        return moment - timedelta(days=days)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _run_json(services: Any, run_id: UUID) -> models.Run:
    report, _ = past_report(services.app, run_id)  # 404 when there is no such run
    services.read_models.catch_up()
    row = run_row(services.read_models.engine, str(run_id))
    if row is None:
        raise ReconciliationRunNotFoundError(run_id)
    if row["summary"] is not None:  # completed: the summary as the report showed it (`classes` open then)
        row["summary"] = report.summary
    return cast(models.Run, {**row, "report": report.as_json()})
