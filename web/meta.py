"""The routes about the service itself, served without a token: health, the OpenAPI document and
its interactive viewer.

`/docs` is Swagger UI 5 (it reads OpenAPI 3.1), its assets installed from PyPI with the
`swagger-ui-py` package and served by this app from `/docs/assets/`: the page works offline and
behind a firewall, and the bearer token is set in the page (Authorize) to try requests.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute

from ledger.errors import LedgerError
from web import models
from web.operations import Endpoint, Operation
from web.problems import RETRY_AFTER_SECONDS, problem
from web.services import Services

# Only what the page loads; the package also ships Swagger Editor, which is not served.
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png")


def routes() -> list[BaseRoute]:
    return [
        Endpoint("/healthz", healthz, "GET", Operation(
            "health", "Is the service up, and does its database answer?", response=models.Health,
            problems=(503,), secured=False)),
        Endpoint("/openapi.json", openapi, "GET", Operation(
            "openapi", "This document", response=None, problems=(), secured=False)),
        Endpoint("/docs", docs, "GET", Operation(
            "docs", "The interactive API documentation (Swagger UI)", response=None, problems=(), secured=False,
            media_type="text/html")),
        Endpoint("/docs/assets/{name}", docs_asset, "GET", Operation(
            "docsAsset", "A file the interactive documentation loads (Swagger UI's own)", response=None,
            problems=(404,), secured=False, media_type="application/octet-stream")),
    ]  # fmt: skip


def assets_directory() -> Path:
    return Path(str(files("swagger_ui") / "static"))


async def docs_asset(request: Request) -> Response:
    """One of the files the page loads (ASSETS), from the installed package; nothing else of it."""
    name = request.path_params["name"]
    if name not in ASSETS:
        return problem(404, "Not found", f"no asset {name!r}", slug="not-found")
    return FileResponse(assets_directory() / name, headers={"Cache-Control": "public, max-age=86400"})


async def healthz(request: Request) -> Response:
    """200 `{"status": "ok", "database": "up"}` when the database answers; 503 (problem+json,
    `"database": "down"`, Retry-After) at once when it does not. Nothing more: it answers anyone."""
    services: Services = request.app.state.services
    if await run_in_threadpool(_database_up, services):
        body: models.Health = {"status": "ok", "database": "up"}
        return JSONResponse(body)
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


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Billing ledger API</title>
  <link rel="icon" href="docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/assets/swagger-ui-bundle.js"></script>
  <script src="docs/assets/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      tryItOutEnabled: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"""


async def docs(_: Request) -> Response:
    return HTMLResponse(PAGE)
