"""Who did what, when: every admin action recorded (ledger/admin/activity.py), newest first,
each linked to what it acted on and listing the events it left (projections/admin/activity.py).

GET /admin/activity   (`user`: an email, `action`: e.g. `invoice.void`, `sort`, `dir`: `asc` for oldest first, `cursor`)
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from projections.admin.activity import list_activity
from web.admin.forms import PAGE_SIZE, moment_of, read_query, with_query
from web.admin.rendering import render
from web.admin.sorting import Column, sorting
from web.invoices import services_of
from web.models import Query

PATH = "/admin/activity"
# Where an action's target is shown, by the action's prefix (the names page handlers give
# `acting`); an action on something without a page of its own (a user) links nowhere.
_TARGET_PAGES = (
    ("invoice.", "/admin/invoices/{}"),
    ("dunning.", "/admin/invoices/{}"),
    ("reconciliation.resolve", "/admin/reconciliation/items/{}"),
    ("reconciliation.run", "/admin/reconciliation/runs/{}"),
    ("webhook.", "/admin/webhooks/{}"),
    ("payout.", "/admin/payouts/{}"),
)


# One sortable column: newest first, or oldest first (`dir=asc`).
COLUMNS = (Column("performed", "When", descending_first=True),)


class ActivityQuery(Query):
    user: str | None = Field(None, max_length=320)
    action: str | None = Field(None, max_length=100)
    sort: str | None = Field(None, max_length=40)
    dir: str | None = Field(None, max_length=4)
    cursor: str | None = None


def routes() -> list[BaseRoute]:
    return [Route("/activity", activity_page, methods=["GET"])]


def target_url(action: str, target: str | None) -> str | None:
    if not target:
        return None
    for prefix, page in _TARGET_PAGES:
        if action.startswith(prefix):
            return page.format(target)
    return None


def _view(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its target's link and, for an invoice's own events, links to the invoice as
    each event left it."""
    url = target_url(row["action"], row.get("target"))
    on_invoice = url is not None and url.startswith("/admin/invoices/")
    events = [
        {
            **event,
            "url": f"{url}?version={event['version']}"
            if on_invoice and event["aggregate_id"] == row["target"]
            else None,
        }
        for event in row.get("events") or []
    ]
    return {**row, "performed": moment_of(row["performed_at"]), "target_url": url, "events": events}


async def activity_page(request: Request) -> Response:
    services = services_of(request)
    query = read_query(request, ActivityQuery)
    filters = {"user": query.user, "action": query.action}
    order = sorting(PATH, COLUMNS, query.sort, query.dir, "performed", filters)

    def run() -> Any:
        services.read_models.catch_up()
        return list_activity(
            services.read_models.engine,
            user=query.user,
            action=query.action,
            descending=order.descending,
            limit=PAGE_SIZE,
            cursor=query.cursor,
        )

    page = await run_in_threadpool(run)
    context = {
        "rows": [_view(row) for row in page.rows],
        "filters": filters,
        "sorting": order,
        "next_page": with_query(PATH, **filters, sort=order.sort, dir=order.dir, cursor=page.next_cursor)
        if page.next_cursor
        else None,
    }
    return render(request, "admin/activity.html", context)
