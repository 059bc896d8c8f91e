"""libpq parameters in LEDGER_DATABASE_URL reach the server, from the event store and the read models."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import text

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from adapters.settings import Settings
from commands.messages import NewLine
from tests.pg_cluster import Cluster

NAME = "ledger-url-test"
PARAMETERS = f"sslmode=disable&application_name={NAME}&connect_timeout=3"
CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}


def _gone(present: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether `present()` turns false within `seconds` (a closed connection's backend exits
    asynchronously: pg_stat_activity may still list it for a moment)."""
    deadline = time.monotonic() + seconds
    while present():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _application_names(cluster: Cluster, dbname: str) -> set[str]:
    with cluster.admin() as admin:
        rows = admin.execute("SELECT application_name FROM pg_stat_activity WHERE datname = %s", (dbname,))
        return {str(name) for (name,) in rows}


@pytest.mark.postgres
def test_libpq_parameters_in_the_url_reach_the_server(pg_cluster: Cluster, clock: ManualClock) -> None:
    with pg_cluster.database() as plain_url:
        dbname = plain_url.rsplit("/", 1)[1]
        url = f"{plain_url}?{PARAMETERS}"
        app = bootstrap(Settings(database_url=url), clock=clock)
        engine = read_model_engine(url)
        try:
            invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
            assert app.invoice(invoice_id).total == 100
            assert NAME in _application_names(pg_cluster, dbname)  # the event store's pool
            app.close()
            assert _gone(lambda: NAME in _application_names(pg_cluster, dbname))  # backends end a moment later

            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_setting('application_name')")).scalar_one() == NAME
                assert NAME in _application_names(pg_cluster, dbname)  # the read models' engine
        finally:
            app.close()
            engine.dispose()
