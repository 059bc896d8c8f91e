"""The Starlette application: routes, authentication, errors as problem+json.

`create_app(services)` builds it around what the composition root hands over
(adapters/web_server.py for `ledger serve`; the tests build their own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ledger.errors import LedgerError
from web import checkout, invoices, usage, webhooks
from web.auth import BearerTokenAuth
from web.body import BodyError
from web.docs import docs_page
from web.openapi import openapi_document
from web.problems import RETRY_AFTER_SECONDS, on_http_error, on_ledger_error, on_unexpected_error, problem
from web.services import Services


def create_app(
    services: Services,
    *,
    on_startup: Callable[[], None] | None = None,
    on_shutdown: Callable[[], None] | None = None,
) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:
            on_startup()
        try:
            yield
        finally:
            if on_shutdown is not None:
                on_shutdown()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            *invoices.routes(),
            *checkout.routes(),
            *usage.routes(),
            *webhooks.routes(),
        ],
        middleware=[Middleware(BearerTokenAuth, token=services.api_token)],
        exception_handlers={
            LedgerError: on_ledger_error,
            BodyError: on_body_error,
            HTTPException: on_http_error,
            Exception: on_unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.services = services
    return app


async def on_body_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, BodyError)
    return problem(error.status, error.title, error.detail, slug=error.title.lower().replace(" ", "-"))


async def healthz(request: Request) -> Response:
    """200 `{"status": "ok", "database": "up"}` when the database answers; 503 (problem+json,
    `"database": "down"`, Retry-After) at once when it does not. Nothing more: it answers anyone."""
    services: Services = request.app.state.services
    if await run_in_threadpool(_database_up, services):
        return JSONResponse({"status": "ok", "database": "up"})
    return problem(
        503,
        "Unhealthy",
        "the database does not answer",
        slug="store-unavailable",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
        extensions={"database": "down"},
    )


def _database_up(services: Services) -> bool:
    if services.database_up is not None:
        return services.database_up()
    try:
        services.app.head()
    except LedgerError:
        return False
    return True


async def openapi(_: Request) -> Response:
    return JSONResponse(openapi_document())


async def docs(_: Request) -> Response:
    return HTMLResponse(docs_page(openapi_document()))
