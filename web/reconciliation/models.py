"""The reconciliation API's bodies, defined once: request models that decode the input through
the domain's rules, and the TypedDicts the routes return (web/openapi.py documents both)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, WithJsonSchema
from typing_extensions import TypedDict

from ledger.errors import InvalidInputError
from ledger.reconciliation.items import ACTIONS, BY_LIMIT, CLASSES, NOTE_LIMIT, STATUSES
from ledger.reconciliation.runs import SOURCES
from ledger.validation import require_text
from projections.paging import MAX_PAGE
from web.decoding import rule
from web.models import Moment, Query, Request, _limit


def _one_of(values: tuple[str, ...]) -> Any:
    def check(value: object) -> str:
        if value not in values:
            raise InvalidInputError(f"must be one of {', '.join(values)}")
        return str(value)

    return Annotated[str, PlainValidator(rule(check)), WithJsonSchema({"type": "string", "enum": list(values)})]


Limit = Annotated[
    int, PlainValidator(rule(_limit)), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_PAGE})
]


class ItemListQuery(Query):
    from_: Moment | None = Field(None, alias="from", description="Detected at or after this moment.")
    to: Moment | None = Field(None, description="Detected before this moment.")
    class_: _one_of(CLASSES) | None = Field(None, alias="class", description="One class of difference.")  # type: ignore[valid-type]
    status: _one_of(STATUSES) | None = None  # type: ignore[valid-type]
    limit: Limit = Field(50, description="How many items on a page.")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page.")


class RunListQuery(Query):
    limit: Limit = Field(20, description="How many runs on a page.")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page.")


class NewRun(Request):
    from_: Moment | None = Field(None, alias="from", description="Start of the period (default: 30 days before `to`).")
    to: Moment | None = Field(None, description="End of the period, exclusive (default: now).")
    source: _one_of(SOURCES) | None = Field(  # type: ignore[valid-type]
        None, description="`stripe` (needs STRIPE_API_KEY on the server) or `ledger`; default: stripe when configured."
    )
    stuck_after_minutes: int = Field(60, ge=1, le=100_000, description="When a waiting webhook counts as stuck.")


def _note(value: object) -> str:
    return require_text(value, field="note", limit=NOTE_LIMIT)


def _by(value: object) -> str:
    return require_text(value, field="by", limit=BY_LIMIT)


class Resolution(Request):
    action: _one_of(ACTIONS)  # type: ignore[valid-type]
    note: Annotated[str, PlainValidator(rule(_note)), WithJsonSchema({"type": "string", "maxLength": NOTE_LIMIT})]
    by: Annotated[str | None, PlainValidator(rule(_by)), WithJsonSchema({"type": "string", "maxLength": BY_LIMIT})] = (
        Field(None, description="Who settles it (default: `api`).")
    )


# ------------------------------------------------------------------------------ responses


class Settlement(TypedDict):
    by: str
    at: str
    action: str
    note: str
    events: list[dict[str, Any]]


# `class` and `from` are Python keywords: these shapes use TypedDict's functional form.
ReconciliationItem = TypedDict(
    "ReconciliationItem",
    {
        "id": str,
        "class": str,
        "status": str,
        "currency": str | None,
        "amount_ledger": int | None,
        "amount_stripe": int | None,
        "stripe_id": str | None,
        "invoice_id": str | None,
        "payment_id": str | None,
        "explanation": str,
        "events": list[dict[str, Any]],
        "detected_at": str,
        "resolution": Settlement | None,
    },
)


class ItemList(TypedDict):
    object: Literal["list"]
    data: list[ReconciliationItem]
    has_more: bool
    next_cursor: str | None


ReportPeriod = TypedDict("ReportPeriod", {"from": str, "to": str})


class Report(TypedDict):
    period: ReportPeriod
    source: str
    summary: dict[str, Any]
    items: list[ReconciliationItem]


class RunSummary(TypedDict):
    id: str
    status: str
    source: str
    period: ReportPeriod
    requested_by: str
    started_at: str
    completed_at: str | None
    items: int
    summary: dict[str, Any] | None
    failure: str | None


class Run(RunSummary):
    report: Report  # the run's report exactly as it was shown, from the run's own events


class RunList(TypedDict):
    object: Literal["list"]
    data: list[RunSummary]
    has_more: bool
    next_cursor: str | None
