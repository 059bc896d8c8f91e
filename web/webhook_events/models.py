"""The webhook inbox API's query and answers (as web/models.py for invoices): the TypedDicts
web/webhook_events/routes.py renders, documented by web/openapi.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainValidator, WithJsonSchema, with_config
from typing_extensions import TypedDict

from ledger.errors import InvalidInputError
from projections.paging import MAX_PAGE
from projections.webhook_inbox import STATUSES
from web.decoding import rule
from web.models import CLOSED, Query

Status = Literal["applied", "duplicate", "waiting", "unmatched", "ignored", "rejected", "received"]
STATUS_DESCRIPTION = (
    "`applied` (it moved money or changed a payment, an invoice or a checkout), `duplicate` (what it reports "
    "was applied already), `waiting` (for its payment), `unmatched` (names nothing of ours), `ignored` (a type "
    "the ledger does not act on, or nothing new), `rejected` (a rule forbids it, or its object did not "
    "decode), `received` (kept, not handled yet)."
)


def _status(value: object) -> str:
    if value not in STATUSES:
        raise InvalidInputError(f"must be one of {', '.join(STATUSES)}")
    return str(value)


def _limit(value: object) -> int:
    text = str(value)
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidInputError(f"must be an integer from 1 to {MAX_PAGE}")
    return int(text)


class WebhookEventListQuery(Query):
    status: Annotated[
        str | None, PlainValidator(rule(_status)), WithJsonSchema({"type": "string", "enum": list(STATUSES)})
    ] = Field(None, description="Only the events with this status.")
    limit: Annotated[
        int, PlainValidator(rule(_limit)), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_PAGE})
    ] = Field(50, description="How many events on a page.")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page.")


@with_config(CLOSED)
class WebhookEvent(TypedDict):
    id: Annotated[str, Field(description="The provider's event id (`evt_...`).")]
    object: Literal["webhook_event"]
    provider: str
    type: Annotated[str, Field(description="The event's type, e.g. `payment_intent.succeeded`.")]
    object_id: Annotated[str | None, Field(description="The id of the object it reports (`data.object.id`).")]
    status: Annotated[Status, Field(description=STATUS_DESCRIPTION)]
    detail: Annotated[str, Field(description="What was done with it, in words.")]
    created: Annotated[int, Field(description="The provider's timestamp (Unix seconds).")]
    received_at: str
    handled_at: Annotated[str | None, Field(description="When it was last handled (null: not yet).")]
    api_version: str | None


@with_config(CLOSED)
class WebhookEventList(TypedDict):
    object: Literal["list"]
    data: Annotated[list[WebhookEvent], Field(max_length=MAX_PAGE)]
    has_more: bool
    next_cursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page.")]


@with_config(CLOSED)
class WebhookEventReprocessed(TypedDict):
    id: Annotated[str, Field(description="The provider's event id (`evt_...`).")]
    object: Literal["webhook_event_reprocessing"]
    previous_status: Annotated[Status, Field(description="Its status before this reprocessing.")]
    status: Annotated[Status, Field(description=STATUS_DESCRIPTION)]
    detail: Annotated[str, Field(description="What was done with it this time, in words.")]
    reprocessing: Annotated[int, Field(ge=1, description="How many times it has been reprocessed, this one included.")]
