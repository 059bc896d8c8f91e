"""`/admin/invoices`: the invoice list (filters, search, sortable columns, keyset pages) and
`/admin/invoices.csv`, the same filtered list as CSV.

Both read projections/admin/invoices.py: `search_invoices` for a page (one or two range scans of
an index, however deep the page), `iter_invoices` for the CSV (a page of rows per query, so the
response streams in flat memory whatever its size).

The query string is the form's: empty fields mean "any"; a bad value is a 422 page naming the
field, never a 500. `from` and `to` are days (UTC), both included.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ledger.currencies import exponent, require_currency
from ledger.errors import InvalidInputError
from ledger.validation import require_date
from projections.admin.invoices import SORTS, STATUSES, iter_invoices, search_invoices
from projections.paging import Page
from web.admin.rendering import render
from web.admin.security import blocking
from web.decoding import decode, rule
from web.services import Services

PAGE_SIZE = 50
# The sorts a user expects to start from the top: the largest amounts, the latest moments.
DESCENDING_FIRST = frozenset({"created_at", "total", "amount_due"})
COLUMNS: tuple[tuple[str, str], ...] = (
    ("number", "Number"),
    ("customer_name", "Customer"),
    ("status", "Status"),
    ("total", "Total"),
    ("amount_due", "Amount due"),
    ("due_date", "Due date"),
    ("created_at", "Created"),
)


def routes() -> list[BaseRoute]:
    return [
        Route("/invoices", invoices_page, methods=["GET"]),
        Route("/invoices.csv", invoices_csv, methods=["GET"]),
    ]


# ------------------------------------------------------------------------------ filters


def _status(value: object) -> str:
    if value not in STATUSES:
        raise InvalidInputError(f"must be one of {', '.join(STATUSES)}")
    return str(value)


def _sort(value: object) -> str:
    if value not in SORTS:
        raise InvalidInputError(f"must be one of {', '.join(SORTS)}")
    return str(value)


def _direction(value: object) -> str:
    if value not in ("asc", "desc"):
        raise InvalidInputError("must be asc or desc")
    return str(value)


def _day(value: object) -> date:
    return require_date(value, field="date")


def text_field(limit: int) -> Any:
    """A form's text of at most `limit` characters, its surrounding spaces dropped. Never a NUL:
    PostgreSQL's text cannot hold one, and no value anyone types has one."""

    def check(value: object) -> str:
        if not isinstance(value, str) or len(value) > limit or "\x00" in value:
            raise InvalidInputError(f"must be text of at most {limit} characters, without NUL")
        return value.strip()

    return PlainValidator(rule(check))


class InvoiceFilters(BaseModel):
    """The list's query string. Unknown parameters (`done`, a flash) are ignored: a page's URL is
    shared and bookmarked, and an old parameter should not break it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Annotated[str | None, PlainValidator(rule(_status))] = None
    customer: Annotated[str | None, text_field(320)] = None
    currency: Annotated[str | None, PlainValidator(rule(require_currency))] = None
    created_from: Annotated[date | None, PlainValidator(rule(_day)), Field(alias="from")] = None
    created_to: Annotated[date | None, PlainValidator(rule(_day)), Field(alias="to")] = None
    number: Annotated[str | None, text_field(100)] = None
    q: Annotated[str | None, text_field(200)] = None
    sort: Annotated[str, PlainValidator(rule(_sort))] = "created_at"
    dir: Annotated[str | None, PlainValidator(rule(_direction))] = None
    cursor: Annotated[str | None, text_field(2000)] = None

    @property
    def descending(self) -> bool:
        if self.dir is None:
            return self.sort in DESCENDING_FIRST
        return self.dir == "desc"

    def query(self) -> dict[str, Any]:
        """The keyword arguments of search_invoices / iter_invoices (no cursor)."""
        return {
            "status": self.status,
            "customer": self.customer or None,
            "currency": self.currency,
            "created_from": self.created_from,
            "created_to": self.created_to,
            "number": self.number or None,
            "q": self.q or None,
            "sort": self.sort,
            "descending": self.descending,
        }


def filters_of(request: Request) -> InvoiceFilters:
    """The query string as filters; an empty field (the form's "any") is no filter."""
    given = {name: value for name, value in request.query_params.items() if value != ""}
    return decode(InvoiceFilters, given)


# ------------------------------------------------------------------------------ the page


async def invoices_page(request: Request) -> Response:
    services: Services = request.app.state.services
    filters = filters_of(request)
    page = await blocking(services, _page, services, filters)
    return render(
        request,
        "admin/invoices.html",
        {
            "filters": filters,
            "page": page,
            "statuses": STATUSES,
            "columns": _columns(request, filters),
            "next_url": _next_url(request, page),
            "first_url": _first_url(request) if filters.cursor else None,
            "csv_url": _csv_url(request),
        },
    )


def _page(services: Services, filters: InvoiceFilters) -> Page:
    services.read_models.catch_up()  # the caller's own writes show in the list
    return search_invoices(services.read_models.engine, **filters.query(), limit=PAGE_SIZE, cursor=filters.cursor)


def _columns(request: Request, filters: InvoiceFilters) -> list[dict[str, Any]]:
    """Each sortable header: its link (this column, the other direction if it is the current
    sort, else its natural one), and `aria-sort` for the current one."""
    columns = []
    for key, label in COLUMNS:
        current = key == filters.sort
        if current:
            direction = "asc" if filters.descending else "desc"
        else:
            direction = "desc" if key in DESCENDING_FIRST else "asc"
        columns.append(
            {
                "key": key,
                "label": label,
                "href": _with(request, sort=key, dir=direction, cursor=None),
                "aria_sort": ("descending" if filters.descending else "ascending") if current else None,
                "numeric": key in ("total", "amount_due"),
            }
        )
    return columns


def _next_url(request: Request, page: Page) -> str | None:
    return _with(request, cursor=page.next_cursor) if page.next_cursor else None


def _first_url(request: Request) -> str:
    return _with(request, cursor=None)


def _csv_url(request: Request) -> str:
    query = {name: value for name, value in request.query_params.items() if name not in ("cursor", "done")}
    return "/admin/invoices.csv" + _encode(query)


def _with(request: Request, **params: str | None) -> str:
    query = {name: value for name, value in request.query_params.items() if name != "done"}
    for name, value in params.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return request.url.path + _encode(query)


def _encode(query: dict[str, str]) -> str:
    return "?" + urlencode(query) if query else ""


# ------------------------------------------------------------------------------ CSV

# Each amount twice: `<name>_major_units`, a decimal string with the currency's own decimals
# (what a spreadsheet shows: "12.34" usd, "1234" jpy, "1.234" kwd), and `<name>_minor_units`,
# the integer the ledger keeps (exact, for a program).
AMOUNTS = ("subtotal", "tax", "total", "amount_paid", "amount_refunded", "amount_due")
CSV_HEADER = (
    "invoice_id",
    "number",
    "status",
    "customer_email",
    "customer_name",
    "currency",
    *(f"{name}_major_units" for name in AMOUNTS),
    *(f"{name}_minor_units" for name in AMOUNTS),
    "due_date",
    "failed_attempts",
    "created_at",
    "issued_at",
    "paid_at",
)
# A cell a spreadsheet would read as a formula (CSV injection): kept as text with a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 64 * 1024


async def invoices_csv(request: Request) -> Response:
    services: Services = request.app.state.services
    filters = filters_of(request)  # decoded before the response starts: a bad filter is a 422 page
    await blocking(services, services.read_models.catch_up)
    rows = iter_invoices(services.read_models.engine, **filters.query())
    stamp = services.clock.now().astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        csv_lines(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="invoices-{stamp}.csv"'},
    )


def csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """The header, then one line per invoice, sent in chunks of about CHUNK characters.

    A sync iterator: Starlette reads it in a worker thread, one trip per chunk (a trip per row
    would cost more than writing the row)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow(csv_row(row))
        if buffer.tell() >= CHUNK:
            yield _drain(buffer)
    yield _drain(buffer)


def csv_row(row: dict[str, Any]) -> list[object]:
    currency = row["currency"]
    return [
        row["invoice_id"],
        _cell(row["number"]),
        row["status"],
        _cell(row["customer_email"]),
        _cell(row["customer_name"]),
        currency,
        *(major_units(int(row[name]), currency) for name in AMOUNTS),
        *(int(row[name]) for name in AMOUNTS),
        row["due_date"] or "",
        row["failed_attempts"],
        _iso(row["created_at"]),
        _iso(row["issued_at"]),
        _iso(row["paid_at"]),
    ]


def major_units(amount: int, currency: str) -> str:
    """1234 usd -> "12.34"; 1234 jpy -> "1234"; no grouping, no currency: a number to compute with."""
    digits = exponent(currency)
    with localcontext(prec=60):
        return f"{Decimal(amount).scaleb(-digits):.{digits}f}"


def _cell(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
