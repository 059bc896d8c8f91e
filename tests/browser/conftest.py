"""The admin dashboard in real headless Chromium: fixtures for the browser tests.

The browser is Debian's chromium (`/usr/bin/chromium`), driven by Playwright's sync API with
`executable_path`: never a browser Playwright downloads (`.ci/run` installs the Debian package
when it is missing, as it does PostgreSQL). Without chromium these tests FAIL, saying so: a
skipped browser test would read as a passing dashboard. One browser for the run; each test gets
a fresh context (no cookie or storage carried from another test), 1280x800 (a laptop), or
375x812 (a phone) through `phone`, and waits at most 15 s for anything.

The app is served for real (tests/e2e/conftest.py `serve`: uvicorn on a loopback port) over a
store seeded by tests/browser/seed.py, with an admin and an auditor able to sign in. Each test
has a store of its own, so the flows that change things (resolve, reprocess, sign out) cannot
leak into another test's figures.

Backends: SQLite only, but for one smoke test on PostgreSQL (`database_url` parametrized
indirectly). The dashboard's SQL runs on both backends in tests/integration/test_admin_queries.py
and the pages on both in the e2e tests; what the browser adds is the rendering, the forms and the
navigation, which do not depend on the database. Running every flow twice would double the
slowest suite to prove nothing new; the smoke test proves the served dashboard (sessions,
engine, read models) stands up on PostgreSQL.

Artifacts: `LEDGER_TEST_ARTIFACTS` (default var/test-artifacts in the repository, ignored by
git). `shot(page, request)` saves a full-page screenshot of the page a test checks as
screenshots/<test name>.png; a failed test also leaves screenshots/<test name>-failed.png of
where its page was (-console.png when the console is what failed it). A page that logs a console
error (a script error, or a style or script the Content-Security-Policy refused) or fails to
load a resource (a stylesheet, a script) fails its test.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, expect, sync_playwright
from sqlalchemy import Engine

from adapters.clock import ManualClock
from adapters.read_models import InProcessProjections, read_model_engine
from adapters.stripe.webhooks import StripeWebhookVerifier
from commands.application import BillingApplication
from ledger.admin.users import ADMIN, AUDITOR
from tests.browser.seed import ADMIN_EMAIL, AUDITOR_EMAIL, PASSWORD, Seeded, seed
from tests.conftest import AppFactory
from tests.e2e.conftest import WEBHOOK_SECRET, serve
from tests.pg_cluster import Cluster

REPOSITORY = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; never a browser Playwright downloads
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
TIMEOUT_MS = 15_000

FAILED = pytest.StashKey[bool]()

expect.set_options(timeout=TIMEOUT_MS)


def artifacts_dir() -> Path:
    return Path(os.environ.get("LEDGER_TEST_ARTIFACTS") or REPOSITORY / "var" / "test-artifacts")


def _file_name(request: pytest.FixtureRequest, suffix: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    return f"{name}-{suffix}.png" if suffix else f"{name}.png"


def shot(page: Page, request: pytest.FixtureRequest, suffix: str = "") -> Path:
    """Save a full-page screenshot of `page` as screenshots/<test name>[-suffix].png."""
    path = artifacts_dir() / "screenshots" / _file_name(request, suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Mark the test failed (in its stash), so the page fixtures screenshot where it stopped."""
    report: pytest.TestReport = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


# ------------------------------------------------------------------------------ the browser


# Package scope, not session: Playwright's sync API runs its event loop on the test thread while
# it is open, and every later test that calls asyncio.run (tests/e2e/) would find a loop running.
# The browser is closed, and its loop with it, once the last browser test is done.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"the browser tests need Debian's chromium at {CHROMIUM} "
            "(apt-get install chromium; .ci/run installs it when missing)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _forget_screenshots(request: pytest.FixtureRequest) -> None:
    """Remove the screenshots an earlier run of this test left, so none outlives what it showed."""
    stem = _file_name(request, "").removesuffix(".png")
    for old in (artifacts_dir() / "screenshots").glob(f"{glob.escape(stem)}*.png"):
        if old.name == f"{stem}.png" or old.name.startswith(f"{stem}-"):
            old.unlink()


def _page(
    browser: Browser, request: pytest.FixtureRequest, viewport: dict[str, int], *, javascript: bool = True
) -> Iterator[Page]:
    _forget_screenshots(request)
    context = browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        accept_downloads=True,
        java_script_enabled=javascript,
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        # A page answered 4xx on purpose (a refused login) is logged as "Failed to load
        # resource" too: what a page loads is checked by its response below instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"{page.url}: {message.text}")

    def loaded(response: Response) -> None:
        # The browser asks for /favicon.ico by itself; the dashboard has none.
        path = urlsplit(response.url).path
        if response.request.resource_type != "document" and response.status >= 400 and path != "/favicon.ico":
            errors.append(f"{page.url}: {response.url} answered {response.status}")

    page.on("console", console)
    page.on("response", loaded)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    try:
        yield page
        if request.node.stash.get(FAILED, False):
            shot(page, request, "failed")
        elif errors:
            shot(page, request, "console")
            pytest.fail("the browser's console logged errors:\n" + "\n".join(errors), pytrace=False)
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context, the size of a laptop screen."""
    yield from _page(browser, request, LAPTOP)


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context, the size of a phone (375 CSS pixels wide)."""
    yield from _page(browser, request, PHONE)


@pytest.fixture
def no_script(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A laptop-sized page with JavaScript off: the dashboard must work without it."""
    yield from _page(browser, request, LAPTOP, javascript=False)


# ------------------------------------------------------------------------------ the served app


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite, unless a test asks for PostgreSQL (`indirect` parametrization; see above)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.sqlite3"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    with cluster.database() as url:
        yield url


@dataclass
class Dashboard:
    base_url: str
    app: BillingApplication
    engine: Engine
    clock: ManualClock
    seeded: Seeded

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture
def dashboard(make_app: AppFactory, database_url: str, clock: ManualClock) -> Iterator[Dashboard]:
    """The app over the seeded store, served on loopback, with an admin and an auditor."""
    app = make_app()
    engine = read_model_engine(database_url)
    try:
        seeded = seed(app, clock, InProcessProjections(app, engine))
        for email, role in ((ADMIN_EMAIL, ADMIN), (AUDITOR_EMAIL, AUDITOR)):
            app.admin.create_user(email, role=role, password=PASSWORD, created_by="tests/browser")
        served = serve(app, engine, clock, records=seeded.records, webhooks=StripeWebhookVerifier(WEBHOOK_SECRET))
        try:
            yield Dashboard(served.base_url, app, engine, clock, seeded)
        finally:
            served.stop()
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ signing in


def sign_in(page: Page, dashboard: Dashboard, email: str = ADMIN_EMAIL, password: str = PASSWORD) -> None:
    """Sign in through the login form, as a person would, and land on the overview."""
    page.goto(dashboard.url("/admin/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(dashboard.url("/admin/"))


@pytest.fixture
def admin(page: Page, dashboard: Dashboard) -> Page:
    """`page`, signed in as the admin."""
    sign_in(page, dashboard)
    return page
