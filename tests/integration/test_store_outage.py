"""When the database goes away, commands fail with StoreUnavailableError and store nothing."""

from __future__ import annotations

import pytest

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.settings import Settings
from commands.messages import NewLine
from ledger.errors import StoreUnavailableError
from tests.pg_cluster import Cluster

CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}


@pytest.mark.postgres
def test_a_lost_database_is_reported_as_store_unavailable(pg_cluster: Cluster, clock: ManualClock) -> None:
    with pg_cluster.database() as url:
        app = bootstrap(Settings(database_url=url), clock=clock)
        try:
            app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)])
            dbname = url.rsplit("/", 1)[1]
            with pg_cluster.admin() as admin:
                admin.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
            with pytest.raises(StoreUnavailableError):
                app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)])
        finally:
            app.close()
