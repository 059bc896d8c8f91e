"""The route table's entries: each route carries the operation it documents.

`Endpoint` is a Starlette route with an `Operation`: its id, summary, request body model, query
model, the headers it reads, its answer and the problems it can answer with. web/openapi.py
reads them off the routes; nothing else describes the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.routing import Route

# The problem statuses by kind of operation.
READ = (401, 503)
ON_INVOICE = (401, 404, 503)
BODY = (400, 413, 415, 422)
WRITE = (401, *BODY, 503)
UPDATE = (*ON_INVOICE, *BODY, 409, 412)


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    status: int = 200
    response: Any = None  # a TypedDict or model; None: no body (204)
    body: type[BaseModel] | None = None
    body_required: bool = False
    query: type[BaseModel] | None = None
    headers: tuple[str, ...] = ()  # request headers read: Idempotency-Key, If-Match, Stripe-Signature
    problems: tuple[int, ...] = READ
    secured: bool = True
    media_type: str = "application/json"
    response_headers: tuple[str, ...] = field(default=())
    schemas: tuple[Any, ...] = ()  # models a body refers to by name only (a usage record, a tier)


class Endpoint(Route):
    def __init__(self, path: str, endpoint: Callable[..., Any], method: str, operation: Operation) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method
        self.operation = operation
