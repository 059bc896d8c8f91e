"""`ledger serve` and `ledger demo --serve` as a user runs them: real processes, real ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import INVOICE
from tests.pg_cluster import free_port

LEDGER = str(Path(sys.executable).parent / "ledger")


@contextmanager
def running(args: list[str], env: dict[str, str], cwd: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [LEDGER, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"exited {process.returncode}: {process.stdout.read() if process.stdout else ''}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return {**env, "LEDGER_DATABASE_URL": database_url, **extra}


def test_serve_answers_with_the_token_and_keeps_lists_current(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = _env(database_url, LEDGER_API_TOKEN="serve-token-123")
    auth = {"Authorization": "Bearer serve-token-123"}
    with running(["serve", "--port", str(port)], env, tmp_path, port):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/invoices").status_code == 401
        created = httpx.post(f"{base}/api/invoices", json=INVOICE, headers=auth)
        assert created.status_code == 201, created.text
        invoice_id = created.json()["id"]
        issued = httpx.post(f"{base}/api/invoices/{invoice_id}/issue", headers=auth)
        assert issued.json()["number"] == "INV-000001"
        # the worker's in-process follower brings the list up to date on its own
        deadline = time.monotonic() + 30
        while True:
            rows = httpx.get(f"{base}/api/invoices", headers=auth).json()["data"]
            if rows and rows[0]["status"] == "open":
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.1)
        assert "/api/invoices" in httpx.get(f"{base}/openapi.json").json()["paths"]


def test_serve_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    env = _env(f"sqlite:///{tmp_path}/ledger.sqlite3")
    result = subprocess.run(
        [LEDGER, "serve", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "LEDGER_API_TOKEN" in result.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_demo_seeds_serves_and_prints_a_working_token(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = _env(database_url)
    with running(["demo", "--serve", "--port", str(port)], env, tmp_path, port) as process:
        invoices = None
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        printed = ""
        while "API token" not in printed or "Ctrl-C" not in printed:
            printed += process.stdout.readline()
            assert time.monotonic() < deadline, printed
        token = printed.split("API token", 1)[1].splitlines()[1].strip()
        invoices = httpx.get(f"http://127.0.0.1:{port}/api/invoices", headers={"Authorization": f"Bearer {token}"})
        assert invoices.status_code == 200
        assert len(invoices.json()["data"]) == 9
        assert f"curl -s -H 'Authorization: Bearer {token}'" in printed
