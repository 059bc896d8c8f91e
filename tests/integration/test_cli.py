"""The `ledger` command line as a user runs it, on both backends."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.bootstrap import bootstrap
from adapters.cli import main
from adapters.settings import Settings


@pytest.fixture
def ledger_env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return database_url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _event_count(database_url: str) -> int:
    app = bootstrap(Settings(database_url=database_url))
    try:
        return len(app.recorder.select_notifications(start=None, limit=1_000_000))
    finally:
        app.close()


def test_demo_seeds_every_kind_of_invoice_once_per_day(ledger_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "demo")
    assert code == 0
    for status in ["draft", "open (overdue)", "open ", "paid", "void", "uncollectible"]:
        assert status in out
    for currency in ["USD", "EUR", "JPY", "GBP", "KWD"]:
        assert currency in out
    seeded = _event_count(ledger_env)
    code, again, _ = _run(capsys, "demo")
    assert code == 0
    assert _event_count(ledger_env) == seeded
    assert _table(again) == _table(out)


def test_invoice_show_and_audit_show_as_of_a_past_moment(ledger_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "demo")
    invoice_id, as_of = re.search(r"audit show (\S+) --as-of (\S+)", out).groups()  # type: ignore[union-attr]

    code, shown, _ = _run(capsys, "invoice", "show", invoice_id)
    assert code == 0
    assert "status     paid" in shown
    assert "amount refunded              642.50 USD" in shown

    code, audited, _ = _run(capsys, "audit", "show", invoice_id, "--as-of", as_of)
    assert code == 0
    assert "amount refunded                0.00 USD" in audited  # the refund came later
    assert "invoice.payment-applied" in audited
    assert "invoice.refund-applied" not in audited


def test_unknown_invoice_and_bad_arguments_are_clear_errors(
    ledger_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "invoice", "show", "00000000-0000-0000-0000-000000000000")
    assert code == 3
    assert "not found" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "show", "not-a-uuid"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["audit", "show", "00000000-0000-0000-0000-000000000000", "--as-of", "2026-01-01T00:00:00"])
    assert "no timezone" in capsys.readouterr().err


def test_the_console_script_is_installed(tmp_path: Path) -> None:
    ledger = Path(sys.executable).parent / "ledger"
    result = subprocess.run([str(ledger), "--help"], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0
    assert "audit" in result.stdout


def _table(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(r"^(INV-|- )", line)]


def test_project_then_rebuild_the_read_models_from_the_command_line(
    ledger_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(capsys, "demo")
    code, out, _ = _run(capsys, "project")
    assert code == 0
    assert re.search(r"applied [1-9][\d,]* events", out)
    code, out, _ = _run(capsys, "project")
    assert "applied 0 events" in out
    code, out, err = _run(capsys, "rebuild", "--batch-size", "7")
    assert code == 0
    assert re.search(
        r"rebuilt invoice_status, journal(, \w+)* from [\d,]+ events in [\d.]+ s \([\d,]+ events/s, [12] process(es)?;",
        out,
    )
    assert err.splitlines()[-1] == "rebuild: done"  # off a terminal: no redrawn bar, a line at the end


def test_rebuild_on_one_or_two_processes(ledger_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _run(capsys, "demo")

    # In a process of its own, as a user runs it: a rebuild forks only a process that runs no
    # other thread, and this test process has run others by now.
    ledger = Path(sys.executable).parent / "ledger"
    env = {**os.environ, "LEDGER_DATABASE_URL": ledger_env}
    argv = [str(ledger), "rebuild", "--jobs", "2", "--batch-size", "7"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "2 processes;" in result.stdout
    assert result.stderr.splitlines()[-1] == "rebuild: done"
    code, out, _ = _run(capsys, "rebuild", "--check")  # what one process rebuilds in scratch tables
    assert code == 0, out

    code, out, _ = _run(capsys, "rebuild", "--jobs", "1")
    assert code == 0
    assert "1 process;" in out
    code, _, err = _run(capsys, "rebuild", "--jobs", "3")
    assert code == 2
    assert "--jobs must be between 1 and 2, not 3" in err
