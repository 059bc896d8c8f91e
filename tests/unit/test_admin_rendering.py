"""The dashboard's template filters, its menu and where a login may send the browser next."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from starlette.requests import Request

from web.admin.login import safe_next
from web.admin.rendering import badge, moment, money, nav, url_with


def _request(path: str, query: str = "") -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": []})


def test_money_uses_the_currency_s_own_decimals_without_a_locale() -> None:
    assert money(123450, "usd") == "1,234.50 USD"
    assert money(123450, "jpy") == "123,450 JPY"
    assert money(1234, "bhd") == "1.234 BHD"
    assert money(-5, "eur") == "-0.05 EUR"
    assert money(None, "usd") == "—"


def test_moment_is_in_utc_to_the_minute() -> None:
    assert moment(datetime(2026, 3, 1, 14, 5, 59, tzinfo=UTC)) == "2026-03-01 14:05 UTC"
    assert moment(datetime(2026, 3, 1, 16, 5, tzinfo=timezone(timedelta(hours=2)))) == "2026-03-01 14:05 UTC"
    assert moment(datetime(2026, 3, 1, 14, 5)) == "2026-03-01 14:05 UTC"  # SQLite's naive moments are UTC
    assert moment("2026-03-01T14:05:00+00:00") == "2026-03-01 14:05 UTC"
    assert moment(date(2026, 3, 1)) == "2026-03-01"
    assert moment(None) == "—"


@pytest.mark.parametrize(
    ("status", "classes"),
    [("paid", "badge badge-paid"), ("Requires Action", "badge badge-requires-action"), (None, "badge badge-unknown")],
)
def test_a_badge_is_a_css_class_of_its_status(status: str | None, classes: str) -> None:
    assert badge(status) == classes


def test_badge_classes_cannot_carry_markup() -> None:
    assert badge('x" onclick="alert(1)') == "badge badge-x-onclick-alert-1"


def test_the_menu_marks_the_section_of_the_page() -> None:
    def current(path: str) -> list[str]:
        return [item["label"] for item in nav(_request(path)) if item["current"]]

    assert current("/admin/") == ["Overview"]
    assert current("/admin/invoices") == ["Invoices"]
    assert current("/admin/invoices/7b0c") == ["Invoices"]
    assert current("/admin/reconciliation/items/1") == ["Reconciliation"]
    assert current("/admin/login") == []
    assert [item["href"] for item in nav(_request("/admin/"))][:2] == ["/admin/", "/admin/invoices"]


def test_url_with_replaces_or_drops_query_parameters() -> None:
    request = _request("/admin/invoices", "status=open&cursor=abc")
    assert url_with(request, cursor="def") == "/admin/invoices?status=open&cursor=def"
    assert url_with(request, cursor=None) == "/admin/invoices?status=open"
    assert url_with(request, status=None, cursor=None) == "/admin/invoices"


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "https://evil.example/admin/",
        "//evil.example/admin/",
        "/\\evil.example",
        "/admin\\..\\api",
        "javascript:alert(1)",
        "/api/invoices",
        "/admin/../api",
        "/admin/%2e%2e/api",
        "/administrator",
        "/admin/\r\nSet-Cookie: x=1",
    ],
)
def test_next_falls_back_to_the_overview_unless_it_is_inside_the_dashboard(target: str | None) -> None:
    assert safe_next(target) == "/admin/"


def test_next_inside_the_dashboard_is_kept_with_its_query() -> None:
    assert safe_next("/admin/invoices?status=open&q=acme") == "/admin/invoices?status=open&q=acme"
    assert safe_next("/admin") == "/admin"
