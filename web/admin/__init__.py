"""The admin dashboard at /admin: server-rendered pages for a finance team (docs/admin.md).

`admin_routes()` is one Mount: the static files, the login and logout pages and every page
module listed in web/admin/pages.py, all behind `AdminSecurity` (web/admin/security.py).
The Mount is not an API `Endpoint`, so the OpenAPI document (web/openapi.py) leaves it out.
"""

from __future__ import annotations

from pathlib import Path

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from web.admin.login import routes as login_routes
from web.admin.pages import page_routes
from web.admin.rendering import PREFIX
from web.admin.security import AdminSecurity

STATIC = Path(__file__).parent / "static"


def admin_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Mount("/static", StaticFiles(directory=STATIC), name="admin-static"),
        *login_routes(),
        *page_routes(),
    ]
    return [Mount(PREFIX, routes=routes, middleware=[Middleware(AdminSecurity)], name="admin")]
