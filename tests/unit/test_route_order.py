"""The router tries Stripe's webhook route first (web/app.py), which is safe only while no other
route matches its path: a reordering that would answer some request differently fails here."""

from __future__ import annotations

from starlette.routing import Match, Route

from web.app import _webhook_first
from web.routes import route_table
from web.webhooks import PATH


def _scope(method: str, path: str) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_the_webhook_route_is_tried_first_and_the_others_keep_their_order() -> None:
    table = route_table()
    ordered = _webhook_first(table)
    first = ordered[0]
    assert isinstance(first, Route)
    assert first.path == PATH
    assert ordered[1:] == [route for route in table if route is not first]


def test_no_other_route_matches_the_webhook_path() -> None:
    others = [route for route in route_table() if not (isinstance(route, Route) and route.path == PATH)]
    for method in ("POST", "GET"):
        matches = [route for route in others if route.matches(_scope(method, PATH))[0] is not Match.NONE]
        assert matches == []
