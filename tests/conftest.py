"""Shared fixtures: hypothesis profiles, the backends every integration test runs on."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.settings import Settings
from commands.application import BillingApplication
from tests.event_examples import record_examples
from tests.mail_server import MailServer
from tests.pg_cluster import Cluster, find_pg_bin, running_cluster
from tests.stripe_server import StripeServer

# CI runs derandomized, so a red run is reproduced by running it again.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.register_profile(
    "integration",
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    if find_pg_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests, but initdb is missing")
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend, one test at a time."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.sqlite3"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    with cluster.database() as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


AppFactory = Callable[[], BillingApplication]


@pytest.fixture
def make_app(database_url: str, clock: ManualClock) -> Iterator[AppFactory]:
    """Build applications on the test's database; each one is closed when the test ends."""
    apps: list[BillingApplication] = []

    def make() -> BillingApplication:
        app = bootstrap(Settings(database_url=database_url), clock=clock)
        apps.append(app)
        return app

    yield make
    for app in apps:
        if os.environ.get("LEDGER_RECORD_EVENT_EXAMPLES") == "1":  # see tests/event_examples.py
            record_examples(app)
        app.close()


@pytest.fixture
def app(make_app: AppFactory) -> BillingApplication:
    return make_app()


@pytest.fixture
def stripe_server() -> Iterator[StripeServer]:
    """A Stripe-compatible server on a free loopback port (tests/stripe_server.py), fresh per test."""
    server = StripeServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def shared_stripe_server() -> Iterator[StripeServer]:
    """One Stripe-compatible server for the whole run, for tests that only need Stripe to answer."""
    server = StripeServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port, fresh per test (tests/mail_server.py)."""
    server = MailServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
