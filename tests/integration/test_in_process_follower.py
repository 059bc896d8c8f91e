"""`LEDGER_FOLLOW_IN_PROCESS=0` leaves the read models to a follower of their own
(`ledger project --follow`): the served app starts no follower thread, and a list still shows
its own writes (a list request applies what is logged first, as without the setting)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from adapters.settings import Settings
from adapters.web_server import build_app
from tests.e2e.conftest import INVOICE
from tests.served import ServedApp

TOKEN = "follower-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _follower_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "ledger-projections" and t.is_alive()]


@pytest.mark.parametrize("follow_in_process", [True, False])
def test_the_served_app_follows_the_log_itself_only_when_the_setting_says_so(
    follow_in_process: bool, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ledger.sqlite3'}", api_token=TOKEN, follow_in_process=follow_in_process
    )
    before = len(_follower_threads())  # another test's app may still be stopping
    served = ServedApp(build_app(settings))
    try:
        assert len(_follower_threads()) == before + (1 if follow_in_process else 0)
        with httpx.Client(base_url=served.base_url, timeout=60) as client:
            created = client.post("/api/invoices", json=INVOICE, headers=AUTH)
            assert created.status_code == 201, created.text
            listed = client.get("/api/invoices", headers=AUTH)
            assert created.json()["id"] in [item["id"] for item in listed.json()["data"]]
    finally:
        served.stop()
    assert len(_follower_threads()) <= before
