"""What the operations pages (failed payments, reconciliation, webhooks) share: decoding a posted
form or a query string into its model, a path id, a page link, and the redirect after a POST.

A form posts text only, and an empty field means "not given": empty values are dropped before
the model sees them, and the CSRF field is the security layer's, not the page's. A bad field is
an `InvalidInputError` naming it, which the admin error page shows as 422 with nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode
from uuid import UUID

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import RedirectResponse

from ledger.errors import InvalidInputError
from web.decoding import decode

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=Exception)

CSRF_FIELD = "csrf_token"
PAGE_SIZE = 50


def given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values a person filled in: the CSRF field and empty ones left out. A NUL character is
    refused here, naming its field: no database stores one in text (PostgreSQL refuses it)."""
    kept = {key: value for key, value in values.items() if key != CSRF_FIELD and value != ""}
    for key, value in kept.items():
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            raise InvalidInputError(f"{key.replace(chr(0), '')}: must not contain NUL characters", field=key)
    return kept


async def read_form(request: Request, model: type[M]) -> M:
    form = await request.form()
    return decode(model, given({key: value for key, value in form.multi_items() if isinstance(value, str)}))


def read_query(request: Request, model: type[M]) -> M:
    """The query string as `model`; a parameter given twice counts as its last value."""
    return decode(model, given(dict(request.query_params)))


def path_uuid(request: Request, name: str, not_found: Callable[[str], E]) -> UUID:
    """A path value that must be a uuid: anything else names nothing, so it is not found (404)."""
    raw = request.path_params[name]
    try:
        return UUID(raw)
    except ValueError:
        raise not_found(raw) from None


def with_query(path: str, **params: str | None) -> str:
    """`path` with the parameters that have a value."""
    kept = {key: value for key, value in params.items() if value}
    return f"{path}?{urlencode(kept)}" if kept else path


def done(path: str, message: str) -> RedirectResponse:
    """Post/redirect/get: the page to show next, with what was done for it to say."""
    separator = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{separator}{urlencode({'done': message})}", status_code=303)


def moment_of(value: str | datetime | None) -> datetime | None:
    """A stored moment (an ISO 8601 string in the API's rows) as an aware datetime, for display."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
