"""The dashboard's defences, served for real (uvicorn on a loopback port, httpx over TCP).

Every /admin route is enumerated from the app itself (the Mount's routes, a made-up id in each
path parameter), so a page added later is held to the same rules without touching this file:
anonymous requests are sent to the login page (GET) or refused (anything else); a POST without
the session's CSRF token, with a wrong one, from another site or from an auditor is refused and
stores nothing (the log's head does not move). A probe page added to the served app runs a real
command, so the refusals are shown to stop something that otherwise happens.

Sessions: a new id at each login (the one sent with it is revoked), logout and disabling a user
end it, and so do the idle and absolute timeouts (the test's ManualClock moves them). Logins:
a wrong password, an unknown email and a disabled account look the same; failures are limited per
account and per address (429 with Retry-After). Static files refuse path traversal, `next`
never leaves /admin, and every /admin answer carries the security headers.

The tests about sessions run on SQLite and PostgreSQL (the sessions are rows there); the rest
on SQLite only.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from adapters.clock import ManualClock
from adapters.read_models import InProcessProjections, read_model_engine
from commands.application import BillingApplication
from ledger.admin.users import ADMIN, AUDITOR
from tests.conftest import AppFactory
from tests.e2e.conftest import TOKEN
from tests.served import ServedApp
from web.admin.context import acting
from web.admin.security import COOKIE, CSP
from web.app import create_app
from web.limiter import LoginLimiter
from web.openapi import openapi_document
from web.services import Services

ADMIN_EMAIL = "finance@example.com"
AUDITOR_EMAIL = "auditor@example.com"
PASSWORD = "correct horse battery staple"
PROBE = "/admin/probe"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
# What a Content-Security-Policy without 'unsafe-inline' refuses to run or apply.
INLINE_CODE = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>|\sstyle=|<style[\s>]|\son[a-z]+=|javascript:", re.IGNORECASE)
MADE_UP = {"UUIDConvertor": str(uuid4()), "IntegerConvertor": "7", "FloatConvertor": "7.0"}


@dataclass(frozen=True)
class Signed:
    """A signed-in browser: its session cookie and the CSRF token its pages carry."""

    cookie: str
    csrf: str


@dataclass
class Dashboard:
    base_url: str
    app: BillingApplication
    services: Services
    asgi: Starlette
    clock: ManualClock

    def get(self, path: str, cookie: str | None = None, **headers: str) -> httpx.Response:
        return httpx.get(self.base_url + path, headers=_with_cookie(headers, cookie), timeout=30)

    def post(
        self, path: str, data: dict[str, str] | None = None, cookie: str | None = None, **headers: str
    ) -> httpx.Response:
        return httpx.post(self.base_url + path, data=data or {}, headers=_with_cookie(headers, cookie), timeout=30)

    def log_in(
        self, email: str, password: str, *, cookie: str | None = None, next_url: str | None = None
    ) -> httpx.Response:
        form = {"email": email, "password": password, **({"next": next_url} if next_url is not None else {})}
        return self.post("/admin/login", form, cookie=cookie)

    def sign_in(self, email: str = ADMIN_EMAIL, *, cookie: str | None = None) -> Signed:
        response = self.log_in(email, PASSWORD, cookie=cookie)
        assert response.status_code == 303, response.text
        raw = _session_cookie(response)
        assert raw is not None
        return Signed(raw, self.csrf_of(raw))

    def csrf_of(self, cookie: str) -> str:
        page = self.get("/admin/", cookie)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, (page.status_code, page.text[:500])
        return found.group(1)

    def signed_in(self, cookie: str) -> bool:
        """Whether this cookie opens a page (the frame names the user) rather than the login page."""
        page = self.get("/admin/", cookie)
        if page.status_code == 303:
            assert urlsplit(page.headers["location"]).path == "/admin/login"
            return False
        assert page.status_code in {200, 404}, page.status_code  # 404 until the overview page exists
        assert 'data-testid="user-email"' in page.text
        return True


def _with_cookie(headers: dict[str, str], cookie: str | None) -> dict[str, str]:
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    return {**headers, "Cookie": f"{COOKIE}={cookie}"} if cookie is not None else headers


def _session_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie(header)
        if COOKIE in parsed and parsed[COOKIE].value:
            return parsed[COOKIE].value
    return None


async def _probe(request: Request) -> Response:
    """A page that changes something (a new user): what every refusal below must prevent."""
    services: Services = request.app.state.services
    with acting(request, "probe.create-user", target="probe"):
        await run_in_threadpool(
            services.app.admin.create_user,
            f"probe-{uuid4().hex[:12]}@example.com",
            role=AUDITOR,
            password=PASSWORD,
            created_by="probe",
        )
    return RedirectResponse("/admin/", status_code=303)


def _admin_mount(asgi: Starlette) -> Mount:
    [mount] = [route for route in asgi.routes if isinstance(route, Mount) and route.path == "/admin"]
    return mount


def admin_routes(asgi: Starlette) -> list[tuple[str, str]]:
    """(method, path) of every route under /admin, path parameters filled with made-up values."""
    found: list[tuple[str, str]] = []

    def walk(routes: list[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount) and route.path != "/static":
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                path = route.path_format
                for name, convertor in route.param_convertors.items():
                    path = path.replace("{" + name + "}", MADE_UP.get(type(convertor).__name__, "made-up-id"))
                found.extend((method, prefix + path) for method in sorted(route.methods or ()) if method != "HEAD")

    walk(_admin_mount(asgi).routes, "/admin")
    return found


@contextmanager
def serving(
    app: BillingApplication,
    engine: Engine,
    clock: ManualClock,
    *,
    limiter: LoginLimiter | None = None,
    probe: bool = True,
    public_url: str | None = None,
) -> Iterator[Dashboard]:
    services = Services(
        app=app,
        read_models=InProcessProjections(app, engine),
        clock=clock,
        api_token=TOKEN,
        inline_reads=engine.dialect.name == "sqlite",
        public_url=public_url,
        **({"login_limiter": limiter} if limiter is not None else {}),
    )
    asgi = create_app(services)
    if probe:
        _admin_mount(asgi).routes.append(Route("/probe", _probe, methods=["POST"]))
    served = ServedApp(asgi)
    try:
        yield Dashboard(served.base_url, app, services, asgi, clock)
    finally:
        served.stop()


@pytest.fixture
def dashboard(make_app: AppFactory, database_url: str, clock: ManualClock) -> Iterator[Dashboard]:
    app = make_app()
    app.admin.create_user(ADMIN_EMAIL, role=ADMIN, password=PASSWORD, created_by="test")
    app.admin.create_user(AUDITOR_EMAIL, role=AUDITOR, password=PASSWORD, created_by="test")
    engine = read_model_engine(database_url)
    try:
        with serving(app, engine, clock) as served:
            yield served
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ anonymous


@SQLITE
def test_every_admin_route_refuses_an_anonymous_request(
    make_app: AppFactory, database_url: str, clock: ManualClock
) -> None:
    app = make_app()
    engine = read_model_engine(database_url)
    try:
        with serving(app, engine, clock, probe=False) as served:
            routes = admin_routes(served.asgi)
            assert ("POST", "/admin/logout") in routes, routes
            head = app.head()
            for method, path in routes:
                if path == "/admin/login":
                    continue  # the way in
                response = httpx.request(method, served.base_url + path, data={"csrf_token": "x"}, timeout=30)
                if method == "GET":
                    assert response.status_code == 303, (method, path, response.status_code)
                    location = urlsplit(response.headers["location"])
                    assert location.path == "/admin/login"
                    assert parse_qs(location.query)["next"] == [path]
                else:
                    assert response.status_code in {401, 403}, (method, path, response.status_code)
                _assert_secured(response)
            assert app.head() == head
    finally:
        engine.dispose()


@SQLITE
def test_an_anonymous_script_is_told_in_json(dashboard: Dashboard) -> None:
    response = dashboard.post("/admin/logout", accept="application/json")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401
    page = dashboard.post("/admin/logout", accept="text/html")
    assert (page.status_code, page.headers["content-type"].split(";")[0]) == (401, "text/html")


@SQLITE
def test_every_admin_page_answers_a_signed_in_user_without_a_500_or_inline_code(dashboard: Dashboard) -> None:
    """Made-up ids in an empty ledger: each page is a 2xx or a 4xx page, never a 500; none
    carries inline script, style or event handlers (the CSP would block them, breaking the page)."""
    signed = dashboard.sign_in()
    pages = [path for method, path in admin_routes(dashboard.asgi) if method == "GET"]
    assert "/admin/login" in pages
    for path in pages:
        response = dashboard.get(path, signed.cookie)
        assert response.status_code < 500, (path, response.status_code, response.text[:300])
        _assert_secured(response)
        if response.headers.get("content-type", "").startswith("text/html"):
            assert not INLINE_CODE.search(response.text), (path, INLINE_CODE.search(response.text))


# ------------------------------------------------------------------------------ CSRF and roles


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(dashboard: Dashboard) -> None:
    signed = dashboard.sign_in()
    other = dashboard.sign_in(AUDITOR_EMAIL)
    posts = [path for method, path in admin_routes(dashboard.asgi) if method == "POST" and path != "/admin/login"]
    assert PROBE in posts
    assert "/admin/logout" in posts
    head = dashboard.app.head()
    for path in posts:
        for form, headers in [
            ({}, {}),
            ({"csrf_token": ""}, {}),
            ({"csrf_token": signed.csrf + "x"}, {}),
            ({"csrf_token": other.csrf}, {}),  # another session's token
            ({}, {"x_csrf_token": "wrong"}),
            ({"csrf_token": signed.csrf}, {"origin": "https://evil.example"}),  # the right token, another site
        ]:
            response = dashboard.post(path, form, signed.cookie, **headers)
            assert response.status_code == 403, (path, form, headers, response.status_code)
            _assert_secured(response)
    assert dashboard.app.head() == head
    assert dashboard.signed_in(signed.cookie)  # the refused logouts did not log out

    # The same request with the session's token is carried out: the refusals above stopped something.
    assert dashboard.post(PROBE, {"csrf_token": signed.csrf}, signed.cookie).status_code == 303
    assert dashboard.app.head() > head
    moved = dashboard.app.head()
    assert dashboard.post(PROBE, {}, signed.cookie, x_csrf_token=signed.csrf).status_code == 303
    assert dashboard.app.head() > moved


def test_an_auditor_sees_everything_and_changes_nothing(dashboard: Dashboard) -> None:
    auditor = dashboard.sign_in(AUDITOR_EMAIL)
    assert dashboard.signed_in(auditor.cookie)
    page = dashboard.get("/admin/", auditor.cookie)
    assert 'data-testid="user-role">auditor<' in page.text
    head = dashboard.app.head()
    posts = [path for method, path in admin_routes(dashboard.asgi) if method == "POST"]
    for path in posts:
        if path in {"/admin/login", "/admin/logout"}:
            continue
        response = dashboard.post(path, {"csrf_token": auditor.csrf}, auditor.cookie)
        assert response.status_code == 403, (path, response.status_code)
        assert "auditor" in response.text
    assert dashboard.app.head() == head
    # An auditor may still leave.
    assert dashboard.post("/admin/logout", {"csrf_token": auditor.csrf}, auditor.cookie).status_code == 303
    assert not dashboard.signed_in(auditor.cookie)


# ------------------------------------------------------------------------------ sessions


def test_a_session_id_from_before_login_is_not_valid_after_it(dashboard: Dashboard) -> None:
    first = dashboard.sign_in()
    second = dashboard.sign_in(cookie=first.cookie)  # logging in again from the same browser
    assert second.cookie != first.cookie
    assert not dashboard.signed_in(first.cookie)
    assert dashboard.signed_in(second.cookie)
    assert second.csrf != first.csrf

    planted = "an-id-an-attacker-chose-0123456789abcdefghij"
    response = dashboard.log_in(ADMIN_EMAIL, PASSWORD, cookie=planted)
    assert _session_cookie(response) not in {None, planted}
    assert not dashboard.signed_in(planted)


def test_logout_and_disabling_the_user_end_the_session(dashboard: Dashboard) -> None:
    signed = dashboard.sign_in()
    out = dashboard.post("/admin/logout", {"csrf_token": signed.csrf}, signed.cookie)
    assert out.status_code == 303
    cleared = SimpleCookie(out.headers["set-cookie"])[COOKIE]
    assert (cleared.value, cleared["max-age"]) == ("", "0")
    assert not dashboard.signed_in(signed.cookie)
    assert dashboard.post(PROBE, {"csrf_token": signed.csrf}, signed.cookie).status_code == 401

    again = dashboard.sign_in()
    head = dashboard.app.head()
    dashboard.app.admin.disable_user(ADMIN_EMAIL, by="test")
    assert not dashboard.signed_in(again.cookie)  # disabled: even before its sessions are revoked
    assert dashboard.log_in(ADMIN_EMAIL, PASSWORD).status_code == 401
    assert dashboard.post(PROBE, {"csrf_token": again.csrf}, again.cookie).status_code == 401
    assert dashboard.app.head() == head + 1  # the disabling only

    dashboard.app.admin.enable_user(ADMIN_EMAIL, by="test")
    back = dashboard.sign_in()
    user = dashboard.app.admin.user_by_email(ADMIN_EMAIL)
    assert user is not None
    dashboard.services.session_store().revoke_user(user.id)  # what `ledger admin disable-user` does
    assert not dashboard.signed_in(back.cookie)


def test_sessions_end_after_the_idle_and_the_absolute_timeout(dashboard: Dashboard) -> None:
    store = dashboard.services.session_store()
    idle = dashboard.sign_in()
    dashboard.clock.advance(store.idle_timeout - timedelta(minutes=1))
    assert dashboard.signed_in(idle.cookie)  # and seen now: the idle time starts again
    dashboard.clock.advance(store.idle_timeout - timedelta(minutes=1))
    assert dashboard.signed_in(idle.cookie)
    dashboard.clock.advance(store.idle_timeout)
    assert not dashboard.signed_in(idle.cookie)

    busy = dashboard.sign_in()
    started = dashboard.clock.now()
    step = store.idle_timeout - timedelta(minutes=5)
    while dashboard.clock.now() + step < started + store.absolute_timeout:
        dashboard.clock.advance(step)
        assert dashboard.signed_in(busy.cookie)
    dashboard.clock.set(started + store.absolute_timeout)
    assert not dashboard.signed_in(busy.cookie)  # used all along, but twelve hours old


# ------------------------------------------------------------------------------ logins


@SQLITE
def test_a_wrong_password_an_unknown_email_and_a_disabled_account_look_the_same(dashboard: Dashboard) -> None:
    email = "newcomer@example.com"
    unknown = dashboard.log_in(email, PASSWORD)
    dashboard.app.admin.create_user(email, role=ADMIN, password=PASSWORD, created_by="test")
    wrong = dashboard.log_in(email, PASSWORD + "!")
    dashboard.app.admin.disable_user(email, by="test")
    disabled = dashboard.log_in(email, PASSWORD)
    for response in (unknown, wrong, disabled):
        assert response.status_code == 401
        assert _session_cookie(response) is None
    assert unknown.text == wrong.text == disabled.text
    assert email in unknown.text  # the form keeps what was typed


@SQLITE
def test_failed_logins_are_limited_per_account(make_app: AppFactory, database_url: str, clock: ManualClock) -> None:
    app = make_app()
    app.admin.create_user(ADMIN_EMAIL, role=ADMIN, password=PASSWORD, created_by="test")
    app.admin.create_user(AUDITOR_EMAIL, role=AUDITOR, password=PASSWORD, created_by="test")
    engine = read_model_engine(database_url)
    try:
        with serving(app, engine, clock, limiter=LoginLimiter(per_account=3, per_address=100)) as served:
            for _ in range(3):
                assert served.log_in(ADMIN_EMAIL, "guess-guess-guess").status_code == 401
            for password in ("guess-guess-guess", PASSWORD):  # now even the right password waits
                limited = served.log_in(" Finance@Example.com ", password)
                assert limited.status_code == 429
                assert 0 < int(limited.headers["retry-after"]) <= 15 * 60
                assert _session_cookie(limited) is None
                _assert_secured(limited)
            assert served.log_in(AUDITOR_EMAIL, PASSWORD).status_code == 303  # another account is not held up
    finally:
        engine.dispose()


@SQLITE
def test_failed_logins_are_limited_per_address(make_app: AppFactory, database_url: str, clock: ManualClock) -> None:
    app = make_app()
    app.admin.create_user(ADMIN_EMAIL, role=ADMIN, password=PASSWORD, created_by="test")
    engine = read_model_engine(database_url)
    try:
        with serving(app, engine, clock, limiter=LoginLimiter(per_account=100, per_address=4)) as served:
            for attempt in range(4):  # a different email each time: only the address is shared
                assert served.log_in(f"guess{attempt}@example.com", "guess-guess-guess").status_code == 401
            limited = served.log_in(ADMIN_EMAIL, PASSWORD)
            assert limited.status_code == 429
            assert int(limited.headers["retry-after"]) > 0
    finally:
        engine.dispose()


@SQLITE
def test_a_login_form_of_another_site_is_refused(dashboard: Dashboard) -> None:
    form = {"email": ADMIN_EMAIL, "password": PASSWORD}
    forged = dashboard.post("/admin/login", form, origin="https://evil.example")
    assert forged.status_code == 403
    assert _session_cookie(forged) is None
    ours = dashboard.post("/admin/login", form, origin=dashboard.base_url)
    assert ours.status_code == 303
    assert _session_cookie(ours) is not None


@SQLITE
def test_next_never_leaves_the_dashboard(dashboard: Dashboard) -> None:
    for target in [
        "https://evil.example/admin/",
        "//evil.example/admin/",
        "/\\evil.example",
        "\\\\evil.example/admin/",
        "javascript:alert(1)",
        "/api/invoices",
        "/admin/../api/invoices",
        "/admin/%2e%2e/api/invoices",
        "/adminx",
    ]:
        response = dashboard.log_in(ADMIN_EMAIL, PASSWORD, next_url=target)
        assert (response.status_code, response.headers["location"]) == (303, "/admin/"), target
        form = dashboard.get("/admin/login?next=" + httpx.QueryParams({"n": target})["n"])
        assert 'name="next" value="/admin/"' in form.text, target
    kept = dashboard.log_in(ADMIN_EMAIL, PASSWORD, next_url="/admin/invoices?status=open")
    assert kept.headers["location"] == "/admin/invoices?status=open"


# ------------------------------------------------------------------------------ static files, headers


@SQLITE
def test_static_files_refuse_path_traversal(dashboard: Dashboard) -> None:
    host = urlsplit(dashboard.base_url)
    css = dashboard.get("/admin/static/admin.css")
    assert (css.status_code, css.headers["content-type"].split(";")[0]) == (200, "text/css")
    for raw in [
        "/admin/static/../../pyproject.toml",
        "/admin/static/../../../pyproject.toml",
        "/admin/static/%2e%2e/%2e%2e/pyproject.toml",
        "/admin/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/admin/static/..%2f..%2f..%2fpyproject.toml",
        "/admin/static/../templates/admin/base.html",
        "/admin/static/%2e%2e/templates/admin/base.html",
        "/admin/static//etc/passwd",
    ]:
        # http.client sends the path as written: httpx would resolve the dots before sending.
        connection = http.client.HTTPConnection(host.hostname or "", host.port, timeout=30)
        try:
            connection.request("GET", raw)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status in {400, 404}, (raw, response.status)
        assert not [leak for leak in (b"[project]", b"{% block", b"root:") if leak in body], raw
        assert response.getheader("content-security-policy") == CSP, raw


@SQLITE
def test_every_admin_answer_carries_the_security_headers(dashboard: Dashboard) -> None:
    signed = dashboard.sign_in()
    answers = {
        "login page": dashboard.get("/admin/login"),
        "failed login": dashboard.log_in(ADMIN_EMAIL, "not the password"),
        "login": dashboard.log_in(ADMIN_EMAIL, PASSWORD),
        "anonymous page": dashboard.get("/admin/"),
        "anonymous post": dashboard.post(PROBE),
        "no such page": dashboard.get("/admin/no-such-page", signed.cookie),
        "wrong method": dashboard.get(PROBE, signed.cookie),
        "refused post": dashboard.post(PROBE, {"csrf_token": "wrong"}, signed.cookie),
        "the slash redirect": dashboard.get("/admin"),
        "static": dashboard.get("/admin/static/admin.css"),
        "no such static file": dashboard.get("/admin/static/nothing.css"),
        "logout": dashboard.post("/admin/logout", {"csrf_token": signed.csrf}, signed.cookie),
    }
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        "login page": 200,
        "failed login": 401,
        "login": 303,
        "anonymous page": 303,
        "anonymous post": 401,
        "no such page": 404,
        "wrong method": 405,
        "refused post": 403,
        "the slash redirect": 307,
        "static": 200,
        "no such static file": 404,
        "logout": 303,
    }
    for name, response in answers.items():
        _assert_secured(response, static=name.startswith("static") or name.startswith("no such static"))
    for name in ("no such page", "wrong method", "refused post", "failed login"):
        assert answers[name].headers["content-type"].startswith("text/html"), name  # a page, not JSON
        assert "Traceback" not in answers[name].text
    assert "unsafe-" not in CSP
    cookie = SimpleCookie(answers["login"].headers["set-cookie"])[COOKIE]
    assert (bool(cookie["httponly"]), cookie["samesite"], cookie["path"]) == (True, "lax", "/admin")
    assert not cookie["secure"]  # served over plain http without an https public URL
    assert not INLINE_CODE.search(answers["login page"].text)


@SQLITE
def test_the_session_cookie_is_secure_when_the_dashboard_is_public_over_https(
    make_app: AppFactory, database_url: str, clock: ManualClock
) -> None:
    app = make_app()
    app.admin.create_user(ADMIN_EMAIL, role=ADMIN, password=PASSWORD, created_by="test")
    engine = read_model_engine(database_url)
    try:
        with serving(app, engine, clock, public_url="https://billing.example") as served:
            response = served.log_in(ADMIN_EMAIL, PASSWORD)
            assert SimpleCookie(response.headers["set-cookie"])[COOKIE]["secure"]
    finally:
        engine.dispose()


def test_the_openapi_document_leaves_the_dashboard_out() -> None:
    assert not [path for path in openapi_document()["paths"] if path.startswith("/admin")]


def _assert_secured(response: httpx.Response, *, static: bool = False) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name, response.headers.get(name))
    assert response.headers["cache-control"] == ("no-cache" if static else "no-store"), response.request.url
