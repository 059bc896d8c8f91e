"""The client portal at /portal: server-rendered pages where a customer holding a link sees
their invoices, downloads them and pays them (docs/portal.md).

`portal_routes()` is one Mount: the static files and the pages (web/portal/pages.py), all
behind `PortalGuard` (web/portal/security.py). The Mount is not an API `Endpoint`, so the
OpenAPI document leaves it out.
"""

from __future__ import annotations

from pathlib import Path

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from web.portal.pages import routes as page_routes
from web.portal.rendering import PREFIX
from web.portal.security import PortalGuard

STATIC = Path(__file__).parent / "static"


def portal_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [Mount("/static", StaticFiles(directory=STATIC), name="portal-static"), *page_routes()]
    return [Mount(PREFIX, routes=routes, middleware=[Middleware(PortalGuard)], name="portal")]
