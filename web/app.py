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
from web.problems import on_http_error, on_ledger_error, on_unexpected_error, problem
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
    """200 when the event store answers; 503 (problem+json) when it does not."""
    services: Services = request.app.state.services
    try:
        head = await run_in_threadpool(services.app.head)
    except LedgerError as error:
        return problem(503, "Unhealthy", str(error), slug="store-unavailable", headers={"Retry-After": "1"})
    return JSONResponse({"status": "ok", "database": "ok", "log_position": head})


async def openapi(_: Request) -> Response:
    return JSONResponse(openapi_document())


async def docs(_: Request) -> Response:
    return HTMLResponse(docs_page(openapi_document()))
