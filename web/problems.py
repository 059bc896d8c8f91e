"""Errors as `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`, and for
bad input `errors` naming each field.

Every branch of ledger.errors has its status here, so a refused command is always a 4xx (or a
503 when the store cannot commit) with the rule's own message, never a 500.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ledger.errors import (
    ConcurrencyRetriesExhaustedError,
    CurrencyMismatchError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    PaymentDeclinedError,
    ProviderConfigurationError,
    ProviderUnavailableError,
    RuleViolationError,
    StaleVersionError,
    StoreUnavailableError,
)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:ledger:problem:"
RETRY_AFTER_SECONDS = "1"

log = logging.getLogger("ledger.web")

# (error class, HTTP status, title), most specific first.
STATUSES: list[tuple[type[LedgerError], int, str]] = [
    (IdempotencyKeyReusedError, 422, "Idempotency key reused"),
    (InvalidInputError, 422, "Invalid input"),
    (CurrencyMismatchError, 422, "Currency mismatch"),
    (NotFoundError, 404, "Not found"),
    (StaleVersionError, 412, "Stale version"),
    (RuleViolationError, 409, "Rule violated"),
    (ConcurrencyRetriesExhaustedError, 503, "Too many concurrent writers"),
    (StoreUnavailableError, 503, "Store unavailable"),
    (PaymentDeclinedError, 402, "Payment declined"),
    (ProviderUnavailableError, 503, "Payment provider unavailable"),
    (ProviderConfigurationError, 503, "Payment provider not configured"),
]


class ProblemResponse(Response):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"{TYPE_BASE}{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **(extensions or {}),
    }
    if errors:
        body["errors"] = errors
    return ProblemResponse(body, status_code=status, headers=headers)


def slug_of(error: type[BaseException]) -> str:
    """InvoiceNotEditableError -> invoice-not-editable."""
    name = error.__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def ledger_problem(error: LedgerError) -> Response:
    found = next(((status, title) for kind, status, title in STATUSES if isinstance(error, kind)), None)
    if found is None:  # a new branch of the tree without a status: refuse, loudly, but as a client error
        log.error("no HTTP status for %s", type(error).__name__)
        found = (400, "Refused")
    status, title = found
    errors = getattr(error, "errors", None)
    if errors is None and isinstance(error, InvalidInputError) and error.field:
        errors = [{"field": error.field, "message": str(error)}]
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return problem(status, title, str(error), slug=slug_of(type(error)), errors=errors, headers=headers)


async def on_ledger_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, LedgerError)
    return ledger_problem(error)


async def on_http_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    headers = dict(error.headers) if error.headers else None
    title = {404: "Not found", 405: "Method not allowed"}.get(error.status_code, "HTTP error")
    return problem(error.status_code, title, str(error.detail), headers=headers)


async def on_unexpected_error(request: Request, error: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(500, "Internal error", "the server failed; nothing was half-applied (commands are atomic)")
